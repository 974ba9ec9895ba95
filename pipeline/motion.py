"""What the pixels show moved: dense optical flow between the input and the edited image.

An independent check of an edit that does not trust the plan and does not depend on a landmark
model's priors (the face mesh pulls unusual shapes, such as a one-sided smile, back towards a
symmetric face). Used by the gate's contempt check and by the tests.
"""
from __future__ import annotations

import cv2
import numpy as np


def observed_motion(before: np.ndarray, after: np.ndarray, points: np.ndarray, box, size: int = 256) -> np.ndarray:
    """Motion (n, 2) in image pixels of `points` (image coords) from `before` to `after`, measured
    by Farneback flow on the `box` (x0, y0, x1, y1) crop scaled to `size` px."""
    x0, y0, x1, y1 = (int(round(v)) for v in box)
    h, w = before.shape[:2]
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    k = size / max(x1 - x0, y1 - y0)
    g = [cv2.resize(cv2.cvtColor(im[y0:y1, x0:x1], cv2.COLOR_RGB2GRAY), None, fx=k, fy=k, interpolation=cv2.INTER_AREA)
         for im in (before, after)]
    flow = cv2.calcOpticalFlowFarneback(g[0], g[1], None, 0.5, 4, 21, 5, 7, 1.5, 0)
    p = np.clip(np.round((points[:, :2] - [x0, y0]) * k).astype(int), 0, [g[0].shape[1] - 1, g[0].shape[0] - 1])
    # Median over a small neighbourhood: flow at a single pixel is noisy.
    r = max(1, size // 64)
    out = []
    for px, py in p:
        patch = flow[max(py - r, 0):py + r + 1, max(px - r, 0):px + r + 1].reshape(-1, 2)
        out.append(np.median(patch, 0))
    return np.array(out) / k
