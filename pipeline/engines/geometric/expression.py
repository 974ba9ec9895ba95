"""The expression model: FACS action units as landmark displacements in a canonical face frame.

Canonical frame: the 468-point mesh aligned (3-D similarity on expression-stable points) to the mean
neutral London face, centred between the eyes, x to the image right, y down, z away from the
camera, one unit = the distance between the eye centres (IOD). An AU is a displacement of every
landmark in that frame at intensity 1; an emotion is a weighted recipe of AUs. Displacements are
mapped back through the face's own rotation and scale, so a turned or small face gets the same
motion, foreshortened.

Where the numbers come from:
- AU6 and AU12 are measured, not drawn: the mean landmark shift from neutral to smile over the 68
  London people (scripts/build_expression_model.py; stored in weights/expression_model.npz). Those
  smiles are mild, so intensity 1 is 2x the measured mean (the brief: an edit at 1 must read more
  clearly than the real photos).
- The other AUs follow the FACS manual's descriptions of what moves (Ekman, Friesen & Hager 2002;
  see ../shared/docs/EXPRESSIONS.md), with magnitudes in IOD units set to the size of the measured
  smile field (corners ~0.1 IOD) and checked by eye on the London faces (`python -m pipeline sheet`).
- Recipes are the EMFACS prototypes (happy 6+12, sad 1+4+15, surprise 1+2+5+26, fear
  1+2+4+5+7+20+26, anger 4+5+7+23, disgust 9+10+15+16, contempt unilateral 12+14), plus lips
  parting where the prototype shows teeth.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ...config import WEIGHTS
from ...emotions import AU_NAMES, INTENSITY_MAX
from ...errors import InvalidRequest
from ...mesh import (
    EYE_L,
    EYE_R,
    LID_LO_L,
    LID_LO_R,
    LID_UP_L,
    LID_UP_R,
    LIP_CORNERS,
    LIPS_INNER_LOWER,
    LIPS_INNER_UPPER,
    LIPS_LOWER_RINGS,
    LIPS_UPPER_RINGS,
    STABLE,
)

MODEL_PATH = WEIGHTS / "expression_model.npz"

RECIPES: dict[str, dict[str, float]] = {
    "neutral": {},
    "happy": {"AU6": 1.0, "AU12": 1.1, "AU25": 2.4},
    # Sad: the oblique brows (1+4) and the corners down (15) carry it; heavier lids (43) and lips
    # just apart, as in a sigh. Tune half, ungated: ensemble 71% -> 94%. With the whole-brow 4
    # pushing the lids too, 43 0.5 left the eyes 21-31% open (asleep, not sad); 43 0.3 leaves 41-51%
    # and reads the same (tune, ungated: 97/94/74/32 -> 97/94/76/32; 0.15 fell to 85%).
    "sad": {"AU1": 2.2, "AU4": 1.4, "AU15": 2.2, "AU17": 0.8, "AU43": 0.3, "AU25": 0.3},
    # Surprise's jaw drops with the lips slack, so the corners come in (14) and the opening is an
    # oval; a wide opening at full mouth width reads as fear's stretched lips. Part of the drop is
    # the jaw pulled open (27, which also narrows the opening): a taller, narrower oval (tune half,
    # ungated: ensemble 88% -> 91%, PyEmotion 74% -> 85%).
    "surprised": {"AU1": 1.4, "AU2": 1.7, "AU5": 1.6, "AU14": 1.8, "AU26": 1.8, "AU27": 0.6},
    # Fear vs surprise (the classic confusion): fear's brows are drawn together as they rise (4),
    # the lower lids tense (7) and the lips stretch sideways (20) rather than the jaw dropping. The
    # lips only part (25) and the lower lip drops (16): no jaw drop, so little upper teeth show. With
    # a jaw drop and more opening the painted upper teeth made a grin, which the held-out judge read
    # as happy (tune half, ungated: 20 of 34 -> 0, the gate's ensemble 79% -> 79%, with the brows
    # straighter (more 4, less 2) and the lips stretched wider (20) and lower at the corners (15)).
    # Stretched less (20 2.4 -> 2.0) and knit less (4 1.3 -> 1.0): zoomed in (005, 042, 107, 013)
    # the wide dark lens bloated the lower face; its corners lie 1.27x the mouth's own width apart
    # (tune half, median; 1.35x before); tune half, ungated, ensemble / face-api / mini-Xception /
    # PyEmotion: 100/100/38/12 -> 100/100/47/15, from smiles 91/91/32/24 -> 91/91/44/24
    # (20 1.6: 94/94/47/15, 042 and another black face read surprised).
    "fearful": {"AU1": 1.8, "AU2": 0.8, "AU4": 1.0, "AU5": 2.0, "AU7": 0.4, "AU15": 1.2, "AU20": 2.0,
                "AU25": 0.9, "AU16": 1.1, "AU26": 1.4},
    # Anger (4+5+7+23/24, EMFACS): the whole brow pulled down and together (most at the heads: a
    # hooded frown), glaring lids (a wide upper lid over tense lower lids), lips pressed thin and
    # nearly straight with the chin boss pushed up (24+17, the closed-mouth variant; 15 is sadness's
    # corner, not anger's); a little 9/10 flares the nostrils and tenses the nasolabial furrow. On
    # the old "V" brows straight lips lost the ensemble (15 0.4: 82%); with the whole brow, tune
    # half, ungated (ensemble / face-api / mini-Xception / PyEmotion): 15 1.1 94/94/74/29 with 11
    # read sad by PyEmotion, 15 0.4 94/97/74/29 with 8 sad. 4 and 5 are as strong as the skin
    # between brow and lid allows without folding (stronger ones were scaled back with the whole
    # recipe by the fold check, and read no better).
    "angry": {"AU4": 2.0, "AU5": 1.0, "AU7": 1.3, "AU9": 1.0, "AU10": 0.5, "AU15": 0.4, "AU17": 1.5,
              "AU23": 1.2, "AU24": 1.2},
    # Disgust vs anger: the nose wrinkle and raised upper lip lead; the lower lids and cheeks push
    # up (6+7: the eyes narrow from below); the brows lower a little (4). The mouth stays closed,
    # corners down, chin up (15+17, the "10+17" variant): the open upper-lip raise showed teeth that
    # the held-out judge read as happy (tune half: 15 of 34 -> 0). A higher upper lip (10), a
    # tighter squint (7) and more lowered brows (4) separate it from anger for the ensemble (tune
    # half, ungated: 76% -> 79%; 7 at 1.6 read 82% but shut the eyes by three quarters). With the
    # whole-brow 4 the eyes still closed to 15-28% of their opening at 7 1.4; 7 1.0 leaves 29-41%
    # and reads the same (tune, ungated: 76/76/47/0 -> 76/79/50/0).
    "disgusted": {"AU9": 2.8, "AU10": 2.2, "AU6": 0.8, "AU7": 1.0, "AU4": 1.0, "AU15": 1.2, "AU17": 1.0},
    "contempt": {"AU12R": 0.9, "AU14R": 0.8},
}
# Which teeth an opened mouth shows (mouth.render_interior: upper band fraction, lower rise): a
# smile shows the upper teeth only. FER-trained readers take a band of upper teeth for a grin; in
# fear and surprise the lips stretched or slack over a dropped jaw cover most of the upper teeth
# and the lower lip pulled down bares the lower ones. Disgust's raised upper lip bares a third of
# the band: with the opening's crisper upper edge (2026-12-06) half a band read as a grin to
# PyEmotion on 8 of 34 tune faces, a third on 1 (ensemble 79% both). Surprise's 0.3 was a thin
# dashed line zoomed in; 0.4 reads the same (tune half, ungated: 100/100/97/94).
TEETH_SHOWN: dict[str, tuple[float, float]] = {"fearful": (0.0, 0.5), "surprised": (0.4, 0.0), "disgusted": (0.3, 0.0)}
# Targets whose expression deepens the nasolabial furrow themselves (AU11, the nasolabial deepener,
# in EMFACS sadness 1+4+11+15): a real smile's folds stay when its smile is taken away for them.
# Tune half, real smiles -> sad: PyEmotion 38% with the folds kept, 26% flattened (ensemble 74% both).
DEEPENS_NASOLABIAL = ("sad",)
SMILE_GAIN = 2.0  # intensity 1 = 2x the mean measured London smile
CLOSED_GAP = 0.0  # inner-lip gap (IOD) of lips that meet: a resting 0.015 left a band of teeth showing
# Mouth-width gain of a real smile per unit of AU12 read by `estimate` (IOD): least squares on the
# 25 London tune-half smiles that are relaxed, smile width - own neutral width (scripts/fit_smile_width.py).
WIDTH_PER_AU12 = 0.211
AU15_OUT = 0.08  # canonical units (the mean face's mouth is 0.8 wide) outward of each corner (AU15's pull)
REST_BELOW = 0.01  # IOD below the real neutrals' 5th-percentile corner lift that a removed smile lands
# Share of each lip's red part one unit of AU20 takes off (towards the line between the lips): fear's
# 2.4 thins them by 14%. Twice that read the same on the tune half (ensemble / PyEmotion 91 / 15)
# but made 025's fear read less fearful at 1.0 than at 0.75 (gate's p 0.41 -> 0.29).
LIP_THIN = 0.06
JAW_U = 0.6  # how much less a dropped jaw lowers the lower lip at the corners than at the middle
# How far a dropped jaw pulls the upper lip's ends down with the corners (of the drop, times the
# squared distance from the middle). 0 left a flat lid over straight sides (a bucket); 0.35 opens
# an oval (tune half, ungated, ensemble/face-api/mini-Xception/PyEmotion: surprised 100/100/94/94 ->
# 100/100/97/94, fearful 97/97/41/18 -> 97/97/44/21); 0.6 bent the whole upper lip into a frown.
JAW_ARCH = 0.35
# AU27 (the mouth stretched open, surprise's) stretches the lips round the opening: its corners come
# down with the jaw and the lower lip hangs less from them (its own JAW_ARCH and JAW_U), falling off
# towards the corners as an ellipse's. With AU26's values surprise's corners stayed high (0.25-0.40
# of the way down the opening, tune half at 1.0): under a flat upper lip the lower lip hung in a V
# and the opening's sides ran straight down through stretched corner skin, a bucket cut into the
# face (122, 005, 139 zoomed in). Now 0.33-0.48: an oval with lip round it. Tune half, ungated,
# ensemble / face-api / mini-Xception / PyEmotion: surprised 100/100/100/94 as before, from smiles
# 100/100/91/94 -> 100/100/97/100; fear (AU26 alone) unchanged. Given to AU26 too, fear's corners
# came down (061's read surprise).
JAW27_ARCH, JAW27_U = 1.3, 1.0
# AU23/24's pull towards the line between the lips, per unit (of to_line x the fade). The press
# was added once per side, so at anger's 23+24 1.2 the lips' inner rings moved 1.44x their
# distance from the line: past it, folding 35-45 of the warp's triangles (107, 139): the upper lip
# vanished into a stair-stepped line. At 1.3 the nearest points move 0.94 of the way at intensity 1
# (no crossing); tune half, anger ungated, ensemble / face-api / mini-Xception / PyEmotion:
# 97/97/76/32 folded (2.0, as before), 91/91/68/29 at 1.0, 94/91/68/32 at 1.3, 94/94/65/35 at 1.6
# (which crosses again). Stair-steps in the line between the lips (columns whose darkest row
# jumps 2 px or more): lisa zoom_15cm 7 -> 4 of 71, 107 9 -> 0, 025 10 -> 2 of 47.
PRESS = 1.3
# AU1 lifts the inner part of the upper lid with the brow's head (FACS: the inner brow raiser
# pulls the lid's inner half up), by this share of the lid's own opening per unit, fading to
# nothing at the outer corner (LID_INNER). Without it, sad's lowered brows and heavy lids (1+4+43)
# closed the eyes evenly to 30-51% of their opening (070, 008: 32%, 30%): sleepy, not sad. At 0.2
# the lids slant and the eyes stay 50-72% open (070 53%, 008 50%, 013 67%, 001 72%). Tune half,
# ungated (ensemble / face-api / mini-Xception / PyEmotion): sad 91/94/79/26 -> 94/94/82/26; at
# 0.35 91/88/79/26. Fear and surprise lift the whole lid (AU5): see `displacement`.
AU1_LID = 0.2
LID_INNER = np.array([0.0, 0.1, 0.25, 0.45, 0.65, 0.85, 1.0])  # outer corner to inner, as LID_UP_*
# Each lip's rings as rows, outer edge (0) to inner edge (3), matched column for column.
UPPER_RINGS, LOWER_RINGS = np.reshape(LIPS_UPPER_RINGS, (4, 9)), np.reshape(LIPS_LOWER_RINGS, (4, 9))
BROW_OUTER = 0.45  # AU4: the outer brow's drop relative to the inner head's band (see `_field`)
AU9_NOSE = 0.02  # nose and nostril wings rise (IOD): it wrinkles more than it moves; more changes identity


@dataclass
class Model:
    mean: np.ndarray  # (468, 3) canonical neutral face
    smile: np.ndarray  # (468, 3) mean neutral->smile shift (symmetrised)
    # `measures` of the 68 real neutral London faces: name -> (5th, 50th, 95th percentile)
    neutral_range: dict[str, tuple[float, float, float]]
    tri_mesh: np.ndarray  # (T, 3) Delaunay triangles of the mean face's 468 points (2-D)
    tri_ring: np.ndarray  # (T', 3) the same with the warp's anchor ring appended (indices 468+)


@lru_cache(maxsize=1)
def model() -> Model:
    z = np.load(MODEL_PATH)
    rng = {str(n): tuple(v) for n, v in zip(z["range_names"], z["range_values"].tolist())}
    return Model(z["mean"], z["smile"], rng, z["tri_mesh"], z["tri_ring"])


# ---------------------------------------------------------------------------------------------
# Alignment
def umeyama(src: np.ndarray, dst: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Similarity (s, R, t) minimising |s R src + t - dst|^2 (Umeyama 1991)."""
    mu_s, mu_d = src.mean(0), dst.mean(0)
    a, b = src - mu_s, dst - mu_d
    u, sig, vt = np.linalg.svd(b.T @ a)
    e = np.ones(src.shape[1])
    e[-1] = np.sign(np.linalg.det(u @ vt))
    r = (u * e) @ vt
    s = float((sig * e).sum() / (a ** 2).sum())
    return s, r, mu_d - s * r @ mu_s


