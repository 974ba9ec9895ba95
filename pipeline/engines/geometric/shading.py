"""Shading that sells an expression: folds and wrinkles the muscles make (FACS appearance changes).

Each cue is a soft curve placed on the destination landmarks, drawn once into a small float buffer
(anti-aliased polyline + Gaussian blur), and applied as a multiplicative darkening with a faint
highlight just beside it (a fold has a lit side). Strength follows the AU weights, so intensity 0
draws nothing. Widths and offsets scale with the face (IOD in pixels).
- AU12/AU6 (smile): measured, not drawn: the London smiles' own shading as a ratio map
  (`foldmap`: nasolabial folds, raised cheeks, crow's feet); drawn folds only without the map.
- AU1/AU2 (raised brows): horizontal forehead lines.
- AU4 (lowered brows): vertical furrows between the brows.
- AU9 (nose wrinkle): short lines across the nose bridge.
- AU15/AU17 (sad, chin raise): a mentolabial crease under the lower lip.
"""
from __future__ import annotations

import cv2
import numpy as np

from ...mesh import EYE_L, EYE_R, LID_LO_L, LID_LO_R, LIPS_OUTER
from . import foldmap
from .expression import SMILE_GAIN
from .warp import Region, nonzero_box


def _bezier(p0, p1, p2, n=24):
    t = np.linspace(0, 1, n)[:, None]
    return (1 - t) ** 2 * p0 + 2 * (1 - t) * t * p1 + t ** 2 * p2


def _dense(pts: np.ndarray, n: int = 12) -> np.ndarray:
    """At least `n` points along a polyline (so a 2-point line can taper)."""
    if len(pts) >= n:
        return pts
    t = np.linspace(0, len(pts) - 1, n)
    i = np.minimum(t.astype(int), len(pts) - 2)
    return pts[i] + (t - i)[:, None] * (pts[i + 1] - pts[i])


# How much of a removed smile's shading (its cheeks, folds, crow's feet, measured as AU6/AU12 from
# the corner lift) is divided out: the geometry reads the smile's size, not how deep its folds are.
UNDO_SMILE = 1.0
SKIN_AT = [50, 280, 101, 330, 151, 9]  # cheeks and forehead (mouthbank.SKIN_POINTS less the lower ones)
SKIN_REF = 150.0  # grey level of skin at which folds keep their drawn depth (light skin is brighter)
CONTRAST_MAX = 2.5
# On darker skin (gain g = SKIN_REF / skin grey, 1..CONTRAST_MAX) a fold's shadow deepens by g ** 0.5
# and its lit side brightens by g ** 1.5. Shadow by g alone (the same grey levels as on light skin)
# darkened the tune half's black faces' nasolabial folds by 27-30% of the skin against 15% on white
# ones, with no highlight beside them (98th percentile +0..2 grey): long dark painted strokes
# (025, 061). A crease on dark skin shows by its sheen: the skin bulging above it reflects as much
# light as pale skin does, so its highlight gains relative to the skin's own brightness.
SHADOW_EXP = 0.5
SHEEN_EXP = 1.5
FOLD_BLUR = 0.02  # Gaussian sigma of the folds (IOD): a fold is a soft shadow, not a stroke
WORK_IOD = 96.0  # shading is drawn and blurred with at most this many pixels between the eyes


