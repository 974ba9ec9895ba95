"""Real closed lips, for a smile with teeth that closes.

Filling the place where the teeth were from the lips around it (inpainting) and drawing the line
where the lips meet looked painted zoomed in: a flat grey-pink band with a ruled line across it
(013), tooth stains left in it (103). What closed lips look like is known: `weights/lip_bank.npz`
holds the mouths of the London neutral photos (closed lips), each cut out level with the mouth's
corners at a fixed width, with its face-mesh landmarks. One is warped onto the closed target lips
triangle by triangle (so its real meeting line lies where the target's lips meet), given the
person's lip colour by a smooth log-gain field measured on the lip pixels the smile left intact
(the gradient-domain idea of Poisson blending, without the solve), and blended only where the
teeth and the gap were and along the meeting line (`close`); the rest of the lips stay the person's own.

Face Research Lab London Set (DeBruine & Jones 2017), CC BY 4.0: `scripts/build_lip_bank.py`.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from ...config import WEIGHTS
from ...mesh import LIP_CORNERS, LIPS_INNER_LOWER, LIPS_INNER_UPPER, LIPS_LOWER_RINGS, LIPS_OUTER, LIPS_UPPER_RINGS
from . import mouthbank
from .expression import model, triangle_areas
from .warp import _exact

BANK_PATH = WEIGHTS / "lip_bank.npz"
# The stored cut-out: the outer corners (61, 291) at (LEFT, MID) and (WIDTH - LEFT, MID).
WIDTH, HEIGHT, LEFT, MID = 192, 128, 32, 64
LIP_POINTS = sorted(set(LIPS_OUTER + LIPS_INNER_LOWER + LIPS_INNER_UPPER + LIPS_UPPER_RINGS + LIPS_LOWER_RINGS
                        + LIP_CORNERS))
# Outer and inner lip points at the middle of the mouth (left, centre, right), where thickness is measured.
_UP_OUT, _UP_IN = [37, 0, 267], [82, 13, 312]
_LO_OUT, _LO_IN = [84, 17, 314], [87, 14, 317]


@dataclass
class LipBank:
    images: list  # decoded lazily: JPEG bytes per exemplar
    landmarks: np.ndarray  # (N, 468, 2) float32, cut-out pixels
    shape: np.ndarray  # (N, 2) upper and lower lip thickness / mouth width (`lip_shape`)
    lips: np.ndarray  # (N, 3) mean lip colour (RGB)
    skin: np.ndarray  # (N, 3) the photo's skin colour (`mouthbank.skin_colour`)
    ids: np.ndarray  # London face ids (attribution, leave-one-person-out)

    def image(self, i: int) -> np.ndarray:
        return cv2.cvtColor(cv2.imdecode(self.images[i], cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


@lru_cache(maxsize=1)
def bank() -> LipBank | None:
    if not BANK_PATH.exists():
        return None
    z = np.load(BANK_PATH)
    ends = np.cumsum(z["jpeg_sizes"])
    blobs = [z["jpeg"][e - n:e] for e, n in zip(ends, z["jpeg_sizes"])]
    return LipBank(blobs, z["landmarks"].astype(np.float32), z["shape"].astype(np.float64),
                   z["lips"].astype(np.float64), z["skin"].astype(np.float64), z["ids"])


def lip_shape(lm: np.ndarray) -> np.ndarray:
    """Upper and lower lip thickness at the middle of the mouth, / corner-to-corner width."""
    p = lm[:, :2].astype(np.float64)
    w = max(float(np.hypot(*(p[291] - p[61]))), 1.0)
    up = np.hypot(*(p[_UP_IN] - p[_UP_OUT]).T).mean()
    lo = np.hypot(*(p[_LO_OUT] - p[_LO_IN]).T).mean()
    return np.array([up, lo]) / w


def cut_transform(lm: np.ndarray) -> np.ndarray:
    """2x3 similarity taking image pixels to the cut-out: the mouth's corners level, WIDTH - 2 LEFT apart."""
    a, b = lm[61, :2].astype(np.float64), lm[291, :2].astype(np.float64)
    d = b - a
    s = (WIDTH - 2 * LEFT) / max(float(np.hypot(*d)), 1e-6)
    c, si = d / max(float(np.hypot(*d)), 1e-6)
    r = s * np.array([[c, si], [-si, c]])
    t = np.array([LEFT, MID]) - r @ a
    return np.hstack([r, t[:, None]])


# Summed |log| thickness ratio beyond which no exemplar fits: anger's pressed lips (tune half up to
# 1.63) took a full mouth squeezed thin, a pale patch on the upper lip (086); every smile closed to
# neutral on the tune half fits within 0.49.
SHAPE_MAX = 0.5


def _lab(c: np.ndarray) -> np.ndarray:
    """(..., 3) RGB colours -> float Lab (OpenCV's 8-bit scale)."""
    px = np.clip(np.asarray(c, np.float64), 0, 255).astype(np.uint8).reshape(-1, 1, 3)
    return cv2.cvtColor(px, cv2.COLOR_RGB2LAB).reshape(np.shape(c)).astype(np.float64)


