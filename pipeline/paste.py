"""Paste a rendered face back into the full-resolution image: the one compositing step every
engine shares. A bool mask copies exactly (pixels outside it stay bit-identical); a float mask is
an alpha (a diffusion crop fades into the photo)."""
from __future__ import annotations

import cv2
import numpy as np


def compose(base_roi: np.ndarray, pixels: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The region's new values: `pixels` where `mask` says, `base_roi` elsewhere (a new array)."""
    roi = base_roi.copy()
    if mask.dtype == bool:
        cv2.copyTo(pixels, mask.view(np.uint8), roi)
        return roi
    a = np.clip(mask, 0.0, 1.0).astype(np.float32)[..., None]
    blend = base_roi.astype(np.float32) * (1 - a) + pixels.astype(np.float32) * a
    roi[:] = np.clip(blend + 0.5, 0, 255).astype(np.uint8)
    return roi


def paste(out: np.ndarray, region: tuple[int, int, int, int], roi: np.ndarray | None) -> None:
    """Write a composed region into `out` (in place); None = nothing to write."""
    if roi is not None:
        x0, y0, x1, y1 = region
        out[y0:y1, x0:x1] = roi
