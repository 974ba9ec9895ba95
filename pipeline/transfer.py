"""Expression transfer: copy the expression of a face in another photo onto the target face.

Landmark positions cannot be copied between people (face shapes differ), so the reference face's
expression is read as action-unit intensities (`pipeline.measure`, relative to the neutral rest
shape) and those AUs are applied to the target through the normal edit path: target "neutral"
(which first relaxes the target's own expression) plus the reference's AUs times `strength`.

The gate is off for a copied expression: its emotion check needs a named target emotion, and
a copied one has none (a mix of AUs the classifiers may read as anything).
"""
from __future__ import annotations

import numpy as np

from .emotions import INTENSITY_MAX, check_intensity, parse_aus
from .errors import InvalidRequest


def check_strength(strength) -> float:
    """Same range as an intensity (0..1.5), named as the user typed it."""
    try:
        return check_intensity(strength)
    except InvalidRequest:
        raise InvalidRequest(f"Strength must be a number between 0 and {INTENSITY_MAX} (got {strength}).") from None


def reference_aus(reference, strength: float = 1.0, classifier: str | None = None) -> dict[str, float]:
    """The AUs of the largest face in `reference` (path, bytes, PIL image or array) times `strength`."""
    from .measure import measure

    strength = check_strength(strength)
    ref = max(measure(reference, classifier=classifier), key=lambda m: m.face.size)
    return {k: round(min(v * strength, INTENSITY_MAX), 4) for k, v in ref.aus.items()}


def reference_request(reference, strength, aus=None, classifier: str | None = None):
    """What `edit(reference=...)` renders instead: (emotion, intensity, aus, gate). Intensity is
    how far the target's own expression is relaxed (`expression.plan`): fully from strength 0.5
    up, so strength 0 leaves the photo as it was. The user's `aus` add to the copied ones."""
    copied = reference_aus(reference, strength, classifier)
    for k, v in parse_aus(aus).items():
        copied[k] = float(np.clip(copied.get(k, 0.0) + v, -INTENSITY_MAX, INTENSITY_MAX))
    return "neutral", min(check_strength(strength), 1.0), copied, False


def transfer(image, reference, strength: float = 1.0, **kwargs):
    """`edit(image, reference=reference, strength=strength, **kwargs)`: the target with the
    reference face's expression."""
    from .editor import edit

    return edit(image, reference=reference, strength=strength, **kwargs)
