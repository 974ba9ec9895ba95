"""Eyes: lowered lids slide over an eyeball that stays where it is.

The mesh warp carries every pixel between the lid landmarks with them, so lids that narrow the eye
(a squint, disgust's cheeks pushing up, anger's and sadness's lowered upper lids, a smile's raised
lower lids) squashed the iris flat, the white showing below it as if the eye rolled up (disgust
and anger on 061). The eyeball stays in the skull: inside the new, narrower opening each pixel is
the photo's own, and the lids cover the rest. An opening that reaches past the photo's own (a
raised lid: fear, surprise) would uncover what the photo never showed; tried, a painted iris top
and whites there looked pasted on (flat crescents over 061's and 005's eyes), so such an eye keeps
the mesh's stretch (README: known limitations).
"""
from __future__ import annotations

import cv2
import numpy as np

from ...mesh import EYE_L, EYE_R, LID_LO_L, LID_LO_R, LID_UP_L, LID_UP_R
from .warp import CLOSED, Region, lid_openings

# px: how far past the photo's outline the new opening may reach and still count as lowered lids,
# the eyeball kept less and less over FADE more (a threshold flipped a smile's eyes between kept
# and stretched with the lips open or closed, a change the closed-lips option must not make). Both
# eyes alike: one round iris beside a stretched one looked worse than two alike (001's anger).
REACH, FADE = 1.0, 2.0
EDGE_BLUR = 0.7  # px: the new opening's edge (`_inside`)


def fixed_eyeballs(mapping: np.ndarray, src: np.ndarray, dst: np.ndarray, region: Region) -> np.ndarray | None:
    """Inside each eye's new opening (landmarks `dst`), where both lie within the photo's (`src`),
    map every pixel to itself, in place in `mapping` (the region's absolute source coordinates).
    Returns the mask of the pixels it maps (region-sized, bool), or None."""
    touched = np.zeros(mapping.shape[:2], bool)
    fixed, weight = [], 1.0
    for eye, up, lo in ((EYE_L, LID_UP_L, LID_LO_L), (EYE_R, LID_UP_R, LID_LO_R)):
        ring_s, ring_d = src[eye, :2].astype(np.float64), dst[eye, :2].astype(np.float64)
        if np.abs(ring_d - ring_s).max() < 0.5:
            continue
        open_s, open_d = lid_openings(src, dst, up, lo)
        if open_s <= 0 or open_d <= (1 - CLOSED) * open_s:
            continue  # a closing eye is the lids' band's (warp._close_lids)
        box = region.box(np.concatenate([ring_s, ring_d]), 2)
        if box is None:
            continue
        x0, y0, x1, y1 = box
        origin = np.array([region.x0 + x0, region.y0 + y0], np.float64)
        new, old = _inside(ring_d, origin, (y1 - y0, x1 - x0)), _inside(ring_s, origin, (y1 - y0, x1 - x0))
        # How far (px) the new opening reaches past the photo's: a raised lid.
        past = cv2.distanceTransform((old < 0.5).astype(np.uint8), cv2.DIST_L2, 3)[new > 0.5]
        weight = min(weight, float(np.clip(1 - (past.max(initial=0.0) - REACH) / FADE, 0.0, 1.0)))
        fixed.append((x0, y0, x1, y1, new))
    if weight <= 0:
        return None
    for x0, y0, x1, y1, new in fixed:
        new = new * weight
        gx, gy = np.meshgrid(np.arange(x0, x1, dtype=np.float32) + region.x0,
                             np.arange(y0, y1, dtype=np.float32) + region.y0)
        box = mapping[y0:y1, x0:x1]
        box[..., 0] = box[..., 0] * (1 - new) + gx * new
        box[..., 1] = box[..., 1] * (1 - new) + gy * new
        touched[y0:y1, x0:x1] |= new > 0
    return touched if touched.any() else None


def _inside(ring: np.ndarray, origin: np.ndarray, shape) -> np.ndarray:
    """Soft coverage (float32, `shape`, [0, 0] at image `origin`) of the outline `ring`: blurred
    over a pixel, so a landmark moved by a hundredth of a pixel changes it by as little (an
    anti-aliased edge alone flipped a pixel of the lashes between eyeball and lid)."""
    m = np.zeros(shape, np.float32)
    cv2.fillPoly(m, [np.round((ring - origin) * 16).astype(np.int32)], 1.0, cv2.LINE_AA, 4)
    return cv2.GaussianBlur(m, (0, 0), EDGE_BLUR)
