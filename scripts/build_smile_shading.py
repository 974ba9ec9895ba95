"""Rebuild weights/smile_shading.npz: how a real smile changes the skin's brightness, measured on
the London neutral -> smile pairs (the same people, the same light).

    python scripts/build_smile_shading.py [--faces ../shared/data/faces/london]

Both photos of a person are sampled into the canonical face frame through their own meshes
(pipeline/engines/geometric/foldmap.py), so the smile is aligned to the neutral geometry; the
log-ratio of their blurred brightness, less its median on the forehead (exposure), is the smile's
shading: nasolabial folds, raised cheeks, crow's feet. The per-pixel median over all pairs,
symmetrised, with the eyes and lips masked out (they change shape, not shading), is stored as int8.
Photos: Face Research Lab London Set (DeBruine & Jones 2017), CC BY 4.0.
"""
from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from weights_file import save_npz

from pipeline.datasets import SHARED_FACES
from pipeline.editor import detect
from pipeline.engines.geometric import foldmap
from pipeline.mesh import EYE_L, EYE_R, LIPS_OUTER


def _brightness(rgb, lm):
    where, inside = foldmap.face_to_canonical(lm)
    s = cv2.remap(rgb.astype(np.float32).mean(-1), where[..., 0], where[..., 1], cv2.INTER_LINEAR)
    return cv2.GaussianBlur(s, (0, 0), 1.0), inside


def _mask() -> np.ndarray:
    """Canonical pixels that keep their shape in a smile: not the eyes or lips (dilated)."""
    h, w = foldmap.grid_shape()
    mean = foldmap._mean_px()
    m = np.zeros((h, w), np.uint8)
    for idx, pad in ((EYE_L, 0.08), (EYE_R, 0.08), (LIPS_OUTER, 0.06)):
        cv2.fillPoly(m, [np.round(mean[idx]).astype(np.int32)], 1)
        k = 2 * int(pad * foldmap.PX) + 1
        m = np.maximum(m, cv2.dilate(m, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))))
    return m == 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--faces", type=Path, default=SHARED_FACES / "london")
    ap.add_argument("--out", type=Path, default=foldmap.MAP_PATH)
    a = ap.parse_args(argv)
    h, w = foldmap.grid_shape()
    forehead = (np.arange(h) / foldmap.PX + foldmap.Y0)[:, None] < -0.35
    keep = _mask()
    ratios = []
    for neutral in sorted(a.faces.glob("*_neutral.jpg")):
        smile = neutral.with_name(neutral.name.replace("_neutral", "_happy"))
        if not smile.exists():
            continue
        rn, fn = detect(neutral)
        rs, fs = detect(smile)
        if not fn or not fs:
            continue
        bn, inn = _brightness(rn, fn[0].landmarks)
        bs, ins = _brightness(rs, fs[0].landmarks)
        lr = np.log(bs + 4) - np.log(bn + 4)
        ok = inn & ins & keep
        lr -= np.median(lr[ok & forehead])
        lr[~ok] = np.nan
        ratios.append(lr)
    stack = np.stack(ratios)
    with warnings.catch_warnings():  # pixels no pair covers (masked everywhere) are NaN: expected
        warnings.simplefilter("ignore", RuntimeWarning)
        med = np.nanmedian(np.concatenate([stack, stack[:, :, ::-1]]), 0)  # symmetrised
    valid = np.isfinite(med)
    med[~valid] = 0
    # Fade out towards the masked eyes and lips and the mesh's edge: no seam where the map stops.
    fade = cv2.GaussianBlur(cv2.erode(valid.astype(np.float32), np.ones((5, 5), np.uint8)), (0, 0), 2.0)
    med = cv2.GaussianBlur(med, (0, 0), 0.7) * fade
    scale = float(np.abs(med).max() / 127) or 1.0
    q = np.round(med / scale).astype(np.int8)
    saved = save_npz(a.out, log_ratio=q, scale=np.float32(scale), n=np.int32(len(ratios)))
    print(f"{a.out}: {len(ratios)} pairs, map {w}x{h} at {foldmap.PX:.0f} px/IOD, log-ratio "
          f"{med.min():+.3f}..{med.max():+.3f}, {saved}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
