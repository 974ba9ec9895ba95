"""Access to the licensed real photos used for grounding, tests and evaluation.

The Face Research Lab London Set (DeBruine & Jones 2017, CC BY 4.0) lives in ../shared/data/faces
(68 people, a neutral and a smiling photo each, 189 hand-placed points on the neutral ones); a few
copies live in tests/data so the suite also runs without it. See tests/data/ATTRIBUTION.md.
"""
from __future__ import annotations

import csv
from functools import lru_cache
from pathlib import Path

import numpy as np

from .config import REPO, settings
from .errors import InvalidRequest

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


SPLITS = ("tune", "report", "all")
SPLIT_SEED = 12  # fixed: the halves must never change, or "held out" stops meaning anything


def london_groups() -> dict[str, str]:
    """face id -> ethnicity group from the London info.csv (empty without the shared photos)."""
    path = SHARED_FACES / "london" / "info.csv"
    if not path.is_file():
        return {}
    with open(path, newline="") as f:
        return {r["face_id"]: r["ethnicity"] for r in csv.DictReader(f)}


@lru_cache(maxsize=1)
def _halves() -> dict[str, tuple[str, ...]]:
    """The London people in a TUNE and a REPORT half, stratified by ethnicity group: within each
    group (ids sorted, then shuffled with a fixed seed) people alternate between the halves, and a
    group of odd size gives its extra person to whichever half is smaller so far, so every group
    is in both halves and the halves differ in size by at most one."""
    groups = london_groups()
    ids = [i for i in london_ids() if i in groups] + [i for i in london_ids() if i not in groups]
    rng = np.random.default_rng(SPLIT_SEED)
    halves: dict[str, list[str]] = {"tune": [], "report": []}
    for g in sorted({groups.get(i, "?") for i in ids}):
        members = sorted(i for i in ids if groups.get(i, "?") == g)
        members = [members[k] for k in rng.permutation(len(members))]
        first, second = ("tune", "report") if len(halves["tune"]) <= len(halves["report"]) else ("report", "tune")
        for k, i in enumerate(members):
            halves[first if k % 2 == 0 else second].append(i)
    return {k: tuple(sorted(v)) for k, v in halves.items()}


def london_split(split: str) -> tuple[str, ...]:
    """Face ids of one half ("tune": recipes may be tuned on it; "report": never tuned on, the
    numbers we publish) or "all" of the London set."""
    if split not in SPLITS:
        raise InvalidRequest(f"Unknown split '{split}': use one of {', '.join(SPLITS)}.")
    return tuple(london_ids()) if split == "all" else _halves()[split]