class _Canvas:
    """Float buffers for the folds, at a working scale capped by WORK_IOD: a big face's soft
    shading is drawn and blurred small and its gain upsampled, so the cost does not grow with the
    square of the face size (blur cost ~ area x sigma)."""

    def __init__(self, shape, region: Region, iod: float, soft: float = 0.0):
        self.soft = soft  # the photo's own blur beyond a sharp portrait's (image pixels, `softness`)
        self.scale = min(1.0, WORK_IOD / iod)
        self.full = shape
        small = (max(1, int(np.ceil(shape[0] * self.scale))), max(1, int(np.ceil(shape[1] * self.scale))))
        self.dark = np.zeros(small, np.float32)
        self.light = np.zeros(small, np.float32)
        self.off = np.array([region.x0, region.y0], np.float32)
        self.iod = iod * self.scale  # in working pixels

    def line(self, pts, strength, width=0.018, lit_side=None):
        """A fold along `pts` (image pixels). lit_side: unit-ish vector towards the highlight."""
        if strength <= 0:
            return
        th = max(1, round(width * self.iod))
        # A line can be no thinner than a pixel: on a small face (t1.jpg, 60 px between the eyes)
        # a 0.01 IOD wrinkle drawn 1 px wide carried 1.7 times its ink per IOD and read as a pencil
        # stroke on the nose. Each line carries the ink per IOD it has at the working scale (what
        # the depths were tuned at: the London faces are drawn there).
        strength *= (width * self.iod / th) / (width * WORK_IOD / max(1, round(width * WORK_IOD)))
        pts = _dense(np.asarray(pts, np.float64))
        # Strength tapers to the ends: a fold fades out, a stroke would stop.
        taper = np.minimum(1.0, 2.5 * np.sin(np.linspace(0, np.pi, len(pts) - 1) * 0.9 + 0.05 * np.pi))
        p = np.round((pts - self.off) * self.scale * 16).astype(np.int32)
        q = None
        if lit_side is not None:
            shift = np.asarray(lit_side) * width * 1.6 * self.iod
            q = np.round(((pts - self.off) * self.scale + shift) * 16).astype(np.int32)
        for k, t in enumerate(taper):
            cv2.line(self.dark, tuple(p[k]), tuple(p[k + 1]), float(strength * t), th, cv2.LINE_AA, shift=4)
            if q is not None:
                cv2.line(self.light, tuple(q[k]), tuple(q[k + 1]), float(strength * t) * 0.45, th, cv2.LINE_AA, shift=4)

    def apply(self, rgb: np.ndarray, gain_k: float = 1.0) -> np.ndarray | None:
        """Multiply the lines' shading into `rgb` (uint8, full resolution, in place), blurring only
        the area the lines cover (plus 3 sigma). Returns the touched-pixel mask (bool, region-sized)."""
        box = nonzero_box(self.dark + self.light)
        if box is None:
            return None
        k = float(np.hypot(FOLD_BLUR * self.iod, self.soft * self.scale))
        pad = int(3 * k * 1.3) + 2
        h, w = self.dark.shape
        y0, y1 = max(box[0] - pad, 0), min(box[1] + pad, h)
        x0, x1 = max(box[2] - pad, 0), min(box[3] + pad, w)
        dark = cv2.GaussianBlur(self.dark[y0:y1, x0:x1], (0, 0), k)
        light = cv2.GaussianBlur(self.light[y0:y1, x0:x1], (0, 0), k * 1.3)
        gain = (1 - np.minimum(gain_k ** SHADOW_EXP * dark, 0.9)) * (1 + 0.5 * gain_k ** SHEEN_EXP * light)
        touched_small = np.maximum(dark, light) > 1e-3
        # Back to full resolution: the same box in image pixels.
        fy0, fx0 = int(y0 / self.scale), int(x0 / self.scale)
        fy1, fx1 = min(int(np.ceil(y1 / self.scale)), self.full[0]), min(int(np.ceil(x1 / self.scale)), self.full[1])
        if self.scale < 1:
            gain = cv2.resize(gain, (fx1 - fx0, fy1 - fy0), interpolation=cv2.INTER_LINEAR)
            touched_small = cv2.resize(touched_small.view(np.uint8), (fx1 - fx0, fy1 - fy0),
                                       interpolation=cv2.INTER_NEAREST).astype(bool)
        foldmap.multiply(rgb[fy0:fy1, fx0:fx1], gain)
        touched = np.zeros(self.full, bool)
        touched[fy0:fy1, fx0:fx1] = touched_small
        return touched


def _axes(p: np.ndarray, iod: float):
    """The face's own axes (x along the eyes, y down the face) and v(a, b): the offset a IOD along
    x and b IOD along y, so folds placed with it turn with a tilted head."""
    ex = p[263] - p[33]
    ex = ex / max(float(np.hypot(*ex)), 1e-6)
    ey = np.array([-ex[1], ex[0]], np.float32)

    def v(a: float, b: float) -> np.ndarray:
        return a * iod * ex + b * iod * ey

    return ex, ey, v


NASOLABIAL = {"L": (129, 61), "R": (358, 291)}  # (nose wing, mouth corner) mesh points per side
# The nose, bridge to wings and base (MediaPipe mesh; its convex hull).
NOSE = [168, 6, 197, 195, 5, 4, 1, 19, 94, 2, 98, 97, 326, 327, 129, 358, 49, 279, 48, 278, 64, 294,
        102, 331, 219, 439, 45, 275, 220, 440, 115, 344]


# AU9/AU10's furrow ends beside the mouth corner (FURROW_END: IOD down the face from it, FURROW_OUT
# out from it); a smile's runs on past and below the corner (0.1, 0.12). Drawn as long as a smile's,
# disgust's furrows ran down beside the chin like a pair of brackets (081, 138); tune half,
# ungated (ensemble / face-api / mini-Xception / PyEmotion): disgusted 79/76/59/0 -> 79/79/56/0,
# angry 97/94/71/32 -> 97/97/76/32. Fading it towards its lower end cost mini-Xception's disgust
# 56 -> 38-44% and looked no less drawn.
FURROW_END, FURROW_OUT = -0.05, 0.08


