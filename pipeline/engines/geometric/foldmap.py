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
from . import mouthbank
from .expression import model
from .warp import _exact, nonzero_box

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


def render(rgb: np.ndarray, dst: np.ndarray, origin: np.ndarray, k_upper: float, k_lower: dict[str, float]) -> np.ndarray | None:
    """Multiply the measured smile shading into `rgb` (uint8 region, in place): the map above SPLIT
    scaled by k_upper (AU6), below by k_lower['L'/'R'] per side (AU12, AU12R), in units of the mean
    measured smile; negative k takes a smile's shading away (its shadows lifted no further than the
    skin around them, `lift_factor`). Returns the touched mask (bool) or None. The map is smooth, so it
    is looked up on a grid about as fine as the map itself and the gain upsampled."""
    fm = fold_map()
    if fm is None or (k_upper == 0 and not any(k_lower.values())):
        return None
    gh, gw = fm.log_ratio.shape
    cy = (np.arange(gh, dtype=np.float32) / PX + Y0)[:, None]
    cx = (np.arange(gw, dtype=np.float32) / PX + X0)[None]
    right = np.clip((cx + 0.12) / 0.24, 0, 1)  # image right = the subject's left (AU12R)
    k_lo = k_lower.get("L", 0.0) * (1 - right) + k_lower.get("R", 0.0) * right
    k_map = np.where(cy > SPLIT, k_lo, k_upper).astype(np.float32)
    scaled = fm.log_ratio * k_map
    # A removed smile's shadows lifted (see `lift_factor`) apart from the rest: what a smile adds
    # (its lit cheeks) and what a removed one darkens keep the map's gain.
    undo = np.where(k_map < 0, np.maximum(scaled, 0), 0)
    if undo.any():
        scaled = np.dstack([scaled - undo, undo])
    # The face's box in the region, and a grid over it with about one node per map pixel.
    h, w = rgb.shape[:2]
    pts = dst[:, :2] - origin
    x0, y0 = np.maximum(np.floor(pts.min(0)).astype(int), 0)
    x1, y1 = np.minimum(np.ceil(pts.max(0)).astype(int) + 1, [w, h])
    if x1 <= x0 or y1 <= y0:
        return None
    iod = float(np.hypot(*(dst[263, :2] - dst[33, :2])))
    step = max(1.0, iod / PX)
    nx, ny = int(np.ceil((x1 - x0) / step)) + 1, int(np.ceil((y1 - y0) / step)) + 1
    # Image -> canonical: the mesh's triangles, destination = this face, source = the mean face.
    nodes, inside = _exact(_mean_px(), dst[:, :2].astype(np.float64), model().tri_mesh,
                           np.asarray(origin, np.float64) + [x0, y0], step, nx, ny)
    lr = cv2.remap(scaled, nodes, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    lr[~inside] = 0
    m = np.float32([[1 / step, 0, 0], [0, 1 / step, 0]])
    gains = cv2.warpAffine(np.exp(lr), m, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                           borderMode=cv2.BORDER_REPLICATE)
    gain, undo = (gains[..., 0], gains[..., 1]) if gains.ndim == 3 else (gains, np.ones_like(gains))
    touched = np.zeros((h, w), bool)
    touched[y0:y1, x0:x1] = np.abs(gain * undo - 1) > 2e-3
    if not touched.any():
        return None
    sub = rgb[y0:y1, x0:x1]
    lifted, lift = None, undo > 1 + 2e-3
    if lift.any():
        # Each channel moves towards the skin around the pixel by the share of the way the grey
        # gain asks for, and no further (`lift_factor`). Worked out round the lifted part only.
        ly0, ly1, lx0, lx1 = nonzero_box(lift)
        pad = int(np.ceil(2 * CAP_REACH * iod))
        ly0, lx0 = max(ly0 - pad, 0), max(lx0 - pad, 0)
        ly1, lx1 = min(ly1 + pad, sub.shape[0]), min(lx1 + pad, sub.shape[1])
        lifted = (slice(ly0, ly1), slice(lx0, lx1))
        factor = lift_factor(sub[lifted], undo[lifted], iod)
    multiply(sub, gain, shares(sub, gain) if k_map.min() >= 0 else None)
    if lifted is not None:
        sub[lifted] = np.clip(sub[lifted] * factor + 0.5, 0, 255).astype(np.uint8)
    return touched


# The mean smile's shadows are London's, under London's flat studio light, registered through the
# mesh: divided out of another photo's smile they brightened skin that was never in shadow there,
# and bright skin lifted by a grey gain clipped to a saturated hue. On the astronaut photo
# (tests/data, warm and side-lit) a removed smile left a bright orange band along each nasolabial
# fold: more colourful than the cheek by 19.6 / 12.8 levels (L / R; 28.8 / 19.0 at twice the
# size) where the photo's own folds are 13.6 / 5.0. A lift now stops CAP_SLACK (about the least
# step in brightness one sees on skin) above the skin around the pixel: a closing CAP_REACH (IOD)
# square fills the valleys of the photo's shading (folds, the shadow beside the nose), smoothed at
# CAP_SMOOTH so that the skin's grain and thin creases keep their own gain, worked out at CAP_WORK
# pixels per IOD; each channel moves towards the skin's colour there. Now 12.1 / 4.3 (12.4 / 3.6).
# On London's own light the mean map is right, and this reach and slack leave it be: tune half,
# smiles -> neutral, the folds' shading (band, beside it, depth; relative to the forehead) is as
# far from the person's real neutral photo as before (mean |error| 3.05 -> 3.03%); stricter (a
# 0.12 reach, no slack) it left the folds 2-3% darker than the real neutrals (3.29%), flattened
# 064's grain at a 0.015 smoothing, and broke the monotone test (025's fear). Readers, tune half,
# ungated: from smiles, neutral and angry PyEmotion 62 -> 65% and 41 -> 38%, fearful face-api
# 88 -> 91% and PyEmotion 29 -> 32%, the rest and every edit of a neutral photo unchanged. A
# removed smile takes 1-4 ms more at 1024 px.
CAP_REACH, CAP_SMOOTH, CAP_WORK, CAP_SLACK = 0.3, 0.03, 48.0, 0.03


def lift_factor(sub: np.ndarray, undo: np.ndarray, iod: float) -> np.ndarray:
    """(h, w, 3) float32 per-channel gain that lifts `sub` (uint8 RGB) by up to the grey gain `undo`
    (h, w, >= 1), each channel towards the skin around the pixel (its shadows filled) and
    hardly further: 1 where `undo` is 1. Worked out at CAP_WORK pixels per IOD (it is smooth)."""
    sc = min(1.0, CAP_WORK / max(iod, 1.0))
    h, w = sub.shape[:2]
    size = (max(1, round(w * sc)), max(1, round(h * sc)))
    small = (cv2.resize(sub, size, interpolation=cv2.INTER_AREA) if sc < 1 else sub).astype(np.float32)
    want = cv2.resize(undo, size, interpolation=cv2.INTER_AREA) if sc < 1 else undo
    wi = iod * sc
    small = cv2.GaussianBlur(small, (0, 0), max(0.5, CAP_SMOOTH * wi))
    r = max(1, round(CAP_REACH * wi))
    disc = cv2.getStructuringElement(cv2.MORPH_RECT, (2 * r + 1, 2 * r + 1))
    around = cv2.GaussianBlur(cv2.morphologyEx(small, cv2.MORPH_CLOSE, disc), (0, 0), r / 2)
    cap = np.maximum(around / np.maximum(small, 1.0), 1.0) * (1 + CAP_SLACK)
    share = np.clip(np.log(np.maximum(want, 1.0)) / np.maximum(np.log(cap.mean(-1)), 1e-6), 0, 1)
    factor = cap ** share[..., None]
    return cv2.resize(factor, (w, h), interpolation=cv2.INTER_LINEAR) if sc < 1 else factor


# Shading on skin is not grey: where a real smile darkens or lights the skin, red changes 0.85-0.9
# times as much as green (log ratio; blue as green), measured on the tune half's 34 neutral ->
# smile pairs (folds: R -0.099, G -0.115, B -0.116 median; lit cheeks: +0.084, +0.092, +0.098).
# Light scattered under the skin comes out red. A grey gain drew folds as pencil strokes.
RED_SHARE = 0.87

# ... and not London's everywhere: a photo's own light and grading decide how its skin's colour
# goes with its brightness, and shading drawn against that reads as a smudge. t1.jpg (insightface's
# warm-graded group photo) has its skin's red pressed to 220-230 whatever the brightness: across
# the skin the map touches, log R / G / B move 0.13-0.71 / 0.94-1.09 / 1.3-1.9 times the mean log
# brightness (faces 0-5); London's faces 0.84-1.06 / 0.99-1.04 / 0.94-1.12 (tune half, median
# SKIN_SLOPE), the astronaut 0.79 / 0.96 / 1.25, lisa/ 0.94-1.01 / 0.97-1.08 / 0.96-1.05. With
# London's shares a smile's folds dropped R, G and B alike (t1 face 4: -13.7 / -13.3 / -11.2
# levels, its saturation unchanged) where the photo's own darker skin keeps its red and loses blue:
# an ashen band from nose to mouth on faces 1 and 4. Each channel's share is now London's times
# the photo's slope over London's (SKIN_SLOPE), the three still moving the mean brightness as the
# grey gain does; the slope is fitted (least squares) over the pixels the gain touches whose hue
# is within SKIN_HUE (log) of their median (skin, not lips, brows or teeth), clipped and near-black
# pixels left out; fewer than SKIN_MIN such pixels, or a brightness spread (sd of log) under
# SKIN_SPREAD, and London's shares stand. Only for the measured map, fitted on its lower face: the
# drawn lines (`shading`) lie on brows and forehead, where the same fit read London's red at
# 0.6-0.8 (brows' hair), and keep London's shares. So does a smile taken away (any k < 0): what
# it darkens is London's lit cheek divided out, and with the photo's shares the astronaut's right
# fold came out 6.7 levels more colourful than its cheek (London's: 4.3; the photo's own 5.0).
SKIN_SLOPE = np.float32([0.948, 1.007, 1.052])
SKIN_HUE, SKIN_MIN, SKIN_SPREAD = 0.12, 60, 0.03


def shares(sub: np.ndarray, gain: np.ndarray) -> np.ndarray:
    """(3,) float32: how much of the grey gain's change (log) R, G and B take at the skin of `sub`
    (uint8 RGB) where `gain` acts; mean 1. Grey photos (mouthbank.colourfulness 0) get (1, 1, 1)."""
    h, w = gain.shape
    step = max(1, int(np.sqrt(h * w / 4000)))
    px = sub[::step, ::step].reshape(-1, 3)
    colour = mouthbank.colourfulness(px.mean(0))
    if colour <= 0:
        return np.ones(3, np.float32)
    london = np.float32([RED_SHARE, 1, 1])
    g = gain[::step, ::step].reshape(-1)
    lo, hi = px.min(1), px.max(1)
    px = px[(np.abs(g - 1) > 0.01) & (lo > 12) & (hi < 250)].astype(np.float32)
    fit = london
    if len(px) >= SKIN_MIN:
        lg = np.log(px)
        lum = lg.mean(1)
        hue = lg - lum[:, None]
        skin = np.abs(hue - np.median(hue, 0)).max(1) < SKIN_HUE
        lg, lum = lg[skin], lum[skin]
        if len(lum) >= SKIN_MIN:
            dl = lum - lum.mean()
            var = float(dl @ dl)
            if var >= len(dl) * SKIN_SPREAD ** 2:
                # (at most twice London's: a bound for photos unlike any measured; t1's largest 1.8)
                fit = np.clip(london * (dl @ (lg - lg.mean(0))) / var / SKIN_SLOPE, 0, 2 * london)
    s = 1 + colour * (fit / fit.mean() - 1)
    return (s / s.mean()).astype(np.float32)


def multiply(sub: np.ndarray, gain: np.ndarray, tone: np.ndarray | None = None) -> None:
    """sub (uint8 RGB, in place) *= gain (float, per pixel; each channel by its share of the
    change, `tone` (3,) as `shares` gives, or London's: red by RED_SHARE, as real skin shading).
    Where a brightened pixel would clip, the whole pixel is scaled instead, so lit skin keeps its
    hue (clipping drifts it to grey)."""
    if tone is None:
        # As colourful as skin (a black-and-white photo: not at all), so a grey photo stays grey.
        red = 1 - mouthbank.colourfulness(sub[::4, ::4].reshape(-1, 3).mean(0)) * (1 - RED_SHARE)
        tone = np.float32([red, 1, 1]) * 3 / (2 + red)
    # Each channel by its own share, and the three still change the mean brightness as much as the
    # grey gain (the maps and depths are measured on it). Channel planes, not a 3-channel gain:
    # this runs on most of the lower face (600 x 500 px).
    d = gain - 1
    out = cv2.merge([sub[..., c] * (1 + float(tone[c]) * d) for c in range(3)])
    peak = np.maximum(np.maximum(out[..., 0], out[..., 1]), out[..., 2])
    # Only the few pixels over 255 are scaled (elsewhere the factor is exactly 1), and the
    # rounding happens in place: the same values, without four full-size temporaries.
    hot = peak > 255.0
    if hot.any():
        out[hot] *= (255.0 / peak[hot])[:, None]
    out += 0.5
    sub[:] = out  # float -> uint8 truncates, as astype does