# The lips' triangles that an exemplar's warp onto the target turns over fold its pixels: on
# 013's closed smile the exemplar's meeting line came out as dark loops (070: 17 turned), a pale
# stripe under the upper lip (017: 4), a dashed bright zip (144: 7), and clean (142: 2). An
# exemplar turning over more than FLIP_MAX is not used while another would do. Weighing each
# turned triangle against colour instead (0.03-0.05 of cost each) chose a paler meeting line for
# 005's and 025's own closed lips, which turn over 0-10 of every exemplar's.
FLIP_MAX = 3


def flips(b: LipBank, dst_lm: np.ndarray) -> np.ndarray:
    """(N,) how many of the lips' triangles each exemplar's warp onto `dst_lm` turns over."""
    tri = _lip_triangles()
    ex = triangle_areas(b.landmarks.astype(np.float64), tri)  # (N, T): every exemplar at once
    return ((ex * triangle_areas(dst_lm.astype(np.float64), tri) < 0) & (np.abs(ex) > 1.0)).sum(1)


def pick(b: LipBank, shape: np.ndarray, lips: np.ndarray, skin: np.ndarray, turned: np.ndarray | None = None) -> int | None:
    """The exemplar whose lips are most alike in thickness (relative error), and then whose lips
    and skin are alike in colour (Lab; the gain makes the colour right, but a dark-lipped
    exemplar's texture on pale lips comes out exaggerated, and a red one's shading blotched red:
    018 on 083), among those whose warp turns over few triangles (`turned`: `flips`): people
    `mouthbank.leaving_out` names are skipped. None when even that one's lips are too unlike in
    thickness (SHAPE_MAX)."""
    ok = mouthbank.allowed(b.ids)
    if not ok.any():
        return None
    d_shape = np.abs(np.log(np.maximum(b.shape, 1e-3) / np.maximum(shape, 1e-3))).sum(1)
    d_lum = (np.linalg.norm(_lab(b.lips) - _lab(lips), axis=-1) + np.linalg.norm(_lab(b.skin) - _lab(skin), axis=-1)) / 100
    if turned is not None and (ok & (turned <= FLIP_MAX)).any():
        ok = ok & (turned <= FLIP_MAX)
    cost = np.where(ok, d_shape + 0.5 * d_lum, np.inf)
    i = int(np.argmin(cost))
    return i if d_shape[i] <= SHAPE_MAX else None


@lru_cache(maxsize=1)
def _lip_triangles() -> np.ndarray:
    """The warp's triangles with every corner on the lips (the mesh's own topology)."""
    keep = set(LIP_POINTS)
    tri = model().tri_ring
    return tri[np.all(np.isin(tri, list(keep)), axis=1)]


SHRINK_OK = 2.0  # cut-out pixels per target pixel that bilinear sampling's 2x2 footprint covers without aliasing
AA_SIGMA = 0.5  # Gaussian low-pass (cut-out pixels) per further target pixel's worth of shrinking
GAIN_BLUR = 0.15  # IOD: how locally the exemplar takes the person's lip colour
GAIN_MAX = 0.7  # |log gain| cap: an exemplar this different in colour gets no further
SEAM_BLUR = 0.01  # IOD over which the upper lip's gain gives way to the lower's
GAIN_EPS = 0.05  # weight of a lip's mean gain where few of the person's own lip pixels are near
# The upper lip: its outer edge corner to corner, back along the inner edge.
_UPPER_LIP = [291, 409, 270, 269, 267, 0, 37, 39, 40, 185, 61] + LIPS_INNER_UPPER[::-1]