def _nasolabial(p: np.ndarray, ala: int, corner: int, v, reach: float = 0.1, out_by: float = 0.12) -> np.ndarray:
    """The nasolabial fold's curve: from just above and outside the nose wing, bowing out to
    `out_by` beside the mouth corner and `reach` below it (v(a, b): a IOD along the eyes' axis,
    b down the face)."""
    out = float(np.sign((p[corner] - p[1]) @ v(1.0, 0.0)))
    a = p[ala] + v(out * 0.04, -0.03)
    b = p[corner] + v(out * out_by, reach)
    return _bezier(a, (a + b) / 2 + v(out * 0.07, 0), b)


# A removed smile's own folds (`flatten_smile_folds`): the fold zone's shading (blurred at
# FLAT_FINE) is replaced by that of the skin around it (blurred at FLAT_WIDE with the zone left
# out), in a band FLAT_BAND wide either side of the nasolabial curve plus the corner pockets, at
# most FLAT_MAX brighter and FLAT_DARK darker, the correction smoothed at FLAT_SMOOTH. Tune half,
# real smiles -> neutral, ungated: PyEmotion read 8 of 34 as still happy, 5 with this (neutral 47% ->
# 56%); face-api 82% -> 91%, mini-Xception 88% -> 94%. Brightening the creases alone left 6 happy;
# darkening the lit bulge as much as brightening (1.5) left bruise-like patches below the corners
# (013, 107, 117); up to 1.5x brighter (4 happy) drew a line on t1.jpg's small faces.
FLAT_FINE, FLAT_WIDE, FLAT_BAND, FLAT_MAX, FLAT_DARK, FLAT_SMOOTH = 0.02, 0.12, 0.10, 1.2, 1.15, 0.02
# Faces smaller than FLAT_IOD[0] (the face's scale in pixels, `iod`: about 0.7 of the eye corners'
# distance) keep their own folds (the mean smile shading is still divided out); full strength from
# FLAT_IOD[1]. On small, compressed faces the fold is not resolved and flattening drew an orange
# line beside the nose (t1.jpg: 40-50); the London portraits are 100-120.
FLAT_IOD = (55.0, 85.0)


def _resolved(k: float, iod: float) -> float:
    """Strength k of taking a removed smile's own marks away, scaled down on small faces (FLAT_IOD)."""
    return k * float(np.clip((iod - FLAT_IOD[0]) / (FLAT_IOD[1] - FLAT_IOD[0]), 0.0, 1.0))


def flatten_smile_folds(rgb: np.ndarray, lm: np.ndarray, region: Region, iod: float, k: float) -> np.ndarray | None:
    """Take a real smile's own nasolabial folds and cheek bulge out of the photo (`rgb`, the
    region's uint8 pixels, in place), at strength k (0..1): the measured mean smile shading that
    `render` divides out is everyone's average, and the person's own deeper folds and the light on
    the bulge above them stayed and kept the smile (a ratio-image idea: shading is skin brightness
    at a coarser scale than texture, so texture and pores stay). Returns the touched mask or None."""
    k = _resolved(k, iod)
    if k <= 0:
        return None
    p = lm[:, :2].astype(np.float32)
    ex, _, v = _axes(p, iod)
    curves = [(_nasolabial(p, ala, corner, v), p[corner] + v(np.sign((p[corner] - p[1]) @ ex) * 0.04, 0))
              for ala, corner in NASOLABIAL.values()]
    # Work on the lower face at a capped scale (as _Canvas): the blurs are wide.
    pts = np.concatenate([c for c, _ in curves] + [p[LIPS_OUTER]])
    h, w = rgb.shape[:2]
    box = region.box(pts, (FLAT_BAND + 2 * FLAT_WIDE) * iod)
    if box is None:
        return None
    x0, y0, x1, y1 = box
    sc = min(1.0, WORK_IOD / iod)
    sub = rgb[y0:y1, x0:x1]
    small = cv2.resize(sub, None, fx=sc, fy=sc, interpolation=cv2.INTER_AREA) if sc < 1 else sub
    off = np.array([region.x0 + x0, region.y0 + y0], np.float32)
    band = np.zeros(small.shape[:2], np.float32)
    wi = iod * sc
    for curve, pocket in curves:
        cv2.polylines(band, [np.round((curve - off) * sc * 16).astype(np.int32)], False, 1.0,
                      max(1, int(round(2 * FLAT_BAND * wi))), cv2.LINE_AA, shift=4)
        cv2.circle(band, tuple(int(c) for c in np.round((pocket - off) * sc * 16)), int(round(0.06 * wi * 16)),
                   1.0, -1, cv2.LINE_AA, shift=4)
    # The lips and the nose keep their own shading and are not "skin around" the fold either: on a
    # turned face (t1.jpg) the far fold runs along the nose's edge, and averaging the nose (or the
    # red of the lips) into the surround drew an orange line down the cheek.
    keep = np.zeros_like(band)
    cv2.fillPoly(keep, [np.round((p[LIPS_OUTER] - off) * sc).astype(np.int32)], 1.0)
    cv2.fillConvexPoly(keep, np.round((cv2.convexHull(p[NOSE])[:, 0] - off) * sc).astype(np.int32), 1.0)
    keep = cv2.dilate(keep, np.ones((3, 3), np.uint8))
    outside = (band <= 0.5) * (1 - keep)
    # Per channel: a crease's shadow is redder than the skin around it, and brightening it with
    # one gain for all three left a pink line along the fold (013).
    img = small.astype(np.float32)
    fine = cv2.GaussianBlur(img, (0, 0), FLAT_FINE * wi)
    around = cv2.GaussianBlur(img * outside[..., None], (0, 0), FLAT_WIDE * wi) / np.maximum(
        cv2.GaussianBlur(outside, (0, 0), FLAT_WIDE * wi), 1e-3)[..., None]
    zone = cv2.GaussianBlur(band, (0, 0), 0.02 * wi) * (1 - cv2.GaussianBlur(keep, (0, 0), 0.01 * wi))
    # The correction itself is smooth: followed at FLAT_FINE it drew its own edge where a brightened
    # crease met a darkened bulge on small, compressed faces (t1.jpg).
    ratio = cv2.GaussianBlur(np.clip(around / np.maximum(fine, 1.0), 1 / FLAT_DARK, FLAT_MAX), (0, 0), FLAT_SMOOTH * wi)
    where = zone * min(k, 1.0)
    gain = 1 + (ratio - 1) * where[..., None]
    if sc < 1:
        gain = cv2.resize(gain, (x1 - x0, y1 - y0), interpolation=cv2.INTER_LINEAR)
        where = cv2.resize(where, (x1 - x0, y1 - y0), interpolation=cv2.INTER_LINEAR)
    flat = sub * gain
    flat += crease_fill(flat, iod) * where[..., None]
    touched = np.zeros((h, w), bool)
    touched[y0:y1, x0:x1] = np.abs(flat - sub).max(-1) > 0.5
    if not touched.any():
        return None
    sub[:] = np.clip(flat + 0.5, 0, 255).astype(np.uint8)
    return touched


