"""Dense warp of the face region from sparse landmark motion.

Piecewise-affine on one fixed triangulation of the landmarks plus a ring of fixed anchors around
the face (made once on the mean face): every destination pixel is mapped back to the source through
the triangle it lies in. The map is evaluated on a coarse grid (at most `GRID` nodes a side) and its displacement
upsampled to the region of interest, so big faces cost little more than small ones; the image is then
resampled once with `cv2.remap`. The displacement is exactly zero on and beyond the anchor ring, so
pixels outside it are untouched.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from ...mesh import (
    EYE_L,
    EYE_R,
    FACE_OVAL,
    LID_LO_L,
    LID_LO_R,
    LID_UP_L,
    LID_UP_R,
    LIPS_OUTER,
    STABLE,
)
from .expression import model, umeyama

GRID = 96  # coarse nodes along the longer side of the region
RING_SCALE = 1.45  # anchor ring, relative to the face oval about its centre
RING_POINTS = 48


@dataclass
class Region:
    x0: int
    y0: int
    x1: int
    y1: int

    @property
    def slices(self):
        return slice(self.y0, self.y1), slice(self.x0, self.x1)

    @property
    def shape(self):
        return self.y1 - self.y0, self.x1 - self.x0

    def box(self, pts: np.ndarray, pad: float = 0.0) -> tuple[int, int, int, int] | None:
        """(x0, y0, x1, y1) in region pixels round image points `pts` plus `pad` px, within the
        region; None when nothing of it is."""
        h, w = self.shape
        x0, y0 = np.maximum(np.floor(pts.min(0) - [self.x0, self.y0] - pad).astype(int), 0)
        x1, y1 = np.minimum(np.ceil(pts.max(0) - [self.x0, self.y0] + pad).astype(int) + 1, [w, h])
        return None if x1 <= x0 or y1 <= y0 else (int(x0), int(y0), int(x1), int(y1))


def lid_openings(src: np.ndarray, dst: np.ndarray, up, lo) -> tuple[float, float]:
    """One eye's mean lid-to-lid opening (image pixels) before (`src`) and after (`dst`)."""
    return float((src[lo, 1] - src[up, 1]).mean()), float((dst[lo, 1] - dst[up, 1]).mean())


def nonzero_box(a: np.ndarray):
    """(y0, y1, x0, x1) bounding the non-zero entries of a 2-D array, or None when there are
    none: from its row and column projections, ~10x faster than np.nonzero on a region-sized mask."""
    rows, cols = np.flatnonzero(a.any(1)), np.flatnonzero(a.any(0))
    if not len(rows):
        return None
    return rows[0], rows[-1] + 1, cols[0], cols[-1] + 1


def ring_around(mean: np.ndarray) -> np.ndarray:
    """The canonical anchor ring: an ellipse around the mean face oval, RING_SCALE times its extent."""
    oval = mean[FACE_OVAL, :2]
    c = oval.mean(0)
    ext = np.abs(oval - c).max(0) * RING_SCALE
    t = np.linspace(0, 2 * np.pi, RING_POINTS, endpoint=False)
    return np.stack([np.cos(t) * ext[0], np.sin(t) * ext[1]], 1) + c


@lru_cache(maxsize=1)
def _topology() -> tuple[np.ndarray, np.ndarray]:
    """Canonical anchor ring and one fixed triangulation of (mesh + ring), made once on the mean
    face (Delaunay, by scripts/build_expression_model.py; stored so scipy is not needed here).
    A fixed topology, rather than re-triangulating each destination, keeps the map one-to-one when
    points meet, e.g. an upper lid closing onto the lower one."""
    m = model()
    return ring_around(m.mean.astype(np.float64)), m.tri_ring


def anchor_ring(src: np.ndarray) -> np.ndarray:
    """Fixed points around the face (the canonical ring placed by the face's own 2-D pose):
    where the warp fades to zero."""
    ring, _ = _topology()
    mean = model().mean[:, :2].astype(np.float64)
    s, r, t = umeyama(mean[STABLE], src[STABLE, :2].astype(np.float64))
    return ring @ (s * r).T + t


