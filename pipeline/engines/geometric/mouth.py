"""Mouth interior: what shows when closed lips part (AU25/26/27, a broad smile), and what is left
when a smile with teeth closes.

Painted teeth look painted, and stretching the lip line (or real teeth) into a bigger opening looks
like rubber, so the opening is filled with a real interior instead (`mouthbank`): the person's own
when their photo shows teeth, else a London smile's, relit and re-grained to the photo. It is
placed at the mouth's scale under the upper lip (teeth keep their real proportions), with a cavity
below it that darkens with depth, and is blended only strictly inside the inner lips.
"""
from __future__ import annotations

from functools import cache
from typing import Callable

import cv2
import numpy as np

from ...mesh import (EYE_L, EYE_R, LIPS_INNER_LOWER, LIPS_INNER_UPPER, LIPS_LOWER_RINGS, LIPS_OUTER,
                     LIPS_UPPER_RINGS)
from . import lipbank, mouthbank
from .expression import LOWER_RINGS, UPPER_RINGS, model, triangle_areas
from .shading import crease_fill
from .warp import Region, nonzero_box

TEETH_AREA = 0.0036  # enamel-like pixels / IOD^2 in the source opening that also means "real teeth"
TEETH_SHOWING = 0.2  # fraction of enamel-like pixels in the source opening that means "real teeth"


def _skin_brightness(img: np.ndarray, lm: np.ndarray) -> float:
    """90th percentile of brightness on the cheeks and forehead (mesh points, no hair or eyes)."""
    pts = np.round(lm[[50, 280, 101, 330, 151, 9, 108, 337, 205, 425], :2]).astype(int)
    h, w = img.shape[:2]
    pts[:, 0] = pts[:, 0].clip(0, w - 1)
    pts[:, 1] = pts[:, 1].clip(0, h - 1)
    return float(np.percentile(img[pts[:, 1], pts[:, 0]].astype(np.float32).max(1), 90))


def _lip_colour(img: np.ndarray, lm: np.ndarray) -> np.ndarray:
    pts = np.round(lm[LIPS_OUTER, :2]).astype(int)
    h, w = img.shape[:2]
    pts[:, 0] = pts[:, 0].clip(0, w - 1)
    pts[:, 1] = pts[:, 1].clip(0, h - 1)
    return img[pts[:, 1], pts[:, 0]].astype(np.float32).mean(0)


SHUT_BELOW = 0.04  # IOD: a target opening this small from a smile with teeth is a closed mouth
FEATHER = 0.03  # the interior fades in over this fraction of the mouth's width, inside the inner lips


def _inside(poly: np.ndarray, region: Region, shape, feather_px: float) -> np.ndarray:
    """Alpha (float32 0..1, region-sized) that is 0 on and outside the polygon and rises to 1
    `feather_px` inside it: what is painted never reaches the lips."""
    out = np.zeros(shape, np.float32)
    pts = poly[:, :2] - [region.x0, region.y0]
    x0, y0 = np.maximum(np.floor(pts.min(0)).astype(int) - 1, 0)
    x1, y1 = np.minimum(np.ceil(pts.max(0)).astype(int) + 2, [shape[1], shape[0]])
    if x1 <= x0 or y1 <= y0:
        return out
    m = np.zeros((y1 - y0 + 2, x1 - x0 + 2), np.uint8)  # a zero border: the distance is to the edge
    cv2.fillPoly(m, [np.round((pts - [x0 - 1, y0 - 1]) * 16).astype(np.int32)], 1, lineType=cv2.LINE_8, shift=4)
    d = cv2.distanceTransform(m, cv2.DIST_L2, 3)[1:-1, 1:-1]
    out[y0:y1, x0:x1] = np.clip((d - 1.0) / max(feather_px, 0.5), 0, 1)  # the edge pixel stays
    return out


def _sclera(img: np.ndarray, lm: np.ndarray) -> float:
    """Brightness of the eye whites (90th percentile of grey inside both eye outlines): like teeth,
    they are unpigmented, so they tell the light falling on the face whatever the complexion."""
    h, w = img.shape[:2]
    pts = np.round(lm[EYE_L + EYE_R, :2]).astype(np.int32)
    x0, y0 = np.maximum(pts.min(0), 0)
    x1, y1 = np.minimum(pts.max(0) + 1, [w, h])
    if x1 <= x0 or y1 <= y0:
        return 0.0
    m = np.zeros((y1 - y0, x1 - x0), np.uint8)  # only the eyes' box: a full-photo mask cost ~1 ms
    cv2.fillPoly(m, [np.round(lm[e, :2]).astype(np.int32) - [x0, y0] for e in (EYE_L, EYE_R)], 1)
    px = img[y0:y1, x0:x1][m > 0]
    return float(np.percentile(px.astype(np.float32).mean(-1), 90)) if len(px) else 0.0


# Relit teeth (90th percentile) lie between these multiples of the photo's eye whites (`_sclera`),
# the range of real ones: on the London tune half, the teeth of 13 real smiles are 1.09-1.90 times
# (median 1.35) the eye whites of the same person's neutral photo, where against the skin they are
# 1.04-2.91 (complexion is not light). Scaled by the skin alone, a dim selfie's light skin took a
# darker, studio-lit exemplar at its own brightness: teeth 3.4 times the eye whites, glowing.
TEETH_OVER_SCLERA = (1.0, 1.9)


def _relit(b: mouthbank.Bank, i: int, skin: np.ndarray, sclera: float = 0.0) -> np.ndarray:
    """Exemplar `i` (float RGB) relit to another photo: its brightness scaled by the ratio of the two
    photos' skin brightness, its colour moved half-way to the ratio of their skin tints (full
    would tint the teeth with the person's complexion), and its teeth as bright as real teeth are
    against the photo's eye whites (`sclera`, TEETH_OVER_SCLERA)."""
    ex = b.skin[i]
    lum_t, lum_e = max(skin.mean(), 1.0), max(ex.mean(), 1.0)
    gain = (lum_t / lum_e) * np.sqrt((skin / lum_t) / np.maximum(ex / lum_e, 1e-3))
    inner = b.interiors[i].astype(np.float32)
    # Skin brightness mixes light with complexion: scaled by it, teeth in a darker face than the
    # exemplar's came out dull grey (096, black: teeth 90th percentile 92 under eye whites of 112;
    # on white tune faces teeth are 1.1-1.4x the eye whites), and a dark gap between raised lips
    # reads as a snarl. Teeth, like eye whites, take the light, not the skin's colour.
    teeth = np.percentile(inner[b.valid[i] > 127].mean(-1), 90) if (b.valid[i] > 127).any() else 0.0
    if sclera > 0:
        now = max(teeth * gain.mean(), 1.0)
        gain = gain * float(np.clip(now, TEETH_OVER_SCLERA[0] * sclera, TEETH_OVER_SCLERA[1] * sclera) / now)
    # Never brighter than the original by more than a touch: a darker complexion in the exemplar's
    # photo is not darker light, and glowing teeth look pasted in.
    return inner * np.clip(gain, 0.3, 1.1).astype(np.float32)


def _interior(src_img, src_lm, aspect: float, teeth: Callable[[], bool],
              skin: np.ndarray) -> tuple[np.ndarray, np.ndarray, float, float, float | None]:
    """(rectified interior float RGB, validity, its grain at exemplar scale (-1: the photo's
    own), its opening's aspect, the width in pixels its frame spans in this photo (None: a bank
    exemplar's)): the person's own when their mouth shows teeth, else the best-fitting bank
    exemplar (`skin`: the photo's `mouthbank.skin_colour`)."""
    if teeth():
        inner, valid = mouthbank.rectify(src_img, src_lm)
        f = mouthbank.frame(src_lm)
        return inner.astype(np.float32), valid, -1.0, f.aspect(), f.width
    b = mouthbank.bank()
    if b is None:
        raise FileNotFoundError(f"{mouthbank.BANK_PATH} is missing: run scripts/build_mouth_bank.py")
    i = mouthbank.pick(b, aspect, skin)
    return (_relit(b, i, skin, _sclera(src_img, src_lm)), b.valid[i].astype(np.float32) / 255, float(b.noise[i]),
            float(b.aspect[i]), None)


