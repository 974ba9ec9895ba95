"""EXPERIMENT, not shipped: a raised upper lid uncovers the photo's own eyeball instead of the mesh
stretching the iris into a tall oval (fear's and surprise's AU5; README, known limitations).

Status (nineteenth session, docs/eval/tune.md, then three helpers' passes): on the 34 tune-half
neutral photos, surprise and fear alike, zoomed in: 19 read as a real wide-open eye (007, 013, 021,
042, 045, 067, 083, 086, 102, 103, 105, 107, 117, 125, 136, 138, 141, 144, 172; 141 R's grey wedge
went with the band's depth capped by its darkness, 067 R's inner-corner notch with the corners
left to the stretch, 144 R's catchlights kept at the lash line), 1 still shows an artifact (036 L:
a pale notch in the lash line over the iris's outer top corner, where the mesh's lid line runs a
pixel below the lashes and the band carried across the iris is pale there) and 14 keep the
stretch (circle misfit: 005, 014, 070, 081, 090, 122, 139; the uncovered iris not reachable: 008,
043, 061, 064, 068, 096, 123; 061 now falls back since its catchlights' glow is no longer
copied). Not wired into the engine until 036 L is gone; kept so the next attempt starts here.

How it works, per eye, after the mesh warp (`uncover`):
1. the iris: the circle (radius 0.05-0.075 of the eye corners' span) whose visible inside differs
   most from the ring outside it in CIELAB distance from the sclera's colour (`iris_circle`), its
   centre row refined from chords that end on the limbus; rejected when iris pixels lie outside
   it or sclera inside it (OUT_MAX, SCL_MAX);
2. the band under the lid (lashes down to each column's steepest dark-to-bright step, but never
   past where the column has risen DARK_K of the way from its darkest to its brightest: a shaded
   sclera's ramp is not lashes; and their shadow beside the iris) moves with the lid, read in
   (depth below the lid, column) space with the iris's columns carried across from beside it;
3. below the photo's old band the photo's own eyeball stays; between, the uncovered part: sclera
   as each column's own (median) sclera, carried across the iris from beside it and softened
   (beyond the last clean columns, the brighter half of the column's opening); the
   iris as the same radius at the nearest angle the photo shows (mirrored below first, then a
   little inside that radius, only then the angles nearer the lid), never a catchlight, read as a
   rubber sheet whose pupil may sit below the circle's centre (`pupil_drop`: its lower edge and
   width, where the iris is light enough), from the photo with the old lid's shade on the iris
   lifted (each row against its mirror below, fading out below the last row read);
   the photo's own catchlights stay (`catchlights`: ringed, small blobs well inside the iris, up
   against the lashes too, and their glow on a dark iris is never copied); where the photo shows
   the lashes' fringe or shade below the band, the uncovered part reaches down to the first row
   that is not darker than what it paints; at the corners, columns whose darkest row lies below
   the band's reach (the lashes meet the lower lid) keep the warp's stretch;
4. both eyes or neither (R_AGREE, MISS_MAX), blended into the warp's result inside the new opening.

Before wiring in: its per-column and per-row loops (sclera runs, chords, the band's rows)
want vectorising, and a test that a raised lid keeps the iris's width and height
alike on real faces.

Run from the repository root (writes OUT/stretch/ID.jpg, OUT/uncovered/ID.jpg, OUT/sheet.png):
    python scripts/experiments/raised_lid_eyeball.py surprised OUT 007 013 125 ...
"""
from __future__ import annotations

import sys
import warnings
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from pipeline.engines.geometric.eyes import _inside  # noqa: E402
from pipeline.mesh import EYE_L, EYE_R, LID_LO_L, LID_LO_R, LID_UP_L, LID_UP_R  # noqa: E402

DEBUG: dict = {}


IOD = [1.0]


def _disk(R):
    n = int(np.ceil(R))
    y, x = np.mgrid[-n:n + 1, -n:n + 1]
    return (np.hypot(x, y) <= R).astype(np.float32)


