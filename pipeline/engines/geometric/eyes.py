"""Eyes: the eyeball stays in the skull while the lids move over it.

The mesh warp carries every pixel between the lid landmarks with them. Lids that narrow the eye
(a squint, disgust's cheeks pushing up, anger's and sadness's lowered upper lids, a smile's raised
lower lids) squashed the iris flat, the white showing below it as if the eye rolled up (disgust
and anger on 061): inside the new, narrower opening each pixel is the photo's own, and the lids
cover the rest (`fixed_eyeballs`). A raised upper lid (fear's and surprise's AU5, some angers'
glare) stretched the iris into a tall oval: there the lashes ride up with the lid, the photo's own
eyeball stays below where the lid was, and between them the iris is completed round its circle
from what the photo shows of it and the white from beside it (`raised_lids`). A first attempt's
painted iris top and whites looked pasted on (flat crescents over 061's and 005's eyes); where
the photo's iris cannot be read surely (10 of the 34 tune-half faces), the eye keeps the mesh's
stretch.
"""
from __future__ import annotations

import warnings

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

# A raised lid (`raised_lids`). The iris: the circle, its radius IRIS_R of the distance between
# the eyes' outer corners, whose visible inside stands out most from the ring just outside it in
# colour distance from the sclera (a blue iris counts as a brown one), by IRIS_C at least; a fit
# that leaves more than OUT_MAX of the iris outside the circle or SCL_MAX of sclera inside it is
# not the photo's iris (7 of the 34 tune-half faces, 005 and 014 among them), and a face's two
# irises are one size (R_AGREE). Where more than MISS_MAX of the uncovered iris has no angle the
# photo shows at its radius, the circle's centre is off. Each of these keeps the mesh's stretch.
IRIS_R, IRIS_C = (0.05, 0.075), 10.0
# The radius is searched in steps of half a pixel, or IRIS_STEP of the corners' distance on large
# faces: about as fine for their size as half a pixel on the tune half's (150-180 px); half a
# pixel took 30 ms an eye at 2048 px.
IRIS_STEP = 1 / 400
OUT_MAX, SCL_MAX = 0.13, 0.18
R_AGREE, MISS_MAX = 0.15, 0.2
# rad: after the mirror below, the angles further down it at the same radius. A narrow or hooded
# eye shows its iris's bottom only, a catchlight often covers the mirror of the rows just above
# the centre, and a lid down past the centre uncovers rows whose mirror is under it: with the
# mirror alone 7 tune-half faces (008, 043, 064 among them) missed a quarter to half of it.
IRIS_DOWN = (0.25, 0.5, 0.8, 1.2)
PUPIL_C = 30  # the pupil's edge is read only where the iris is this much brighter than the pupil
# The cornea's catchlights stay where they are: blobs brighter than the iris by SPEC_C (or half its
# contrast to the sclera), at most SPEC_AREA of R² in area, centred inside SPEC_R of the radius (at
# the limbus: the sclera's and the lids' bright bits); up against the lashes, where a gap between
# lashes looks the same, only those SPEC_LASH of the way from the iris's brightness to the sclera's.
SPEC_C, SPEC_AREA, SPEC_R, SPEC_LASH = 40, 0.12, 0.85, 0.75
# The mesh's upper lid line can cut through the cornea a pixel or so below the lid's real margin
# (036): catchlights are looked for up to SPEC_UP of R above it. One that far above the line or
# further means the margin is higher still and the iris's top rides up with the lid (096): the
# stretch stays.
SPEC_UP = 0.2
# The lashes end where a column rises DARK_K of the way from its darkest to its brightest (a
# shaded sclera's ramp is not lashes); their shadow on the sclera where it is SHADE as bright as
# its column's best; below the band, darker than FRINGE of the uncovered eyeball is still the
# lid's fringe or shade.
DARK_K, SHADE, FRINGE = 0.35, 0.92, 0.88
# The upper lid rises at least LIFT_MIN of the distance between the eyes' outer corners: fear's
# and surprise's AU5 lift it 0.045-0.1 (tune half); a smile's or a glare's sliver (under 0.015,
# seen on 2048 px photos, where `fixed_eyeballs`'s reach in pixels no longer holds it) keeps the
# mesh's stretch, which it hardly shows.
LIFT_MIN = 0.02
CORNER_FADE = 2.0  # columns over which the warp's stretch gives way to the uncovered eye at the corners
GAIN_TO, GAIN_FADE = 0.3, 0.1  # the old lid's shade on the iris: read above cy - GAIN_TO R, fading over GAIN_FADE R


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
        boxed = _eye_box(src, dst, eye, region, 2)
        if boxed is None:
            continue
        (x0, y0, x1, y1), _, old, new = boxed
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


