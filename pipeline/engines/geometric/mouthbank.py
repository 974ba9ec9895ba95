"""Real mouth interiors, in a canonical mouth frame, and how to put one into a new opening.

The mouth frame follows the inner lips: `s` runs along the line between the inner corners (78 ->
308, so a tilted head tilts the frame), `t` is perpendicular to it (down = into the lower lip).
An interior is stored *rectified*: column j is the point j/W of the way from corner to corner,
row i lies i * (width / W) below the upper inner lip at that column. Rows are scaled by the mouth's
width, not by the opening's height, so putting an interior into a taller opening never stretches
the teeth: what lies below the exemplar's own lower lip is cavity.

`weights/mouth_bank.npz` holds such interiors of real London smiles that show teeth
(`scripts/build_mouth_bank.py`; Face Research Lab London Set, DeBruine & Jones 2017, CC BY 4.0).
"""
from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from ...config import WEIGHTS
from ...mesh import LIPS_INNER_LOWER, LIPS_INNER_UPPER

BANK_PATH = WEIGHTS / "mouth_bank.npz"
W, H = 96, 48  # exemplar size: columns across the mouth, rows down to half the mouth's width


@dataclass
class MouthFrame:
    origin: np.ndarray  # inner corner 78 (image pixels)
    e: np.ndarray  # unit vector along the mouth (78 -> 308)
    n: np.ndarray  # unit normal, pointing down into the lower lip
    width: float  # corner to corner, pixels
    up: np.ndarray  # (k, 2) upper inner lip in (s, t), sorted by s
    lo: np.ndarray  # (k, 2) lower inner lip in (s, t), sorted by s

    def to_st(self, xy: np.ndarray) -> np.ndarray:
        d = xy - self.origin
        return np.stack([d @ self.e, d @ self.n], -1)

    def to_xy(self, s: np.ndarray, t: np.ndarray) -> np.ndarray:
        return self.origin + s[..., None] * self.e + t[..., None] * self.n

    def t_up(self, s):
        return np.interp(s, self.up[:, 0], self.up[:, 1])

    def t_lo(self, s):
        # The lower curve never rises above the upper one (lips pressed past each other: no opening).
        return np.maximum(np.interp(s, self.lo[:, 0], self.lo[:, 1]), self.t_up(s))

    def aspect(self) -> float:
        """Tallest opening / width."""
        s = np.linspace(0, self.width, 33)
        return float((self.t_lo(s) - self.t_up(s)).max() / max(self.width, 1.0))


def frame(lm: np.ndarray) -> MouthFrame:
    p = lm[:, :2].astype(np.float64)
    o, d = p[78], p[308] - p[78]
    width = float(np.hypot(*d))
    e = d / max(width, 1e-6)
    n = np.array([-e[1], e[0]])  # image y is down: this points down for a level mouth
    f = MouthFrame(o, e, n, width, np.zeros((0, 2)), np.zeros((0, 2)))
    up, lo = f.to_st(p[LIPS_INNER_UPPER]), f.to_st(p[LIPS_INNER_LOWER])
    f.up, f.lo = up[np.argsort(up[:, 0])], lo[np.argsort(lo[:, 0])]
    return f