@dataclass
class Pose:
    s: float  # image pixels per canonical unit
    r: np.ndarray  # canonical -> image rotation
    t: np.ndarray

    def to_canonical(self, pts: np.ndarray) -> np.ndarray:
        return ((pts - self.t) @ self.r) / self.s

    def displacement_to_image(self, d: np.ndarray) -> np.ndarray:
        return self.s * d @ self.r.T


def pose_of(landmarks: np.ndarray) -> Pose:
    m = model()
    s, r, t = umeyama(m.mean[STABLE].astype(np.float64), landmarks[STABLE].astype(np.float64))
    return Pose(s, r, t)


# ---------------------------------------------------------------------------------------------
# Action units as fields over the face's own canonical shape
def _bump(p: np.ndarray, c: np.ndarray, sx: float, sy: float) -> np.ndarray:
    return np.exp(-0.5 * (((p[:, 0] - c[0]) / sx) ** 2 + ((p[:, 1] - c[1]) / sy) ** 2))


def _ramp(v: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """0 at lo, 1 at hi, smooth in between (either direction)."""
    u = np.clip((v - lo) / (hi - lo), 0.0, 1.0)
    return u * u * (3 - 2 * u)


class Geometry:
    """The landmarks of one face in the canonical frame, with the derived places AUs act on."""

    def __init__(self, c: np.ndarray):
        self.c = c
        p = c[:, :2]
        self.p = p
        self.mouth_corner = {"L": p[61], "R": p[291]}
        self.brow_inner = {"L": p[[55, 107]].mean(0), "R": p[[285, 336]].mean(0)}
        self.brow_outer = {"L": p[[46, 70]].mean(0), "R": p[[276, 300]].mean(0)}
        self.eye_centre = {"L": p[EYE_L].mean(0), "R": p[EYE_R].mean(0)}
        self.lid_top = min(p[LID_UP_L, 1].min(), p[LID_UP_R, 1].min())
        # The line between the lips (the upper lip's inner edge): points below it belong to the
        # lower lip and jaw. The inner lip edges touch when the mouth is closed, so they are
        # labelled by index rather than by position.
        # On lips pressed together the landmarker often puts the lower inner edge above the upper
        # one (the line is then the higher of the two), and the lips' rings cross: their points
        # are labelled by ring, not by position, or lower-lip points counted as upper lip stayed
        # behind when the lower lip moved and folded it (tune 070, a closed smile relaxed).
        line = []
        for idx in (LIPS_INNER_UPPER, LIPS_INNER_LOWER):
            q = p[idx]
            order = np.argsort(q[:, 0])
            line.append(np.interp(p[:, 0], q[order, 0], q[order, 1]))
        self.mouth_line = np.minimum(*line)
        half_w = abs(p[291, 0] - p[61, 0]) / 2
        self.half_w = half_w
        self.mouth_cx = (p[291, 0] + p[61, 0]) / 2
        below = _ramp(p[:, 1] - self.mouth_line, 0.0, 0.02)
        below[LIPS_UPPER_RINGS] = 0.0
        below[LIPS_LOWER_RINGS] = 1.0
        below[LIP_CORNERS] = 0.5  # the corners belong to both lips
        self.below = below
        self.near_mouth = _bump(p, np.array([self.mouth_cx, p[[13, 14], 1].mean()]), half_w * 1.5, 0.35)
        # Brow AUs fade out towards the upper lids over a wide band, so the skin between brow and
        # lid compresses gradually instead of folding.
        self.above_lids = _ramp(self.lid_top - p[:, 1], -0.02, 0.2)

    def side(self, s: str) -> np.ndarray:
        """Weight of each point on one side of the face, blending across the midline (no seam)."""
        right = _ramp(self.p[:, 0] - self.mouth_cx, -0.12, 0.12)
        return 1 - right if s == "L" else right


@lru_cache(maxsize=1)
def _mean_eye_opening() -> float:
    """Lid-to-lid opening of the mean (canonical) face's eyes."""
    p = model().mean[:, :2]
    return float(np.mean([(p[lo, 1] - p[up, 1]).mean() for up, lo in ((LID_UP_L, LID_LO_L), (LID_UP_R, LID_LO_R))]))


def _field(g: Geometry, au: str, side: str | None) -> np.ndarray:
    """Displacement (468, 3) of one AU at intensity 1. side: 'L'/'R' for unilateral, None both."""
    p, n = g.p, len(g.p)
    d = np.zeros((n, 3))
    sides = [side] if side else ["L", "R"]
    m = model()
    sgn = {"L": -1.0, "R": 1.0}  # outward x direction of each side
    for s in sides:
        if au == "AU1":
            # Each side lifts its own half: the two sides' bumps overlap at the midline, and summed
            # they lifted the skin between the brows (point 9) 1.2x as far as the brow heads,
            # dragging the nose bridge's highlight up into a bright vertical stripe (sad and fear,
            # 007). Split at the midline, 0.135 keeps the brow heads' lift of the summed 0.10
            # (0.125-0.129 on the mean face) and the glabella follows at 0.8 of it.
            half = g.side(s) if side is None else 1.0
            d[:, 1] -= 0.135 * _bump(p, g.brow_inner[s], 0.30, 0.28) * g.above_lids * half
            d[:, 0] += sgn[s] * 0.015 * _bump(p, g.brow_inner[s], 0.25, 0.25) * g.above_lids
        elif au == "AU2":
            d[:, 1] -= 0.10 * _bump(p, g.brow_outer[s], 0.28, 0.30) * g.above_lids
        elif au == "AU4":
            # Lowered brows push the upper lid down a little too (the eye narrows from above),
            # which also spreads the squeeze over brow and lid instead of crushing the skin between.
            upper_face = _ramp(g.eye_centre[s][1] - p[:, 1], -0.01, 0.03)
            # The inner heads lower most, but the whole brow comes down (BROW_OUTER of the head's
            # drop along the brow, a band centred mid-brow that the inner bump shares): with the
            # inner heads alone the brows made a sharp cartoon "V" over wide-open outer eyes. The
            # lowered outer brow hoods the eye and reads as a frown. Tune half, ungated, ensemble /
            # face-api / mini-Xception / PyEmotion: anger 94/94/65/35 -> 94/94/74/29, sad 91/91/76/24
            # -> 100/97/79/44, sad from smiles 74/76/76/38 -> 88/88/85/50, fear 91/91/47/15 ->
            # 91/91/38/21, disgust 79/79/53/0 -> 82/85/53/0. 0.5 made 025's sad read less sad at
            # 1.25 than at 1.0 (0.77 -> 0.37; 0.45: 0.76 -> 0.75), the monotonicity test's face.
            mid = (g.brow_inner[s] + g.brow_outer[s]) / 2
            band = (1 - 0.6 * BROW_OUTER) * _bump(p, g.brow_inner[s], 0.24, 0.22) + BROW_OUTER * _bump(p, mid, 0.3, 0.22)
            w = band * (0.5 + 0.5 * g.above_lids) * upper_face
            # The brows move, the skin between them mostly bunches (the furrows): the pull fades
            # towards the midline, where both sides' bumps added up and folded the glabella over
            # the nasal root, so the fold check scaled every anger down (all 34 tune faces, to
            # 0.45-0.7 of the request).
            inward = np.clip(np.abs(p[:, 0] - g.mouth_cx) / abs(g.brow_inner[s][0] - g.mouth_cx), 0.0, 1.0)
            d[:, 1] += 0.085 * w * (0.3 + 0.7 * inward)
            d[:, 0] -= sgn[s] * 0.04 * w * inward
        elif au in ("AU5", "AU7", "AU43"):
            up, lo = (LID_UP_L, LID_LO_L) if s == "L" else (LID_UP_R, LID_LO_R)
            prof = np.array([0.4, 0.75, 0.95, 1.0, 0.95, 0.75, 0.4])
            if au == "AU5":
                d[up, 1] -= 0.04 * prof
                crease = _bump(p, g.eye_centre[s] - [0, 0.1], 0.2, 0.08) * (p[:, 1] < g.eye_centre[s][1] - 0.05)
                d[:, 1] -= 0.025 * crease
            elif au == "AU7":
                # Tensed lids narrow the eye by a share of its own opening: a fixed distance
                # nearly shut naturally narrow eyes (005 disgusted: 76% closed, a squint is not a blink).
                k = float(np.clip((p[lo, 1] - p[up, 1]).mean() / _mean_eye_opening(), 0.4, 1.0))
                d[lo, 1] -= 0.03 * prof * k
                d[up, 1] += 0.01 * prof * k
            else:  # eye closure is relative to the face's own opening
                gap = p[lo, 1] - p[up, 1]
                d[up, 1] += 0.8 * gap
                d[lo, 1] -= 0.2 * gap
        elif au in ("AU6", "AU12"):
            # Measured smile, split at the nose: cheeks and lids (AU6) vs mouth and lower face (AU12).
            upper = _ramp(-(p[:, 1] - 0.62), -0.08, 0.08)
            part = upper if au == "AU6" else 1 - upper
            # The measured field also moves the silhouette (cheek bulges differ from face to face),
            # where thin triangles flipped and the fold check scaled 16 of 34 tune smiles back.
            f = SMILE_GAIN * m.smile * (part * (1 - _ramp(np.abs(p[:, 0]), 0.8, 1.05)))[:, None]
            if au == "AU12":
                # The measured smiles part the lips too (the upper lip rises with the corners);
                # AU12 alone keeps them together, so the lower lip follows. Parting is AU25's job.
                f[:, 1] += (f[13, 1] - f[14, 1]) * g.below * g.near_mouth
            if side:
                f *= g.side(s)[:, None]
            d += f
            if not side:
                break
        elif au == "AU9":
            w = _bump(p, np.array([0.0, 0.45]), 0.28, 0.25)
            d[:, 1] -= AU9_NOSE * w
            d[:, 1] -= 0.03 * _bump(p, np.array([g.mouth_cx, p[0, 1]]), 0.25, 0.08) * (1 - g.below)
            d[:, 1] += 0.03 * _bump(p, g.brow_inner[s], 0.2, 0.15) * g.above_lids
            if not side:
                break
        elif au == "AU10":
            w = np.exp(-0.5 * ((np.abs(p[:, 0] - g.mouth_cx) - 0.2) / 0.18) ** 2)
            d[:, 1] -= 0.06 * w * (1 - g.below) * g.near_mouth
            if not side:
                break
        elif au == "AU14":
            w = _bump(p, g.mouth_corner[s], 0.12, 0.12)
            d[:, 0] -= sgn[s] * 0.035 * w
            d[:, 1] -= 0.01 * w
        elif au == "AU15":
            # Centred a little beyond the corner (AU15_OUT), so the corner moves most and the lip
            # beside it less: centred on it, the last stretch of lip fell as far as the corner, in
            # straight flanks from the middle (a tent, not a frown). Scaled so the corner itself
            # drops as before.
            c15 = g.mouth_corner[s] + [sgn[s] * AU15_OUT, 0.0]
            w = _bump(p, c15, 0.16, 0.16) / np.exp(-0.5 * (AU15_OUT / 0.16) ** 2)
            d[:, 1] += 0.09 * w
            d[:, 0] += sgn[s] * 0.01 * w
        elif au == "AU16":
            w = (1 - ((p[:, 0] - g.mouth_cx) / (g.half_w * 1.2)) ** 2).clip(0) * g.below * g.near_mouth
            d[:, 1] += 0.05 * w
            if not side:
                break
        elif au == "AU17":
            w = _bump(p, np.array([g.mouth_cx, 1.45]), 0.3, 0.35) * g.below
            d[:, 1] -= 0.045 * w
            if not side:
                break
        elif au == "AU20":
            w = _bump(p, g.mouth_corner[s], 0.2, 0.16)
            d[:, 0] += sgn[s] * 0.08 * w
            d[:, 1] += 0.015 * w
            # Stretched lips flatten (FACS 20): each lip's rings close up towards its inner edge,
            # so the red parts thin.
            for r in (UPPER_RINGS, LOWER_RINGS):
                d[r[:3], 1] -= LIP_THIN * (p[r[:3], 1] - p[r[3], 1][None]) * g.side(s)[r[:3]]
        elif au in ("AU23", "AU24"):
            # Lips thin and press: outer contours move towards the line between the lips.
            # The pull fades with the distance from that line (a hard edge at 0.25 IOD tore the skin
            # there and the fold check scaled the whole anger back).
            to_line = g.mouth_line - p[:, 1]
            w = g.near_mouth * np.clip(1 - np.abs(to_line) / 0.25, 0.0, 1.0)
            # The press is one pull for the whole mouth (a unilateral one takes its side's half).
            half = g.side(s) if side else 1.0 / len(sides)
            d[:, 1] += PRESS * (0.25 if au == "AU23" else 0.35) * to_line * w * half
            w_c = _bump(p, g.mouth_corner[s], 0.1, 0.1)
            d[:, 0] -= sgn[s] * 0.02 * w_c
        elif au in ("AU25", "AU26", "AU27"):
            drop = {"AU25": 0.045, "AU26": 0.17, "AU27": 0.3}[au]
            # The jaw hinges near the ears: lower-face points move down, less towards the jaw angle.
            fall = np.cos(np.clip((p[:, 0] - g.mouth_cx) / 1.05, -1, 1) * np.pi / 2).clip(0) ** 1.5
            w = g.below * fall
            if au == "AU25":
                # Lips part in a crescent: most at the centre, none at the corners (which may be
                # pulled up by a smile); the chin hardly follows.
                u = (p[:, 0] - g.mouth_cx) / (g.half_w * 1.05)
                w = w * g.near_mouth * (1 - u ** 2).clip(0)
                d[:, 1] -= 0.012 * (1 - g.below) * g.near_mouth * _bump(p, [g.mouth_cx, p[13, 1]], g.half_w, 0.1)
            else:
                # The lower lip hangs from the corners as the jaw drops: a U, not a flat band (a
                # flat drop opened a box with straight sides). The chin below still drops in full.
                u = np.clip((p[:, 0] - g.mouth_cx) / g.half_w, -1, 1)
                lips = _bump(p, [g.mouth_cx, p[14, 1]], g.half_w * 1.4, 0.12)
                # AU27's drop falls off towards the corners as an ellipse's (a round U; by u ** 2
                # surprise's lower lip came to a V under the middle, 122).
                arch, hang, fade = ((JAW_ARCH, JAW_U, u ** 2) if au == "AU26" else
                                    (JAW27_ARCH, JAW27_U, 1 - np.sqrt(1 - u ** 2)))
                w = w * (1 - hang * fade * lips)
                # The corners drag the ends of the upper lip down with them: the opening's top
                # arches into an oval instead of a flat lid over straight sides.
                w = w + arch * u ** 2 * (1 - g.below) * fall * lips
            d[:, 1] += drop * w
            if au == "AU27":
                d[:, 0] -= 0.03 * np.sign(p[:, 0] - g.mouth_cx) * g.near_mouth
            if not side:
                break
        else:
            raise InvalidRequest(f"Unknown action unit '{au}'.")
    return d


def displacement(g: Geometry, weights: dict[str, float], inner_lids: bool = True) -> np.ndarray:
    """The AUs' summed fields at these weights. inner_lids=False leaves out AU1's inner lid lift
    (relaxing raised brows read from the brows alone: the lids were not measured)."""
    d = np.zeros((len(g.p), 3))
    for au, w in weights.items():
        if w == 0:
            continue
        if au.endswith("R") and au[:-1] in AU_NAMES:  # unilateral: the subject's left = image right
            d += w * _field(g, au[:-1], "R")
        else:
            d += w * _field(g, au, None)
    if inner_lids and weights.get("AU1", 0) and AU1_LID:
        # AU1's inner lid lift, where the whole lid is not already raised (AU5 at least as strong:
        # fear, surprise; lifted further, fear's upper lids folded into the brows and the fold
        # check scaled 021's whole fear back to 0.56 of the recipe).
        w = weights["AU1"] * float(np.clip(1 - weights.get("AU5", 0.0) / weights["AU1"], 0, 1))
        for up, lo in ((LID_UP_L, LID_LO_L), (LID_UP_R, LID_LO_R)):
            d[up, 1] -= w * AU1_LID * LID_INNER * (g.p[lo, 1] - g.p[up, 1])
    return d


# ---------------------------------------------------------------------------------------------
# Reading the face's current expression, so that "neutral" relaxes it and other targets start from rest.
# Each AU is read from one interpretable measure and compared with how real neutral faces vary
# (London neutrals, stored in the model): only a face clearly outside the neutral range (beyond
# the 5th/95th percentile) is relaxed, and then back to the neutral median. Identity differences
# (a naturally wide mouth, high brows) mostly stay inside that range and are left alone.
READ_FROM = {  # AU -> (measure, direction: +1 the AU raises the measure)
    "AU12": ("corner_lift", +1), "AU15": ("corner_lift", -1),
    "AU1": ("inner_brow_height", +1), "AU2": ("outer_brow_height", +1), "AU4": ("inner_brow_height", -1),
}


@lru_cache(maxsize=1)
def _unit_response() -> dict[str, float]:
    """How much each measure changes for one unit of its AU, on the mean face."""
    base = model().mean.astype(np.float64)
    m0 = measures_canonical(base)
    g = Geometry(base)
    return {au: measures_canonical(base + _field(g, au, None))[key] - m0[key] for au, (key, _) in READ_FROM.items()}


# The measured smile's horizontal part alone (AU12's field times SIDEWAYS): the corners move apart
# the way a real smile moves them. AU20's narrower pull at the corners was tried first: 025 made sad
# then read less sad at 1.25 than at 1.0 (0.33 -> 0.26; with this field 0.42 -> 0.39).
SIDEWAYS = np.array([1.0, 0.0, 0.0])


@lru_cache(maxsize=1)
def _width_response() -> float:
    """Mouth-width change of one unit of the smile field's sideways part on the mean face."""
    base = model().mean.astype(np.float64)
    sideways = _field(Geometry(base), "AU12", None) * SIDEWAYS
    return measures_canonical(base + sideways)["mouth_width"] - measures_canonical(base)["mouth_width"]


def estimate(c: np.ndarray) -> dict[str, float]:
    """AU activations of a face (canonical landmarks) beyond the neutral range."""
    m, rng, resp = measures_canonical(c), model().neutral_range, _unit_response()
    out = {}
    for au, (key, sgn) in READ_FROM.items():
        lo, mid, hi = rng[key]
        beyond = (m[key] - hi) if sgn > 0 else (lo - m[key])
        if beyond > 0:
            out[au] = float(np.clip((m[key] - mid) / resp[au], 0.0, INTENSITY_MAX))
    if "AU12" in out:
        # A smile also pulls the corners sideways, and a flat one mostly does (172's: corners 0.036
        # IOD above his neutral, the mouth 0.157 wider). Read from the lift alone it was a slight
        # smile, and taken away it left the mouth 0.11 IOD wider than his own at rest, cheeks up.
        # The width beyond the widest real neutral mouths counts too (from the middle of them,
        # as the lift does), only once the lift shows a smile: some people's mouths are wide.
        _, mid, hi = rng["mouth_width"]
        if m["mouth_width"] > hi:
            out["AU12"] = max(out["AU12"], float(np.clip((m["mouth_width"] - mid) / WIDTH_PER_AU12, 0.0, INTENSITY_MAX)))
        out["AU6"] = out["AU12"]  # cheeks rise with a real smile (Duchenne)
    return {k: round(v, 4) for k, v in out.items() if v > 0.02}


ANTAGONISTS = {"AU1": ("AU4",), "AU2": ("AU4",), "AU4": ("AU1", "AU2"), "AU12": ("AU15",), "AU6": ("AU15",),
               "AU15": ("AU12",)}


def _relax(au: str, emotion: str, weights: dict[str, float]) -> bool:
    """Whether to take away an expression the face shows now. "neutral" relaxes everything read. Other
    targets relax the mouth (a smile must go before "sad") and whatever works against them (raised
    brows before "angry"); they keep the rest: naturally high brows are often just the person's face,
    and lowering them for "happy" would change who they look like."""
    if emotion == "neutral":
        return True
    if weights.get(au, 0.0) > 0:
        return False
    return au in ("AU12", "AU6", "AU15") or any(weights.get(a, 0.0) > 0 for a in ANTAGONISTS.get(au, ()))


@dataclass
class Plan:
    target: np.ndarray  # (468, 3) destination landmarks in image pixels
    applied: dict[str, float]
    removed: dict[str, float]
    pose: Pose
    lip_gap_before: float  # inner-lip opening / IOD, canonical
    lip_gap_after: float

    def uses(self, aus) -> bool:
        """Whether any of these AUs is applied (at all)."""
        return any(self.applied.get(a, 0) > 0 for a in aus)


OPENING = ("AU25", "AU26", "AU27")  # the AUs that part the lips and show teeth
UPPER_FACE = ("AU1", "AU2", "AU4", "AU5", "AU7", "AU43")  # brows and lids: apart from the mouth's skin


def recipe(emotion: str, teeth: bool = True) -> dict[str, float]:
    """The emotion's AU weights at intensity 1; teeth=False drops the lip parting (a closed-mouth
    smile: AU6 + AU12 without AU25)."""
    return {k: v for k, v in RECIPES[emotion].items() if teeth or k not in OPENING}


def plan(landmarks: np.ndarray, emotion: str, intensity: float, aus: dict[str, float] | None = None,
         relax: bool = True, teeth: bool = True) -> Plan:
    """Destination landmarks for one face. The current expression is relaxed first (so a smiling
    photo can become sad), then the recipe at `intensity` plus any explicit `aus` is applied."""
    pose = pose_of(landmarks)
    c = pose.to_canonical(landmarks.astype(np.float64))
    g = Geometry(c)
    d = np.zeros_like(c)
    removed: dict[str, float] = {}
    closing, extra, reopens = None, 0.0, None
    rec = recipe(emotion, teeth)
    weights = {k: v * intensity for k, v in rec.items()}
    for k, v in (aus or {}).items():
        weights[k] = weights.get(k, 0.0) + v
    if relax and intensity > 0:
        removed = {k: v for k, v in estimate(c).items() if _relax(k, emotion, weights)}
        # Undoing a real smile with the mean smile field flips the thin triangles at the silhouette
        # (whose cheek bulge differs from face to face), and the fold check then scaled the whole
        # relaxation back (London smiles to neutral kept a third of the smile); the silhouette
        # barely shows an expression, so it is left where it is.
        keep_edge = (1 - _ramp(np.abs(g.p[:, 0]), 0.7, 0.95))[:, None]
        d -= displacement(g, removed, inner_lids=False) * keep_edge
        # Close lips that are apart (teeth showing) until they meet; recipes reopen them. The lower
        # lip and jaw do most of the closing, the upper lip a third.
        extra = lip_gap(c) - CLOSED_GAP
        # A smile that parts the lips (happy's 12 + 25) closes a smile's parted lips only as far
        # as its own parting opens them again (`at` below): it is the same expression, and a broad
        # real smile was closed and reopened narrower (tune half, happy from the 13 smiles with
        # teeth: 6 of them 0.19-0.22 IOD -> 0.14-0.16, a flatter mouth for "more smile"). Its
        # opening is at least the photo's at every intensity. Other targets (sad's lips just
        # apart, fear's and surprise's jaw) close it first.
        opening = {k: v for k, v in rec.items() if k in OPENING}
        if opening and weights.get("AU12", 0.0) > 0:
            reopens = lip_gap(c + displacement(g, opening)) - lip_gap(c)  # per unit of intensity
        if extra > 0.035:
            removed["AU25"] = round(extra if reopens is None else min(extra, reopens * intensity), 4)
            lips = g.near_mouth * _bump(g.p, np.array([g.mouth_cx, c[[13, 14], 1].mean()]), g.half_w * 1.2, 0.2)
            # The opening is a crescent, so the closing is too: none at the corners, where a lower-lip
            # point moving up past its cheek neighbours flipped triangles (and the fold check then
            # left a wide smile's mouth half open).
            crescent = (1 - ((g.p[:, 0] - g.mouth_cx) / (g.half_w * 1.1)) ** 2).clip(0)
            up_w, lo_w = (1 - g.below) * lips * crescent, g.below * g.near_mouth * crescent
            # Each lip closes whole: its rings take the weight of its inner edge in their column.
            # The pulls fade with the distance from the mouth, so the inner edges moved more than the
            # outer ones and the closed lips came out thick (025's upper lip 0.122 -> 0.151 IOD,
            # lower 0.143 -> 0.187 in the closing alone): a pout that kept the smile.
            for r, w in ((UPPER_RINGS, up_w), (LOWER_RINGS, lo_w)):
                w[r[:3]] = w[r[3]][None]
            closing = np.zeros_like(d)  # per IOD of closing
            closing[:, 1] = 0.35 * up_w - 0.65 * lo_w
            d += extra * closing
        if "AU12" in removed:
            # The smile was read with the lips apart, and closing them moves the lips' centre that
            # the corners are measured from: one correction step lands the corners where planned
            # instead of over- or undershooting (wide smiles ended up turned down). The plan is just
            # below the low end of real neutral faces (5th percentile - 0.01 IOD, a few pixels), as
            # the smile's own skin folds and dimples stay in the photo (tune half, smiles -> neutral,
            # ensemble: corners at the median 59%, 5th percentile 68%, 0.01 below it 74%).
            rest = model().neutral_range["corner_lift"][0] - REST_BELOW
            more = (measures_canonical(c + d)["corner_lift"] - rest) / _unit_response()["AU12"]
            more = float(np.clip(more, -removed["AU12"], 2 * INTENSITY_MAX - removed["AU12"]))
            smile = _field(g, "AU12", None)  # one unit of the smile, for both steps below
            d -= more * smile * keep_edge
            # Undoing the mean smile field (and the corner step above) narrowed the mouth past the
            # person's own neutral width: on the London tune half by 0.055 IOD on average (7% of the
            # mouth), a pursed look. A smile widens the mouth by WIDTH_PER_AU12 per unit of AU12
            # read (fitted there against each person's own neutral photo; `removed` still holds
            # that read here), so that is the width it returns to, set by the smile field's
            # sideways part alone.
            width = measures_canonical(c)["mouth_width"] - WIDTH_PER_AU12 * removed["AU12"]
            short = width - measures_canonical(c + d)["mouth_width"]
            d += short / _width_response() * (smile * SIDEWAYS) * keep_edge
            removed["AU12"] = round(removed["AU12"] + more, 4)
    # The recipe acts on the face at rest: on a smile's open mouth the lip press (23/24) pulled
    # towards the old line between the lips, on top of the closing, and folded the corners.
    g_rest = Geometry(c + d) if d.any() else g
    upper = {k: v for k, v in rec.items() if k in UPPER_FACE}
    d_upper = displacement(g_rest, upper)
    d_lower = displacement(g_rest, {k: v for k, v in rec.items() if k not in UPPER_FACE})
    d_aus = displacement(g_rest, aus or {})

    def at(t: float, t_up: float | None = None) -> np.ndarray:
        # Relaxing scales with intensity up to 0.5, then stays full: a half-strength edit still
        # starts from rest, and intensity 0 is the identity.
        t_up = t if t_up is None else t_up
        ramp = min(1.0, max(t, t_up) / 0.5)
        out = d * ramp + t * d_lower + t_up * d_upper + d_aus
        if closing is not None and reopens is not None:  # a smile's lips closed as far as it reopens them
            out += closing * (min(extra, reopens * t) - ramp * extra)
        return out

    # Never fold the face. A request beyond what the face takes without a mesh triangle collapsing
    # gets the strongest fold-free intensity, found on a grid that does not depend on the request,
    # so stronger requests never give a weaker face (the result is flat past the limit).
    d_full = at(intensity)
    ring = ring_guard(landmarks, pose)
    if fold_free(c, d_full, ring):
        d = d_full
    elif fold_free(c, at(0.0), ring):
        lo = _largest_fold_free(c, at, INTENSITY_MAX, 14, ring)
        # Where only the mouth folds (a smile closed and pressed into anger), the brows and eyes
        # need not give way with it: they go on up to the request or their own limit, but not past
        # the recipe's full face (1): beyond it, brows and eyes grown alone read as another emotion
        # (025's fear as surprise: the gate's p(fear) 0.79 at 1.0, 0.47 at 1.5).
        cap = max(lo, 1.0)
        hi = lo + _largest_fold_free(c, lambda t: at(lo, lo + t), cap - lo, 14, ring) if upper and cap > lo else lo
        d = at(min(lo, intensity), min(hi, intensity))
        weights = {k: v * min(hi if k in upper else lo, intensity) for k, v in rec.items()}
        for k, v in (aus or {}).items():
            weights[k] = weights.get(k, 0.0) + v
    else:  # the user's own AUs fold the face: scale everything back
        k = fold_free_scale(c, d_full, ring)
        d = d_full * k
        weights = {a: v * k for a, v in weights.items()}
    target = landmarks.astype(np.float64) + pose.displacement_to_image(d)
    c2 = c + d
    return Plan(target.astype(np.float32), {k: round(v, 4) for k, v in weights.items() if v}, removed, pose,
                lip_gap(c), lip_gap(c2))


MIN_AREA_RATIO = 0.06  # a triangle may shrink to 6% of its area (skin bunching), never flip


@lru_cache(maxsize=1)
def _skin_triangles() -> np.ndarray:
    """Delaunay triangles of the mean mesh, less those spanning the eye and mouth openings (which
    are meant to close or open)."""
    tris = model().tri_mesh
    openings = [set(EYE_L), set(EYE_R), set(LIPS_INNER_LOWER + LIPS_INNER_UPPER)]
    keep = [not any(len(set(t) & o) >= 2 for o in openings) for t in tris]
    return tris[np.array(keep)]


def triangle_areas(p: np.ndarray, tris: np.ndarray) -> np.ndarray:
    """(..., T) doubled signed areas of triangles `tris` (T, 3) over points `p` (..., N, x and y
    first; leading axes: several shapes at once): the sign says which way each faces, so a change
    of sign is a fold."""
    a, b, e = p[..., tris[:, 0], :2], p[..., tris[:, 1], :2], p[..., tris[:, 2], :2]
    return (b[..., 0] - a[..., 0]) * (e[..., 1] - a[..., 1]) - (b[..., 1] - a[..., 1]) * (e[..., 0] - a[..., 0])


def _area_ratio(c: np.ndarray, d: np.ndarray, tris: np.ndarray) -> np.ndarray:
    a0 = triangle_areas(c, tris)
    # Only triangles facing the camera: thin ones at the silhouette (the mesh wrapping round the
    # cheeks) cover few pixels and flip under harmless sideways motion.
    ok = np.abs(a0) > 0.5 * np.median(np.abs(a0))
    return triangle_areas(c + d, tris)[ok] / a0[ok]


# The warp's triangles between the face's outline and its anchor ring (the neck, hair and
# background round the face) may shrink to this share of their area. A jaw dropped on a small,
# rolled or downcast face (t1.jpg: Monica's and Joey's surprise) pushed the chin past its ring
# triangles and flipped them (area ratios -0.03 and -1.3): the chin tore into a pointed tip over
# the shoulder. On the London faces these triangles keep at least 0.16 (surprise; 0.56 or more
# for every other target).
MIN_RING_RATIO = 0.1


@lru_cache(maxsize=1)
def _ring_triangles() -> np.ndarray:
    """The warp's fixed triangles that reach the anchor ring (indices 468 and up)."""
    tris = model().tri_ring
    return tris[(tris >= len(model().mean)).any(1)]


def ring_guard(landmarks: np.ndarray, pose: Pose):
    """A check for `fold_free`: does a canonical displacement keep the warp's triangles round the
    face (between its outline and `warp.anchor_ring`, in the image, as the warp sees them) above
    MIN_RING_RATIO of their area?"""
    from .warp import anchor_ring  # warp builds on this module's model

    src = landmarks[:, :2].astype(np.float64)
    ring = anchor_ring(landmarks)
    before = np.vstack([src, ring])

    def ok(d: np.ndarray) -> bool:
        moved = np.zeros_like(before)
        moved[:len(src)] = pose.displacement_to_image(d)[:, :2]
        return bool(_area_ratio(before, moved, _ring_triangles()).min() >= MIN_RING_RATIO)

    return ok


def fold_free(c: np.ndarray, d: np.ndarray, ring=None) -> bool:
    """Does c + d shrink no skin triangle below MIN_AREA_RATIO (and pass `ring`, a `ring_guard`)?"""
    if _area_ratio(c, d, _skin_triangles()).min() < MIN_AREA_RATIO:
        return False
    return ring is None or ring(d)


def _largest_fold_free(c: np.ndarray, path, hi: float, steps: int, ring=None) -> float:
    """Bisection for the largest t in [0, hi] with c + path(t) fold-free (path(0) is)."""
    lo = 0.0
    for _ in range(steps):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if fold_free(c, path(mid), ring) else (lo, mid)
    return lo


def fold_free_scale(c: np.ndarray, d: np.ndarray, ring=None) -> float:
    """Largest k in [0, 1] such that c + k*d is `fold_free` (given the same `ring`)."""
    return 1.0 if fold_free(c, d, ring) else _largest_fold_free(c, lambda k: k * d, 1.0, 8, ring)


def lip_gap(c: np.ndarray) -> float:
    """Inner-lip opening at the centre, in IOD units."""
    return float(c[14, 1] - c[13, 1])


def measures(landmarks: np.ndarray) -> dict[str, float]:
    """Expression measures of a face in canonical (IOD) units, from its own image landmarks. Used to
    read the current expression, and to check that an edit moved the face the way its AUs say."""
    return measures_canonical(pose_of(landmarks).to_canonical(landmarks.astype(np.float64)))


def measures_canonical(c: np.ndarray) -> dict[str, float]:
    """`measures` of canonical landmarks. Positive = more of the named thing."""
    p = c[:, :2]
    lip_mid = p[[13, 14], 1].mean()
    eye_y = (p[LID_UP_L + LID_LO_L, 1].mean() + p[LID_UP_R + LID_LO_R, 1].mean()) / 2
    return {
        # mouth corners above the lips' centre (smile up, sad down)
        "corner_lift": float(lip_mid - p[[61, 291], 1].mean()),
        "corner_asymmetry": float(p[61, 1] - p[291, 1]),  # > 0: image-right corner higher
        "mouth_width": float(p[291, 0] - p[61, 0]),
        "lip_gap": float(p[14, 1] - p[13, 1]),
        "inner_brow_height": float(eye_y - p[[55, 107, 285, 336], 1].mean()),
        "outer_brow_height": float(eye_y - p[[46, 70, 276, 300], 1].mean()),
        "brow_gap": float(p[[285, 336], 0].mean() - p[[55, 107], 0].mean()),
        "eye_open": float((p[LID_LO_L, 1] - p[LID_UP_L, 1]).mean() + (p[LID_LO_R, 1] - p[LID_UP_R, 1]).mean()) / 2,
        "upper_lip_to_nose": float(p[0, 1] - p[2, 1]),
        "upper_lip_raise": float(-p[0, 1]),  # the frame's origin is between the eyes
        "chin_drop": float(p[152, 1] - p[1, 1]),
    }