def raised_lids(warped: np.ndarray, base: np.ndarray, src: np.ndarray, dst: np.ndarray,
                region: Region) -> np.ndarray | None:
    """Where an upper lid rises past the photo's (landmarks `src` -> `dst`), keep each iris round,
    in place in `warped` (the region, warped from `base`): the lashes ride up with the lid, the
    photo's own eyeball stays below where they were, and between them the uncovered eyeball is
    the photo's iris completed round its circle and its white carried across. Both eyes or
    neither, and nothing where the photo's iris cannot be read surely (the mesh's stretch stays).
    Returns the mask of the pixels it paints (region-sized, bool), or None."""
    iod = float(np.hypot(*(src[263, :2] - src[33, :2])))
    read = []
    for eye, up, lo in ((EYE_L, LID_UP_L, LID_LO_L), (EYE_R, LID_UP_R, LID_LO_R)):
        e = _read_eye(base, src, dst, region, eye, up, lo, iod)
        if e is None:
            return None
        read.append(e)
    radii = [e["R"] for e in read]
    if abs(radii[0] - radii[1]) > R_AGREE * max(radii):
        return None
    painted = [_uncovered(base, e) for e in read]
    if any(p is None for p in painted):
        return None
    touched = np.zeros(warped.shape[:2], bool)
    for e, (out, a) in zip(read, painted):
        x0, y0, x1, y1 = e["box"]
        tile, a = warped[y0:y1, x0:x1].astype(np.float32), a[..., None]
        warped[y0:y1, x0:x1] = np.clip(tile * (1 - a) + out * a + 0.5, 0, 255).astype(warped.dtype)
        touched[y0:y1, x0:x1] |= a[..., 0] > 0
    return touched if touched.any() else None


def _eye_box(src, dst, eye, region, pad):
    """One eye's box (region pixels) round its outlines in `src` and `dst` plus `pad`, the box's
    corner in image pixels and the photo's and the new opening's soft masks; None off the region."""
    ring_s, ring_d = src[eye, :2].astype(np.float64), dst[eye, :2].astype(np.float64)
    box = region.box(np.concatenate([ring_s, ring_d]), pad)
    if box is None:
        return None
    x0, y0, x1, y1 = box
    origin = np.array([region.x0 + x0, region.y0 + y0], np.float64)
    return box, origin, _inside(ring_s, origin, (y1 - y0, x1 - x0)), _inside(ring_d, origin, (y1 - y0, x1 - x0))


def _read_eye(image, src, dst, region, eye, up, lo, iod):
    """What one eye's raised lid needs from the photo: its box, masks and lid lines, the iris's
    circle, the band that moves with the lid and the sclera; None where the lid does not rise or
    the photo's iris is not sure."""
    boxed = _eye_box(src, dst, eye, region, 3)
    if boxed is None:
        return None
    box, origin, old, new = boxed
    x0, y0, x1, y1 = box
    crop = image[region.y0 + y0:region.y0 + y1, region.x0 + x0:region.x0 + x1]
    xs = np.arange(x1 - x0) + origin[0]
    ends = [eye[0], eye[8]]  # the corners close both lid curves
    u_s, l_s = _curve(src[ends + up, :2], xs) - origin[1], _curve(src[ends + lo, :2], xs) - origin[1]
    u_d = _curve(dst[ends + up, :2], xs) - origin[1]
    if (u_s - u_d).max() < LIFT_MIN * iod:
        return None  # the upper lid does not rise (enough)
    e = dict(box=box, origin=origin, new=new, u_s=u_s, l_s=l_s, u_d=u_d, crop=crop.astype(np.float32),
             gray=cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY).astype(np.float32),
             core=cv2.erode((old > 0.5).astype(np.uint8), np.ones((3, 3), np.uint8)) > 0)
    circle = _iris_circle(e["core"], cv2.cvtColor(crop.astype(np.float32) / 255, cv2.COLOR_RGB2LAB), iod)
    if circle is None:
        return None
    e["cx"], e["cy"], e["R"], f, thr = circle
    e["gy"], e["gx"] = np.mgrid[0:y1 - y0, 0:x1 - x0].astype(np.float64)
    e["r"] = np.hypot(e["gx"] - e["cx"], e["gy"] - e["cy"])
    return e if _lid_band(e, f, thr) else None