def rectify(img: np.ndarray, lm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The interior of `img`'s mouth in the canonical frame: (H, W, 3) uint8 and (H, W) float32
    validity (1 inside the inner lips, 0 below the lower lip)."""
    f = frame(lm)
    s = (np.arange(W) + 0.5) / W * f.width
    step = f.width / W
    t = f.t_up(s)[None] + (np.arange(H)[:, None] + 0.5) * step
    xy = f.to_xy(np.broadcast_to(s, t.shape), t).astype(np.float32)
    # Sample a copy shrunk to about the exemplar's scale first, so small exemplars do not alias.
    k = min(1.0, 2.0 / step)
    src = img if k >= 1 else cv2.resize(img, None, fx=k, fy=k, interpolation=cv2.INTER_AREA)
    inner = cv2.remap(src, xy[..., 0] * k, xy[..., 1] * k, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT101)
    valid = np.clip((f.t_lo(s)[None] - t) / step + 0.5, 0, 1).astype(np.float32)
    return inner, valid


@dataclass
class Bank:
    interiors: np.ndarray  # (N, H, W, 3) uint8
    valid: np.ndarray  # (N, H, W) uint8 0..255
    aspect: np.ndarray  # (N,) tallest opening / width of each exemplar
    skin: np.ndarray  # (N, 3) the exemplar photo's skin colour (for relighting)
    noise: np.ndarray  # (N,) the exemplar's own grain (high-pass MAD sigma at exemplar scale)
    teeth_h_max: float  # tallest upper-teeth band seen in the source smiles, / mouth width
    ids: np.ndarray  # London face ids (attribution)


@lru_cache(maxsize=1)
def bank() -> Bank | None:
    if not BANK_PATH.exists():
        return None
    z = np.load(BANK_PATH)
    return Bank(z["interiors"], z["valid"], z["aspect"], z["skin"].astype(np.float64), z["noise"].astype(np.float64),
                float(z["teeth_h_max"]), z["ids"])


# Face ids whose exemplars `pick` may not use: an evaluation of a London person must not paint
# their own real teeth into their edit (9 of 272 tune/report edits did, before).
_LEFT_OUT: ContextVar[frozenset] = ContextVar("mouthbank_left_out", default=frozenset())


@contextmanager
def leaving_out(*face_ids: str):
    """Within this block, `pick` never chooses an exemplar taken from these London face ids."""
    token = _LEFT_OUT.set(_LEFT_OUT.get() | frozenset(face_ids))
    try:
        yield
    finally:
        _LEFT_OUT.reset(token)


def allowed(ids: np.ndarray) -> np.ndarray:
    """(n,) bool: which of these London face ids `leaving_out` does not name (the mouth and lip banks)."""
    out = _LEFT_OUT.get()
    return ~np.isin(ids, list(out)) if out else np.ones(len(ids), bool)


def pick(b: Bank, aspect: float, skin: np.ndarray) -> int:
    """The exemplar whose opening best fits the target's: of those at least as tall (no cavity
    where teeth would be) and at most 0.08 taller, the one whose photo's skin is closest in
    brightness (less relighting); else the tallest. Exemplars of `leaving_out` ids never count."""
    ok = allowed(b.ids)
    tall = np.nonzero(ok & (b.aspect >= aspect) & (b.aspect <= aspect + 0.08))[0]
    if not len(tall):
        tall = np.nonzero(ok & (b.aspect >= aspect))[0]
        if not len(tall):
            return int(np.argmax(np.where(ok, b.aspect, -np.inf)))
        tall = tall[:1]
    return int(tall[np.argmin(np.abs(b.skin[tall].mean(1) - np.mean(skin)))])


SKIN_POINTS = [50, 280, 101, 330, 205, 425, 151, 9]  # cheeks and forehead: no hair, lips or eyes


def skin_colour(img: np.ndarray, lm: np.ndarray) -> np.ndarray:
    """Median colour of small patches on the cheeks and forehead."""
    h, w = img.shape[:2]
    r = max(1, int(0.02 * np.hypot(*(lm[263, :2] - lm[33, :2]))))
    px = []
    for x, y in np.round(lm[SKIN_POINTS, :2]).astype(int):
        x, y = int(min(max(x, r), w - r - 1)), int(min(max(y, r), h - r - 1))  # not np.clip: ~6 us a scalar
        px.append(img[y - r:y + r + 1, x - r:x + r + 1].reshape(-1, 3))
    return np.median(np.concatenate(px).astype(np.float64), 0)


# Skin this colourful ((max - min) / mean of its RGB) counts as fully coloured; greyer photos get
# what is painted or shaded on them that much greyer (every London face: 0.16-0.58; a
# black-and-white photo: 0).
SKIN_CHROMA = 0.15


def colourfulness(rgb: np.ndarray) -> float:
    """0 (grey) .. 1 (as colourful as skin, SKIN_CHROMA, or more) for one RGB colour."""
    return min(1.0, float(rgb.max() - rgb.min()) / max(float(rgb.mean()), 1.0) / SKIN_CHROMA)


def grain(img: np.ndarray, where: np.ndarray | None = None) -> float:
    """Noise level (sigma, 0..255) of an image patch (only its `where` pixels, when given): robust
    spread of its finest detail."""
    g = img.astype(np.float32).mean(-1) if img.ndim == 3 else img.astype(np.float32)
    if min(g.shape) < 5:
        return 0.0
    hp = np.abs(g - cv2.blur(g, (3, 3)))
    if where is not None:
        if where.sum() < 50:
            return 0.0
        hp = hp[where]
    return float(np.median(hp) * 1.4826 * 1.125)  # 1.125: a 3x3 box mean removes 1/9 of the noise


def tooth_like(px: np.ndarray, skin: np.ndarray) -> np.ndarray:
    """Enamel-like pixels (..., 3): bright against the person's skin and nearly grey."""
    px = px.astype(np.float32)
    hi, lo = px.max(-1), px.min(-1)
    return (px.mean(-1) > 0.75 * float(np.max(skin))) & (hi - lo < 0.25 * np.maximum(hi, 1))


def teeth_height(inner: np.ndarray, valid: np.ndarray, skin: np.ndarray) -> float:
    """Height of the teeth showing in a rectified interior, as a fraction of the mouth's width:
    the 90th percentile over the central columns of the enamel-like rows in each."""
    tooth = tooth_like(inner, skin) & (valid > 0.5)
    mid = tooth[:, int(W * 0.3):int(W * 0.7)]
    return float(np.percentile(mid.sum(0), 90) / W)
