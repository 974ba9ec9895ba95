"""Mien's one vocabulary of requests: the emotions a user can ask for (and the classes the
classifiers output), the action units, the intensity range, and the names people type for them.
Every engine reads requests in these terms."""
from __future__ import annotations

import re

import numpy as np

from .errors import InvalidRequest

# What a user can ask for. Contempt has no class in FER2013-style classifiers (the gate checks it
# geometrically), so the classifiers' labels are the other seven, in this order.
EMOTIONS = ("neutral", "happy", "sad", "angry", "fearful", "disgusted", "surprised", "contempt")
CLASSIFIER_LABELS = EMOTIONS[:7]
EMOTION_ALIASES = {"happiness": "happy", "joy": "happy", "sadness": "sad", "anger": "angry",
                   "fear": "fearful", "afraid": "fearful", "disgust": "disgusted",
                   "surprise": "surprised", "contemptuous": "contempt", "none": "neutral"}


def normalize_emotion(emotion: str) -> str:
    e = str(emotion).strip().lower()
    e = EMOTION_ALIASES.get(e, e)
    if e not in EMOTIONS:
        raise InvalidRequest(f"Unknown emotion '{emotion}'. Choose one of: {', '.join(EMOTIONS)}.")
    return e


AU_NAMES = {
    "AU1": "raise inner brows", "AU2": "raise outer brows", "AU4": "lower and knit brows",
    "AU5": "widen eyes (raise upper lids)", "AU6": "raise cheeks", "AU7": "tighten lids",
    "AU9": "wrinkle nose", "AU10": "raise upper lip", "AU12": "pull lip corners up (smile)",
    "AU14": "dimple (tighten corners)", "AU15": "pull lip corners down", "AU16": "lower the lower lip",
    "AU17": "raise chin", "AU20": "stretch lips sideways", "AU23": "tighten lips",
    "AU24": "press lips together", "AU25": "part lips", "AU26": "drop jaw", "AU27": "stretch mouth open",
    "AU43": "close eyes",
}
AU_ALIASES = {"eyes_closed": "AU43", "eye_closure": "AU43", "blink": "AU43", "AU45": "AU43",
              "smile": "AU12", "jaw_drop": "AU26"}
INTENSITY_MAX = 1.5


def parse_aus(aus) -> dict[str, float]:
    """Accept {'AU12': .5, 6: .3, 'eyes_closed': 1} or 'AU12=0.5,AU6=0.3' -> {'AU12': 0.5, ...}."""
    if aus is None:
        return {}
    if isinstance(aus, str):
        items = {}
        for part in filter(None, (s.strip() for s in aus.split(","))):
            if "=" not in part:
                raise InvalidRequest(f"Action units are given as NAME=VALUE, e.g. AU12=0.5 (got '{part}').")
            k, v = part.split("=", 1)
            items[k.strip()] = v.strip()
        aus = items
    out = {}
    for k, v in dict(aus).items():
        key = str(k).strip()
        key = AU_ALIASES.get(key.lower(), AU_ALIASES.get(key, key))
        if re.fullmatch(r"\d+", key):
            key = f"AU{int(key)}"
        key = key.upper()
        key = AU_ALIASES.get(key, key)
        if key not in AU_NAMES and key not in ("AU12R", "AU14R"):
            raise InvalidRequest(f"Unknown action unit '{k}'. Known: {', '.join(AU_NAMES)} (or eyes_closed).")
        try:
            val = float(v)
        except (TypeError, ValueError):
            raise InvalidRequest(f"Action unit {key} needs a number, got '{v}'.") from None
        if not np.isfinite(val) or not -INTENSITY_MAX <= val <= INTENSITY_MAX:
            raise InvalidRequest(f"Action unit {key} must be between -{INTENSITY_MAX} and {INTENSITY_MAX} (got {v}).")
        out[key] = val
    return out


def check_intensity(intensity) -> float:
    try:
        v = float(intensity)
    except (TypeError, ValueError):
        raise InvalidRequest(f"Intensity must be a number between 0 and {INTENSITY_MAX} (got '{intensity}').") from None
    if not np.isfinite(v) or not 0.0 <= v <= INTENSITY_MAX:
        raise InvalidRequest(f"Intensity must be between 0 and {INTENSITY_MAX} (got {intensity}).")
    return v
