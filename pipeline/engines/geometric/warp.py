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

from ...mesh import FACE_OVAL, STABLE
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
    # Rasterise triangle ids on the coarse grid (destination positions), then barycentric per node.
    origin = np.array([region.x0, region.y0])
    v = (d_all[tris] - origin) / step  # (T, 3, 2) in grid units
    e1, e2 = v[:, 0] - v[:, 2], v[:, 1] - v[:, 2]
    det = e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]
    ok = np.abs(det) > 1e-9
    label = np.full((ny, nx), -1, np.int32)
    pts = np.round(v * 16).astype(np.int32)
    # Folded (flipped) triangles first, so that proper ones drawn after them win where they overlap.
    order = np.argsort(np.sign(det) * np.sign(np.median(det[ok])))
    for k in order[ok[order]]:
        cv2.fillConvexPoly(label, pts[k], int(k), lineType=cv2.LINE_8, shift=4)
    gy, gx = np.nonzero(label >= 0)
    k = label[gy, gx]
    q = np.stack([gx, gy], 1) - v[k, 2]
    inv = 1.0 / det[k]
    b0 = (q[:, 0] * e2[k, 1] - q[:, 1] * e2[k, 0]) * inv
    b1 = (e1[k, 0] * q[:, 1] - e1[k, 1] * q[:, 0]) * inv
    bary = np.stack([b0, b1, 1 - b0 - b1], 1)
    node = np.stack([gx, gy], 1) * step + origin
    disp = np.zeros((ny, nx, 2), np.float32)
    disp[gy, gx] = np.einsum("ni,nij->nj", bary, s_all[tris[k]]) - node
    # Upsample (the map, not the image): node k sits at pixel k*step. Absolute source coordinates
    # are upsampled directly: bilinear interpolation reproduces the identity part exactly.
    moved_nodes = (np.abs(disp) > 1e-3).any(-1).astype(np.uint8)
    disp[..., 0] += (np.arange(nx, dtype=np.float32) * step + region.x0)[None]
    disp[..., 1] += (np.arange(ny, dtype=np.float32) * step + region.y0)[:, None]
    m = np.float32([[1 / step, 0, 0], [0, 1 / step, 0]])
    big = cv2.warpAffine(disp, m, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                         borderMode=cv2.BORDER_REPLICATE)
    # A pixel can move only next to a node that moves: dilate one node, then nearest-upsample.
    moved_nodes = cv2.dilate(moved_nodes, np.ones((3, 3), np.uint8))
    moved = cv2.warpAffine(moved_nodes, m, (w, h), flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP,
                           borderMode=cv2.BORDER_REPLICATE).astype(bool)
    return big, moved


def remap(img: np.ndarray, mapping: np.ndarray) -> np.ndarray:
    """Resample the whole image at `mapping` (absolute source coordinates)."""
    return cv2.remap(img, mapping[..., 0], mapping[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT101)