def _iris_circle(core, lab, iod):
    """(cx, cy, R, f, thr): the iris's circle, each pixel's colour distance from the sclera `f` and
    the level between the iris's and the ring's beside it; None where nothing stands out. The lids
    hide part of the iris: only the opening's (`core`) pixels are averaged."""
    if core.sum() < 30:
        return None
    L = lab[..., 0]
    scl = np.median(lab[core & (L >= np.percentile(L[core], 80))], axis=0)
    f = np.linalg.norm(lab - scl, axis=-1).astype(np.float32)
    c = core.astype(np.float32)
    fc = f * c
    span = np.flatnonzero(core.any(0))
    W = span[-1] - span[0]

    def sums(k):  # of f and of the visible pixels under kernel k at every place
        return (cv2.filter2D(v, -1, k, borderType=cv2.BORDER_CONSTANT) for v in (fc, c))

    best, fit = -np.inf, None
    for R in np.arange(IRIS_R[0] * iod, IRIS_R[1] * iod + 0.01, max(0.5, IRIS_STEP * iod)):
        kin = _disk(R)
        kout = _disk(1.4 * R)
        kout -= np.pad(kin, (kout.shape[0] - kin.shape[0]) // 2)
        sin, nin = sums(kin)
        sout, nout = sums(kout)
        ok = (nin > 0.3 * kin.sum()) & (nout > 0.15 * kout.sum())
        score = np.where(ok, sin / np.maximum(nin, 1) - sout / np.maximum(nout, 1), -np.inf)
        score[:, :span[0] + int(0.2 * W)] = -np.inf  # not in the corners
        score[:, span[-1] - int(0.2 * W):] = -np.inf
        j = np.unravel_index(np.argmax(score), score.shape)
        if score[j] > best:
            best, fit = score[j], (float(j[1]), float(j[0]), float(R), (sin[j] / nin[j] + sout[j] / nout[j]) / 2)
    if fit is None or best < IRIS_C:
        return None
    cx, cy, R, thr = fit
    # The centre row from the iris's chords that end on the limbus, not on a lid: the lids can hide
    # the ring's top and bottom, which leaves the template free to slide up or down.
    inner = cv2.erode(core.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    iris = (f > thr) & core
    xa, xb = int(max(cx - R - 2, 0)), int(min(cx + R + 3, f.shape[1]))
    rows = np.flatnonzero(iris[:, xa:xb].any(1))
    left = xa + iris[rows, xa:xb].argmax(1)
    right = xb - 1 - iris[rows, xa:xb][:, ::-1].argmax(1)
    limbus = (inner[rows, np.maximum(left - 1, 0)] & inner[rows, np.minimum(right + 1, f.shape[1] - 1)]
              & core[rows, np.maximum(left - 2, 0)])
    if limbus.sum() >= 3:
        ys, ws = rows[limbus].astype(float), (right - left + 1)[limbus].astype(float)
        cys = np.arange(cy - R, cy + R, 0.25)
        pred = 2 * np.sqrt(np.maximum(R ** 2 - (ys[None] - cys[:, None]) ** 2, 0))
        cy = float(cys[((ws[None] - pred) ** 2).sum(1).argmin()])
    return cx, cy, R, f, thr


def _lid_band(e, f, thr) -> bool:
    """Add to eye `e` the sclera, the band under the lid that moves with it (`band`: lashes, and
    their shadow beside the iris, rows below the photo's lid line per column), the rows of lashes
    over the iris (`lash`), their shadow (`shadow`) and the corner columns where the lashes meet
    the lower lid (`shut`). False where the circle misfits the iris or no sclera shows beside it."""
    gray, core, u_s, l_s, cx, R, r = (e[k] for k in ("gray", "core", "u_s", "l_s", "cx", "R", "r"))
    irisp = (f > thr) & core
    near = irisp & (r < 1.6 * R)
    vis = core & (r < R - 1)
    if ((near & (r > R + 1)).sum() / max(near.sum(), 1) > OUT_MAX
            or (vis & ~irisp).sum() / max(vis.sum(), 1) > SCL_MAX):
        return False
    H, W = gray.shape
    cols, rows = np.arange(W), np.arange(H)[:, None]
    # sclera: near the brightest of the opening's colour and as bright (the lid's skin strip under
    # the mesh's lid line is close in colour but darker)
    sclera = core & (f < thr) & (r > R + 1) & (gray > 0.85 * np.percentile(gray[core], 90))
    has = sclera.any(0)
    first = np.where(has, sclera.argmax(0), 0)
    # each column's first run of sclera, and the rows of shadow under the lashes at its top
    in_run = np.cumprod(np.where(rows >= first, sclera, True), axis=0).astype(bool) & (rows >= first)
    run = in_run.sum(0)
    top = np.where(in_run, gray, -np.inf).max(0)
    lit = np.where(has & (run >= 3), (in_run & (gray >= SHADE * top)).argmax(0) - first, 0)
    away = has & (run >= 3) & (np.abs(cols - cx) > R + 1)
    if away.sum() < 2:
        return False
    opening = np.median(np.maximum(l_s - u_s, 0)[away])
    shadow = float(np.clip(np.median(lit[away]), 0, 0.25 * opening))
    # Where the lashes end: each column's steepest dark-to-bright step going down from the lid (the
    # sclera's brightness itself falls into the corners' shade; the mesh's lid can ride above the
    # real margin, most at the inner corner) ...
    G = cv2.GaussianBlur(gray, (0, 0), 0.7)
    reach_to = (u_s + 0.7 * np.maximum(l_s - u_s, 0))[None, :]
    mid = rows[:-1] + 0.5
    reach = (mid > u_s[None, :]) & (mid < reach_to)
    margin = np.where(reach, np.diff(G, axis=0), -np.inf).argmax(0) + 1.0
    # ... but never below the lashes' dark: the first row past each column's darkest that is
    # DARK_K of the way up to the brightest below it
    inr = (rows > u_s[None, :]) & (rows < reach_to)
    ilo = np.where(inr, G, np.inf).argmin(0)
    lo = G[ilo, cols]
    after = inr & (rows > ilo[None, :])
    hi = np.where(after, G, -np.inf).max(0)
    rise = after & (G > (lo + DARK_K * (hi - lo))[None, :])
    cross = np.where(rise.any(0), rise.argmax(0), margin)
    # Columns whose darkest row (over the whole opening) lies below the band's reach: the lashes
    # meet the lower lid there (a corner the mesh's lid lines ride above), nothing to uncover.
    full = (rows > u_s[None, :]) & (rows < l_s[None, :] + 1)
    shut = np.where(full, G, np.inf).argmin(0) > u_s + 0.7 * np.maximum(l_s - u_s, 0)
    beside = reach.any(0) & (np.abs(cols - cx) > R + 1)
    if beside.sum() < 2:
        return False

    def across(depth):  # a column's depth below the lid, carried across the iris's columns and smoothed
        d = _across((depth - u_s)[None, :, None], beside[None])[0, :, 0]
        d = np.convolve(np.pad(d, 2, mode="edge"), np.ones(5) / 5, mode="valid")
        return np.clip(d, 0, 0.6 * np.maximum(l_s - u_s, 0))
    near_iris = np.clip((R + 2 - np.abs(cols - cx)) / 2, 0, 1)
    e.update(sclera=sclera, shut=shut, shadow=shadow,
             band=across(np.minimum(margin, cross)) + shadow * (1 - near_iris),
             lash=across(margin))  # the iris is read below the steepest step only (the lid's shade above)
    return True


def _uncovered(image, e):
    """(the eye's box painted with its lid raised, float32; where it replaces the warp's stretch);
    None where the uncovered iris or sclera cannot be read from the photo."""
    gray, core, u_s, u_d = e["gray"], e["core"], e["u_s"], e["u_d"]
    gx, gy, cx, R, r, band = e["gx"], e["gy"], e["cx"], e["R"], e["r"], e["band"]
    cols = np.arange(gray.shape[1])
    t_s = u_s + band  # below this row the photo's eyeball stays where it is
    d = gy - u_d[None, :]  # rows below the new lid line
    scl = _sclera_row(e, t_s)
    iris = _iris_fill(e, t_s)
    if scl is None or iris is None:
        return None
    # the lid's band in (depth below the lid, column): over the iris it is the lashes beside it,
    # carried across (the photo's rows there hold the iris's top, which must not ride up). Read
    # from `up` rows above the photo's lid line too: there the warp carries up with the lid what
    # the mesh's line cut off a catchlight or a gap between lashes (a pale notch in the lashes,
    # 036), and those pixels (`spec_top`) are the lashes beside them carried across
    up = int(np.ceil(SPEC_UP * R))
    depth = np.arange(-up, int(np.ceil(band.max())) + 2, dtype=np.float64)
    by = u_s[None, :] + depth[:, None]
    bx = np.broadcast_to(cols.astype(np.float32), by.shape)
    B = cv2.remap(image, bx + np.float32(e["origin"][0]), (by + e["origin"][1]).astype(np.float32), cv2.INTER_LINEAR,
                  borderMode=cv2.BORDER_REFLECT).astype(np.float32)
    catch = cv2.remap(e["spec_top"], bx, by.astype(np.float32), cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    above = depth[:, None] < 0
    clear = np.where(above, catch < 0.05, np.hypot(cols[None, :] - cx, by - e["cy"]) > R + 1)
    fill = (clear.sum(1) >= 2)[:, None] & ~clear.all(1)[:, None]
    B = np.where(fill[..., None], _across(B, clear | ~fill), B).astype(np.float32)
    gxf, at = gx.astype(np.float32), (np.clip(d, -up, depth[-1]) + up).astype(np.float32)
    # above the new lid line only the mended pixels are painted (elsewhere the warp's lid stays,
    # to the byte)
    over = cv2.remap(catch * (fill | ~above), gxf, (d + up).astype(np.float32), cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_CONSTANT)[..., None]
    lid = cv2.remap(B, gxf, np.maximum(at, up), cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    lid += over * (cv2.remap(B, gxf, at, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE) - lid)
    iris, own = iris
    a_iris = np.clip(R - r + 0.5, 0, 1)[..., None]
    rev = scl[None] * (1 - a_iris) + iris * a_iris
    # The lashes' fringe and shade that the photo shows below the band would be left as a line
    # across the eyeball: the uncovered part reaches down, column by column, to the first row of
    # the photo's eyeball that is not darker than what it uncovers.
    lum = np.array([0.299, 0.587, 0.114], np.float32)
    og, rg = (cv2.GaussianBlur(np.ascontiguousarray(v @ lum), (0, 0), 0.8) for v in (own, rev))
    below_t = gy >= np.floor(t_s)[None, :]
    dark = (og < FRINGE * rg) & core
    fringe = np.cumprod(np.where(below_t, dark, True), axis=0).astype(bool) & below_t
    ext = np.minimum(fringe.sum(0), np.where(np.abs(cols - cx) > R + 1, 0.5, 0.35) * R)
    w_band = np.clip(band[None, :] - d + 0.5, 0, 1)  # zones, each with a pixel's soft edge
    w_rev = np.clip((t_s + ext)[None, :] - gy + 0.5, 0, 1) * (1 - w_band)
    # the lid shades the top of the uncovered eyeball as it shaded the photo's
    below = d - band[None, :]
    shade = ((1 - 0.15 * np.clip(1 - below / max(2 * e["shadow"], 1.0), 0, 1))
             * (1 - 0.08 * np.exp(-np.maximum(below, 0) / (0.4 * R))))
    out = w_band[..., None] * lid + (w_rev * shade)[..., None] * rev + (1 - w_band - w_rev)[..., None] * own
    # The corners: where the photo shows no eyeball in a column (the lashes meet the lower lid)
    # there is nothing to uncover; the warp's own stretch stays, fading in over CORNER_FADE columns.
    ec = np.flatnonzero(((e["sclera"].sum(0) >= 2) | (np.abs(cols - cx) <= R)) & ~e["shut"])
    if not ec.size:
        return None
    colw = np.clip(np.minimum(cols - ec[0], ec[-1] - cols) / CORNER_FADE + 1, 0, 1)
    return out, np.maximum(e["new"] * colw[None, :], over[..., 0]).astype(np.float32)


def _sclera_row(e, t_s):
    """(W, 3): the uncovered sclera, each column's own below the band (its median: the first row
    can still be in a corner's shade), carried across the iris's columns and softened; None where
    too few columns show it."""
    gray, core, crop, cx, R, r = (e[k] for k in ("gray", "core", "crop", "cx", "R", "r"))
    cols = np.arange(gray.shape[1])
    sclera = e["sclera"] & (e["gy"] > t_s[None, :])
    clean = (sclera.sum(0) >= 2) & (np.abs(cols - cx) > R + 1)
    if clean.sum() < 2:
        return None
    row = _median(crop, sclera)
    # beyond the outermost clean columns (the corners' shade): the column's own opening, its
    # brighter half (the lashes and the lid's skin strip are darker than the shaded sclera)
    cl = np.flatnonzero(clean)
    white = core & (r > R + 1)  # never the iris's own columns' colour
    outer = white.any(0) & ((cols < cl[0]) | (cols > cl[-1])) & (np.abs(cols - cx) > R + 1)
    half = _median(gray, white)
    row = np.where(outer[:, None], _median(crop, white & (gray >= half[None, :])), row)
    row = _across(row[None], (clean | outer)[None])[0].astype(np.float32)
    return cv2.GaussianBlur(row[None], (0, 0), sigmaX=1.5, sigmaY=0.01)[0]


def _iris_fill(e, t_s):
    """(the uncovered iris, the photo's eyeball), both float32 with the old lid's shade on the iris
    lifted: the iris at each pixel is the same radius at the nearest angle the photo shows
    (mirrored below first), never a catchlight; the photo's own catchlights stay. None where too
    much of the uncovered iris has no such angle (the circle's centre is off)."""
    gray, core, crop, u_s = e["gray"], e["core"], e["crop"], e["u_s"]
    gx, gy, cx, cy, R, r = e["gx"], e["gy"], e["cx"], e["cy"], e["R"], e["r"]
    H, W = gray.shape
    seen = core & (gy > (u_s + e["lash"])[None, :]) & (r < R + 0.5)
    # catchlights: whatever on the iris below the lashes is brighter than half its contrast to the
    # sclera, and the ringed blobs `_catchlights` finds well inside it, the lash line included and
    # up to SPEC_UP R above the photo's lid line (kept where they are: 036's, 096's)
    strip = (r < R + 0.5) & (gy >= (u_s - np.ceil(SPEC_UP * R) - 1)[None, :]) & (gy < (u_s + e["lash"] + 1)[None, :])
    spec = np.zeros_like(seen)
    if seen.any():
        mid = np.median(gray[seen])
        spec = seen & (gray > mid + 0.5 * (np.percentile(gray[core], 90) - mid))
    spec |= _catchlights(gray, (core | strip) & (r < R + 0.5), seen, core, R, r)
    if ((u_s[None, :] - gy)[spec] > SPEC_UP * R).any():
        return None  # the cornea shows that far above the mesh's lid line (096)
    usable = seen & ~(cv2.dilate(spec.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))) > 0)
    # what rides up with the lid from round the photo's lid line and would show as a pale notch
    # in the lashes (`_uncovered` mends it): a catchlight or a gap between lashes, a pixel more
    # all round, soft
    top = _catchlights(gray, strip, seen, core, R, r, lid=True).astype(np.uint8)
    e["spec_top"] = cv2.GaussianBlur(cv2.dilate(top, np.ones((3, 3), np.uint8)).astype(np.float32), (0, 0), 0.7)
    # The old lid's shade on the photo's iris: each row above the centre against its mirror below
    # (the same chord), outside the pupil; lifted where the lid rises (never darkened).
    ring = usable & (r > 0.6 * R) & (r < R - 0.5)
    cnt = ring.sum(1)
    med = _median(gray, ring, axis=1)
    ys = np.arange(H)
    mir = np.clip(np.round(2 * cy - ys).astype(int), 0, H - 1)
    okr = (cnt >= 2) & (cnt[mir] >= 2) & (ys < cy - GAIN_TO * R)
    gain = np.ones(H)
    gain[okr] = np.clip(med[mir][okr] / np.maximum(med[okr], 1), 1, 1.6)
    gain = np.maximum.accumulate(np.where(ys < cy, gain, 1)[::-1])[::-1]  # more shade nearer the lid
    if okr.any():  # below the last row read, the shade fades (a step in the lift reads as a line)
        yl = np.flatnonzero(okr)[-1]
        gain = np.where(ys > yl, 1 + (gain[yl] - 1) * np.exp(-(ys - yl) / (GAIN_FADE * R)), gain)
    gmap = (1 + (gain[:, None] - 1) * np.clip(R + 0.5 - r, 0, 1)).astype(np.float32)[..., None]
    lifted = crop * gmap
    # The pupil need not sit at the circle's centre (often a pixel or two lower): the iris is read
    # as a rubber sheet, the pupil's centre moved onto the circle's and the limbus kept
    # (y' = y - drop * s(r'), s 1 inside the pupil and 0 at the limbus), turned there at the same
    # radius and moved back; a mirror about the circle's centre row alone draws the pupil's lower
    # edge above the photo's pupil (a dark bar where the fill meets the photo's iris).
    drop, rp = _pupil_drop(gray, usable, cx, cy, R)

    def sheet(rr):
        return np.clip((R - rr) / max(R - rp - 1, 1), 0, 1) if drop else 0 * rr
    yc = gy - drop * sheet(r)
    for _ in range(2):
        yc = gy - drop * sheet(np.hypot(gx - cx, yc - cy))
    rc = np.hypot(gx - cx, yc - cy)
    beta = np.arcsin(np.clip((cy - yc) / np.maximum(rc, 1e-6), -1, 1))
    side = np.where(gx >= cx, 1.0, -1.0)
    ix, iy = gx.copy(), gy.copy()
    found = np.zeros(gx.shape, bool)
    # the mirror below first (at the same radius or a little inside it), then further down it
    # (IRIS_DOWN), the angles nearer the lid's shade only after: mixing those, row by row, reads
    # as stripes
    tries = [(k, a * beta) for a in (-1, -0.66, -0.33) for k in (1.0, 0.85, 0.7)]
    tries += [(k, np.maximum(-np.abs(beta) - dv, -np.pi / 2)) for dv in IRIS_DOWN for k in (1.0, 0.85, 0.7)]
    tries += [(k, a * beta) for k in (1.0, 0.85, 0.7) for a in (0, 0.33, 0.66)]
    for k, el in tries:
        px, py = cx + side * k * rc * np.cos(el), cy - k * rc * np.sin(el) + drop * sheet(k * rc)
        ok = usable[np.clip(np.round(py).astype(int), 0, H - 1), np.clip(np.round(px).astype(int), 0, W - 1)] & ~found
        ix, iy = np.where(ok, px, ix), np.where(ok, py, iy)
        found |= ok
    uncovered = (r < R) & (gy < t_s[None, :]) & (e["new"] != 0)
    if uncovered.any() and (uncovered & ~found).sum() > MISS_MAX * uncovered.sum():
        return None
    # A pupil that shows (the iris round it PUPIL_C brighter than its middle) and whose edge was not
    # read is completed about the circle's centre, not its own: where the uncovered part reaches
    # into it, a dark cap or a torn pupil over a grey iris (068, 123); there the stretch stays.
    zone, rim = usable & (r < 0.5 * R), usable & (r > 0.7 * R)
    if (not rp and (uncovered & (r < 0.5 * R)).any() and zone.any() and rim.any()
            and np.median(gray[rim]) - np.median(gray[zone]) >= PUPIL_C):
        return None
    if (~found).any() and usable.any():
        ny, nx = _nearest(usable)
        ix, iy = np.where(found, ix, nx), np.where(found, iy, ny)
    iris = cv2.remap(lifted, ix.astype(np.float32), iy.astype(np.float32), cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_REFLECT)
    # the photo's own catchlights stay where they were (the cornea's, not the lid's)
    keep = cv2.GaussianBlur((cv2.dilate(spec.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0).astype(np.float32),
                            (0, 0), 0.7)[..., None]
    return iris * (1 - keep) + lifted * keep, lifted


def _pupil_drop(gray, usable, cx, cy, R):
    """(rows the pupil's centre lies below the fitted circle's, pupil radius): from the pupil's
    bottom edge and its width, both clear of the upper lid and its shade. (0, 0) where the iris is
    too dark to tell from the pupil or the readings disagree with a pupil."""
    H, W = gray.shape
    ys, xs = np.arange(H), np.arange(W)
    P = _median(gray, usable & (np.abs(xs - cx) <= 0.25 * R)[None, :], axis=1)  # the pupil's column
    mid = (np.abs(ys - cy) <= 0.35 * R) & ~np.isnan(P)
    low = (ys > cy + 0.3 * R) & (ys < cy + 0.85 * R) & ~np.isnan(P)
    if not mid.any() or not low.any():
        return 0.0, 0.0
    y0 = int(ys[mid][np.argmin(P[mid])])
    p, ib = P[y0], np.max(P[low])
    if ib - p < PUPIL_C:
        return 0.0, 0.0
    thr = (p + ib) / 2
    yb = _first_above(P, y0, 1, thr)
    if yb is None:
        return 0.0, 0.0
    Q = _median(gray, usable & ((ys >= y0 - 1) & (ys <= yb - 1))[:, None])  # the pupil's row
    x0 = int(round(cx))
    if np.isnan(Q[x0]) or Q[x0] > thr:
        return 0.0, 0.0
    xl, xr = _first_above(Q, x0, -1, thr), _first_above(Q, x0, 1, thr)
    if xl is None or xr is None:
        return 0.0, 0.0
    rp = (xr - xl) / 2
    if not 0.25 * R <= rp <= 0.55 * R or abs((xl + xr) / 2 - cx) > 0.15 * R:
        return 0.0, 0.0
    return float(np.clip(yb - rp - cy, -0.1 * R, 0.2 * R)), float(rp)


def _first_above(P, start, step, thr):
    """The (sub-pixel) row where profile P first rises above thr going from `start` in `step`'s
    direction; None where a gap (NaN) or the profile's end comes first."""
    seq = P[start::step] if step > 0 else P[start::-1]
    hit = np.flatnonzero(~(seq <= thr))  # NaN counts as a stop
    if hit.size == 0 or np.isnan(seq[hit[0]]) or hit[0] == 0:
        return None
    k = hit[0]
    return start + step * (k - 1 + (thr - seq[k - 1]) / (seq[k] - seq[k - 1]))


def _catchlights(gray, disc, seen, core, R, r, lid=False):
    """The cornea's catchlights anywhere on the visible iris disc (up against the lashes too): blobs
    brighter than the iris by half its contrast to the sclera or SPEC_C, whichever is less (the
    glow round a catchlight on a dark iris is not iris), small, and ringed by pixels darker than
    that (the lid's skin and the sclera beside the iris are not ringed so). `lid`: a gap between
    lashes counts too (above the lid line either shows as a pale notch once the lid rises)."""
    ig = gray[seen]
    if not ig.size:
        return np.zeros_like(disc)
    med = float(np.median(ig))
    bright = np.percentile(gray[core], 90) - med
    thr = med + min(0.5 * bright, SPEC_C)
    cand = disc & (gray > thr)
    n, lab = cv2.connectedComponents(cand.astype(np.uint8), connectivity=8)
    if n < 2:
        return cand
    grow = cv2.dilate(lab.astype(np.float32), np.ones((5, 5), np.uint8)).astype(int)
    ring = (grow > 0) & ~cand
    area = np.bincount(lab.ravel(), minlength=n)
    rn = np.bincount(grow[ring], minlength=n)
    rm = np.bincount(grow[ring], weights=gray[ring], minlength=n) / np.maximum(rn, 1)
    peak = np.zeros(n)
    np.maximum.at(peak, lab.ravel(), gray.ravel())
    below = np.bincount(lab[seen], minlength=n) >= 0.5 * area  # most of the blob below the lash line
    strong = peak > med + SPEC_LASH * bright
    inner = np.bincount(lab.ravel(), weights=r.ravel(), minlength=n) < SPEC_R * R * np.maximum(area, 1)
    ok = (area <= SPEC_AREA * R * R) & (rn > 0) & (rm < thr) & (below | strong | lid) & inner
    ok[0] = False
    return ok[lab] & cand


def _disk(R):
    n = int(np.ceil(R))
    y, x = np.mgrid[-n:n + 1, -n:n + 1]
    return (np.hypot(x, y) <= R).astype(np.float32)


def _curve(pts, xs):
    """A lid line's row at each of `xs`, through the points `pts` (x, y)."""
    o = np.argsort(pts[:, 0])
    return np.interp(xs, pts[o, 0], pts[o, 1])


def _across(values, known):
    """`values` (n, W, C) with each row's columns outside `known` (n, W) filled linearly from the
    nearest known ones on either side, held beyond the ends (np.interp along every row at once)."""
    n, W = known.shape
    cols = np.arange(W)
    left = np.maximum.accumulate(np.where(known, cols, -1), axis=1)
    right = np.minimum.accumulate(np.where(known, cols, W)[:, ::-1], axis=1)[:, ::-1]
    left, right = np.where(left < 0, right, left), np.where(right >= W, left, right)
    left, right = np.clip(left, 0, W - 1), np.clip(right, 0, W - 1)
    t = np.where(right > left, (cols - left) / np.maximum(right - left, 1), 0.0)[..., None]
    i = np.arange(n)[:, None]
    return values[i, left] * (1 - t) + values[i, right] * t


def _median(values, mask, axis=0):
    """The median of `values` where `mask` along `axis` (each column's, or each row's with axis
    1), a colour's channels apart; NaN where the mask has none."""
    if values.ndim > mask.ndim:
        mask = mask[..., None]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # columns without the mask: NaN, unused
        return np.nanmedian(np.where(mask, values, np.nan), axis=axis)


def _nearest(mask):
    """(ys, xs): for every pixel, the nearest pixel where `mask` is True."""
    _, lab = cv2.distanceTransformWithLabels((~mask).astype(np.uint8), cv2.DIST_L2, 3,
                                             labelType=cv2.DIST_LABEL_PIXEL)
    ys, xs = np.nonzero(mask)
    ly, lx = np.empty(lab.max() + 1, int), np.empty(lab.max() + 1, int)
    ly[lab[mask]], lx[lab[mask]] = ys, xs
    return ly[lab], lx[lab]


def _inside(ring: np.ndarray, origin: np.ndarray, shape) -> np.ndarray:
    """Soft coverage (float32, `shape`, [0, 0] at image `origin`) of the outline `ring`: blurred
    over a pixel, so a landmark moved by a hundredth of a pixel changes it by as little (an
    anti-aliased edge alone flipped a pixel of the lashes between eyeball and lid)."""
    m = np.zeros(shape, np.float32)
    cv2.fillPoly(m, [np.round((ring - origin) * 16).astype(np.int32)], 1.0, cv2.LINE_AA, 4)
    return cv2.GaussianBlur(m, (0, 0), EDGE_BLUR)