# A dropped or stretched mouth's opening (fear, surprise): the inner lips' polygon, its facets
# smoothed (Chaikin), grown a little into the lips (the wet inner lip rolls in: on the tune half the
# warp left the photo's dark line between the lips as a red stitch along the lower lip, 139), and
# fading from the lips into the dark cavity. Before, the corners were cut off by a disc of 0.12 of
# the mouth's width and a lit rim filled 0.08 of it: the warp's stretched lip corners and that band
# showed as a second, pink lip inside the lips (013), and as a brown band under the upper lip (139).
GROW = 0.015  # of the mouth's width the opening reaches past the inner-lip landmarks
# A tall opening's tongue rises into the cavity over this much more of the mouth's width (and its
# crown this much higher, of the opening's height, to keep it as lit): over 0.15 its lit crown drew
# a straight edge across the opening, a salmon band like a second lower lip (surprise: 122, 005, 064,
# 139 zoomed in). Brightness down the middle of 001's and 025's surprise rose by up to 0.20 of the
# lips' between neighbouring twentieths of the depth; now 0.12-0.13.
TONGUE_SOFT, TONGUE_RISE = 0.1, 0.06
TONGUE_UP = 0.25  # of the opening's height the tongue of a wide opening rises above a smile's
TONGUE_WIDE = 0.8  # and how much of it shows however flat the opening
CAVITY = 0.28  # the cavity's colour: the lips' colour times this (and the exemplar's darkest)
# The tongue: the lips' colour, redder (sampled on the lip line, the lips' colour is half skin:
# a tongue of it looked grey).
TONGUE_TINT = np.array([1.1, 0.75, 0.8])
# and lit this much (of the lips' colour) in its shadow plus, in a tall opening, on its top: the
# dome's upper surface faces the light, and the lower lip's inner side shades its front. Lit most
# at the lower lip, surprise's floor glowed salmon-pink (005, 122 zoomed in). A flat opening's
# (disgust's dark gap under its teeth, fear's) is dimmer, lit towards the front: lit more, 005's
# disgust read sad.
TONGUE_LIT, DIM_TONGUE = (0.45, 0.4), (0.3, 0.3)
# A dropped jaw's (surprise's) tongue is a dome lying low in the opening: measured from the oval's
# own height at each column, its crown ran level across the middle (the oval's height falls towards
# the corners as the crown's fraction of it does), and its lit top rose to full brightness within
# 0.15 of the depth: a flat black top half on a flat salmon bottom half with a straight, crisp edge
# (a reviewer's severity 3; the tune half zoomed in, dark skin too: 042, 061, 096). Where the
# opening's middle is DOME_FROM[1] of the mouth's width tall or more (in part from DOME_FROM[0];
# surprise on the tune half 0.82-0.93, fear's flatter opening 0.31-0.36: unchanged), its crown lies DOME_TOP of the middle's
# height above the lower lip there, falling by DOME_CURVE of it at the corners (a parabola: it sinks
# behind the lower lip at the sides); it fades in eased (smoothstep) over DOME_FADE of that height,
# its top in shadow, lit over DOME_LIT_AT of it, dimmer at its sides (DOME_SIDE) and in the lower
# lip's shade within DOME_SHADE_AT of it (DOME_SHADE). The largest rise of brightness down the
# middle between twentieths of the depth: 0.10-0.14 of the lips' -> 0.08-0.10 (tune half, astronaut,
# lisa). Dropped: a curve of 0.4 with DOME_SIDE 0.4 drew a small glowing spot, not a tongue; lit
# over most of its height it was brightest at the lower lip (0.72-0.74 of the lips', the salmon
# floor again); lit fully (DOME_PEAK 1) its top rose to 0.69 of the lips' (0.58 before), a glow.
DOME_FROM = (0.5, 0.7)
DOME_TOP, DOME_CURVE, DOME_FADE = 0.6, 0.3, 0.45
DOME_LIT_AT, DOME_SIDE, DOME_PEAK = 0.35, 0.25, 0.8  # (DOME_PEAK: its top's light, of TONGUE_LIT's)
DOME_SHADE, DOME_SHADE_AT = 0.9, 0.25
DROPPED_TEETH = 0.8  # brightness of the upper teeth of a dropped jaw's opening, against a smile's
# A tall opening's cavity is this much brighter: filled near-black it read as a hole cut in the
# photo. Lit more at its edge (the walls catching light) it showed a grey ring round the hole.
TALL_LIT = 1.6
ROOF = 0.5  # brightness of a wide opening's cavity just under the upper lip (1 at the lower lip)
LOWER_NARROW = 0.8  # the lower front teeth span less of the mouth than the upper ones
LOWER_SHADE = 0.72  # and sit in the upper lip's shadow
# Teeth belong to the skull, not the lips: a raised upper lip (disgust's AU10) or a dropped jaw
# uncovers a rigid, gently curved row whose edge stays INCISAL of the IOD below the source's closed
# lips' meeting line (negative: above it, as the lips part a little), in the shade of the raised lip and nose
# (TEETH_DIM). Laid out from the upper lip instead, the teeth bent with the lip's bow into a thin
# white stroke. Tune half, ungated, disgust (ensemble / face-api / mini-Xception, PyEmotion's
# "happy" of 34): the stroke 76/76/50, 2; this 79/76/56, 7; undimmed at -0.02, 82/82/62 but 16
# read as a grin; 0.03 below the line filled the opening to the lower lip, 68/62/53.
INCISAL = -0.04
TEETH_DIM = 0.85
# A smile's own teeth fill at least this much of a new, taller opening's height (at its middle), or
# a bank exemplar's full row is painted instead. Tune half, happy from the 13 smiles with teeth,
# own upper-teeth band / new opening: 008 0.33 and 083 0.34 (slits), 105 0.50, the rest 0.62-0.94.
OWN_TEETH_MIN = 0.45
LIP_SHADOW = 0.3  # of the teeth band: the raised lip's shadow on the teeth under it (x0.65 at the lip)
# Teeth kept in place run on upwards under a lip raised past the photo's first enamel row. When the
# run (90th percentile over the opening) passes this share of the photo's teeth band, a thin band
# of a smile's teeth would be smeared into vertical streaks (tune half, disgust from smiles: 008,
# 061, 083, 102, 105 at 0.62-0.93, streaked; the kept eight 0.00-0.12): they are painted or warped
# as before.
SMEAR_MAX = 0.3
# Under disgust's raised lip a smile's teeth kept in place (`_rows_in_place`) leave the new
# opening's sides bare below the row's up-curved ends: the buccal corridor, in the photo's own
# corner shadow (its interior's darkest 15%), darker by CORRIDOR at the corners (smoothstep from the
# middle). It was a wide opening's deep cavity, half as bright at its roof and its corners: black
# bow-tie wedges (astronaut: its outer fifths' darkest tenth 0.22 of the lips' brightness -> 0.30,
# median 0.26 -> 0.33; 25-45 grey levels at the corners -> 50-60). Tried and dropped: the teeth's
# own colour x0.4 falling to that shadow at the corners (astronaut 74-107) greyed the whole gap
# under the teeth into a flat, muddy band on the London smiles (013, 139).
CORRIDOR = 0.3


def _chaikin(poly: np.ndarray, n: int = 2, closed: bool = True) -> np.ndarray:
    """A polygon with its corners cut (Chaikin): the mesh's inner lip is a few points, and a
    dropped jaw pulls it into a faceted box; a real opening is a smooth curve. An open polyline
    keeps its two ends."""
    for _ in range(n):
        q = np.roll(poly, -1, 0)
        cut = np.stack([0.75 * poly + 0.25 * q, 0.25 * poly + 0.75 * q], 1)
        cut = cut.reshape(-1, poly.shape[1])
        poly = cut if closed else np.vstack([poly[:1], cut[:-2], poly[-1:]])
    return poly


GUM_RED = (0.2, 0.32)  # redness ((R - mean(G, B)) / R) from which exemplar pixels are gum or lip, not teeth


def _lower_teeth(cav, big, col, up, size, band, rise) -> np.ndarray:
    """The lower teeth over the cavity: no exemplar has them (the bank's smiles hide them behind
    the lower lip), so they are the exemplar's upper teeth mirrored, narrowed and shaded, rising
    `rise` pixels above the lower inner lip (`up`: pixels above it) with their edge at the top.
    Only its teeth: a broad smile's exemplar shows gums and lip corners beside and above them,
    which mirrored drew a pink arch round the lower teeth (014, 021, 070, 123 fear)."""
    mx = (col + 0.5 - size[0] / 2) / LOWER_NARROW + size[0] / 2 - 0.5
    my = band - rise + up - 0.5  # mirrored: the incisal edge `rise` above the lip
    low = cv2.remap(big, mx.astype(np.float32), my.astype(np.float32), cv2.INTER_LINEAR,
                    borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    px = low[..., :3]
    red = (px[..., 0] - px[..., 1:].mean(-1)) / np.maximum(px[..., 0], 1.0)
    not_gum = np.clip((GUM_RED[1] - red) / (GUM_RED[1] - GUM_RED[0]), 0, 1)
    a = np.clip(low[..., 3], 0, 1) * np.clip(rise - up + 0.5, 0, 1) * (up > -0.5) * not_gum
    return cav * (1 - a[..., None]) + LOWER_SHADE * low[..., :3] * a[..., None]


def _incisal_edge(src_lm: np.ndarray, f: mouthbank.MouthFrame, iod_px: float) -> np.ndarray:
    """Where the upper incisors' edge lies: polynomial coefficients of t against s in the target's
    mouth frame `f` (for `np.polyval`). The source's closed lips' meeting line, a smooth curve (a
    rigid row of teeth has no Cupid's bow), INCISAL below it."""
    st = f.to_st((src_lm[_UPPER_INNER, :2].astype(np.float64) + src_lm[_LOWER_INNER, :2]) / 2)
    c = np.polyfit(st[:, 0], st[:, 1], 2)
    c[-1] += INCISAL * iod_px
    return c


# Opened wide, the closed lips' dark meeting line is stretched by the warp along the opening's
# edge, just outside what the cavity covers: a dark outline round the hole. In a ring RIM_FILL of
# the mouth's width outside it, thin dark marks are filled (`shading.crease_fill`; the ring is the
# line's shape, so its broken pieces go too).
RIM_FILL = 0.06


def _fill_rim(warped: np.ndarray, alpha: np.ndarray, box, width: float, iod_px: float) -> None:
    r = max(1, round(RIM_FILL * width))
    h, w = alpha.shape
    y0, y1, x0, x1 = box  # the opening's (`nonzero_box(alpha)`)
    y0, x0, y1, x1 = max(y0 - r, 0), max(x0 - r, 0), min(y1 + r, h), min(x1 + r, w)
    inside = (alpha[y0:y1, x0:x1] > 0.5).astype(np.uint8)
    ring = cv2.dilate(inside, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))) - inside
    ring = cv2.GaussianBlur(ring.astype(np.float32), (0, 0), max(0.7, r / 3))
    sub = warped[y0:y1, x0:x1]
    img = sub.astype(np.float32)
    sub[:] = np.clip(img + crease_fill(img, iod_px, lines_only=False) * ring[..., None] + 0.5, 0, 255).astype(np.uint8)


def _trimmed(valid: np.ndarray, aspect: float, aspect_ex: float) -> np.ndarray:
    """An exemplar's validity faded out just above its own lower lip, so no lip shows inside the new
    opening; in a taller opening (`aspect`) than the exemplar's, below its upper teeth too (not its
    lower lip's shadow: the cavity takes over below them)."""
    valid = cv2.erode(valid, np.ones((3, 3), np.uint8))
    if aspect > 1.2 * aspect_ex:
        rows = valid.sum(0)[None]
        valid = valid * np.clip((0.8 * rows - np.arange(mouthbank.H)[:, None]) / (0.25 * rows + 1), 0, 1)
    return valid