# A removed Duchenne smile's own lines round the eyes (the lower lid's crease, crow's feet): the
# warp opens the lids and `render` divides out the mean smile shading, but the person's own creases
# stayed and kept the squint (013's and 172's relaxed smiles zoomed in). Their thin dark lines
# (`crease_fill`, here only those deeper than EYE_DEEP grey levels, full from twice that: the
# shallow lines a face has at rest stay) are filled in a band FLAT_BAND either side of a curve
# EYE_BELOW under the lower lid, reaching EYE_OUT past the outer corner; the eye, its lashes and the
# lid's rim (EYE_KEEP round the eye) keep theirs. Tune half, smiles -> neutral, line ink 0.05-0.2
# IOD under the lids against the person's own neutral photo (grey levels): mean excess 0.39 -> 0.23,
# faces more than 1 over 3 -> 0 (013 +3.0 -> +0.3), mean deficit 0.53 -> 0.73 (EYE_DEEP 3: 0.19 and
# 0.92; 7: 0.27 and 0.64). Evening the band's shading out as for the nasolabial folds (its skin
# levelled with the cheek's) lifted the natural shadow under the eyes into a pale halo (064, 036).
EYE_BELOW, EYE_OUT, EYE_KEEP, EYE_DEEP = 0.08, 0.10, 0.035, 5.0


