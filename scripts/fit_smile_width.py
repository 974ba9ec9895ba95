"""Fit `expression.WIDTH_PER_AU12`: how much wider a real smile makes the mouth per unit of AU12
that `expression.estimate` reads, so that taking a smile away returns the mouth to about the
person's neutral width (the mean smile field alone left it 0.055 IOD too narrow: a pursed mouth).

On the London people of one half (`--split tune`, the default: the value in the code was fitted
there), for each smile that the planner relaxes (AU12 read): smile width - own neutral width
(`measures_canonical`, IOD units) regressed on the AU12 read, through the origin. Prints the fit
and, for each half, the width error of the current planner's neutral against each person's own
neutral photo.

    python scripts/fit_smile_width.py [--split tune] [--faces ../shared/data/faces/london]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.datasets import london_split  # noqa: E402
from pipeline.editor import detect  # noqa: E402
from pipeline.engines.geometric import expression as ex  # noqa: E402


def _width(lm: np.ndarray) -> float:
    return ex.measures_canonical(ex.pose_of(lm).to_canonical(lm.astype(np.float64)))["mouth_width"]


def rows(faces: Path, split: str) -> np.ndarray:
    """(n, 4): own neutral width, smile width, planned neutral width, AU12 read, per relaxed smile."""
    out = []
    for i in london_split(split):
        _, neutral = detect(faces / f"{i}_neutral.jpg")
        _, smile = detect(faces / f"{i}_happy.jpg")
        lm = smile[0].landmarks
        au12 = ex.estimate(ex.pose_of(lm).to_canonical(lm.astype(np.float64))).get("AU12", 0.0)
        if au12 <= 0:
            continue
        out.append([_width(neutral[0].landmarks), _width(lm), _width(ex.plan(lm, "neutral", 1.0).target), au12])
    return np.array(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--faces", type=Path, default=Path(__file__).resolve().parents[2] / "shared/data/faces/london")
    ap.add_argument("--split", default="tune", choices=("tune", "report"))
    a = ap.parse_args()
    r = rows(a.faces, a.split)
    beta = float(np.linalg.lstsq(r[:, 3:4], r[:, 1] - r[:, 0], rcond=None)[0][0])
    err = r[:, 2] - r[:, 0]
    print(f"{a.split}: {len(r)} relaxed smiles; WIDTH_PER_AU12 fit = {beta:.3f} (in the code: {ex.WIDTH_PER_AU12})")
    print(f"planned neutral width - own neutral width: mean {err.mean():+.4f}, mean |err| {np.abs(err).mean():.4f} IOD")


if __name__ == "__main__":
    main()