def _rows_in_place(src_lm: np.ndarray, inner: np.ndarray, valid: np.ndarray, skin: np.ndarray, gx, gy,
                   k: float, band: float, inside: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """(row, s): the row of the photo's own rectified interior (`k` target pixels per exemplar
    pixel) and the place along its mouth frame that pixels (gx, gy) show when the teeth stay where
    the photo has them; None when a thin band would be smeared upwards (a run past SMEAR_MAX of
    `band` over the `inside` pixels). Teeth belong to the skull: each pixel reads the photo's own
    interior where it lies (the rectified rows start at the photo's upper lip). Above the first
    enamel row of its column (a lip raised past the photo's, or the dark line under it) the teeth
    run on upwards: a raised lip uncovers more of the same teeth."""
    fs = mouthbank.frame(src_lm)
    sst = fs.to_st(np.stack([gx, gy], -1).astype(np.float64))
    tooth = mouthbank.tooth_like(inner, skin) & (valid > 0.5)
    top = np.where(tooth.any(0), tooth.argmax(0), 0)
    s_src = sst[..., 0]
    raw = sst[..., 1] - fs.t_up(s_src)
    row = np.maximum(raw, (top[np.clip((s_src / k).astype(int), 0, mouthbank.W - 1)] + 1.0) * k)
    if np.percentile((row - raw)[inside], 90) > SMEAR_MAX * band:
        return None
    return row, s_src


def render_interior(src_img: np.ndarray, src_lm: np.ndarray, dst_lm: np.ndarray, warped: np.ndarray,
                    region: Region, iod_px: float, amount: float = 1.0, seed: int = 0,
                    upper_teeth: float = 1.0, lower_teeth: float = 0.0,
                    teeth: Callable[[], bool] | None = None, jaw_closed: bool = False,
                    parted_smile: bool = False, lips_meet: bool = False, lip_bank: bool = True,
                    own_size: bool = False, in_place: bool = False, only_in_place: bool = False
                    ) -> np.ndarray | None:
    """Fill the destination opening in `warped` (the region's pixels, uint8 RGB, in place): a real
    interior (the person's own teeth, or a bank exemplar relit and re-grained to the photo) placed
    at the mouth's scale under the upper lip, a cavity darkening with depth below it; or, when a
    smile with teeth closes, the dark line between closed lips. Painted only inside the inner lips.
    upper_teeth: the fraction of the interior's upper-teeth band left showing below the upper lip
    (1: all of it, as in a smile; less slides the interior up under the lip: a stretched or dropped
    mouth covers most of the upper teeth, and a full band reads as a grin). lower_teeth: how tall
    the lower teeth rise above the lower lip, as a fraction of the upper band (0: none).
    teeth: the source's `shows_teeth`, when the caller already made it. jaw_closed: the opening
    is the lips' alone (no jaw drop); with a dropped jaw the teeth keep at least the photo's own
    mouth's scale. parted_smile: see `closing`.
    lip_bank=False closes onto the person's own lips alone (`smile_parting`). own_size: the
    person's own teeth keep their size (`reshapes_teeth`) instead of spanning the opening.
    in_place: the person's own teeth (and what else shows between their lips) stay where the photo
    has them, under lips that moved (a smile's teeth under disgust's raised lip), unless a thin band
    of them would be smeared (`_rows_in_place`): then painted as without it, or with `only_in_place`
    not painted at all (None).
    Returns the painted alpha (float32, region-sized) or None."""
    teeth = teeth or shows_teeth(src_img, src_lm)
    f = mouthbank.frame(dst_lm)
    if closes_over(src_img, src_lm, dst_lm, iod_px, teeth, parted_smile, lips_meet):
        return _close_lips(warped, dst_lm, region, src_img, src_lm, iod_px, lip_bank)
    poly = dst_lm[LIPS_INNER_LOWER + LIPS_INNER_UPPER[1:-1], :2]
    wide = upper_teeth < 1  # a dropped or stretched mouth, not a smile
    if wide:
        poly = _chaikin(poly)
    alpha = _inside(poly, region, warped.shape[:2], max(1.0, FEATHER * f.width))
    if wide:
        # Grown into the lips with a soft edge: the inner edge of the warped lips (the photo's dark
        # line between them) fades into the cavity instead of staying a stitch.
        g = max(1, round(GROW * f.width))
        k = 2 * g + 1
        alpha = np.maximum(alpha, cv2.GaussianBlur(cv2.dilate((alpha > 0).astype(np.float32),
                           cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))), (0, 0), max(0.7, g / 2)))
    if alpha.max() <= 0:
        return None
    y0, y1, x0, x1 = box = nonzero_box(alpha)
    gx, gy = np.meshgrid(np.arange(x0, x1) + region.x0, np.arange(y0, y1) + region.y0)
    st = f.to_st(np.stack([gx, gy], -1).astype(np.float64))
    s, t = st[..., 0], st[..., 1]
    depth = t - f.t_up(s)  # pixels below the upper inner lip
    lips = _lip_colour(src_img, src_lm)
    skin = mouthbank.skin_colour(src_img, src_lm)  # for the exemplar, the teeth band and the grey rule below
    inner, valid, ex_grain, aspect_ex, ex_width = _interior(src_img, src_lm, f.aspect(), teeth, skin)
    kept = None
    if in_place and ex_width:
        # (in place, the photo's interior is all real where it lies: none of it is trimmed)
        whole = cv2.erode(valid, np.ones((3, 3), np.uint8))
        height = mouthbank.teeth_height(inner, whole, skin)  # the upper-teeth band, of the exemplar's width
        kept = _rows_in_place(src_lm, inner, whole, skin, gx, gy, ex_width / mouthbank.W, height * ex_width,
                              alpha[y0:y1, x0:x1] > 0.5)
        if kept is None and only_in_place:
            return None
    if kept:
        valid = whole
    else:
        valid = _trimmed(valid, f.aspect(), aspect_ex)
        height = mouthbank.teeth_height(inner, valid, skin)
    if ex_width and upper_teeth >= 1 and height * ex_width < OWN_TEETH_MIN * (f.t_lo(f.width / 2) - f.t_up(f.width / 2)):
        # A slit of a smile opened wide: the person's few teeth were a sliver over a dark band.
        own = inner[mouthbank.tooth_like(inner, skin) & (valid > 0.5)]
        inner, valid, ex_grain, aspect_ex, ex_width = _interior(src_img, src_lm, f.aspect(), lambda: False, skin)
        valid = _trimmed(valid, f.aspect(), aspect_ex)
        bank = mouthbank.tooth_like(inner, skin) & (valid > 0.5)
        if len(own) >= 20 and bank.sum() >= 20:
            # in the colour of the person's own teeth (an exemplar's can be yellower)
            inner = inner * np.clip(own.mean(0) / inner[bank].mean(0), 0.7, 1.3).astype(np.float32)
        height = mouthbank.teeth_height(inner, valid, skin)
    # Target pixels per exemplar pixel, one scale for both axes: the interior fills the new
    # opening's width, or with `own_size` the person's own teeth keep their size, centred in it.
    # (In a dropped jaw's narrower oval, teeth of their own size ran down its sides as a white rim.)
    # Teeth belong to the skull: under a raised lip or round a dropped jaw the upper teeth's edge
    # stays on the curve where the closed lips met (`_incisal_edge`). Hung from the upper lip, a
    # dropped jaw's teeth followed its oval down the sides as a thin arc of small teeth (a zipper,
    # surprise zoomed in), and the lips narrowing round the drop (AU27, AU14) shrank them with
    # the opening: they keep the photo's own mouth's scale (tune half, surprised ungated:
    # 100/100/97/94 -> 100/100/100/94, from smiles 100/100/91/94 both).
    rigid = wide and not teeth()
    span = ex_width if (own_size or kept) and ex_width else f.width
    if rigid and not jaw_closed:
        span = max(span, mouthbank.frame(src_lm).width)
    k = span / mouthbank.W
    size = (max(1, round(mouthbank.W * k)), max(1, round(mouthbank.H * k)))
    interp = cv2.INTER_AREA if k < 1 else cv2.INTER_LINEAR
    big = cv2.resize(np.dstack([inner, valid]), size, interpolation=interp)
    # Teeth hidden under the upper lip: the interior slides up by that part of its teeth band.
    band = height * mouthbank.W * k  # upper-teeth band, target pixels
    if rigid:
        edge = _incisal_edge(src_lm, f, iod_px)
        # At least `upper_teeth` of the band shows at the middle: where the mesh put the closed
        # lips' line too high (025's lips, met from a false gap), the raised lip bared no teeth.
        mid = f.width / 2
        inc = np.polyval(edge, s) + max(0.0, float(f.t_up(mid)) + upper_teeth * band - float(np.polyval(edge, mid)))
        row = band - (inc - t)  # the exemplar's teeth row: its band's lower edge on the incisal line
    elif kept:
        row = kept[0]
    else:
        row = depth + (1.0 - float(np.clip(upper_teeth, 0, 1))) * band
    col = (s - f.width / 2) * size[0] / span + size[0] / 2 - 0.5  # exemplar column, centred
    if kept:
        col = kept[1] * size[0] / span - 0.5  # the photo's own column
    mx, my = col.astype(np.float32), (row - 0.5).astype(np.float32)
    ex = cv2.remap(big, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    ex_rgb, ex_a = ex[..., :3], np.clip(ex[..., 3], 0, 1)
    if wide:
        # Only the teeth: below them a smile's exemplar shows its own lower lip and shadow.
        # and none on the lip above the opening (which the opening's grown edge reaches into)
        # In place, all of the photo's interior shows where the new lips leave it (its lower teeth
        # too), up to their soft edge: masked at the upper lip, the grown edge showed the cavity
        # as a dark line above the teeth.
        if not kept:
            ex_a = ex_a * np.clip(band - row + 0.5, 0, 1) * np.clip(depth + 0.5, 0, 1) * (upper_teeth > 0)
    # Cavity: the exemplar's own darkest colour (corner shadow), darker with depth; the tongue
    # (the lip colour in shadow) shows near the lower lip of a tall opening.
    lum, ok = inner.mean(-1), valid > 0.5
    shadow = inner[ok & (lum <= np.percentile(lum[ok], 15))].mean(0) if ok.any() else lips * 0.3
    below = np.clip(depth / (0.35 * f.width), 0, 1)[..., None]
    cav = (0.3 * shadow + 0.7 * lips * CAVITY) * (1 - 0.5 * below)
    # The tongue: a dome rising from the lower lip of a tall opening, higher at the middle, lit
    # towards the front (the lip colour in shadow).
    h_open = np.maximum(f.t_lo(s) - f.t_up(s), 1.0)
    u = s / max(f.width, 1.0) - 0.5
    corridor = bool(kept)
    if corridor:
        # Teeth in place behind closed jaws: what the new lips bare past them (below the smile's
        # up-curved row at its sides) is the buccal corridor, as dim as the photo's own, darker
        # towards the corners (CORRIDOR).
        g = np.clip(np.abs(2 * u), 0, 1)
        cav = shadow * (1 - CORRIDOR * (g * g * (3 - 2 * g)))[..., None]
    tall = np.clip((h_open / f.width - 0.2) / 0.2, 0, 1)
    # A flat, wide opening (fear) shows its tongue too: it lies on the floor of the mouth behind
    # the lower teeth and rises above them, dimly lit, instead of a flat dark fill.
    flat = (1 - tall) * wide
    crown = f.t_lo(s) - h_open * (0.2 + TONGUE_RISE * tall + 0.18 * np.cos(np.pi * u) + TONGUE_UP * flat)
    rise = np.maximum((0.15 + TONGUE_SOFT * tall) * f.width, 1.0)  # how far its crown fades in
    mid = f.width / 2
    h_mid = max(float(f.t_lo(mid) - f.t_up(mid)), 1.0)
    domed = float(np.clip((h_mid / f.width - DOME_FROM[0]) / (DOME_FROM[1] - DOME_FROM[0]), 0, 1))
    if domed > 0:  # a dropped jaw's tongue: a dome (DOME_*)
        dome = f.t_lo(mid) - h_mid * (DOME_TOP - DOME_CURVE * (2 * u) ** 2)
        crown = crown + domed * (dome - crown)
        rise = rise + domed * (np.maximum(DOME_FADE * h_mid, 1.0) - rise)
    front = np.clip((t - crown) / np.maximum(f.t_lo(s) - crown, 1.0), 0, 1)
    fade = np.clip((t - crown) / rise, 0, 1)
    fade = fade + domed * (fade * fade * (3 - 2 * fade) - fade)  # eased in and out: no crisp onset
    tongue = fade * np.maximum(tall, TONGUE_WIDE * flat)
    if wide and not corridor:
        # The roof of a wide-open mouth lies in the upper lip's shadow: darkest at the top. Its
        # corners, where the lips meet deep in the cheeks, are darker too. The edge needs no lit
        # rim: the opening's soft, grown alpha fades the lips into it.
        cav = cav * (ROOF + (1 - ROOF) * np.clip(depth / h_open, 0, 1))[..., None]
        cav = cav * (1 - 0.5 * np.clip(2 * np.abs(u) - 0.5, 0, 1) ** 2)[..., None]
        # A tall opening (surprise's dropped jaw) is lit (TALL_LIT); a flat one (fear) stays dark:
        # lit, the classifiers read it as surprise.
        cav = cav * (1 + tall * (TALL_LIT - 1))[..., None]
    # A tall opening's tongue is lit (TONGUE_LIT), a flat one's stays dim (DIM_TONGUE).
    lit_t = [d + tall * (b - d) for d, b in zip(DIM_TONGUE, TONGUE_LIT)]
    top = np.clip(1.6 * (1 - front), 0, 1) * np.clip(4 * front, 0, 1)  # 1 over its top, 0 at its front
    if domed > 0:  # its top in shadow, lit further down, shaded at its sides and by the lower lip
        g = np.clip((t - crown) / (DOME_LIT_AT * h_mid), 0, 1)
        n = np.clip(1 - (f.t_lo(s) - t) / (DOME_SHADE_AT * h_mid), 0, 1)
        lit_top = DOME_PEAK * g * g * (3 - 2 * g) * (1 - DOME_SHADE * n * n * (3 - 2 * n))
        top = top + domed * (lit_top * (1 - DOME_SIDE * (2 * u) ** 2) - top)
    tongue_rgb = lips * TONGUE_TINT * (lit_t[0] + lit_t[1] * (front + tall * (top - front)))[..., None]
    cav = cav * (1 - tongue[..., None]) + tongue_rgb * tongue[..., None]
    if lower_teeth > 0 and band >= 1:
        cav = _lower_teeth(cav, big, col, f.t_lo(s) - t, size, band, lower_teeth * band)
    if wide:  # a dropped jaw's upper teeth lie in the upper lip's shadow (disgust bares them to the light)
        ex_rgb = ex_rgb * (1 - (1 - DROPPED_TEETH) * tall)[..., None]
    if rigid:  # the raised lip's own shadow on the teeth just under it
        ex_rgb = TEETH_DIM * ex_rgb * (1 - 0.35 * np.clip(1 - depth / max(LIP_SHADOW * band, 1.0), 0, 1))[..., None]
    fill = ex_rgb * ex_a[..., None] + cav * (1 - ex_a[..., None])
    # The bank's teeth and the cavity carry London's colour: a black-and-white photo's mouth came
    # out brown and pink (up to 28 levels between channels). It takes the photo's colourfulness.
    grey = 1.0 - mouthbank.colourfulness(skin)
    if grey > 0:
        fill = fill + grey * (fill.mean(-1, keepdims=True) - fill)
    # Grain: a bank exemplar is cleaner than a grainy photo (and smoother once enlarged).
    if ex_grain >= 0:
        g_photo = mouthbank.grain(_patch(src_img, src_lm[205, :2], 0.15 * iod_px))
        g_have = ex_grain * min(1.0, k) if k < 1 else 0.0
        add = np.sqrt(max(g_photo ** 2 - g_have ** 2, 0.0))
        if add > 0.3:
            fill = fill + np.random.default_rng(seed).normal(0, add, fill.shape[:2])[..., None]
    if wide:
        _fill_rim(warped, alpha, box, f.width, iod_px)
    a = (alpha[y0:y1, x0:x1] * amount)[..., None]
    sub = warped[y0:y1, x0:x1]
    sub[:] = np.clip(sub * (1 - a) + fill * a + 0.5, 0, 255).astype(np.uint8)
    return alpha


CLOSE_DARK = 0.6  # of the lips' brightness: darker pixels left between closed lips are gap, not lip
CORNER_REACH = 0.08  # IOD (pose scale) round each closed corner where such dark pixels are gap too
# A smile taken away (AU12 read on the photo at least this) from lips at least this far apart
# (IOD, canonical) is closed like a smile with teeth, whatever shows between the lips: 021's teeth
# lie in deep shadow (neither enamel-like nor dark), and closed by the warp alone they stayed as
# fragments between the lips. Not when what shows between them is lip (`lip_between`).
PARTED_SMILE = (0.35, 0.035)
# The wet inner lip is redder than the lips' colour (sampled on the lip line, half skin): between
# the inner-lip landmarks of a closed smile, (R - G) / R is this many times the lips' or more. On
# the tune half's four parted smiles without detected teeth: 021's shadowed teeth 1.2, lip between
# 042 1.21, 086 1.47, 043 1.5 (closed onto bank lips, 086 got a dark slit across its lips).
LIP_BETWEEN = 1.35
DARK_SLIT = 0.015  # IOD: a removed smile's lips at least this far apart on a dark slit (`smile_parting`)


def lip_between(img: np.ndarray, lm: np.ndarray) -> bool:
    """Whether what shows between the inner lips is the lips' own wet inner red."""
    px = _opening_pixels(img, lm)
    if len(px) < 20:
        return True
    lips = _lip_colour(img, lm)
    red = float(np.median((px[:, 0] - px[:, 1]) / np.maximum(px[:, 0], 1.0)))
    return red >= LIP_BETWEEN * float(lips[0] - lips[1]) / max(float(lips[0]), 1.0)


def smile_parting(img: np.ndarray, lm: np.ndarray, smile_removed: float, gap: float) -> str | None:
    """How a smile taken away (`smile_removed`: the AU12 read on the photo and relaxed) from lips
    `gap` apart (IOD, canonical) closes: "bank" onto bank lips when no lip shows between them
    (PARTED_SMILE, `lip_between`: 021's teeth in deep shadow are neither enamel-like nor dark);
    "own" onto the person's own lips when they part on a dark slit with lip beside it (122: 0.026
    IOD apart; left to the warp, the slit, squeezed with the smile's corners, became a thick,
    jagged dark band, and the bank's lips over 122's pale lips brought bright specks and a pale
    patch); None: the warp alone closes them."""
    if smile_removed < PARTED_SMILE[0] or gap < DARK_SLIT:
        return None
    if not lip_between(img, lm):
        return "bank" if gap >= PARTED_SMILE[1] else None
    return "own" if _dark_opening(img, lm) else None


# The shaded meeting line where no bank lips reach (the corners): width and blur (IOD) and depth.
# It was 0.012 / 0.004 / 0.4: a crisp grey dash beside the bank's soft line (013, 083, 105, 107
# zoomed in). Tune half, real smiles -> neutral, ungated (ensemble / face-api / mini-Xception /
# PyEmotion): 94/94/94/59 -> 97/97/94/56.
CORNER_LINE = (0.02, 0.01, 0.35)


def _close_lips(warped, dst_lm, region: Region, src_img, src_lm, iod_px: float,
                bank: bool = True) -> np.ndarray | None:
    """A smile with teeth closed (in place in `warped`): the sliver between the lips and any
    enamel-like or dark pixel left on them (the landmarker's inner lip edges can lie a pixel or two
    off the teeth) are inpainted from the lips around them; then real closed lips (`lipbank`: a
    London neutral mouth warped onto the target's lips, in the person's lip colour) replace that
    and a band along the line where the lips meet. Without the bank, the meeting line is shaded in
    instead (multiplied, so the lips keep their texture). Returns the touched mask (float32) or None."""
    shape = warped.shape[:2]
    off = [region.x0, region.y0]
    outer = np.zeros(shape, np.uint8)
    cv2.fillPoly(outer, [np.round(dst_lm[LIPS_OUTER, :2] - off).astype(np.int32)], 1)
    # The smile's dark corners (the gap between the teeth and the cheek) can land just beyond the
    # closed lips' corners: a dark square stayed beside 061's closed mouth.
    beyond = np.zeros(shape, np.uint8)
    for c in (61, 291):
        cv2.circle(beyond, tuple(int(v) for v in np.round(dst_lm[c, :2] - off)), max(1, round(CORNER_REACH * iod_px)), 1, -1)
    box = nonzero_box(outer | beyond)
    if box is None:
        return None
    y0, y1, x0, x1 = box
    crop = warped[y0:y1, x0:x1]
    outer, beyond = outer[y0:y1, x0:x1], beyond[y0:y1, x0:x1] > 0
    # Left-over teeth, and the dark gaps beside and between them (the smile's corners): both would
    # stay as blobs and a ragged line where the lips now meet.
    lips = _lip_colour(src_img, src_lm)
    dark = crop.astype(np.float32).mean(-1) < CLOSE_DARK * float(lips.mean())
    odd = _enamel(crop, src_img, src_lm) | dark
    gap = np.zeros(shape, np.uint8)
    cv2.fillPoly(gap, [np.round(dst_lm[LIPS_INNER_LOWER + LIPS_INNER_UPPER[1:-1], :2] - off).astype(np.int32)], 1)
    # The sliver a pixel or so wider: on small or warm-lit faces not every tooth pixel reads as enamel.
    k = 2 * max(1, round(0.015 * iod_px)) + 1
    gap = cv2.dilate(gap, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
    # Left-over teeth lie where the lips met, a few pixels off the inner-lip landmarks at most:
    # anywhere else on the lips an enamel-like or dark pixel is the lips' own (a glossy lip's
    # highlight, a dark lip's shading). Taken for teeth, they were inpainted and covered with bank
    # lips: most of 061's and 042's dark lips became a pale exemplar's with a grey sheen, and 102's
    # and 083's glossy lower lips were cut off along the lips' outline (tune half, smiles closed to
    # neutral: up to 690 replaced pixels over 0.06 IOD from the meeting line).
    near = cv2.dilate(gap, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * k + 1, 2 * k + 1)))[y0:y1, x0:x1] > 0
    hole = odd & (outer > 0) & near | dark & beyond
    if not bank:
        # No teeth were there, only a dark slit: what is dark away from it is the lips' own edge
        # (pale lips' borders read as dark), and inpainting it cut a block out of 122's upper lip.
        hole &= near
    m = cv2.dilate((hole | (gap[y0:y1, x0:x1] > 0)).astype(np.uint8), np.ones((3, 3), np.uint8))
    crop[:] = cv2.inpaint(np.ascontiguousarray(crop), m, 3, cv2.INPAINT_TELEA)
    # Inpainting is smooth: the lips' own grain goes back in, or the filled corners read as flat
    # patches beside the textured lips (013).
    own = (cv2.erode(outer, np.ones((3, 3), np.uint8)) > 0) & (cv2.dilate(m, np.ones((3, 3), np.uint8)) == 0)
    g = mouthbank.grain(crop, own)
    if g > 0.3:
        noise = np.random.default_rng(0).normal(0, g, crop.shape[:2]).astype(np.float32)
        crop[:] = np.clip(crop + (noise * (m > 0))[..., None] + 0.5, 0, 255).astype(np.uint8)
    # The meeting line: midway between the inner lip edges, smoothed (the mid-points of the mesh's
    # few inner-lip pairs made a stepped line).
    mid = _between_lips(dst_lm) - off - [x0, y0]
    mid = np.round(_chaikin(mid, 3, closed=False) * 16).astype(np.int32)
    a = lipbank.close(crop, np.array([region.x0 + x0, region.y0 + y0], np.float64), _met_halfway(dst_lm),
                      outer > 0, m > 0, (outer > 0) & ~odd, mid, iod_px, lips,
                      mouthbank.skin_colour(src_img, src_lm)) if bank else None
    # The meeting line is shaded in where no real lips were put: everywhere without the bank, at
    # the thin corners (beyond the band's reach) with it.
    line = np.zeros(crop.shape[:2], np.float32)
    cv2.polylines(line, [mid], False, 1.0, max(1, round(CORNER_LINE[0] * iod_px)), cv2.LINE_AA, shift=4)
    line = cv2.GaussianBlur(line, (0, 0), max(0.6, CORNER_LINE[1] * iod_px))
    if a is not None:
        line = line * (1 - a)
    crop[:] = np.clip(crop * (1 - CORNER_LINE[2] * line[..., None]) + 0.5, 0, 255).astype(np.uint8)
    out = np.zeros(shape, np.float32)
    out[y0:y1, x0:x1] = np.maximum(np.maximum(m, line > 0.01), 0 if a is None else a)
    return out


