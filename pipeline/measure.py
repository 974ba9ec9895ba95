"""Read a face's expression as action-unit intensities (the inverse of the geometric engine).

A face's canonical landmarks (`expression.pose_of`: similarity-aligned to the mean neutral London
face, IOD units) minus the model's neutral shape is expression plus identity: a wide mouth or high
brows look like AUs. Two steps keep identity out:

1. Only AUs whose witness measure (`WITNESS`: corner lift for AU12, inner-brow height for AU1, ...)
   lies beyond the range of the 68 real London neutral faces (`model().neutral_range`, 5th/95th
   percentile, in the AU's direction) take part. Most identity differences stay inside that range,
   so a neutral face reads (almost) nothing.
2. The active AUs' weights are the non-negative least-squares fit (a small Lawson-Hanson active
   set, with a ridge term) of the x, y landmark offset onto their displacement fields
   (`expression._field`, on the face's own geometry), i.e. in the engine's own units: applying the
   weights back with `edit(aus=...)` reproduces the motion.

Measured on the London set (`python -m pipeline.measure`; 68 people, neutral and smiling photo
each): gated, AU12 reads > 0 on 51 of 68 smiles (median 0.37) and 1 of 68 neutrals (95th
percentile 0.00); AUC 0.87 (the 17 mildest smiles lift the corners no more than some neutral faces
do, so they read 0). Ungated (every AU fitted from the mean shape) the smiles read a little more
(median 0.41) but so do the neutrals (95th percentile 0.40) and the AUC falls to 0.83: identity
leaks into the read. The neutral range comes from these same people, so the neutral figures are
in-sample. See `separation`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .emotions import INTENSITY_MAX
from .engines.geometric import expression
from .types import Face

# AU -> (measure, direction): the AU takes part when the measure is beyond the neutral range in
# that direction. AUs the measures cannot tell apart share a witness and compete in the fit.
WITNESS: dict[str, tuple[str, int]] = {
    "AU1": ("inner_brow_height", +1), "AU2": ("outer_brow_height", +1),
    "AU4": ("inner_brow_height", -1),
    "AU5": ("eye_open", +1), "AU7": ("eye_open", -1), "AU43": ("eye_open", -1),
    "AU6": ("corner_lift", +1), "AU12": ("corner_lift", +1), "AU15": ("corner_lift", -1),
    "AU12R": ("corner_asymmetry", +1),  # one-sided smile (contempt); the vocabulary has no AU12L
    "AU20": ("mouth_width", +1), "AU14": ("mouth_width", -1), "AU23": ("mouth_width", -1),
    "AU10": ("upper_lip_to_nose", -1), "AU9": ("upper_lip_to_nose", -1),
    "AU25": ("lip_gap", +1), "AU26": ("lip_gap", +1),
}
RIDGE = 0.01  # per AU (IOD^2): keeps correlated fields (AU6/AU12, AU25/AU26) from trading wildly
MIN_AU = 0.03  # weaker reads are noise


@dataclass
class Measured:
    face: Face
    aus: dict[str, float]  # AU -> intensity (the engine's units: 1 = a clear, natural expression)
    probs: dict[str, float]  # emotion classifier's probabilities


def nnls(a: np.ndarray, b: np.ndarray, iters: int = 50) -> np.ndarray:
    """argmin |a x - b| subject to x >= 0 (Lawson & Hanson 1974's active set, in numpy)."""
    n = a.shape[1]
    x, passive = np.zeros(n), np.zeros(n, bool)
    for _ in range(iters):
        grad = a.T @ (b - a @ x)
        if passive.all() or grad[~passive].max(initial=0) <= 1e-10:
            break
        passive[np.argmax(np.where(passive, -np.inf, grad))] = True
        while True:
            z = np.zeros(n)
            z[passive] = np.linalg.lstsq(a[:, passive], b, rcond=None)[0]
            if z[passive].min() > 0:
                x = z
                break
            # Step back to the boundary and drop the variables that hit zero.
            neg = passive & (z <= 0)
            alpha = np.min(x[neg] / (x[neg] - z[neg] + 1e-300))
            x = x + alpha * (z - x)
            passive &= x > 1e-12
    return x


def active_aus(c: np.ndarray) -> list[str]:
    """AUs whose witness measure is beyond the neutral range, in the AU's direction."""
    m, rng = expression.measures_canonical(c), expression.model().neutral_range
    out = []
    for au, (key, sgn) in WITNESS.items():
        lo, _, hi = rng[key]
        if (m[key] > hi) if sgn > 0 else (m[key] < lo):
            out.append(au)
    return out


def fit_aus(c: np.ndarray, aus: list[str] | None = None) -> dict[str, float]:
    """AU weights of canonical landmarks `c`. aus: which AUs take part (default: `active_aus`;
    pass `list(WITNESS)` to fit all of them from the mean shape)."""
    aus = active_aus(c) if aus is None else aus
    if not aus:
        return {}
    g = expression.Geometry(c)
    a = np.stack([expression.displacement(g, {au: 1.0})[:, :2].ravel() for au in aus], 1)
    b = (c - expression.model().mean)[:, :2].ravel()
    k = len(aus)
    w = nnls(np.vstack([a, np.sqrt(RIDGE) * np.eye(k)]), np.concatenate([b, np.zeros(k)]))
    return {au: round(float(min(v, INTENSITY_MAX)), 3) for au, v in zip(aus, w) if v >= MIN_AU}


def canonical(face: Face) -> np.ndarray:
    return expression.pose_of(face.landmarks).to_canonical(face.landmarks.astype(np.float64))


def faces_of(image, detections: list[Face] | None = None) -> tuple[np.ndarray, list[Face]]:
    """(rgb, faces) of `image` (detected unless given); `NoFaceError` when there is none."""
    from .editor import detect
    from .errors import NoFaceError
    from .imageio import load_image

    if detections is None:
        rgb, detections = detect(image)
    else:
        rgb = load_image(image).rgb
    if not detections:
        raise NoFaceError("No face was found in the photo: try a clearer, larger, front-facing face.")
    return rgb, detections


def measure(image, detections: list[Face] | None = None, classifier: str | None = None) -> list[Measured]:
    """Every face in `image` (left to right) with its AU intensities and the emotion classifier's
    probabilities. Raises `NoFaceError` when there is none."""
    from . import registry

    rgb, detections = faces_of(image, detections)
    probs = registry.get("classifier", classifier).predict(rgb, detections)
    return [Measured(f, fit_aus(canonical(f)), p) for f, p in zip(detections, probs)]


def separation(neutral: list[np.ndarray], smiles: list[np.ndarray], aus: list[str] | None = None,
               au: str = "AU12") -> dict[str, float]:
    """How well `au`'s read tells smiles from neutral faces (canonical landmarks): medians,
    the neutrals' 95th percentile and the AUC (P(smile read > neutral read), ties half)."""
    n = np.array([fit_aus(c, aus).get(au, 0.0) for c in neutral])
    s = np.array([fit_aus(c, aus).get(au, 0.0) for c in smiles])
    auc = float((s[:, None] > n[None]).mean() + 0.5 * (s[:, None] == n[None]).mean())
    return {"neutral_median": float(np.median(n)), "neutral_p95": float(np.percentile(n, 95)),
            "neutral_read": float((n > 0).mean()), "smile_median": float(np.median(s)),
            "smile_read": float((s > 0).mean()), "auc": auc}


def _london_report() -> None:
    """Print `separation` on the 68 London people, gated and ungated."""
    from .datasets import london_ids, london_photo
    from .editor import detect

    sets: dict[str, list[np.ndarray]] = {"neutral": [], "happy": []}
    for i in london_ids():
        for kind, store in sets.items():
            _, faces = detect(london_photo(i, kind))
            if faces:
                store.append(canonical(faces[0]))
    for name, aus in (("gated (active AUs only)", None), ("ungated (all AUs from the mean)", list(WITNESS))):
        r = separation(sets["neutral"], sets["happy"], aus)
        print(f"{name}: " + ", ".join(f"{k} {v:.3f}" for k, v in r.items()))


if __name__ == "__main__":
    _london_report()