def region_for(src: np.ndarray, shape: tuple[int, int]) -> Region:
    ring = anchor_ring(src)
    h, w = shape
    x0, y0 = np.floor(ring.min(0)).astype(int)
    x1, y1 = np.ceil(ring.max(0)).astype(int) + 1
    return Region(int(max(x0, 0)), int(max(y0, 0)), int(min(x1, w)), int(min(y1, h)))


def _corner_box(tri: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(T, 2) min and max corner of each (T, 3, 2) triangle: three elementwise passes, several
    times faster than numpy's reduction over an axis of length 3."""
    a, b, c = tri[:, 0], tri[:, 1], tri[:, 2]
    return np.minimum(np.minimum(a, b), c), np.maximum(np.maximum(a, b), c)


_TOUCHING: dict[bytes, np.ndarray] = {}


def _touching(tris: np.ndarray) -> np.ndarray:
    """(T, K) for each triangle the triangles sharing a corner with it (itself included), -1
    padded; made once per triangulation (the engine's and the few the data builders use)."""
    key = tris.tobytes()
    if key not in _TOUCHING:
        n = int(tris.max()) + 1
        inc = np.zeros((len(tris), n), bool)
        inc[np.repeat(np.arange(len(tris)), 3), tris.ravel()] = True
        adj = (inc.astype(np.uint8) @ inc.T.astype(np.uint8)) > 0
        counts = adj.sum(1)
        rows, cols = np.nonzero(adj)  # row-major: each triangle's neighbours in turn
        out = np.full((len(tris), int(counts.max())), -1, np.int64)
        out[rows, np.arange(len(rows)) - np.repeat(np.cumsum(counts) - counts, counts)] = cols
        _TOUCHING[key] = out
    return _TOUCHING[key]


def _barycentric(tri: np.ndarray, det: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """(n, C, 3) barycentric weights of points `pts` (n, 2) in triangles `tri` (n or 1, C, 3, 2) whose
    doubled signed areas are `det` (as `_exact` computes them, corner 2 as the origin)."""
    e1, e2 = tri[..., 0, :] - tri[..., 2, :], tri[..., 1, :] - tri[..., 2, :]
    q = pts[:, None] - tri[..., 2, :]
    b0 = (q[..., 0] * e2[..., 1] - q[..., 1] * e2[..., 0]) / det
    b1 = (e1[..., 0] * q[..., 1] - e1[..., 1] * q[..., 0]) / det
    return np.stack([b0, b1, 1 - b0 - b1], -1)


def _exact(s_all, d_all, tris, origin, step: float, nx: int, ny: int):
    """The piecewise-affine map at the nodes of a grid (`origin` + step * (i, j)): absolute source
    coordinates (ny, nx, 2) float32, and which nodes lie in a triangle."""
    v = (d_all[tris] - origin) / step  # (T, 3, 2) in grid units
    e1, e2 = v[:, 0] - v[:, 2], v[:, 1] - v[:, 2]
    det = e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]  # signed area x 2
    lo, hi = _corner_box(v)
    on_grid = (hi[:, 0] >= -1) & (hi[:, 1] >= -1) & (lo[:, 0] <= nx) & (lo[:, 1] <= ny)
    ok = (np.abs(det) > 1e-9) & on_grid  # a small box needs only the few triangles over it
    label = np.full((ny, nx), -1, np.int32)
    pts = np.round(v * 16).astype(np.int32)
    # Folded (flipped) triangles first, so that proper ones drawn after them win where they overlap.
    facing = np.sign(det) * np.sign(np.median(det[np.abs(det) > 1e-9]))  # -1 folded, 1 proper
    order = np.argsort(facing)
    draw = order[ok[order]]
    # ~900 tiny triangles a call: per-iteration Python overhead (indexing, keywords) is most of the cost.
    for tri, k in zip(pts[draw], draw.tolist()):
        cv2.fillConvexPoly(label, tri, k, cv2.LINE_8, 4)
    # One affine per triangle (grid -> source pixels), then 6 multiply-adds per node.
    dm = np.concatenate([v, np.ones((len(v), 3, 1))], 2)  # rows: (x, y, 1) of each corner
    aff = np.zeros((len(v), 2, 3), np.float32)
    aff[ok] = np.linalg.solve(dm[ok], s_all[tris[ok]]).transpose(0, 2, 1)
    gy, gx = np.nonzero(label >= 0)
    k = label[gy, gx]
    a = aff[k]
    out = np.empty((ny, nx, 2), np.float32)
    out[..., 0] = (np.arange(nx, dtype=np.float32) * step + origin[0])[None]
    out[..., 1] = (np.arange(ny, dtype=np.float32) * step + origin[1])[:, None]
    fx, fy = gx.astype(np.float32), gy.astype(np.float32)
    out[gy, gx, 0] = a[:, 0, 0] * fx + a[:, 0, 1] * fy + a[:, 0, 2]
    out[gy, gx, 1] = a[:, 1, 0] * fx + a[:, 1, 1] * fy + a[:, 1, 2]
    # A node the raster gives to a sliver of a triangle (a lip corner squeezed thin) can lie just
    # outside it, where that triangle's affine extrapolates far: 081's smile took one pixel from
    # 360 px away (a white speck beside the corner). Only triangles whose affine stretches a node
    # step by more than `slack` (a node spacing and a pixel: how far outside a triangle the raster
    # reaches) can throw a node that far, so only their nodes are checked. Such a node, if it lies
    # outside the triangle that took it, takes the map of the triangle it really lies in (a proper
    # one, the largest if several), else it is moved onto its own triangle (barycentric weights
    # clipped at zero). Clipped to the source box instead, it landed a few pixels off its neighbours
    # (t1.jpg: a lower-lip pixel 4 px up, a lid pixel on the lashes: specks).
    slack = 1.0 + 1.5 * step
    risky = np.abs(aff[:, :, :2]).sum(2).max(1) > slack
    sel = np.nonzero(risky[k])[0]
    if len(sel):
        pts = np.stack([gx[sel], gy[sel]], 1).astype(np.float64)
        bary = _barycentric(v[k[sel]][:, None], det[k[sel]][:, None], pts)[:, 0]  # (n, 3)
        off = bary.min(1) < -1e-6  # outside the triangle that took it
        sel, pts, bary = sel[off], pts[off], bary[off]
    if len(sel):
        ys, xs = gy[sel], gx[sel]
        # The raster spills less than a node, so the triangle a node lies in shares a corner with
        # the one that took it.
        cand = _touching(tris)[k[sel]]  # (n, K), -1 padded
        proper = ok & (facing > 0)
        b_all = _barycentric(v[cand], np.where(proper, det, 1.0)[cand], pts)  # (n, K, 3)
        inside = (b_all >= -1e-9).all(2) & (cand >= 0) & proper[cand]
        best = np.where(inside, np.abs(det[cand]), -1.0).argmax(1)
        found = inside[np.arange(len(sel)), best]
        a = aff[cand[np.arange(len(sel)), best]]
        exact = np.stack([a[:, 0, 0] * xs + a[:, 0, 1] * ys + a[:, 0, 2],
                          a[:, 1, 0] * xs + a[:, 1, 1] * ys + a[:, 1, 2]], 1)
        w = np.clip(bary, 0, None)
        onto = np.einsum("nk,nkc->nc", w / w.sum(1, keepdims=True), s_all[tris[k[sel]]])
        out[ys, xs] = np.where(found[:, None], exact, onto)
    return out, label >= 0


# Thin features whose edges the coarse map would blur: lips that part or close (first: exact at
# every pixel), lids that close.
FINE = (LIPS_OUTER, EYE_L + LID_UP_L, EYE_R + LID_UP_R)
HULL_BAND = 0.08  # IOD beyond the face's hull over which the warp fades out
FINE_STEP = 1 / 110  # IOD between the feature boxes' map nodes (at least a pixel)
FINE_PAD = 0.12  # IOD around each feature (source and destination), so the seam lies on skin


OUTLINE_BAND = 0.15  # IOD either side of the face's outline where a folded map is smoothed
UNFOLD_ROUNDS = 16


def _unfold_outline(nodes: np.ndarray, ident: np.ndarray, dst: np.ndarray, origin: np.ndarray,
                    step: float, iod: float) -> np.ndarray:
    """The node map with folds near the face's outline smoothed out. The mesh's outline triangles
    are thin where the face turns away, and a dropped jaw or a smile's far corner can carry a point
    across the outline: the map folds there, and the jaw's or cheek's edge against the background
    came out hard and stepped, with a pale notch (139's fear and surprise; t1.jpg's turned faces).
    Cells whose map turns over have the motion at their corners replaced by the mean of their
    neighbours', up to UNFOLD_ROUNDS times; only within OUTLINE_BAND of the outline, so the
    closing lids' and lips' own slivers stay."""
    near = np.zeros(nodes.shape[:2], np.uint8)
    oval = np.round((dst[FACE_OVAL, :2] - origin) / step * 16).astype(np.int32)
    cv2.polylines(near, [oval], True, 1, max(1, int(round(2 * OUTLINE_BAND * iod / step))), cv2.LINE_8, shift=4)
    near = near[:-1, :-1] > 0
    disp = nodes - ident
    for k in range(UNFOLD_ROUNDS):
        p = ident + disp
        a, b = p[:-1, 1:] - p[:-1, :-1], p[1:, :-1] - p[:-1, :-1]  # each cell's two edges
        bad = ((a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0]) <= 0) & near
        if not bad.any():
            if k == 0:
                return nodes  # nothing folded: the map as it was, bit for bit
            break
        corners = np.zeros(nodes.shape[:2], bool)
        for dy in (0, 1):
            for dx in (0, 1):
                corners[dy:dy + bad.shape[0], dx:dx + bad.shape[1]] |= bad
        mean = cv2.blur(disp, (3, 3), borderType=cv2.BORDER_REPLICATE)
        disp = np.where(corners[..., None], mean, disp)
    return (ident + disp).astype(nodes.dtype)