def _patch(img: np.ndarray, c: np.ndarray, r: float) -> np.ndarray:
    h, w = img.shape[:2]
    r = max(3, int(r))
    x, y = int(np.clip(c[0], r, w - r - 1)), int(np.clip(c[1], r, h - r - 1))
    return img[y - r:y + r + 1, x - r:x + r + 1]


def _opening_pixels(img: np.ndarray, lm: np.ndarray) -> np.ndarray:
    """(n, 3) float32 pixels inside the inner-lip polygon."""
    poly = lm[LIPS_INNER_LOWER + LIPS_INNER_UPPER[1:-1], :2]
    x0, y0 = np.maximum(np.floor(poly.min(0)).astype(int), 0)
    x1, y1 = np.ceil(poly.max(0)).astype(int) + 1
    crop = img[y0:y1, x0:x1]
    if crop.size == 0:
        return np.zeros((0, 3), np.float32)
    m = np.zeros(crop.shape[:2], np.uint8)
    cv2.fillPoly(m, [np.round(poly - [x0, y0]).astype(np.int32)], 1)
    return crop[m > 0].astype(np.float32)


def _hsv(rgb: np.ndarray) -> np.ndarray:
    """(..., 3) RGB -> float32 HSV (OpenCV's 8-bit ranges: S and V 0..255)."""
    px = np.clip(rgb, 0, 255).astype(np.uint8).reshape(-1, 1, 3)
    return cv2.cvtColor(px, cv2.COLOR_RGB2HSV).reshape(rgb.shape).astype(np.float32)