def iris_circle(gray, core, lab):
    """The iris as the circle whose visible inside differs most from the ring just outside it in
    colour distance from the sclera (a blue iris counts as a brown one); the lids hide part of it,
    so only visible pixels are averaged."""
    if core.sum() < 30:
        return None
    L = lab[..., 0]
    scl = np.median(lab[core & (L >= np.percentile(L[core], 80))], axis=0)
    f = np.linalg.norm(lab - scl, axis=-1).astype(np.float32)
    c = core.astype(np.float32)
    fc = f * c
    span = np.flatnonzero(core.any(0))
    W = span[-1] - span[0]
    best = (-np.inf, None)
    for R in np.arange(0.05 * IOD[0], 0.075 * IOD[0] + 0.01, 0.5):
        kin = _disk(R)
        kout = _disk(1.4 * R)
        pad = (kout.shape[0] - kin.shape[0]) // 2
        kout = kout - np.pad(kin, pad)
        sin, nin = cv2.filter2D(fc, -1, kin, borderType=cv2.BORDER_CONSTANT), cv2.filter2D(c, -1, kin, borderType=cv2.BORDER_CONSTANT)
        sout, nout = cv2.filter2D(fc, -1, kout, borderType=cv2.BORDER_CONSTANT), cv2.filter2D(c, -1, kout, borderType=cv2.BORDER_CONSTANT)
        ok = (nin > 0.3 * kin.sum()) & (nout > 0.15 * kout.sum())
        score = np.where(ok, sin / np.maximum(nin, 1) - sout / np.maximum(nout, 1), -np.inf)
        score[:, :span[0] + int(0.2 * W)] = -np.inf
        score[:, span[-1] - int(0.2 * W):] = -np.inf
        j = np.unravel_index(np.argmax(score), score.shape)
        if score[j] > best[0]:
            inside = sin[j] / nin[j]; outside = sout[j] / nout[j]
            best = (score[j], (float(j[1]), float(j[0]), float(R), f, (inside + outside) / 2))
    if best[1] is None or best[0] < 10:
        return None
    cx, cy, R, f, thr = best[1]
    # the centre row from the iris's chords that end on the limbus, not on a lid: the lids can hide
    # the ring's top and bottom, which leaves the template free to slide up or down
    inner = cv2.erode(core.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    iris = (f > thr) & core
    xa, xb = int(max(cx - R - 2, 0)), int(min(cx + R + 3, f.shape[1]))
    ys, ws = [], []
    for y in np.flatnonzero(iris[:, xa:xb].any(1)):
        xs = xa + np.flatnonzero(iris[y, xa:xb])
        l, r_ = xs.min(), xs.max()
        if inner[y, max(l - 1, 0)] and inner[y, min(r_ + 1, f.shape[1] - 1)] and not core[y, max(l - 2, 0)] == 0:
            ys.append(y); ws.append(r_ - l + 1)
    if len(ys) >= 3:
        ys, ws = np.array(ys, float), np.array(ws, float)
        cys = np.arange(cy - R, cy + R, 0.25)
        pred = 2 * np.sqrt(np.maximum(R ** 2 - (ys[None] - cys[:, None]) ** 2, 0))
        cy = float(cys[((ws[None] - pred) ** 2).sum(1).argmin()])
    return cx, cy, R, f, thr


def _first_above(P, start, step, thr):
    """The (sub-pixel) row where profile P first rises above thr going from `start` in `step`'s
    direction; None where a gap (NaN) or the profile's end comes first."""
    seq = P[start::step] if step > 0 else P[start::-1]
    hit = np.flatnonzero(~(seq <= thr))  # NaN counts as a stop
    if hit.size == 0 or np.isnan(seq[hit[0]]) or hit[0] == 0:
        return None
    k = hit[0]
    return start + step * (k - 1 + (thr - seq[k - 1]) / (seq[k] - seq[k - 1]))


PUPIL_C = 30  # the pupil's edge is read only where the iris is this much brighter than the pupil


def pupil_drop(gray, usable, cx, cy, R):
    """(rows the pupil's centre lies below the fitted circle's, pupil radius): from the pupil's
    bottom edge and its width, both clear of the upper lid and its shade. (0, 0) where the iris is
    too dark to tell from the pupil or the readings disagree with a pupil."""
    H, W = gray.shape
    ys, xs = np.arange(H), np.arange(W)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mid_cols = np.abs(xs - cx) <= 0.25 * R
        P = np.nanmedian(np.where(usable[:, mid_cols], gray[:, mid_cols], np.nan), 1)
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
        band = (ys >= y0 - 1) & (ys <= yb - 1)
        Q = np.nanmedian(np.where(usable[band], gray[band], np.nan), 0)
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


SPEC_C, SPEC_AREA = 40, 0.12  # a catchlight: this much brighter than the iris, at most this of R² in area
SPEC_LASH = 0.75  # ... and, up against the lashes, this far from the iris's brightness to the sclera's
SPEC_R = 0.85  # ... centred inside this of the iris's radius (at the limbus: the sclera's and the lids' bright bits)


def catchlights(gray, disc, seen, core, R, r):
    """The cornea's catchlights anywhere on the visible iris disc (up against the lashes too): blobs
    brighter than the iris by half its contrast to the sclera or SPEC_C, whichever is less (the
    glow round a catchlight on a dark iris is not iris), small, and ringed by pixels darker than
    that (the lid's skin and the sclera beside the iris are not ringed so)."""
    ig = gray[seen]
    if not ig.size:
        return np.zeros_like(disc)
    med = float(np.median(ig))
    thr = med + min(0.5 * (np.percentile(gray[core], 90) - med), SPEC_C)
    cand = disc & (gray > thr)
    n, lab = cv2.connectedComponents(cand.astype(np.uint8), connectivity=8)
    if n < 2:
        return cand
    grow = cv2.dilate(lab.astype(np.float32), np.ones((5, 5), np.uint8)).astype(int)
    ring = (grow > 0) & ~cand
    area = np.bincount(lab.ravel(), minlength=n)
    rn = np.bincount(grow[ring], minlength=n)
    rm = np.bincount(grow[ring], weights=gray[ring], minlength=n) / np.maximum(rn, 1)
    # up against the lashes (most of the blob above the lash line) a gap between lashes passes all
    # that: there only a blob most of the way from the iris's brightness to the sclera's counts
    peak = np.zeros(n)
    np.maximum.at(peak, lab.ravel(), gray.ravel())
    below = np.bincount(lab[seen], minlength=n) >= 0.5 * area
    strong = peak > med + SPEC_LASH * (np.percentile(gray[core], 90) - med)
    inner = np.bincount(lab.ravel(), weights=r.ravel(), minlength=n) < SPEC_R * R * np.maximum(area, 1)
    ok = (area <= SPEC_AREA * R * R) & (rn > 0) & (rm < thr) & (below | strong) & inner
    ok[0] = False
    return ok[lab] & cand


def nearest(mask):
    """(ys, xs): for every pixel, the nearest pixel where `mask` is True."""
    _, lab = cv2.distanceTransformWithLabels((~mask).astype(np.uint8), cv2.DIST_L2, 3, labelType=cv2.DIST_LABEL_PIXEL)
    ys, xs = np.nonzero(mask)
    order = lab[mask] - 1  # label of each mask pixel, in np.nonzero order
    ly, lx = np.empty(order.max() + 1 if order.size else 1, int), np.empty(order.max() + 1 if order.size else 1, int)
    ly[order], lx[order] = ys, xs
    return ly[lab - 1], lx[lab - 1]


def curve(pts, xs):
    o = np.argsort(pts[:, 0])
    return np.interp(xs, pts[o, 0], pts[o, 1])


DARK_K = 0.35  # the lashes end where a column rises this far from its darkest to its brightest
CORNER_FADE = 2.0  # columns over which the warp's stretch gives way to the uncovered eye at the corners
FRINGE = 0.88  # below the band, darker than this of the column's white is still the lid's
SHADE = 0.92  # the lid's shadow on the sclera ends where it is this bright of its column's best
OUT_MAX, SCL_MAX = 0.13, 0.18
MISS_MAX, R_AGREE = 0.2, 0.15
GAIN_TO, GAIN_FADE = 0.3, 0.1  # the shade's lift: read above cy - GAIN_TO R, fading over GAIN_FADE R


def eye_model(gray, lab, core, u_s, l_s, iod):
    IOD[0] = iod
    circ = iris_circle(gray, core, lab)
    if circ is None:
        return None
    cx, cy, R, f, fthr = circ
    H0, W0 = gray.shape
    gx0, gy0 = np.meshgrid(np.arange(W0, dtype=np.float64), np.arange(H0, dtype=np.float64))
    r0 = np.hypot(gx0 - cx, gy0 - cy)
    irisp = (f > fthr) & core
    near = irisp & (r0 < 1.6 * R)
    out_frac = float((near & (r0 > R + 1)).sum() / max(near.sum(), 1))
    vis = core & (r0 < R - 1)
    scl_in = float((vis & ~irisp).sum() / max(vis.sum(), 1))
    if out_frac > OUT_MAX or scl_in > SCL_MAX:
        DEBUG.setdefault("why", []).append("fit")
        return None  # the circle does not fit the iris the photo shows: keep the stretch
    if not 0.035 <= R / iod <= 0.08:
        return None
    H, W = gray.shape
    gx, gy = np.meshgrid(np.arange(W, dtype=np.float64), np.arange(H, dtype=np.float64))
    r = np.hypot(gx - cx, gy - cy)
    # sclera: near the brightest of the opening's colour and as bright (the lid's skin strip under
    # the mesh's lid line is close in colour but darker)
    sclera = core & (f < fthr) & (r > R + 1) & (gray > 0.85 * np.percentile(gray[core], 90))
    cols = np.arange(W)
    has = sclera.any(0)
    first = np.where(has, sclera.argmax(0), 0)
    run = np.zeros(W, int)
    lit = np.zeros(W)
    for x in np.flatnonzero(has):
        col = sclera[first[x]:, x]
        run[x] = col.argmin() if not col.all() else col.size
        v = gray[first[x]:first[x] + run[x], x]
        if v.size >= 3:
            lit[x] = np.argmax(v >= SHADE * v.max())  # rows of shadow under the lashes
    away = has & (run >= 3) & ((cols < cx - R - 1) | (cols > cx + R + 1))
    if away.sum() < 2:
        return None
    opening = np.median(np.maximum(l_s - u_s, 0)[away])
    lash = float(np.clip(np.median(first[away] - u_s[away]), 0, 0.35 * opening))
    shadow = float(np.clip(np.median(lit[away]), 0, 0.25 * opening))
    # the band that moves with the lid: lashes everywhere, and their shadow on the sclera beside the iris
    near_iris = np.clip((R + 2 - np.abs(cols - cx)) / 2, 0, 1)
    # the lashes' depth column by column (the mesh's lid can ride above the real margin, most at
    # the inner corner), carried across the iris's columns and smoothed
    # where the lashes end: each column's steepest dark-to-bright step going down from the lid (the
    # sclera's brightness itself falls into the corners' shade)
    step = np.diff(cv2.GaussianBlur(gray, (0, 0), 0.7), axis=0)
    rows = np.arange(H - 1)[:, None] + 0.5
    reach = (rows > u_s[None, :]) & (rows < (u_s + 0.7 * np.maximum(l_s - u_s, 0))[None, :])
    margin = np.where(reach, step, -np.inf).argmax(0) + 1.0
    # ... but never below the lashes' dark: the first row past each column's darkest that is
    # DARK_K of the way up to the brightest below it (a shaded sclera's ramp is not lashes)
    G = cv2.GaussianBlur(gray, (0, 0), 0.7)
    yy = np.arange(H)[:, None]
    inr = (yy > u_s[None, :]) & (yy < (u_s + 0.7 * np.maximum(l_s - u_s, 0))[None, :])
    ilo = np.where(inr, G, np.inf).argmin(0)
    lo = G[ilo, cols]
    after = inr & (yy > ilo[None, :])
    hi = np.where(after, G, -np.inf).max(0)
    rise = after & (G > (lo + DARK_K * (hi - lo))[None, :])
    cross = np.where(rise.any(0), rise.argmax(0), margin)
    # columns whose darkest row (over the whole opening) lies below the band's reach: the lashes
    # meet the lower lid there (a corner the mesh's lid lines ride above), nothing to uncover
    full = (yy > u_s[None, :]) & (yy < l_s[None, :] + 1)
    shut = np.where(full, G, np.inf).argmin(0) > u_s + 0.7 * np.maximum(l_s - u_s, 0)
    side_cols = reach.any(0) & ((cols < cx - R - 1) | (cols > cx + R + 1))
    if side_cols.sum() < 2:
        return None

    def across(m_):  # a column's depth below the lid, carried across the iris's columns and smoothed
        p_ = np.interp(cols, cols[side_cols], (m_ - u_s)[side_cols])
        p_ = np.convolve(np.pad(p_, 2, mode="edge"), np.ones(5) / 5, mode="valid")
        return np.clip(p_, 0, 0.6 * np.maximum(l_s - u_s, 0))
    per = across(np.minimum(margin, cross))  # what moves with the lid
    band = per + shadow * (1 - near_iris)
    lash = across(margin)  # the iris is read only below the steepest step (the lid's shade above it)
    return dict(shut=shut, sclera=sclera, cx=cx, cy=cy, R=R, band=band, r=r, lash=lash, shadow=shadow)


def uncover(warped, mapping, image, src, dst, region):
    """Keep the iris round under a raised lid: the mesh's stretched iris is replaced by the sclera
    beside it (interpolated along each row) and the photo's own iris disc painted where it was,
    completed round its centre where the lid used to cover it."""
    iod = float(np.hypot(*(src[263, :2] - src[33, :2])))
    todo = []
    for eye, up, lo in ((EYE_L, LID_UP_L, LID_LO_L), (EYE_R, LID_UP_R, LID_LO_R)):
        ring_s, ring_d = src[eye, :2].astype(np.float64), dst[eye, :2].astype(np.float64)
        box = region.box(np.concatenate([ring_s, ring_d]), 3)
        if box is None:
            return None
        x0, y0, x1, y1 = box
        origin = np.array([region.x0 + x0, region.y0 + y0], np.float64)
        shape = (y1 - y0, x1 - x0)
        old, new = _inside(ring_s, origin, shape), _inside(ring_d, origin, shape)
        crop = image[region.y0 + y0:region.y0 + y1, region.x0 + x0:region.x0 + x1]
        gray = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY).astype(np.float32)
        core = cv2.erode((old > 0.5).astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
        xs = np.arange(shape[1]) + origin[0]
        ends = [eye[0], eye[8]]  # the corners close both lid curves
        u_s, l_s = curve(src[ends + up, :2], xs) - origin[1], curve(src[ends + lo, :2], xs) - origin[1]
        u_d = curve(dst[ends + up, :2], xs) - origin[1]
        if (u_s - u_d).max() < 1:
            return None
        lab = cv2.cvtColor(crop.astype(np.float32) / 255, cv2.COLOR_RGB2LAB)
        m = eye_model(gray, lab, core, u_s, l_s, iod)
        if m is None:
            return None  # both eyes alike, or neither
        todo.append((box, origin, shape, new, core, gray, u_s, u_d, m))
    Rs = [t[-1]["R"] for t in todo]
    if abs(Rs[0] - Rs[1]) > R_AGREE * max(Rs):
        DEBUG.setdefault("why", []).append("radii")
        return None  # two irises of one face are one size
    touched = np.zeros(warped.shape[:2], bool)
    painted = []
    for (x0, y0, x1, y1), origin, (H, W), new, core, gray, u_s, u_d, m in todo:
        DEBUG.setdefault("eyes", []).append({k: round(float(np.median(m[k])), 2) for k in ("cx", "cy", "R", "lash", "shadow")})
        gx, gy = np.meshgrid(np.arange(W, dtype=np.float64), np.arange(H, dtype=np.float64))
        cx, cy, R, r, band = m["cx"], m["cy"], m["R"], m["r"], m["band"]
        t_s = u_s + band  # below this row the photo's eyeball stays where it is
        d = gy - u_d[None, :]

        def sample(sx, sy):
            return cv2.remap(image, (sx + origin[0]).astype(np.float32), (sy + origin[1]).astype(np.float32),
                             cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT).astype(np.float32)

        # zones, each with a pixel's soft edge: the lid's band (lashes and their shadow, moving
        # with the lid), the uncovered eyeball, the photo's own eyeball
        w_band = np.clip(band[None, :] - d + 0.5, 0, 1)
        w_rev = np.clip(t_s[None, :] - gy + 0.5, 0, 1) * (1 - w_band)
        # the band in (depth below the lid, column): over the iris it is the lashes beside it,
        # carried across (the photo's rows there hold the iris's top, which must not ride up)
        cols = np.arange(W)
        depth = np.arange(int(np.ceil(band.max())) + 2, dtype=np.float64)
        B = sample(np.broadcast_to(cols[None, :].astype(np.float64), (depth.size, W)), u_s[None, :] + depth[:, None])
        clear = np.hypot(cols[None, :] - cx, u_s[None, :] + depth[:, None] - cy) > R + 1
        for j in range(depth.size):
            if 2 <= clear[j].sum() < W:
                B[j] = np.stack([np.interp(cols, cols[clear[j]], B[j, clear[j], c]) for c in range(3)], 1)
        lid = cv2.remap(B, gx.astype(np.float32), np.clip(d, 0, depth[-1]).astype(np.float32), cv2.INTER_LINEAR,
                        borderMode=cv2.BORDER_REPLICATE)
        own = sample(gx, gy)
        # uncovered sclera: each column's first clean row below the band, softened across columns
        cols = np.arange(W)
        # uncovered sclera: each column's own sclera below the band (its median: the first row
        # can still be in a corner's shade), carried across the iris's columns, softened
        sclera = m["sclera"] & (gy > t_s[None, :])
        clean = (sclera.sum(0) >= 2) & (np.abs(cols - cx) > R + 1)  # over the iris: carried across from beside it
        if clean.sum() < 2:
            return None
        crop = image[int(origin[1]):int(origin[1]) + H, int(origin[0]):int(origin[0]) + W].astype(np.float32)
        def col_median(mask):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # columns without the mask: NaN, unused
                return np.nanmedian(np.where(mask[..., None], crop, np.nan), axis=0)
        row = col_median(sclera)
        # beyond the outermost clean columns (the corners' shade): the column's own opening, its
        # brighter half (the lashes and the lid's skin strip are darker than the shaded sclera)
        cl = np.flatnonzero(clean)
        white = core & (r > R + 1)  # never the iris's own columns' colour
        outer = (white.sum(0) >= 1) & ((cols < cl[0]) | (cols > cl[-1])) & (np.abs(cols - cx) > R + 1)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            half = np.nanmedian(np.where(white, gray, np.nan), axis=0)
        row = np.where(outer[:, None], col_median(white & (gray >= half[None, :])), row)
        known = clean | outer
        row = np.stack([np.interp(cols, cols[known], row[known, c]) for c in range(3)], 1).astype(np.float32)
        row = cv2.GaussianBlur(row[None], (0, 0), sigmaX=1.5, sigmaY=0.01)[0]
        scl = np.broadcast_to(row[None], (H, W, 3))
        # uncovered iris: the same radius at the nearest angle the photo shows (mirrored below
        # first), never a catchlight
        seen = core & (gy > (u_s + m["lash"])[None, :]) & (r < R + 0.5)
        # catchlights: whatever on the iris below the lashes is brighter than half its contrast to
        # the sclera, and the ringed blobs `catchlights` finds well inside it, the lash line included
        ig = gray[seen]
        spec = seen & (gray > (np.median(ig) + 0.5 * (np.percentile(gray[core], 90) - np.median(ig)) if ig.size else 255))
        spec |= catchlights(gray, core & (r < R + 0.5), seen, core, R, r)
        glint = cv2.dilate(spec.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))) > 0
        usable = seen & ~glint
        # the old lid's shade on the photo's iris: each row above the centre against its mirror below
        # (the same chord), outside the pupil; lifted where the lid rises (never darkened)
        ring = usable & (r > 0.6 * R) & (r < R - 0.5)
        G = np.where(ring, gray, np.nan)
        cnt = ring.sum(1)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # rows without the ring: NaN, unused
            med = np.nanmedian(G, axis=1)
        ys_ = np.arange(H)
        mir = np.clip(np.round(2 * cy - ys_).astype(int), 0, H - 1)
        okr = (cnt >= 2) & (cnt[mir] >= 2) & (ys_ < cy - GAIN_TO * R)
        gain = np.ones(H)
        gain[okr] = np.clip(med[mir][okr] / np.maximum(med[okr], 1), 1, 1.6)
        gain = np.maximum.accumulate(np.where(ys_ < cy, gain, 1)[::-1])[::-1]  # more shade nearer the lid
        if okr.any():  # below the last row read, the shade fades (a step in the lift reads as a line)
            yl = np.flatnonzero(okr)[-1]
            gain = np.where(ys_ > yl, 1 + (gain[yl] - 1) * np.exp(-(ys_ - yl) / (GAIN_FADE * R)), gain)
        gmap = (1 + (gain[:, None] - 1) * np.clip(R + 0.5 - r, 0, 1)).astype(np.float32)
        crop_ds = crop * gmap[..., None]
        # the pupil need not sit at the circle's centre (often a pixel or two lower): the iris is
        # read as a rubber sheet, the pupil's centre moved onto the circle's and the limbus kept
        # (y' = y - drop * s(r'), s 1 inside the pupil and 0 at the limbus), turned there at the same
        # radius and moved back; a mirror about the circle's centre row alone draws the pupil's
        # lower edge above the photo's pupil (a dark bar where the fill meets the photo's iris)
        drop, rp = pupil_drop(gray, usable, cx, cy, R)
        DEBUG.setdefault("drop", []).append(round(drop, 2))

        def s_(rr):
            return np.clip((R - rr) / max(R - rp - 1, 1), 0, 1) if drop else 0 * rr
        yc = gy - drop * s_(r)
        for _ in range(2):
            yc = gy - drop * s_(np.hypot(gx - cx, yc - cy))
        rc = np.hypot(gx - cx, yc - cy)
        beta = np.arcsin(np.clip((cy - yc) / np.maximum(rc, 1e-6), -1, 1))
        side = np.where(gx >= cx, 1.0, -1.0)
        ix, iy = gx.copy(), gy.copy()
        found = np.zeros(gx.shape, bool)
        # the mirror below first (at the same radius or a little inside it), the angles nearer
        # the lid's shade only after: mixing the two, row by row, reads as stripes
        tries = [(k, f) for f in (-1, -0.66, -0.33) for k in (1.0, 0.85, 0.7)]
        tries += [(k, f) for k in (1.0, 0.85, 0.7) for f in (0, 0.33, 0.66)]
        for k, f_ in tries:
            el = f_ * beta
            px, py = cx + side * k * rc * np.cos(el), cy - k * rc * np.sin(el) + drop * s_(k * rc)
            pxi = np.clip(np.round(px).astype(int), 0, W - 1)
            pyi = np.clip(np.round(py).astype(int), 0, H - 1)
            ok = usable[pyi, pxi] & ~found
            ix, iy = np.where(ok, px, ix), np.where(ok, py, iy)
            found |= ok
        uncovered = (r < R) & (gy < t_s[None, :]) & new.astype(bool)
        if uncovered.any() and (uncovered & ~found).sum() > MISS_MAX * uncovered.sum():
            DEBUG.setdefault("why", []).append("polar")
            return None  # the circle's centre is off: the photo's iris is not where it says
        if (~found).any() and usable.any():
            ny, nx = nearest(usable)
            ix, iy = np.where(found, ix, nx), np.where(found, iy, ny)
        iris = cv2.remap(crop_ds, ix.astype(np.float32), iy.astype(np.float32), cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        own = own * gmap[..., None]
        # the photo's own catchlights stay where they were (the cornea's, not the lid's)
        keep = cv2.GaussianBlur((cv2.dilate(spec.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0).astype(np.float32), (0, 0), 0.7)
        keep = keep[..., None]
        iris = iris * (1 - keep) + own * keep
        a_iris = np.clip(R - r + 0.5, 0, 1)[..., None]
        rev = scl * (1 - a_iris) + iris * a_iris
        # the lashes' fringe and shade that the photo shows below the band would be left as a line
        # across the eyeball: the uncovered part reaches down, column by column, to the first row
        # of the photo's eyeball that is not darker than what it uncovers
        lum = np.array([0.299, 0.587, 0.114], np.float32)
        og, rg = (cv2.GaussianBlur(np.ascontiguousarray(v @ lum), (0, 0), 0.8) for v in (own, rev))
        below_t = gy >= np.floor(t_s)[None, :]
        dark = (og < FRINGE * rg) & core
        run = np.cumprod(np.where(below_t, dark, True), axis=0).astype(bool) & below_t
        ext = np.minimum(run.sum(0), np.where(np.abs(cols - cx) > R + 1, 0.5, 0.35) * R)
        w_rev = np.clip((t_s + ext)[None, :] - gy + 0.5, 0, 1) * (1 - w_band)
        # the lid shades the top of the uncovered eyeball as it shaded the photo's
        below = d - band[None, :]
        shade = (1 - 0.15 * np.clip(1 - below / max(2 * m["shadow"], 1.0), 0, 1)) * (1 - 0.08 * np.exp(-np.maximum(below, 0) / (0.4 * R)))
        out = w_band[..., None] * lid + (w_rev * shade)[..., None] * rev + (1 - w_band - w_rev)[..., None] * own
        # the corners: where the photo shows no eyeball in a column (the lashes meet the lower lid)
        # there is nothing to uncover; the warp's own stretch stays, fading in over CORNER_FADE columns
        eyeball = ((m["sclera"].sum(0) >= 2) | (np.abs(cols - cx) <= R)) & ~m["shut"]
        ec = np.flatnonzero(eyeball)
        if not ec.size:
            return None
        colw = np.clip(np.minimum(cols - ec[0], ec[-1] - cols) / CORNER_FADE + 1, 0, 1)
        new = new * colw[None, :].astype(new.dtype)
        painted.append(((y0, y1, x0, x1), out, new))
        if DEBUG.get("keep"):
            DEBUG.setdefault("zones", []).append(dict(box=(x0, y0, x1, y1), w_band=w_band, w_rev=w_rev, a_iris=a_iris[..., 0],
                                                      u_s=u_s, l_s=l_s, u_d=u_d, t_s=t_s, cx=cx, cy=cy, R=R, new=new, found=found, band=band,
                                                      src=image[int(origin[1]):int(origin[1]) + H, int(origin[0]):int(origin[0]) + W].copy(),
                                                      warp=warped[y0:y1, x0:x1].copy(), out=out, iris=iris, own=own, lid=lid, rev=rev, ix=ix, iy=iy, usable=usable, gain=gain))
    for (y0, y1, x0, x1), out, new in painted:
        a = new[..., None]
        tile = warped[y0:y1, x0:x1].astype(np.float32)
        warped[y0:y1, x0:x1] = np.clip(tile * (1 - a) + out * a + 0.5, 0, 255).astype(warped.dtype)
        touched[y0:y1, x0:x1] |= new > 0
    return touched if touched.any() else None


def install() -> None:
    """Wire `uncover` in after the mesh warp wherever `eyes.fixed_eyeballs` declined (a raised lid)."""
    import pipeline.engines.geometric as G
    from pipeline.engines.geometric import eyes, warp
    cap: dict = {}
    bm, fe, remap = warp.backward_map, eyes.fixed_eyeballs, warp.remap

    def backward_map(src, dst, region):
        cap.update(src=src, dst=dst, region=region)
        return bm(src, dst, region)

    def fixed_eyeballs(mapping, src, dst, region):
        out = fe(mapping, src, dst, region)
        cap["fixed"] = out is not None
        return out

    def remapped(base, mapping):
        out = remap(base, mapping)
        if not cap.get("fixed") and "src" in cap:
            uncover(out, mapping, base, cap["src"], cap["dst"], cap["region"])
        return out

    G.warp.backward_map, G.eyes.fixed_eyeballs, G.warp.remap = backward_map, fixed_eyeballs, remapped


def main(argv: list[str]) -> None:
    from pipeline.editor import detect, edit
    from pipeline.engines.geometric import mouthbank
    emotion, out, ids = argv[0], Path(argv[1]), argv[2:]
    london = Path("../shared/data/faces/london")
    rows = []
    for uncovered in (False, True):
        if uncovered:
            install()
        d = out / ("uncovered" if uncovered else "stretch")
        d.mkdir(parents=True, exist_ok=True)
        for i in ids:
            rgb, faces = detect(london / f"{i}_neutral.jpg")
            with mouthbank.leaving_out(i):
                img = edit(rgb, emotion, 1.0, detections=faces, gate=False).image
            cv2.imwrite(str(d / f"{i}.jpg"), cv2.cvtColor(img, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95])
            if uncovered:
                print(i, DEBUG.pop("why", None) or "painted")
                DEBUG.clear()
    for i in ids:
        rgb, faces = detect(london / f"{i}_neutral.jpg")
        lm = faces[0].landmarks[:, :2]
        iod = float(np.linalg.norm(lm[33] - lm[263]))
        c = (lm[33] + lm[263]) / 2
        x0, x1, y0, y1 = int(c[0] - 0.62 * iod), int(c[0] + 0.62 * iod), int(c[1] - 0.17 * iod), int(c[1] + 0.12 * iod)
        tiles = [cv2.resize(cv2.imread(str(out / k / f"{i}.jpg"))[y0:y1, x0:x1], (480, int(480 * (y1 - y0) / (x1 - x0))))
                 for k in ("stretch", "uncovered")]
        rows.append(np.hstack(tiles))
    h = min(r.shape[0] for r in rows)
    cv2.imwrite(str(out / "sheet.png"), np.vstack([r[:h] for r in rows]))


if __name__ == "__main__":
    main(sys.argv[1:])