def _smooth_corners(fine: np.ndarray, ident: np.ndarray, dst: np.ndarray, origin: np.ndarray,
                    iod: float) -> np.ndarray:
    """Closed lips' exact (one node a pixel) map with its motion smoothed round the mouth's
    corners. The map is piecewise affine: the thin line where the lips meet, crossing the thin
    triangles at a corner pulled aside (contempt), kinked at every edge, a dashed, jagged line
    zoomed in (005, 014). A Gaussian of LIP_SMOOTH IOD, blended in over LIP_SMOOTH_REACH IOD
    round each corner (over the whole lips it moved the gate's reading of borderline faces)."""
    disp = fine - ident
    soft = cv2.GaussianBlur(disp, (0, 0), LIP_SMOOTH * iod)
    yy, xx = np.mgrid[0:fine.shape[0], 0:fine.shape[1]]
    w = np.zeros(fine.shape[:2], np.float32)
    for c in dst[[61, 291], :2] - origin:
        w = np.maximum(w, np.exp(-((xx - c[0]) ** 2 + (yy - c[1]) ** 2) / (2 * (LIP_SMOOTH_REACH * iod) ** 2)))
    return ident + disp + (soft - disp) * w[..., None]


def backward_map(src: np.ndarray, dst: np.ndarray, region: Region) -> tuple[np.ndarray, np.ndarray]:
    """(h, w, 2) float32 source coordinates (image pixels) for each destination pixel of `region`,
    and the (h, w) bool mask of pixels that move at all."""
    ring = anchor_ring(src)
    _, tris = _topology()
    s_all = np.concatenate([src[:, :2], ring]).astype(np.float64)
    d_all = np.concatenate([dst[:, :2], ring]).astype(np.float64)
    h, w = region.shape
    step = max(1.0, max(h, w) / GRID)
    nx, ny = int(np.ceil(w / step)) + 1, int(np.ceil(h / step)) + 1
    origin = np.array([region.x0, region.y0], np.float64)
    nodes, _ = _exact(s_all, d_all, tris, origin, step, nx, ny)
    ident = np.stack(np.meshgrid(np.arange(nx) * step + origin[0], np.arange(ny) * step + origin[1]), -1)
    # Nothing outside the face moves: the motion fades to zero within HULL_BAND of the hull of
    # the face before and after (so a dropped jaw still carries the skin under it), and hair,
    # ears and background keep their pixels even where the anchor ring lies beyond them.
    iod = float(np.hypot(*(src[263, :2] - src[33, :2])))
    hull = cv2.convexHull(np.concatenate([src[:, :2], dst[:, :2]]).astype(np.float32))[:, 0].astype(np.float64)
    # A dropped jaw drags the skin below it: the band grows by how far the chin drops (along the
    # face's own down axis, so a tilted head counts the same).
    eyes = src[263, :2] - src[33, :2]
    down = np.array([-eyes[1], eyes[0]]) / max(iod, 1e-6)
    band = HULL_BAND * iod + max(0.0, float((dst[152, :2] - src[152, :2]) @ down))
    # Distance to the hull from an exact (Euclidean) transform of its raster at 4x the node grid:
    # steps of a quarter node, too fine to show in a fade this wide.
    sub = 4
    inside = np.zeros(((ny - 1) * sub + 1, (nx - 1) * sub + 1), np.uint8)
    cv2.fillConvexPoly(inside, np.round((hull - origin) / step * sub * 16).astype(np.int32), 1, cv2.LINE_8, 4)
    # Only nodes nearer than `band` fade: the transform runs on the hull's box plus that margin (on
    # node-aligned bounds, so the same nodes are sampled); every node beyond it has fade 0, as before.
    y0, y1, x0, x1 = nonzero_box(inside)
    pad = int(np.ceil(band / step * sub)) + sub
    y0, x0 = max(y0 - pad, 0) // sub * sub, max(x0 - pad, 0) // sub * sub
    y1, x1 = min(y1 + pad, inside.shape[0]), min(x1 + pad, inside.shape[1])
    dist = np.full((ny, nx), np.inf, np.float32)
    dist[y0 // sub:(y1 - 1) // sub + 1, x0 // sub:(x1 - 1) // sub + 1] = cv2.distanceTransform(
        1 - inside[y0:y1, x0:x1], cv2.DIST_L2, cv2.DIST_MASK_PRECISE)[::sub, ::sub] * (step / sub)
    fade = np.clip(1 - dist / band, 0, 1)
    fade = (fade * fade * (3 - 2 * fade)).astype(np.float32)
    nodes = (ident + (nodes - ident) * fade[..., None]).astype(np.float32)
    nodes = _unfold_outline(nodes, ident, dst, origin, step, iod)
    moved_nodes = (np.abs(nodes - ident) > 1e-3).any(-1).astype(np.uint8)
    # Upsample (the map, not the image): node k sits at pixel k*step. Absolute source coordinates
    # are upsampled directly: bilinear interpolation reproduces the identity part exactly.
    m = np.float32([[1 / step, 0, 0], [0, 1 / step, 0]])
    big = cv2.warpAffine(nodes, m, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                         borderMode=cv2.BORDER_REPLICATE)
    # A pixel can move only next to a node that moves: dilate one node, then nearest-upsample.
    moved_nodes = cv2.dilate(moved_nodes, np.ones((3, 3), np.uint8))
    moved = cv2.warpAffine(moved_nodes, m, (w, h), flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP,
                           borderMode=cv2.BORDER_REPLICATE).astype(bool)
    if step > 1:
        # Feature boxes: the map every FINE_PX of an IOD (a pixel on small faces), upsampled into
        # the box; only where the feature moves by more than half a pixel.
        for k, idx in enumerate(FINE):
            if np.abs(dst[idx, :2] - src[idx, :2]).max() < 0.5:
                continue
            if k == 0:
                # Closing lips leave a sliver of a pixel or two: exact there.
                gap = float(np.hypot(*(dst[14, :2] - dst[13, :2]))) / iod
                fstep = 1.0 if gap < 0.05 else max(1.0, iod * FINE_STEP)
            else:
                # Lids: only when the eye's opening changes by a fifth or more (AU43, AU5, AU7).
                before, after = lid_openings(src, dst, *((LID_UP_L, LID_LO_L) if k == 1 else (LID_UP_R, LID_LO_R)))
                if abs(after - before) < 0.2 * abs(before):
                    continue
                fstep = max(1.0, iod * FINE_STEP)
            pts = np.concatenate([src[idx, :2], dst[idx, :2]])
            x0, y0 = np.floor(pts.min(0) - FINE_PAD * iod).astype(int) - [region.x0, region.y0]
            x1, y1 = np.ceil(pts.max(0) + FINE_PAD * iod).astype(int) - [region.x0, region.y0]
            x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
            if x1 <= x0 or y1 <= y0:
                continue
            bw, bh = x1 - x0, y1 - y0
            fnx, fny = int(np.ceil(bw / fstep)) + 1, int(np.ceil(bh / fstep)) + 1
            fine, inside = _exact(s_all, d_all, tris, origin + [x0, y0], fstep, fnx, fny)
            # The same fade as the coarse map, so the box has no seam near the face's edge.
            mb = np.float32([[fstep / step, 0, x0 / step], [0, fstep / step, y0 / step]])  # box node -> coarse node
            f_box = cv2.warpAffine(fade, mb, (fnx, fny), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                                   borderMode=cv2.BORDER_REPLICATE)
            ident_box = np.stack(np.meshgrid(np.arange(fnx, dtype=np.float32) * fstep + origin[0] + x0,
                                             np.arange(fny, dtype=np.float32) * fstep + origin[1] + y0), -1)
            fine = ident_box + (fine - ident_box) * f_box[..., None]
            fine = _unfold_outline(fine, ident_box, dst, origin + [x0, y0], fstep, iod)
            if k == 0 and fstep == 1.0:
                fine = _smooth_corners(fine, ident_box, dst, origin + [x0, y0], iod)
            if fstep > 1:
                mf = np.float32([[1 / fstep, 0, 0], [0, 1 / fstep, 0]])
                fine = cv2.warpAffine(fine, mf, (bw, bh), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                                      borderMode=cv2.BORDER_REPLICATE)
                inside = cv2.warpAffine(inside.view(np.uint8), mf, (bw, bh), flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP,
                                        borderMode=cv2.BORDER_REPLICATE).astype(bool)
            # copyto with a mask: no gather/scatter through index arrays, ~3x faster.
            np.copyto(big[y0:y1, x0:x1], fine[:bh, :bw], where=inside[:bh, :bw, None])
    _close_lids(big, src, dst, region)
    return big, moved