def _enamel(px: np.ndarray, img: np.ndarray, lm: np.ndarray) -> np.ndarray:
    """Enamel-like pixels (..., 3 -> bool): bright and nearly grey (`mouthbank.tooth_like`), or, in
    warm or tinted light where teeth are as coloured as the skin, as bright as the photo's skin and
    far less saturated than its lips. The second rule found the teeth of two laughing faces in
    insightface's t1.jpg (neither passed the grey test, so their teeth stayed as fragments after a
    smile was taken away) and adds no London neutral photo (the most any shows: 0.7% of its opening,
    0.0001 IOD^2) and no London smile beyond what the first rule finds."""
    grey = mouthbank.tooth_like(px, np.array([_skin_brightness(img, lm)]))
    skin, lips = _hsv(mouthbank.skin_colour(img, lm)), _hsv(_lip_colour(img, lm))
    hsv = _hsv(px)
    return grey | ((hsv[..., 2] >= ENAMEL_V * skin[2]) & (hsv[..., 1] <= ENAMEL_S * lips[1]))


ENAMEL_V, ENAMEL_S = 0.95, 0.65  # of the skin's brightness, of the lips' saturation


def teeth_showing(img: np.ndarray, lm: np.ndarray) -> bool:
    """Whether the source mouth already shows teeth (then the real ones are warped, not painted):
    enough bright, unsaturated pixels inside the inner-lip polygon."""
    px = _opening_pixels(img, lm)
    if len(px) < 20:  # closed lips: a sliver, no teeth
        return False
    # Thresholds from the London photos: the share flags 29 of 68 real smiles (about half show
    # teeth) and 0 of 68 neutral faces. Where the landmarker's inner lips take in much of the lips,
    # the share is diluted; the enamel area itself (per IOD squared) then tells: twice the most any
    # real London neutral face shows (0.0018) adds 2 smiles (105's teeth were squeezed into grey
    # dashes when it closed).
    tooth = _enamel(px, img, lm)
    iod = float(np.hypot(*(lm[263, :2] - lm[33, :2])))
    return float(tooth.mean()) > TEETH_SHOWING or tooth.sum() / max(iod, 1.0) ** 2 > TEETH_AREA


def shows_teeth(img: np.ndarray, lm: np.ndarray) -> Callable[[], bool]:
    """`teeth_showing(img, lm)`, measured on first call and then remembered: one render asks up
    to three times (needs_interior, then render_interior's `closing` and its choice of interior)."""
    return cache(lambda: teeth_showing(img, lm))


OPENS = 0.01  # IOD: lips that part further than this past the source's are an opening to paint


def needs_interior(img: np.ndarray, src_lm: np.ndarray, src_gap: float, dst_gap: float,
                   teeth: Callable[[], bool] | None = None, parted_smile: bool = False,
                   lips_meet: bool = False) -> bool:
    """Paint the opening when the lips open further than they were (stretching what was between
    them would stretch the teeth), or close from a smile that shows teeth (so none are left)."""
    return dst_gap > src_gap + OPENS or closing(img, src_lm, src_gap, dst_gap, teeth, parted_smile, lips_meet)


# Real teeth are rigid: an opening that stays open but changes its width or height by more than
# this share (a smile made wider for "happy") would squash and stretch the person's teeth with the
# lips (zoomed in, tune half, happy from real smiles: 064's, 096's and 117's teeth became wide flat
# slabs, 1.3x as wide and half as tall). Such an opening is painted instead, with the person's own
# teeth at their own size.
RESHAPE = 0.1


def reshapes_teeth(img: np.ndarray, src_lm: np.ndarray, dst_lm: np.ndarray, src_gap: float, dst_gap: float,
                   teeth: Callable[[], bool] | None = None) -> bool:
    """Whether the warp would bend the real teeth the source shows: the lips stay apart
    (`SHUT_BELOW`) but the opening's width or height changes by more than RESHAPE."""
    if dst_gap < SHUT_BELOW or src_gap < SHUT_BELOW:
        return False
    wide = mouthbank.frame(dst_lm).width / max(mouthbank.frame(src_lm).width, 1.0)
    if abs(wide - 1) <= RESHAPE and abs(dst_gap / src_gap - 1) <= RESHAPE:
        return False
    return (teeth or shows_teeth(img, src_lm))()


# A talking mouth's opening shows its own interior: upper teeth over the tongue and lower teeth.
# Painted again (a smile's `reshapes_teeth`, or a taller opening's `needs_interior`) only the upper
# row was kept and a cavity filled the rest (obama2 from face_recognition's tests, happy: a
# "denture" over a brown hole); warped, the person's own mouth keeps all of it, widened as the
# London smiles' teeth were (1.31x across, 1.10x down over its enamel; 064, 117: 1.25-1.31, 1.07).
# Its upper-teeth band fills less than TEETH_FILL of the photo's opening at the middle (obama2
# 0.26; the 13 tune-half smiles with teeth 0.62-1.03, the astronaut 0.80: their opening is their
# teeth), and it is kept when the new opening's height changes by at most TALK_GROW of its own
# (obama2's happy: 1.12).
TEETH_FILL, TALK_GROW = 0.5, 0.25