def fill_squint_lines(rgb: np.ndarray, lm: np.ndarray, region: Region, iod: float, k: float) -> np.ndarray | None:
    """Fill a removed smile's creases under and beside the eyes of `rgb` (the region's uint8
    pixels, in place) at strength k (0..1; faces under FLAT_IOD as for the folds). Returns the
    touched mask or None."""
    k = _resolved(k, iod)
    if k <= 0:
        return None
    p = lm[:, :2].astype(np.float32)
    ex, _, v = _axes(p, iod)
    curves = []
    for lo, outer in ((LID_LO_L, 33), (LID_LO_R, 263)):
        out = float(np.sign((p[outer] - p[1]) @ ex))
        curves.append(np.concatenate([(p[outer] + v(out * EYE_OUT, -0.02))[None], p[lo] + v(0, EYE_BELOW)]))
    h, w = rgb.shape[:2]
    box = region.box(np.concatenate(curves), 2 * FLAT_BAND * iod)
    if box is None:
        return None
    x0, y0, x1, y1 = box
    off = np.array([region.x0 + x0, region.y0 + y0], np.float32)
    zone = np.zeros((y1 - y0, x1 - x0), np.float32)
    keep = np.zeros_like(zone)
    for curve, eye in zip(curves, (EYE_L, EYE_R)):
        cv2.polylines(zone, [np.round((curve - off) * 16).astype(np.int32)], False, 1.0,
                      max(1, int(round(2 * FLAT_BAND * iod))), cv2.LINE_AA, shift=4)
        ring = np.round(p[eye] - off).astype(np.int32)
        cv2.fillPoly(keep, [ring], 1.0)
        cv2.polylines(keep, [ring], True, 1.0, max(1, int(round(2 * EYE_KEEP * iod))))
    where = cv2.GaussianBlur(zone, (0, 0), 0.02 * iod) * (1 - cv2.GaussianBlur(keep, (0, 0), 0.01 * iod)) * min(k, 1.0)
    sub = rgb[y0:y1, x0:x1]
    img = sub.astype(np.float32)
    add = crease_fill(img, iod, deep_at=EYE_DEEP) * where[..., None]
    touched = np.zeros((h, w), bool)
    touched[y0:y1, x0:x1] = add.max(-1) > 0.5
    if not touched.any():
        return None
    sub[:] = np.clip(img + add + 0.5, 0, 255).astype(np.uint8)
    return touched


# A smile's creases (the lines that bracket the corners, the nasolabial crease's floor) are a few
# pixels wide: finer than the shading the gain above replaces, they stayed as thin dark lines
# (086's corner brackets, 064's folds). They are what a morphological closing (CREASE_SIZE of the
# IOD across) fills and that is darker than CREASE_DEEP grey levels (full from twice that), and
# only as lines: a run twice that deep at least CREASE_LONG of the IOD long and CREASE_THIN times
# longer (squared) than its area (a line's length over its width). Moles, freckles, pores and
# stubble are dark too but short or round; filling every dark spot took 036's stubble and spots.
CREASE_SIZE, CREASE_DEEP, CREASE_LONG, CREASE_THIN = 0.06, 3.0, 0.06, 5.0