CLOSED = 0.9  # an eye whose opening shrinks by this much is closed (AU43 near 1): nothing of it may show
CREASE = 0.13  # IOD above the upper lid's margin: the top of the lid skin that slides down
LASH = -0.012  # IOD below the margin where the band ends (above it: the margin landmarks can lie on the white)
BELOW = 0.04  # IOD below the lower lid's landmarks the lid reaches (they lie inside the white)


def _lid(lm: np.ndarray, corners, lid) -> tuple[np.ndarray, np.ndarray]:
    pts = lm[[corners[0], *lid, corners[1]], :2]
    pts = pts[np.argsort(pts[:, 0])]
    return pts[:, 0], pts[:, 1]


def _close_lids(mapping: np.ndarray, src: np.ndarray, dst: np.ndarray, region: Region) -> None:
    """A closing eye, in place in `mapping`: the upper lid's own skin, from the crease down to
    its lashes, slides down over the whole eye to the lower lid. Warping the mesh alone leaves a
    sliver of eyeball, since the lid margins the landmarker sees lie a pixel or two inside the
    white; this band leaves none."""
    iod = float(np.hypot(*(src[263, :2] - src[33, :2])))
    h, w = mapping.shape[:2]
    for corners, up, lo in (((33, 133), LID_UP_L, LID_LO_L), ((362, 263), LID_UP_R, LID_LO_R)):
        before, after = lid_openings(src, dst, up, lo)
        if before <= 0 or after > (1 - CLOSED) * before:
            continue
        xs_u, ys_u = _lid(src, corners, up)
        xd_l, yd_l = _lid(dst, corners, lo)
        x0 = int(np.floor(min(xs_u[0], xd_l[0]))) - region.x0
        x1 = int(np.ceil(max(xs_u[-1], xd_l[-1]))) + 1 - region.x0
        y0 = int(np.floor(ys_u.min() - CREASE * iod)) - region.y0
        y1 = int(np.ceil(max(yd_l.max(), ys_u.max()) + BELOW * iod)) + 2 - region.y0
        x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
        if x1 <= x0 or y1 <= y0:
            continue
        gx = np.arange(x0, x1) + region.x0 + 0.0
        gy = (np.arange(y0, y1) + region.y0 + 0.0)[:, None]
        top = np.interp(gx, xs_u, ys_u) - CREASE * iod  # the crease does not move
        margin = np.interp(gx, xs_u, ys_u) + LASH * iod  # source: where the band ends
        # Target: where the band ends; less below the lower lid towards the corners.
        lo_x, hi_x = max(xs_u[0], xd_l[0]), min(xs_u[-1], xd_l[-1])
        u = np.clip((gx - lo_x) / max(hi_x - lo_x, 1.0), 0, 1)
        arch = np.sqrt(np.sin(np.pi * u))
        meet = np.maximum(np.interp(gx, xd_l, yd_l) + BELOW * iod * arch, margin - LASH * iod)
        f = (gy - top) / np.maximum(meet - top, 1e-3)
        band = (f >= 0) & (f <= 1) & (u > 0) & (u < 1)
        box = mapping[y0:y1, x0:x1]
        # Blend into the mesh warp towards the corners and the crease, so no seam shows.
        wgt = np.clip(arch * 3, 0, 1)[None] * np.clip(f * 4, 0, 1)
        sy = top + f * (margin - top)
        for c, v in ((0, np.broadcast_to(gx, band.shape)), (1, sy)):
            ch = box[..., c]
            ch[band] = (ch * (1 - wgt) + v * wgt)[band]