def teeth_fill(img: np.ndarray, lm: np.ndarray) -> float:
    """The upper-teeth band's height over the opening's, at the middle of the mouth."""
    f = mouthbank.frame(lm)
    inner, valid = mouthbank.rectify(img, lm)
    band = mouthbank.teeth_height(inner, valid, mouthbank.skin_colour(img, lm)) * f.width
    return band / max(float(f.t_lo(f.width / 2) - f.t_up(f.width / 2)), 1.0)


def keeps_interior(img: np.ndarray, src_lm: np.ndarray, src_gap: float, dst_gap: float,
                   teeth: Callable[[], bool] | None = None) -> bool:
    """Whether an open mouth showing more than its upper teeth (a talking mouth) is only warped:
    its opening stays open and changes height by at most TALK_GROW."""
    if src_gap < SHUT_BELOW or abs(dst_gap / src_gap - 1) > TALK_GROW:
        return False
    return (teeth or shows_teeth(img, src_lm))() and teeth_fill(img, src_lm) < TEETH_FILL


# Inner-lip points of each lip matched across the mouth (corners 78/308 excluded): upper 191 faces
# lower 95, ..., 13 faces 14, ..., 415 faces 324.
_UPPER_INNER = LIPS_INNER_UPPER[::-1][1:-1]
_LOWER_INNER = LIPS_INNER_LOWER[1:-1]
# IOD: inner lips apart by more than this over closed lips are corrected. The planner closes lip
# gaps over 0.035, and below about 0.04 that squeezes little; at 0.02, 10 of 34 tune faces were
# corrected and sad read 97% -> 85% (ensemble); at 0.04 one (061), and the readers are unchanged.
FALSE_GAP = 0.04


def meet_closed_lips(img: np.ndarray, lm: np.ndarray) -> np.ndarray:
    """The landmarks with closed lips' inner edges brought together. On full closed lips the
    landmarker puts the inner edges apart on the lips' own red (025 and 061: 0.10 IOD of pixels as
    bright as the lips): the planner then "closed" that false gap, squeezing lip out of the mouth
    (a jagged line where the lips meet, the upper lip thinned to a sliver in sadness), and a raised
    upper lip (disgust) never opened past it, so no teeth showed. Lips count as closed when the
    mouth shows neither teeth nor a dark opening. Each pair of inner-lip points meets half-way, so
    the lips' centre that the expression measures read (corner lift) stays where it was. Other
    landmarks, and the array itself when nothing is corrected, are returned unchanged."""
    iod = float(np.hypot(*(lm[263, :2] - lm[33, :2])))
    up, lo = lm[_UPPER_INNER, :2].astype(np.float64), lm[_LOWER_INNER, :2].astype(np.float64)
    if float(np.median(np.hypot(*(lo - up).T))) < FALSE_GAP * iod or teeth_showing(img, lm) or _dark_opening(img, lm):
        return lm
    return _met_halfway(lm)


def _between_lips(lm: np.ndarray) -> np.ndarray:
    """(11, 2): the line midway between the inner lip edges, corner 78 to corner 308."""
    return (lm[LIPS_INNER_LOWER, :2] + lm[LIPS_INNER_UPPER[::-1], :2]) / 2


def _met_halfway(lm: np.ndarray) -> np.ndarray:
    """A copy of `lm` with each pair of inner-lip points moved to their midpoint."""
    out = lm.copy()
    mid = (lm[_UPPER_INNER, :2].astype(np.float64) + lm[_LOWER_INNER, :2].astype(np.float64)) / 2
    out[_UPPER_INNER, :2] = out[_LOWER_INNER, :2] = mid
    return out


# Closed lips' real meeting line, searched this far (IOD) either side of the landmarks' and moved
# at most LINE_MOVE. The mesh's line can lie several pixels off the dark line (London, IOD ~175:
# 061's met points 6-9 px above it, 025's middle 3.5 px below it, 107 and 139 3 px; lisa's
# close-up, IOD 243: up to 8 px): pressed (anger), the real line then showed inside one lip as
# dark stair-steps.
LINE_REACH, LINE_MOVE, LINE_EASE = 0.06, 0.05, 0.2
# A column's line counts by how much darker it is than its column (grey levels): below LINE_FAINT
# at the median the lips show no line to follow (blurred or tiny faces) and nothing moves.
LINE_FAINT = 4.0


def on_meeting_line(img: np.ndarray, lm: np.ndarray, teeth: Callable[[], bool] | None = None) -> np.ndarray:
    """A copy of `lm` with closed lips' inner edges moved, across the mouth, onto the dark line
    where the lips really meet: the darkest point of each column across the mouth, weighted by its
    depth, fitted by a quadratic offset from the landmarks' line (robust: Tukey weights), so the
    moved points stay on one smooth curve. For the warp only: the expression is planned on `lm`
    (moving the middle of the line and not its corners reads as a smile, and was taken away).
    `lm` itself when the lips are apart (teeth or a dark opening) or show no line. teeth: the
    caller's `shows_teeth(img, lm)`, if it made one."""
    if (teeth or shows_teeth(img, lm))() or _dark_opening(img, lm):
        return lm
    iod = float(np.hypot(*(lm[263, :2] - lm[33, :2])))
    mid = _between_lips(lm).astype(np.float64)
    width, nv, u, cols, line = _columns(mid, mid[0], mid[-1] - mid[0])
    if width < 20:
        return lm
    offs = np.arange(-LINE_REACH * iod, LINE_REACH * iod + 0.25, 0.5)
    prof = _profiles(img, line, offs, nv, lambda px: cv2.GaussianBlur(px.astype(np.float32).mean(-1), (0, 0), 0.8))
    at = prof.argmin(0)
    depth = np.median(prof, 0) - prof.min(0)
    if float(np.median(depth)) < LINE_FAINT:
        return lm
    # The corners stay (the lines meet there, and the mesh's corner triangles are slivers that a
    # few pixels fold over): the move fades in over the outer LINE_EASE of the width each side.
    move = _smooth_offset(cols / width, offs[at], depth, u[1:-1] / width, iod, LINE_MOVE)
    return _shift_rings(lm, move[:, None] * nv)


def _columns(pts: np.ndarray, origin: np.ndarray, across: np.ndarray, own_span: bool = False):
    """The columns across the mouth that `on_meeting_line` and `on_lip_edge` read: (width of
    `across`, the unit normal down the face, each point's position `u` along `across` from
    `origin`, the columns one pixel apart (from 0 to the width, or with `own_span` from the first
    point to the last), and the polyline through `pts` resampled at them)."""
    width = float(np.hypot(*across))
    ux = across / max(width, 1e-9)
    nv = np.array([-ux[1], ux[0]])  # down the face, for an upright face
    u = (pts - origin) @ ux
    cols = np.arange(u[0], u[-1], 1.0) if own_span else np.arange(0.0, width, 1.0)
    line = np.stack([np.interp(cols, u, pts[:, k]) for k in (0, 1)], -1)
    return width, nv, u, cols, line