def render(crop: np.ndarray, origin: np.ndarray, dst_lm: np.ndarray, mask: np.ndarray, keep: np.ndarray,
           iod_px: float, lips: np.ndarray, skin: np.ndarray) -> np.ndarray | None:
    """Closed exemplar lips in `crop` (uint8 RGB, in place; its pixel (0, 0) is image `origin`)
    wherever `mask` (float 0..1) says, warped to `dst_lm` (closed: inner lips met) and given the
    colour of the `keep` pixels (the person's own intact lips; `lips`: their mean colour, used
    where none is near; `skin`: the photo's skin colour, for the choice of exemplar).
    Returns the alpha used, or None when there is no bank or no exemplar."""
    b = bank()
    if b is None:
        return None
    i = pick(b, lip_shape(dst_lm), lips, skin, flips(b, dst_lm))
    if i is None:
        return None
    h, w = crop.shape[:2]
    where, covered = _exact(b.landmarks[i].astype(np.float64), dst_lm[:, :2].astype(np.float64), _lip_triangles(),
                            np.asarray(origin, np.float64), 1.0, w, h)
    # Shrunk onto a small face, the exemplar is low-passed first: sampled as it is (bilinear reads 2x2
    # of the cut-out's pixels per target pixel, skipping those between), its lip texture and
    # highlights aliased into bright speckles on t1.jpg's face 5 (mouth 25 px wide: the cut-out's
    # 128 px shrunk 5x). London's mouths (tune half 84-106 px, shrunk 1.2-1.5x) are sampled as before.
    src = b.image(i)
    shrink = (WIDTH - 2 * LEFT) / max(float(np.hypot(*(dst_lm[291, :2] - dst_lm[61, :2]))), 1.0)
    if shrink > SHRINK_OK:
        src = cv2.GaussianBlur(src, (0, 0), AA_SIGMA * np.sqrt(shrink ** 2 - SHRINK_OK ** 2))
    ex = cv2.remap(src, where, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT101).astype(np.float32)
    # The person's colour: log-gain measured where their own lips are intact, spread smoothly
    # (normalised convolution) over the area the exemplar replaces; each lip on its own, as many
    # people's upper lip is darker than their lower one (and the exemplar's may be too: 099).
    upper = np.zeros((h, w), np.uint8)
    cv2.fillPoly(upper, [np.round(dst_lm[_UPPER_LIP, :2] - origin).astype(np.int32)], 1)
    crop_f = crop.astype(np.float32)
    r = np.log(crop_f + 8.0) - np.log(ex + 8.0)
    whole = np.log(np.asarray(lips, np.float64) + 8.0) - np.log(b.lips[i] + 8.0)
    sig = max(1.0, GAIN_BLUR * iod_px)
    gains = []
    for side in (upper > 0, upper == 0):
        ring = (keep & covered & side).astype(np.float32)
        fallback = (r * ring[..., None]).reshape(-1, 3).sum(0) / ring.sum() if ring.sum() > 20 else whole
        num = cv2.GaussianBlur(r * ring[..., None], (0, 0), sig)
        den = cv2.GaussianBlur(ring, (0, 0), sig)[..., None]
        gains.append(np.clip((num + GAIN_EPS * fallback) / (den + GAIN_EPS), -GAIN_MAX, GAIN_MAX))
    # The two lips' gains meet softly at the meeting line: a hard switch drew a ragged seam.
    u = cv2.GaussianBlur(upper.astype(np.float32), (0, 0), max(0.7, SEAM_BLUR * iod_px))[..., None]
    out = (ex + 8.0) * np.exp(u * gains[0] + (1 - u) * gains[1]) - 8.0
    a = (mask * covered)[..., None].astype(np.float32)
    crop[:] = np.clip(crop_f * (1 - a) + out * a + 0.5, 0, 255).astype(np.uint8)
    return a[..., 0]


LINE_BAND = 0.045  # IOD either side of the meeting line that real closed lips replace
LIP_EDGE = 0.012  # IOD inside the outer lip edge that stays the person's own (their lip outline)
LIP_FEATHER = 0.01  # IOD over which real closed lips fade into the person's own
CORNER_FADE = 0.15  # of the mouth's width from each inner corner over which they fade in


def close(crop: np.ndarray, origin: np.ndarray, dst_lm: np.ndarray, outer: np.ndarray, replace: np.ndarray,
          own: np.ndarray, line: np.ndarray, iod_px: float, lips: np.ndarray, skin: np.ndarray) -> np.ndarray | None:
    """Closed lips (`dst_lm`, inner lips met) get real ones in `crop` (in place; pixel (0, 0) is image
    `origin`) where `replace` says (the teeth and gap) and along a band round the meeting `line`
    (int32 points x 16, crop pixels), inside the lips (`outer`, bool) but off their outline, and
    faded out towards the corners. Their colour comes from `own` (the person's intact lip pixels).
    Returns the alpha used, or None (no bank, or no exemplar fits)."""
    # Not the whole lips: the mesh's outer lip edge is unreliable on thin lips (on 021 it lies a
    # lip's width up on the skin), so an exemplar's outer parts can be skin.
    band = np.zeros(crop.shape[:2], np.uint8)
    cv2.polylines(band, [line], False, 1, max(1, round(2 * LINE_BAND * iod_px)), cv2.LINE_8, shift=4)
    e = 2 * max(1, round(LIP_EDGE * iod_px)) + 1
    inside = cv2.erode(outer.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (e, e))) > 0
    swap = (replace | (band > 0)) & inside
    # The colour is measured away from what is replaced.
    keep = own & (cv2.dilate(swap.astype(np.uint8), np.ones((3, 3), np.uint8)) == 0)
    mask = cv2.GaussianBlur(swap.astype(np.float32), (0, 0), max(0.7, LIP_FEATHER * iod_px)) * outer
    # Faded out towards the corners, where the caller's shaded line takes over: there the mesh's
    # lips reach onto the skin, whose colour made the exemplar's corners pale hooks (105).
    f = mouthbank.frame(dst_lm)
    gy, gx = np.mgrid[0:crop.shape[0], 0:crop.shape[1]]
    u = f.to_st(np.stack([gx + origin[0], gy + origin[1]], -1).astype(np.float64))[..., 0] / max(f.width, 1.0)
    mask = mask * np.clip((0.5 - np.abs(u - 0.5)) / CORNER_FADE, 0, 1)
    return render(crop, origin, dst_lm, mask, keep, iod_px, lips, skin)