LIP_SMOOTH, LIP_SMOOTH_REACH = 0.01, 0.15  # IOD: the corners' smoothing (`_smooth_corners`)
SQUEEZE_AA = (1.3, 2.0)  # map minification where antialiasing starts and is full
AA_MAX = 4  # samples a side at most


def antialias_squeezed(out: np.ndarray, img: np.ndarray, mapping: np.ndarray, region: Region,
                       pts: np.ndarray, pad: float) -> None:
    """Re-sample, with several samples a pixel, where the map squeezes the photo (in place in
    `out`, the region's warped pixels), in the box around `pts` (+ `pad` px). One bilinear sample
    a pixel skips thin features when many source pixels fall into one: pressed lips (anger) turned
    the dark line between them into a dashed, stair-stepped one."""
    h, w = mapping.shape[:2]
    x0, y0 = np.maximum(np.floor(pts.min(0) - pad).astype(int) - [region.x0, region.y0], 0)
    x1, y1 = np.minimum(np.ceil(pts.max(0) + pad).astype(int) - [region.x0, region.y0], [w, h])
    if x1 - x0 < 3 or y1 - y0 < 3:
        return
    m = mapping[y0:y1, x0:x1]
    gy, gx = np.gradient(m, axis=(0, 1))
    squeeze = np.maximum(np.hypot(gx[..., 0], gx[..., 1]), np.hypot(gy[..., 0], gy[..., 1]))
    wgt = np.clip((squeeze - SQUEEZE_AA[0]) / (SQUEEZE_AA[1] - SQUEEZE_AA[0]), 0, 1)
    if not wgt.any():
        return
    n = int(min(AA_MAX, np.ceil(squeeze.max())))
    bw, bh = x1 - x0, y1 - y0
    fine = cv2.resize(m, (bw * n, bh * n), interpolation=cv2.INTER_LINEAR)
    samples = cv2.remap(img, fine, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT101)
    aa = cv2.resize(samples, (bw, bh), interpolation=cv2.INTER_AREA).astype(np.float32)
    box = out[y0:y1, x0:x1]
    box[:] = np.clip(box * (1 - wgt[..., None]) + aa * wgt[..., None] + 0.5, 0, 255).astype(np.uint8)


def remap(img: np.ndarray, mapping: np.ndarray) -> np.ndarray:
    """Resample the whole image at `mapping` (absolute source coordinates). The (h, w, 2) map goes
    in as one two-channel map: split into x and y views it was copied into two arrays first, and
    the result is the same."""
    return cv2.remap(img, mapping, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT101)