def _profiles(img: np.ndarray, line: np.ndarray, offs: np.ndarray, nv: np.ndarray,
              channel: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """(len(offs), len(line)): `channel` of the pixels around `line` (n, 2), sampled at each offset
    (px) along `nv` from every point of it. channel maps an RGB crop to one float32 plane."""
    grid = line[None] + offs[:, None, None] * nv
    x0, y0 = np.maximum(np.floor(grid.reshape(-1, 2).min(0)).astype(int) - 2, 0)
    x1, y1 = np.ceil(grid.reshape(-1, 2).max(0)).astype(int) + 3
    plane = channel(img[y0:y1, x0:x1])
    return cv2.remap(plane, (grid - [x0, y0]).astype(np.float32), None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def _smooth_offset(t: np.ndarray, off: np.ndarray, depth: np.ndarray, at: np.ndarray, iod: float,
                   most: float) -> np.ndarray:
    """One smooth curve through per-column offsets `off` (px) found at `t` (0..1 across the mouth),
    each weighted by how clear it was (`depth`): a quadratic, refitted with Tukey weights so stray
    columns (a highlight, a stubble hair) drop out. Its value at `at`, at most `most` IOD, easing
    to nothing over the outer LINE_EASE each side."""
    t = t * 2 - 1
    w = depth.copy()
    for _ in range(3):
        c = np.polyfit(t, off, 2, w=np.sqrt(w))
        r = (off - np.polyval(c, t)) / (3 * 0.015 * iod)
        w = depth * np.clip(1 - r ** 2, 0, None) ** 2
    ease = np.clip(np.minimum(at, 1 - at) / LINE_EASE, 0, 1)
    return np.clip(np.polyval(c, at * 2 - 1), -most * iod, most * iod) * ease * ease * (3 - 2 * ease)


_SHARE = np.array([0, 1 / 3, 2 / 3, 1])[:, None, None]  # of the inner edge's move, outer ring to inner


def _ring_gaps(lm: np.ndarray, rings: np.ndarray, unit: np.ndarray) -> np.ndarray:
    """(9,) the narrowest gap between neighbouring rings of `rings` (4, 9) in each column, measured
    along that column's direction `unit` (9, 2)."""
    along = ((lm[rings, :2] - lm[rings[:1], :2]) * unit).sum(-1)
    return np.abs(np.diff(along, axis=0)).min(0)


def _keep(lm: np.ndarray, rings: np.ndarray, move: np.ndarray) -> np.ndarray:
    """(9,) the share of each column's `move` (9, 2) that leaves every gap between the lip's
    `rings` (4, 9) half its width: at most 1.5x the narrowest gap along the move."""
    m = np.maximum(np.hypot(*move.T), 1e-9)
    return np.clip(1.5 * _ring_gaps(lm, rings, move / m[:, None]) / m, 0, 1)


def _shift_rings(lm: np.ndarray, move: np.ndarray) -> np.ndarray:
    """A copy of `lm` with each column's inner-lip pair moved by `move` (9, 2) and both lips'
    rings in proportion (the outer contour stays). A column moves at most 1.5x the narrowest gap
    between the rings of the lip it moves into, so each gap keeps half its width (moved alone, the
    inner edge crossed the next ring; pressed lips leave gaps thinner than the move)."""
    down = (move * (lm[LOWER_RINGS[3], :2] - lm[UPPER_RINGS[0], :2])).sum(-1) > 0  # into the lower lip
    keep = _keep(lm, np.where(down[None], LOWER_RINGS, UPPER_RINGS), move)
    out = lm.astype(np.float64)  # a copy
    for rings in (UPPER_RINGS, LOWER_RINGS):
        out[rings, :2] += _SHARE * (move * keep[:, None])
    return out.astype(lm.dtype)


def carry_line(src: np.ndarray, lined: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The target landmarks with `on_meeting_line`'s move (`lined - src`) carried over: the line
    keeps its place where the lips meet (`_shift_rings`, with the target's own ring gaps)."""
    return _shift_rings(target, (lined - src)[UPPER_RINGS[3], :2])


# The lower lip's outer edge (its red against the chin's skin), searched from EDGE_REACH[0] to
# EDGE_REACH[1] IOD down from the landmarks' and moved at most EDGE_MOVE. The mesh puts it inside
# the lip more often than not (tune half neutrals against the hand-placed points: 0.020 IOD mean
# error, 0.041 at p90; 139's smile 0.05): a press or a closing then thinned the mesh's lip and left
# the red below it as chin, a thick pout (anger from smiles).
EDGE_REACH, EDGE_MOVE = (-0.03, 0.09), 0.06
# a* units per half pixel, median over the columns: a fainter edge (dark lips on dark skin, 061:
# 0.21; the rest of the tune half 0.30-1.35) is not followed.
EDGE_FAINT = 0.25
_LOWER_SHARE = np.array([1, 2 / 3, 1 / 3, 0])[:, None, None]  # of the edge's move, outer ring to inner


def _redness(px: np.ndarray, blur: float) -> np.ndarray:
    """CIELAB a* (green -> red) of an RGB crop, blurred by `blur` px."""
    a = cv2.cvtColor(px.astype(np.float32) / 255, cv2.COLOR_RGB2LAB)[..., 1]
    return cv2.GaussianBlur(a, (0, 0), blur)


def on_lip_edge(img: np.ndarray, lm: np.ndarray) -> np.ndarray:
    """A copy of `lm` with the lower lip's outer contour moved onto the lip's real lower edge, where
    its red gives way to skin fastest going down each column (the fall weighted by its steepness,
    one smooth curve as `on_meeting_line` fits), the lip's inner rings in proportion and its inner
    edge fixed. For the warp only, like `on_meeting_line`. `lm` itself for a mouth under 20 px or
    an edge fainter than EDGE_FAINT."""
    iod = float(np.hypot(*(lm[263, :2] - lm[33, :2])))
    ring = lm[LOWER_RINGS[0], :2].astype(np.float64)
    width, nv, u, cols, line = _columns(ring, lm[61, :2].astype(np.float64),
                                        (lm[291, :2] - lm[61, :2]).astype(np.float64), own_span=True)
    if width < 20:
        return lm
    offs = np.arange(EDGE_REACH[0] * iod, EDGE_REACH[1] * iod + 0.25, 0.5)
    fall = np.diff(_profiles(img, line, offs, nv, lambda px: _redness(px, max(0.006 * iod, 0.8))), axis=0)
    at, steep = fall.argmin(0), np.maximum(-fall.min(0), 0)
    if float(np.median(steep)) < EDGE_FAINT:
        return lm
    span = u[-1] - u[0]
    move = _smooth_offset((cols - u[0]) / span, offs[at] + 0.25, steep, (u - u[0]) / span, iod, EDGE_MOVE)
    return _shift_lower(lm, move[:, None] * nv)


@cache
def _skin_below() -> list[np.ndarray]:
    """For each point of the lower lip's outer ring, its mesh neighbours (in the warp's fixed
    triangulation) that are skin, not lip: the chin's side of the lip's edge, and the corners'."""
    tri = model().tri_ring
    lips = set(LIPS_LOWER_RINGS) | set(LIPS_UPPER_RINGS) | set(LIPS_INNER_LOWER) | set(LIPS_INNER_UPPER)
    out = []
    for p in LOWER_RINGS[0]:
        near = {int(n) for n in tri[(tri == p).any(1)].ravel() if n < 468}  # not the anchor ring
        out.append(np.array(sorted(near - lips - {int(p)})))
    return out


def _shift_lower(lm: np.ndarray, move: np.ndarray) -> np.ndarray:
    """A copy of `lm` with the lower lip's outer ring moved by `move` (9, 2), its inner rings in
    proportion (`_LOWER_SHARE`) and its inner edge fixed. Each point moves at most half its gap to
    the nearest skin point beyond it (moving out) or 1.5x the narrowest gap between the lip's rings
    (moving in), so every gap keeps half its width: moved further, the ring crossed the skin below it
    on small faces (t1.jpg's Rachel: two triangles under 181 and 84 folded)."""
    m = np.hypot(*move.T)
    unit = move / np.maximum(m, 1e-9)[:, None]
    p = lm[:, :2].astype(np.float64)
    room = np.full(len(m), np.inf)
    for i, (k, skin) in enumerate(zip(LOWER_RINGS[0], _skin_below())):
        ahead = (p[skin] - p[k]) @ unit[i]
        if (ahead > 0).any():
            room[i] = 0.5 * ahead[ahead > 0].min()
    inward = ((p[LOWER_RINGS[3]] - p[LOWER_RINGS[0]]) * move).sum(-1) > 0
    keep = np.where(inward, _keep(lm, LOWER_RINGS, move), np.clip(room / np.maximum(m, 1e-9), 0, 1))
    out = lm.astype(np.float64)  # a copy
    out[LOWER_RINGS, :2] += _LOWER_SHARE * (move * keep[:, None])
    return out.astype(lm.dtype)


def carry_edge(src: np.ndarray, edged: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The target landmarks with `on_lip_edge`'s move (`edged - src`) carried over (within the
    target's own gaps, `_shift_lower`)."""
    return _shift_lower(target, (edged - src)[LOWER_RINGS[0], :2])


# A smile's inner lip edges on its teeth: the landmarker can put them inside the opening (139's inner
# lower lip runs across its upper teeth). Each edge is moved out of the opening, through the
# enamel-like and dark pixels it lies on, to where the lip begins: searched up to TEETH_REACH IOD,
# moved at most that. Tune half, the 13 smiles with teeth: the inner lower lip's middle moved
# 0.012-0.022 IOD on 013, 083, 102, 103, 139, every other point under 0.013.
TEETH_REACH = 0.06


def on_teeth_edge(img: np.ndarray, lm: np.ndarray, teeth: Callable[[], bool] | None = None) -> np.ndarray:
    """A copy of `lm` with an open mouth's inner lip edges moved off the teeth and the dark
    opening onto the lips (each column's run of such pixels from the landmark outwards, one smooth
    curve per lip as `on_meeting_line` fits), each lip's other rings in proportion and its outer
    edge fixed. For the warp only, like `on_meeting_line`: the teeth the mesh left outside its
    opening were warped as lip (a second row of teeth under a wider smile's painted ones, 139).
    `lm` itself when the mouth shows no teeth, is under 20 px wide, or no edge lies on them."""
    if not (teeth or shows_teeth(img, lm))():
        return lm
    iod = float(np.hypot(*(lm[263, :2] - lm[33, :2])))
    skin = np.array([_skin_brightness(img, lm)])
    dark = CLOSE_DARK * float(_lip_colour(img, lm).mean())

    def opening(px: np.ndarray) -> np.ndarray:
        inside = mouthbank.tooth_like(px, skin) | (px.astype(np.float32).mean(-1) < dark)
        return inside.astype(np.float32)

    corners = lm[[78, 308], :2].astype(np.float64)
    if float(np.hypot(*(corners[1] - corners[0]))) < 20:
        return lm
    out = lm
    for inner, rings, sign in ((LIPS_INNER_LOWER, LOWER_RINGS, 1.0), (LIPS_INNER_UPPER[::-1], UPPER_RINGS, -1.0)):
        width, nv, u, cols, line = _columns(lm[inner, :2].astype(np.float64), corners[0], corners[1] - corners[0])
        offs = np.arange(0.0, TEETH_REACH * iod + 0.25, 0.5)
        prof = _profiles(img, line, offs, sign * nv, opening) > 0.5
        prof = cv2.morphologyEx(prof.astype(np.uint8), cv2.MORPH_CLOSE, np.ones((3, 1), np.uint8)) > 0
        run = np.cumprod(prof, axis=0).sum(0)  # samples from the landmark on that are opening
        if not run.any():
            continue
        move = _smooth_offset(cols / width, run * 0.5, np.ones_like(cols), u[1:-1] / width, iod, TEETH_REACH)
        out = _shift_inner(out, rings, np.clip(move, 0, None)[:, None] * sign * nv)
    return out


def _shift_inner(lm: np.ndarray, rings: np.ndarray, move: np.ndarray) -> np.ndarray:
    """A copy of `lm` with one lip's inner edge (`rings[3]`) moved by `move` (9, 2) into the lip and
    its other rings by the share of it their depth from the outer edge gives (the outer edge stays,
    every gap shrinks by the same factor), each column by at most half the lip's thickness there.
    (Equal shares, as `_shift_rings` moves, held a smile's upper lip back: its inner rings lie
    close together, and half the narrowest gap let 096's edge move 0.5 of its 3 px.)"""
    m = np.hypot(*move.T)
    unit = move / np.maximum(m, 1e-9)[:, None]
    p = lm[rings, :2].astype(np.float64)  # (4, 9, 2)
    depth = -((p - p[:1]) * unit).sum(-1)  # (4, 9): each ring's depth from the outer edge, against the move
    thick = np.maximum(depth[3], 1e-9)
    step = np.minimum(m, 0.5 * thick)
    out = lm.astype(np.float64)  # a copy
    out[rings, :2] += (np.clip(depth / thick, 0, 1) * step)[..., None] * unit
    return out.astype(lm.dtype)


def carry_teeth_edge(src: np.ndarray, edged: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The target landmarks with `on_teeth_edge`'s move carried over (within the target's gaps)."""
    out = _shift_inner(target, LOWER_RINGS, (edged - src)[LOWER_RINGS[3], :2])
    return _shift_inner(out, UPPER_RINGS, (edged - src)[UPPER_RINGS[3], :2])


# A broad smile's upper lip, stretched thin over the teeth, reaches below the mesh's inner edge:
# the landmarker puts 13/82/312... inside its red, and the red under them was read as opening.
# Fear and surprise painted their opening over it and the upper lip's red all but vanished (the
# astronaut: red 0.065 IOD tall at the middle, the mesh's lip 0.044 of it; obama's 0.09, the mesh's
# 0.053). The edge is moved down to where the red gives way to the teeth fastest (`on_lip_edge`'s
# search), LIP_REACH IOD at most and half way to the lower lip, and only when that fall is no
# fainter than EDGE_FAINT. Moved at the middle / most: the astronaut 0.026 / 0.029 IOD, obama
# 0.041 / 0.042; tune half, 7 of its smiles, 0.000-0.023 / 0.007-0.029 (102, 117 most); no
# neutral photo (no teeth).
LIP_REACH, LIP_ABOVE = 0.07, 0.01  # IOD below the landmarks' edge searched (and above it)
ENVELOPE = 0.1  # share of the columns whose red ends above the lip's edge


def on_red_bottom(img: np.ndarray, lm: np.ndarray, teeth: Callable[[], bool] | None = None) -> np.ndarray:
    """A copy of `lm` with an open mouth's upper inner lip edge moved down onto the real lower
    edge of the lip's red, where it gives way to the teeth fastest going down each column (one
    smooth curve, as `on_lip_edge` fits; never up: `on_teeth_edge` lifts an edge lying on the
    teeth), the lip's other rings in proportion and its outer edge fixed. For the warp only, like
    `on_teeth_edge`. `lm` itself when the mouth shows no teeth, is under 20 px wide, the edge
    is fainter than EDGE_FAINT, or no column moves half a pixel."""
    if not (teeth or shows_teeth(img, lm))():
        return lm
    iod = float(np.hypot(*(lm[263, :2] - lm[33, :2])))
    corners = lm[[78, 308], :2].astype(np.float64)
    width, nv, u, cols, line = _columns(lm[LIPS_INNER_UPPER[::-1], :2].astype(np.float64), corners[0],
                                        corners[1] - corners[0])
    if width < 20:
        return lm
    lower = _columns(lm[LIPS_INNER_LOWER, :2].astype(np.float64), corners[0], corners[1] - corners[0])[4]
    gap = ((lower - line) * nv).sum(-1)  # each column's opening
    offs = np.arange(-LIP_ABOVE * iod, LIP_REACH * iod + 0.25, 0.5)
    fall = np.diff(_profiles(img, line, offs, nv, lambda px: _redness(px, max(0.006 * iod, 0.8))), axis=0)
    fall = np.where(offs[1:, None] <= 0.5 * gap, fall, 0.0)  # the lower lip's own edge is no lip's bottom
    at, steep = fall.argmin(0), np.maximum(-fall.min(0), 0)
    if float(np.median(steep)) < EDGE_FAINT:
        return lm
    raw = offs[at] + 0.25
    fit = _smooth_offset(cols / width, raw, steep, np.concatenate([cols, u[1:-1]]) / width, iod, LIP_REACH)
    # The lip's edge lies on the teeth's crowns; between them (gums, gaps) the red ends lower, and
    # the fitted curve through both cut the crowns' tops into the lip (beige flecks along its
    # edge in obama's fear): it is lifted to the upper ENVELOPE of the columns.
    lift = min(float(np.percentile((raw - fit[:len(cols)])[steep > 0], ENVELOPE * 100)), 0.0)
    move = np.clip(fit[len(cols):] + lift, 0, None)
    if move.max() < 0.5:  # px: the mesh's edge is on the red's own
        return lm
    return _grow_upper(lm, move[:, None] * nv)


def _grow_upper(lm: np.ndarray, move: np.ndarray) -> np.ndarray:
    """A copy of `lm` with the upper lip's inner edge moved by `move` (9, 2) out of the lip, towards
    the lower lip, and its other rings by the share their depth from the outer edge gives (the
    lip stretches evenly; the outer edge stays), each column by at most half its gap to the lower
    lip's inner edge (the opening keeps half its height there)."""
    m = np.hypot(*move.T)
    unit = move / np.maximum(m, 1e-9)[:, None]
    p = lm[UPPER_RINGS, :2].astype(np.float64)  # (4, 9, 2)
    depth = ((p - p[:1]) * unit).sum(-1)  # (4, 9): each ring's depth from the outer edge, along the move
    gap = ((lm[LOWER_RINGS[3], :2] - p[3]) * unit).sum(-1)
    step = np.minimum(m, 0.5 * np.maximum(gap, 0))
    out = lm.astype(np.float64)  # a copy
    out[UPPER_RINGS, :2] += (np.clip(depth / np.maximum(depth[3], 1e-9), 0, 1) * step)[..., None] * unit
    return out.astype(lm.dtype)


def carry_red_bottom(src: np.ndarray, edged: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The target landmarks with `on_red_bottom`'s move carried over (within the target's gaps):
    the target's upper lip takes all the red the photo's has, spread evenly over it: its inner
    rings at the photo's share of the lip's depth. (A smile's inner two rings nearly meet, and
    the plan puts them apart: the last half pixel of the photo's lip, where it meets the teeth,
    was stretched over 3 px of the new lip as a beige band, obama's surprise.)"""
    out = _grow_upper(target, (edged - src)[UPPER_RINGS[3], :2]).astype(np.float64)
    p, q = edged[UPPER_RINGS, :2].astype(np.float64), out[UPPER_RINGS, :2]  # (4, 9, 2)
    v, w = p[3] - p[0], q[3] - q[0]
    share = np.clip(((p - p[0]) * v).sum(-1) / np.maximum((v * v).sum(-1), 1e-9), 0, 1)
    share = np.maximum.accumulate(share, axis=0)  # (4, 9), outer edge to inner
    now = ((q - q[0]) * w).sum(-1) / np.maximum((w * w).sum(-1), 1e-9)
    out[UPPER_RINGS[1:3], :2] += ((share - now)[1:3, :, None] * w)
    return out.astype(target.dtype)


def closing(img: np.ndarray, src_lm: np.ndarray, src_gap: float, dst_gap: float,
            teeth: Callable[[], bool] | None = None, parted_smile: bool = False,
            lips_meet: bool = False) -> bool:
    """Whether the target closes the mouth over what was between the lips: parted lips (or
    teeth) that end up (nearly) together. parted_smile: a smile taken away from lips that were
    apart (whatever shows between them: teeth in deep shadow are neither enamel-like nor dark).
    lips_meet: the target parts no lip (no AU25-27, no raised upper lip), so an opening up to
    twice SHUT_BELOW is still a closed mouth (025's broad smile made a smirk: its lips closed to
    0.042 IOD, and the teeth between them stayed as a white dashed line)."""
    if dst_gap >= (2 * SHUT_BELOW if lips_meet else SHUT_BELOW):
        return False
    return (parted_smile or (teeth or shows_teeth(img, src_lm))()
            or (src_gap > max(dst_gap, 0.0) + 0.03 and _dark_opening(img, src_lm)))


def closes_over(img: np.ndarray, src_lm: np.ndarray, dst_lm: np.ndarray, iod_px: float,
                teeth: Callable[[], bool] | None = None, parted_smile: bool = False,
                lips_meet: bool = False) -> bool:
    """`closing`, with the lips' gaps at the middle (13 -> 14 across each mouth frame) measured on
    the landmarks themselves: whether `render_interior` closes the lips over what was between them."""
    gap = float((dst_lm[14, :2] - dst_lm[13, :2]) @ mouthbank.frame(dst_lm).n) / max(iod_px, 1.0)  # < 0: pressed
    was = float((src_lm[14, :2] - src_lm[13, :2]) @ mouthbank.frame(src_lm).n) / max(iod_px, 1.0)
    return closing(img, src_lm, was, gap, teeth, parted_smile, lips_meet)


def _dark_opening(img: np.ndarray, lm: np.ndarray) -> bool:
    """Whether the lips show a gap (darker than the lips) rather than just full lips whose inner
    edges the landmarker puts apart."""
    px = _opening_pixels(img, lm)
    return len(px) >= 20 and float(px.mean()) < 0.7 * float(_lip_colour(img, lm).mean())


# A smile closed over its teeth ended bluntly: near the corners the lips kept the smile's fuller
# red and ended in a rounded block, the meeting line running on beyond it (107, 122, 139, 064
# zoomed in), where real closed lips taper into the corner. Red height (CIELAB a* past the
# midpoint of lip and skin) at 8 / 12% of the mouth's width from each corner, the tune half's 13
# smiles with teeth closed to neutral: 0.075 / 0.118 IOD, their own real neutral photos 0.045 /
# 0.078; tapered 0.045 / 0.085. Each lip's two end columns move this share of the way to the
# line where the lips meet (less where a triangle by the corner would turn over).
CORNER_TAPER = (0.6, 0.3)


_TAPER_COLS = ((0, 8), (1, 7))


@cache
def _taper_triangles() -> np.ndarray:
    """The warp's triangles (`warp._topology`'s) with a corner on a point `taper_corners` moves."""
    moved = [rings[:, c] for rings in (UPPER_RINGS, LOWER_RINGS) for cols in _TAPER_COLS for c in cols]
    tris = model().tri_ring
    return tris[np.isin(tris, moved).any(1)]


def taper_corners(lm: np.ndarray) -> np.ndarray:
    """`lm` (closed lips) with each lip drawn towards the line where they meet at its two end
    columns on each side (CORNER_TAPER): thinner there, so the lips taper into the corners. Less
    (by quarters) where the full taper would turn a triangle beside the corner over."""
    base = lm.astype(np.float64)
    line = (base[UPPER_RINGS[3], :2] + base[LOWER_RINGS[3], :2]) / 2  # (9, 2): where the lips meet
    move = np.zeros((len(base), 2))
    for cols, f in zip(_TAPER_COLS, CORNER_TAPER):
        for c in cols:
            # Every ring of the column by the same share: they keep their order (moved less
            # towards the inner edge, the outer ring crossed the next one).
            for rings in (UPPER_RINGS, LOWER_RINGS):
                move[rings[:, c]] = f * (line[c] - base[rings[:, c], :2])
    tris = _taper_triangles()
    before = np.sign(triangle_areas(base, tris))
    for k in (1.0, 0.75, 0.5, 0.25):
        if (np.sign(triangle_areas(base[:, :2] + k * move, tris)) == before).all():
            out = base.copy()
            out[:, :2] += k * move
            return out.astype(lm.dtype)
    return lm
