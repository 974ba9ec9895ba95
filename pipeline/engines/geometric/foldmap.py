"""Real smile shading: how a smile changes the skin's brightness (nasolabial folds, raised cheeks,
crow's feet), measured on the London neutral -> smile pairs and stored as a log-ratio map in the
canonical face frame (`weights/smile_shading.npz`, built by `scripts/build_smile_shading.py`).

The canonical frame is the mean face of `expression.model()` (IOD units), sampled at PX pixels per
IOD. A face is mapped to it through the mesh itself (piecewise-affine on the mean face's
triangles), so the map lands on the same skin whatever the face's shape, size or tilt. At edit time
the map is warped onto the target landmarks and multiplied in: the photo keeps its own texture.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from ...config import WEIGHTS
from .expression import model
from .warp import _exact

MAP_PATH = WEIGHTS / "smile_shading.npz"
PX = 48.0  # canonical pixels per IOD
X0, X1, Y0, Y1 = -1.15, 1.15, -0.9, 1.8  # canonical extent (IOD), the mean face with a margin
SPLIT = 0.62  # canonical y: above = AU6 (cheeks, lids, crow's feet), below = AU12 (folds, mouth)


def grid_shape() -> tuple[int, int]:
    return round((Y1 - Y0) * PX), round((X1 - X0) * PX)


def _mean_px() -> np.ndarray:
    """The mean face's landmarks in canonical-map pixels."""
    return (model().mean[:, :2].astype(np.float64) - [X0, Y0]) * PX


def face_to_canonical(lm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each canonical-map pixel: where it lies in the image (h, w, 2 float32), and whether the
    mesh covers it."""
    h, w = grid_shape()
    return _exact(lm[:, :2].astype(np.float64), _mean_px(), model().tri_mesh, np.zeros(2), 1.0, w, h)


@dataclass
class FoldMap:
    log_ratio: np.ndarray  # (h, w) float32: log(smile / neutral) brightness per measured smile
    n: int  # pairs it was measured on


@lru_cache(maxsize=1)
def fold_map() -> FoldMap | None:
    if not MAP_PATH.exists():
        return None
    z = np.load(MAP_PATH)
    return FoldMap(z["log_ratio"].astype(np.float32) * float(z["scale"]), int(z["n"]))


def render(rgb: np.ndarray, dst: np.ndarray, origin: np.ndarray, k_upper: float, k_lower: dict[str, float],
           step: float = 4.0) -> np.ndarray | None:
    """Multiply the measured smile shading into `rgb` (uint8 region, in place): the map above SPLIT
    scaled by k_upper (AU6), below by k_lower['L'/'R'] per side (AU12, AU12R), in units of the mean
    measured smile. Returns the touched mask (bool) or None. The canonical position of each pixel
    comes from the mesh on a grid of `step` pixels, upsampled."""
    fm = fold_map()
    if fm is None or (k_upper <= 0 and max(k_lower.values()) <= 0):
        return None
    h, w = rgb.shape[:2]
    nx, ny = int(np.ceil(w / step)) + 1, int(np.ceil(h / step)) + 1
    # Image -> canonical: the mesh's triangles, destination = this face, source = the mean face.
    nodes, inside = _exact(_mean_px(), dst[:, :2].astype(np.float64), model().tri_mesh,
                           np.asarray(origin, np.float64), step, nx, ny)
    nodes[~inside] = -1e4  # off the mesh: outside the map (zero)
    m = np.float32([[1 / step, 0, 0], [0, 1 / step, 0]])
    full = cv2.warpAffine(nodes, m, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_REPLICATE)
    gh, gw = fm.log_ratio.shape
    cy = (np.arange(gh, dtype=np.float32) / PX + Y0)[:, None]
    cx = (np.arange(gw, dtype=np.float32) / PX + X0)[None]
    lower = cy > SPLIT
    right = np.clip((cx + 0.12) / 0.24, 0, 1)  # image right = the subject's left (AU12R)
    k_lo = k_lower.get("L", 0.0) * (1 - right) + k_lower.get("R", 0.0) * right
    scaled = fm.log_ratio * np.where(lower, k_lo, k_upper).astype(np.float32)
    lr = cv2.remap(scaled, full[..., 0], full[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    touched = np.abs(lr) > 2e-3
    if not touched.any():
        return None
    ys, xs = np.nonzero(touched)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    sub = rgb[y0:y1, x0:x1]
    out = sub * np.exp(lr[y0:y1, x0:x1])[..., None]
    out *= np.minimum(1.0, 255.0 / np.maximum(out.max(-1, keepdims=True), 1.0))  # keep the hue where lit
    sub[:] = (out + 0.5).astype(np.uint8)
    return touched