def crease_fill(img: np.ndarray, iod: float, lines_only: bool = True, deep_at: float | None = None) -> np.ndarray:
    """What fills the thin dark lines of `img` (float RGB, full resolution): add it to remove them.
    lines_only=False fills every thin dark mark (where the zone itself is a line); deep_at: the
    depth (grey levels) from which a mark is filled, fully from twice it (CREASE_DEEP unless given)."""
    deep_at = CREASE_DEEP if deep_at is None else deep_at
    k = max(3, int(round(CREASE_SIZE * iod)) | 1)
    u8 = np.clip(img + 0.5, 0, 255).astype(np.uint8)  # uint8 morphology is several times faster
    close = cv2.morphologyEx(u8, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
    close = close.astype(np.float32)
    # Filled up to the closing (the brighter side's level) a crease left a pale line: halfway
    # between it and the mean around the crease is the skin's own level.
    mean = cv2.GaussianBlur(img, (0, 0), k / 3)
    fill = np.maximum(0.5 * (close + np.minimum(close, mean)) - img, 0)
    deep = fill.mean(-1)
    if not lines_only:
        return fill * np.clip(deep / deep_at - 1, 0, 1)[..., None]
    n, lab, st, _ = cv2.connectedComponentsWithStats((deep > 2 * deep_at).astype(np.uint8), connectivity=4)
    length = np.hypot(st[:, 2], st[:, 3]).astype(np.float64)
    line = (length >= CREASE_LONG * iod) & (length ** 2 >= CREASE_THIN * np.maximum(st[:, 4], 1))
    line[0] = False  # the background
    # The line's soft edges (between one and two CREASE_DEEP) go with it: 0.04 of the IOD round it.
    e = max(3, int(round(0.04 * iod)) | 1)
    near = cv2.dilate(line[lab].astype(np.uint8), np.ones((e, e), np.uint8))
    return fill * (np.clip(deep / deep_at - 1, 0, 1) * near)[..., None]


# How soft the photo is, from its skin's own detail: blurring skin by SOFT_PROBE px keeps this
# share of its gradient energy, and the sharper the photo the less it keeps. SOFT_TABLE maps the
# blur that share implies (a white-texture model: probe * sqrt(q / (1 - q)), q its root) to the
# blur added to a sharp portrait: the London tune half blurred by 0, 0.5, 1, 1.5 and 2 px read
# (medians) 1.34, 1.57, 2.45, 3.33 and 4.14. Drawn folds get that much more blur: on t1.jpg's soft,
# small faces (2.1-2.7: 0.8-1.1 px more) forehead lines were crisper than anything else in the
# photo, pencil lines; the London and phone photos read 1.0-1.8 (at most ~0.5 px more).
SOFT_PROBE = 1.5
SOFT_TABLE = ((1.34, 1.57, 2.45, 3.33, 4.14), (0.0, 0.5, 1.0, 1.5, 2.0))


def softness(rgb: np.ndarray, lm: np.ndarray, region: Region) -> float:
    """The photo's blur beyond a sharp portrait's, in image pixels, read on patches of the skin
    (SKIN_AT) of `rgb` (the region's pixels); 0 where no patch is in it."""
    h, w = rgb.shape[:2]
    r = max(4, int(0.08 * float(np.hypot(*(lm[263, :2] - lm[33, :2])))))
    kept = []
    for x, y in np.round(lm[SKIN_AT, :2] - [region.x0, region.y0]).astype(int):
        patch = rgb[max(y - r, 0):min(y + r, h), max(x - r, 0):min(x + r, w)]
        if min(patch.shape[:2]) < 8:
            continue
        g = cv2.cvtColor(patch, cv2.COLOR_RGB2GRAY).astype(np.float32)
        e = [float((cv2.Sobel(im, cv2.CV_32F, 1, 0)[2:-2, 2:-2] ** 2 + cv2.Sobel(im, cv2.CV_32F, 0, 1)[2:-2, 2:-2] ** 2).mean())
             for im in (g, cv2.GaussianBlur(g, (0, 0), SOFT_PROBE))]
        kept.append(e[1] / max(e[0], 1e-6))
    if not kept:
        return 0.0
    q = float(np.sqrt(np.median(kept)))
    return float(np.interp(SOFT_PROBE * np.sqrt(q / max(1 - q, 1e-3)), *SOFT_TABLE))


def _contrast_gain(rgb: np.ndarray, p: np.ndarray, region: Region) -> float:
    """How much more the drawn folds show on darker skin (SHADOW_EXP, SHEEN_EXP). A fold darkens skin
    by a fraction of its brightness, so on dark skin the same fraction is a few grey levels that
    neither people nor classifiers see (on the tune half's black faces the folds of disgust and
    anger barely showed); the gain grows as the skin darkens, up to CONTRAST_MAX."""
    h, w = rgb.shape[:2]
    xy = np.round(p[SKIN_AT] - [region.x0, region.y0]).astype(int)
    ok = (xy[:, 0] >= 0) & (xy[:, 0] < w) & (xy[:, 1] >= 0) & (xy[:, 1] < h)
    if not ok.any():
        return 1.0
    lum = float(np.median(rgb[xy[ok, 1], xy[ok, 0]].astype(np.float32).mean(-1)))
    return float(np.clip(SKIN_REF / max(lum, 1.0), 1.0, CONTRAST_MAX))


def render(rgb: np.ndarray, lm: np.ndarray, weights: dict[str, float], region: Region, iod: float,
           removed: dict[str, float] | None = None, keep_folds: bool = False):
    """Darken/lighten `rgb` (the region's uint8 pixels, in place) for the AUs in `weights`; the
    measured smile shading of a smile taken away (`removed`: AU6/AU12 read on the photo) is divided
    out, and the person's own smile folds flattened unless `keep_folds` (a target whose own
    expression deepens them). Returns the mask of touched pixels (bool) or None."""
    w = {k: max(0.0, v) for k, v in weights.items()}
    def undone(au: str, cap: float) -> float:  # how much of a removed smile's AU to undo
        return UNDO_SMILE * min(max(0.0, (removed or {}).get(au, 0.0)), cap)

    gone = {k: undone(k, 1.5) for k in ("AU6", "AU12")}
    # The person's own smile folds go first, so folds the target draws (AU10's furrow) stay.
    flat = None if keep_folds else flatten_smile_folds(rgb, lm, region, iod, undone("AU12", 1.0))
    squint = fill_squint_lines(rgb, lm, region, iod, undone("AU6", 1.0))
    cv = _Canvas(rgb.shape[:2], region, iod, softness(rgb, lm, region))
    p = lm[:, :2].astype(np.float32)
    # The face's own axes (x along the eyes, y down the face): every offset below is in them, so
    # the folds turn with a tilted head.
    ex, ey, v = _axes(p, iod)
    up = -ey
    # AU12R is the unilateral smile of contempt: the subject's left = the image's right.
    # AU10 (and AU9, which lifts the upper lip through the nose wings) deepens the same furrow, in
    # disgust without a smile (FACS manual, AU10 appearance changes).
    lift = 0.8 * w.get("AU10", 0) + 0.5 * w.get("AU9", 0)
    smiles = {"L": w.get("AU12", 0), "R": w.get("AU12", 0) + w.get("AU12R", 0)}
    # The smile's own shading is measured (foldmap: London neutral -> smile pairs), in units of the
    # mean measured smile, which AU6/AU12 = 1 doubles (SMILE_GAIN). Drawn folds are the fallback
    # without the map, and what AU9/AU10 add to the nasolabial furrow.
    measured = foldmap.render(rgb, lm, np.array([region.x0, region.y0]),
                              SMILE_GAIN * (min(w.get("AU6", 0), 1.5) - gone["AU6"]),
                              {k: SMILE_GAIN * (min(v, 1.5) - gone["AU12"]) for k, v in smiles.items()})
    drawn_smile = measured is None and foldmap.fold_map() is None
    for side, (ala, corner) in NASOLABIAL.items():
        s = (smiles[side] if drawn_smile else 0.0) + lift
        out = float(np.sign((p[corner] - p[1]) @ ex))
        ends = () if drawn_smile else (FURROW_END, FURROW_OUT)
        cv.line(_nasolabial(p, ala, corner, v, *ends), 0.13 * min(s, 1.5), 0.04, lit_side=out * ex)
        # Crow's feet: three short rays from the outer eye corner.
        eye_outer = p[33] if side == "L" else p[263]
        for ang in (-0.35, 0.0, 0.35):
            d = v(out * np.cos(ang), np.sin(ang)) / iod
            ray = np.stack([eye_outer + d * 0.07 * iod, eye_outer + d * 0.16 * iod])
            cv.line(ray, 0.1 * min(w.get("AU6", 0), 1.5) * drawn_smile, 0.01)
    # Forehead lines: the frontalis wrinkles the skin above the part of the brow it lifts. The
    # outer brows' lift (2) lines the whole forehead; the inner brows' (1), held together by the
    # corrugator (4, as in fear and sadness), only its middle (FACS 1+4, 1+2+4).
    knit = min(w.get("AU4", 0), 1.0)
    spans = {(70, 63, 105, 66, 107, 336, 296, 334, 293, 300): w.get("AU1", 0) * 0.7 * (1 - knit) + w.get("AU2", 0) * 0.5,
             (105, 66, 107, 336, 296, 334): w.get("AU1", 0) * 0.7 * knit}
    top = p[10]
    for idx, raise_ in spans.items():
        if raise_ <= 0:
            continue
        brows = p[list(idx)]
        for k, f in enumerate((0.28, 0.48, 0.68)):
            span = brows + ((top - brows) @ ey)[:, None] * f * ey  # part-way up the forehead
            span = span[np.argsort(span @ ex)]
            cv.line(span, 0.08 * min(raise_, 1.5) * (1 - 0.2 * k), 0.02, lit_side=up)
    # A frown led by a nose wrinkle (AU9 above AU4: disgust) lowers the brows through the procerus
    # and depressors, which wrinkle across the nose's root (AU9's lines below), not the corrugator's
    # vertical furrows, anger's mark. Tune half, ungated, disgusted with them / without:
    # 76/79/65/0 -> 82/79/65/0 (west Asian 1 -> 2 of 3), from smiles 71/74/47/0 -> 74/74/44/0
    # (black 0 -> 1 of 4); zoomed in (090, 122, 008) the glabella keeps only the nose root's lines.
    if w.get("AU4", 0) > 0 and w.get("AU9", 0) <= w.get("AU4", 0):
        # Corrugator furrows: short, slightly oblique lines just inside each brow's head, shallower
        # towards their ends (a fold, not a painted bar). Where the inner brows also rise (1+4:
        # sadness, fear) they end at the raised heads: running on 0.08 IOD up the forehead they
        # drew two parallel strokes above the brows (122's, 090's sadness zoomed in). Tune half,
        # ungated: sad 97/97/82/32 -> 97/97/79/32, from smiles 88/88/85/26 -> 88/88/82/29; fearful
        # unchanged (100/100/47/15, from smiles 91/94/47/26).
        for a_i, b_i, side in ((107, 55, -1), (336, 285, 1)):
            c = (p[a_i] + p[b_i]) / 2
            base = c + (p[9] - c) * 0.35
            reach = 0.08 * (1 - min(w.get("AU1", 0), 1.0))
            line = _bezier(base + v(side * 0.015, 0.07), base + v(side * 0.005, 0), base + v(0, -reach))
            cv.line(line, 0.14 * min(w["AU4"], 1.5), 0.026, lit_side=side * ex)
        # procerus: the brows pulled down also bunch the skin across the root of the nose.
        root = p[168] + (p[6] - p[168]) * 0.5
        cv.line(_bezier(root - v(0.08, 0), root - v(0, 0.015), root + v(0.08, 0)),
                0.08 * min(w["AU4"], 1.5), 0.015, lit_side=up)
    if w.get("AU9", 0) > 0:
        # Twice as deep as first drawn: zoomed in, disgust's nose root hardly wrinkled (090, 014);
        # tune half, ungated: disgusted 74/79/50/0 -> 76/79/50/0, angry PyEmotion 29 -> 32%.
        s9 = min(w["AU9"], 1.5)
        for f in (0.35, 0.5, 0.65):
            c = p[168] + (p[4] - p[168]) * f * 0.6
            cv.line(np.stack([c - v(0.09, 0), c + v(0, 0.015), c + v(0.09, 0)]), 0.32 * s9, 0.01, lit_side=up)
        # The "bunny lines": short oblique wrinkles down the sides of the nose, from the bridge
        # towards the inner cheeks.
        for side in (-1, 1):
            for f in (0.45, 0.62):
                c = p[168] + (p[4] - p[168]) * f
                cv.line(np.stack([c + v(side * 0.07, -0.03), c + v(side * 0.17, 0.05)]), 0.26 * s9, 0.012, lit_side=up)
    chin = w.get("AU17", 0) + 0.5 * w.get("AU15", 0)
    if chin > 0:
        c = (p[17] + p[152]) / 2 - (p[152] - p[17]) * 0.15
        cv.line(_bezier(c - v(0.2, -0.03), c, c + v(0.2, 0.03)), 0.15 * min(chin, 1.5), 0.02)
    drawn = cv.apply(rgb, _contrast_gain(rgb, p, region))
    masks = [m for m in (flat, squint, measured, drawn) if m is not None]
    return np.logical_or.reduce(masks) if masks else None


# The upper lid's skin under a lowered brow (4, and the lids' own 7 and 43): the warp squeezes it
# into a thin band, and a band of pale lid skin (lit in the photo, often the palest skin of the face)
# read as a bright sliver with a hard edge under the brow (001, 122 anger, zoomed in). Squeezed
# under the brow, a real lid is hooded: in the brow's shadow. The band is darkened by up to
# HOOD_DARK where the warp packs HOOD_SQUEEZE[1] source pixels (by area) into one, from none at
# HOOD_SQUEEZE[0]. Tune half, ungated (ensemble / face-api / mini-Xception / PyEmotion): angry
# 94/91/68/32 -> 97/97/74/32, sad PyEmotion 29 -> 32, disgusted face-api 76 -> 79, the rest the
# same; 0.45 read more (anger 100) and looked painted on.
HOOD_DARK = 0.3
HOOD_SQUEEZE = (1.2, 3.0)
# Upper lid corner to corner, then the brow's lower edge back from the inner to the outer end: the
# band between them, per eye (image left, image right).
HOOD_BANDS = (([33, 246, 161, 160, 159, 158, 157, 173, 133], [55, 65, 52, 53, 46]),
              ([362, 398, 384, 385, 386, 387, 388, 466, 263], [276, 283, 282, 295, 285]))


def hooded_lids(out: np.ndarray, mapping: np.ndarray, lm: np.ndarray, region: Region, iod: float):
    """Darken, in place in `out` (the region's warped pixels), the skin between each upper lid and
    brow of the target landmarks `lm` where the warp (`mapping`, absolute source coordinates per
    region pixel) squeezes it. Returns the mask of touched pixels, or None."""
    h, w = mapping.shape[:2]
    touched = None
    for lid, brow in HOOD_BANDS:
        band_pts = lm[lid + brow, :2]
        pad = 0.06 * iod
        x0, y0 = np.maximum(np.floor(band_pts.min(0) - pad).astype(int) - [region.x0, region.y0], 0)
        x1, y1 = np.minimum(np.ceil(band_pts.max(0) + pad).astype(int) - [region.x0, region.y0], [w, h])
        if x1 - x0 < 3 or y1 - y0 < 3:
            continue
        gy, gx = np.gradient(mapping[y0:y1, x0:x1], axis=(0, 1))
        area = np.abs(gx[..., 0] * gy[..., 1] - gx[..., 1] * gy[..., 0])  # source pixels per pixel
        dark = np.clip((area - HOOD_SQUEEZE[0]) / (HOOD_SQUEEZE[1] - HOOD_SQUEEZE[0]), 0, 1).astype(np.float32)
        if not dark.any():
            continue
        band = np.zeros(dark.shape, np.float32)
        cv2.fillPoly(band, [np.round(band_pts - [region.x0 + x0, region.y0 + y0]).astype(np.int32)], 1.0)
        # Soft at the band's edges and over the squeeze's own triangle seams.
        band = cv2.GaussianBlur(band, (0, 0), max(0.02 * iod, 1.0))
        dark = cv2.GaussianBlur(dark, (0, 0), max(0.012 * iod, 0.8)) * band
        box = out[y0:y1, x0:x1]
        box[:] = np.clip(box * (1 - HOOD_DARK * dark[..., None]) + 0.5, 0, 255).astype(np.uint8)
        if touched is None:
            touched = np.zeros((h, w), bool)
        touched[y0:y1, x0:x1] |= dark > 0.01
    return touched
