"""Access to the licensed real photos used for grounding, tests and evaluation.

The Face Research Lab London Set (DeBruine & Jones 2017, CC BY 4.0) lives in ../shared/data/faces
(68 people, a neutral and a smiling photo each, 189 hand-placed points on the neutral ones); a few
copies live in tests/data so the suite also runs without it. See tests/data/ATTRIBUTION.md.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .config import REPO, settings

SHARED_FACES = settings().faces
TEST_DATA = REPO / "tests" / "data"

# Hand-placed template point (FRL 189-point .tem) -> MediaPipe face-mesh index (or pair averaged).
# Chosen by the points' definitions (drawn and checked on 001_neutral): eye corners and lid
# midpoints, brow ends and peak, mouth corners, lip midpoints (outer and inner), chin.
TEM_TO_MESH: dict[int, tuple[int, ...]] = {
    18: (33,), 22: (133,), 23: (362,), 27: (263,),  # eye corners (image left, then right)
    20: (159,), 29: (145,), 25: (386,), 32: (374,),  # upper / lower lid midpoints
    72: (46, 70), 74: (105, 52), 76: (55, 107),  # brow (image left): outer, peak, inner
    77: (285, 336), 79: (334, 282), 81: (276, 300),  # brow (image right): inner, peak, outer
    87: (61,), 93: (291,),  # mouth corners
    90: (0,), 106: (17,), 96: (13,), 101: (14,),  # lip midpoints: outer top/bottom, inner top/bottom
    129: (152,),  # chin
}
TEM_PUPILS = (0, 1)


def read_tem(path: str | Path) -> np.ndarray:
    """Points of a webmorph .tem file: first line is the count, then 'x y' per point."""
    lines = Path(path).read_text().split("\n")
    n = int(lines[0])
    return np.array([[float(v) for v in line.split()[:2]] for line in lines[1:1 + n]], np.float32)


def mesh_at_tem(mesh: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The mesh points matching TEM_TO_MESH, and their template indices."""
    keys = list(TEM_TO_MESH)
    pts = np.stack([mesh[list(TEM_TO_MESH[k]), :2].mean(0) for k in keys])
    return pts, np.array(keys)


def london_ids() -> list[str]:
    d = SHARED_FACES / "london"
    return sorted(p.name.split("_")[0] for p in d.glob("*_neutral.jpg")) if d.is_dir() else []


def london_photo(face_id: str, kind: str = "neutral") -> Path:
    return SHARED_FACES / "london" / f"{face_id}_{kind}.jpg"
