"""Dense warp of the face region from sparse landmark motion.

Piecewise-affine on a Delaunay triangulation of the destination landmarks plus a ring of fixed
anchors around the face: every destination pixel is mapped back to the source through the triangle
it lies in. The map is evaluated on a coarse grid (at most `GRID` nodes a side) and its displacement
upsampled to the region of interest, so big faces cost little more than small ones; the image is then
resampled once with `cv2.remap`. The displacement is exactly zero on and beyond the anchor ring, so
pixels outside it are untouched.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from scipy.spatial import Delaunay

from .expression import FACE_OVAL

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


def anchor_ring(src: np.ndarray) -> np.ndarray:
    """Fixed points on an ellipse around the face oval: where the warp fades to zero."""
    oval = src[FACE_OVAL, :2]
    c = oval.mean(0)
    cov = np.cov((oval - c).T)
    evals, evecs = np.linalg.eigh(cov)
    # The oval's extent along its principal axes, enlarged; the face is taller below the eyes
    # (chin, jaw drop) so the ring is centred a little lower.
    ext = np.abs((oval - c) @ evecs).max(0) * RING_SCALE
    t = np.linspace(0, 2 * np.pi, RING_POINTS, endpoint=False)
    pts = np.stack([np.cos(t) * ext[0], np.sin(t) * ext[1]], 1) @ evecs.T + c
    return pts


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
    s_all = np.concatenate([src[:, :2], ring]).astype(np.float64)
    d_all = np.concatenate([dst[:, :2], ring]).astype(np.float64)
    h, w = region.shape
    step = max(1.0, max(h, w) / GRID)
    gx = np.arange(0, w + step, step)
    gy = np.arange(0, h + step, step)
    nodes = np.stack(np.meshgrid(gx + region.x0, gy + region.y0), -1).reshape(-1, 2)
    tri = Delaunay(d_all)
    simplex = tri.find_simplex(nodes)
    inside = simplex >= 0
    tr = tri.transform[simplex[inside]]
    b = np.einsum("nij,nj->ni", tr[:, :2], nodes[inside] - tr[:, 2])
    bary = np.concatenate([b, 1 - b.sum(1, keepdims=True)], 1)
    disp = np.zeros_like(nodes)
    verts = tri.simplices[simplex[inside]]
    disp[inside] = np.einsum("ni,nij->nj", bary, s_all[verts]) - nodes[inside]
    disp = disp.reshape(len(gy), len(gx), 2).astype(np.float32)
    # Upsample the displacement (not the image): node k sits at pixel k*step.
    big = cv2.resize(disp, (int(round(len(gx) * step)), int(round(len(gy) * step))), interpolation=cv2.INTER_LINEAR)
    # cv2.resize aligns pixel centres; shift so node k lands on pixel k*step, then crop.
    off = (step - 1) / 2
    m = np.float32([[1, 0, -off], [0, 1, -off]])
    big = cv2.warpAffine(big, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    moved = (np.abs(big) > 1e-3).any(-1)
    big[..., 0] += np.arange(region.x0, region.x1, dtype=np.float32)[None]
    big[..., 1] += np.arange(region.y0, region.y1, dtype=np.float32)[:, None]
    return big, moved


def remap(img: np.ndarray, mapping: np.ndarray) -> np.ndarray:
    """Resample the whole image at `mapping` (absolute source coordinates)."""
    return cv2.remap(img, mapping[..., 0], mapping[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT101)
