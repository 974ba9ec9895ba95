"""Rebuild weights/mouth_bank.npz: real mouth interiors from the London smiles that show teeth.

    python scripts/build_mouth_bank.py [--faces ../shared/data/faces/london] [--choose [--n 20]]

Each smile's interior is rectified into the canonical mouth frame (pipeline/engines/geometric/
mouthbank.py: W x H = 96 x 48, rows scaled by the mouth's width); the shipped smiles (SHIPPED), or
with --choose N exemplars spread evenly over the openings' aspect ratios, are kept, with the photo's
skin colour and grain (to relight and re-grain
them for another photo) and the tallest upper-teeth band seen in any of the smiles (the bound the
renderer and the tests keep to). Photos: Face Research Lab London Set (DeBruine & Jones 2017),
CC BY 4.0; the face ids are stored for attribution.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from weights_file import save_npz

from pipeline.datasets import SHARED_FACES
from pipeline.editor import detect
from pipeline.engines.geometric import mouth, mouthbank


# The shipped bank's smiles. They were chosen spread over the openings' aspects among the smiles
# that showed teeth then (29); the teeth rule has changed since (31 show teeth now), and spreading
# over those picks 12 other smiles: every edit that paints an interior would change. So the
# script rebuilds these by default; --choose picks afresh (then update weights/README.md).
SHIPPED = "020 004 013 132 032 139 094 034 120 102 010 061 099 064 002 036 103 117 129 025".split()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--faces", type=Path, default=SHARED_FACES / "london")
    ap.add_argument("--n", type=int, default=20)
    ap.add_argument("--out", type=Path, default=mouthbank.BANK_PATH)
    ap.add_argument("--choose", action="store_true",
                    help="pick N smiles afresh, spread over the openings' aspects, instead of the shipped ones")
    a = ap.parse_args(argv)
    rows = []
    heights = []
    for path in sorted(a.faces.glob("*_happy.jpg")):
        rgb, faces = detect(path)
        if not faces:
            continue
        lm = faces[0].landmarks
        if not mouth.teeth_showing(rgb, lm):
            continue
        inner, valid = mouthbank.rectify(rgb, lm)
        f = mouthbank.frame(lm)
        skin = mouthbank.skin_colour(rgb, lm)
        heights.append(mouthbank.teeth_height(inner, valid, skin))
        # The photo's grain at the exemplar's scale: a cheek patch shrunk like the interior was.
        k = mouthbank.W / f.width
        small = cv2.resize(rgb, None, fx=k, fy=k, interpolation=cv2.INTER_AREA)
        cx, cy = np.round(lm[205, :2] * k).astype(int)
        patch = small[max(cy - 6, 0):cy + 7, max(cx - 6, 0):cx + 7]
        rows.append((f.aspect(), path.name.split("_")[0], inner, (valid * 255).astype(np.uint8), skin,
                     mouthbank.grain(patch)))
    print(f"{len(rows)} smiles show teeth; upper-teeth height / width: max {max(heights):.3f}, "
          f"median {np.median(heights):.3f}")
    rows.sort(key=lambda r: r[0])
    if a.choose:
        keep = np.unique(np.round(np.linspace(0, len(rows) - 1, min(a.n, len(rows)))).astype(int))
    else:
        keep = [k for k, r in enumerate(rows) if r[1] in SHIPPED]
        missing = set(SHIPPED) - {rows[k][1] for k in keep}
        if missing:
            raise SystemExit(f"shipped smiles not found or not showing teeth: {sorted(missing)}")
    rows = [rows[i] for i in keep]
    saved = save_npz(a.out, aspect=np.array([r[0] for r in rows], np.float32), ids=np.array([r[1] for r in rows]),
                     interiors=np.stack([r[2] for r in rows]), valid=np.stack([r[3] for r in rows]),
                     skin=np.array([r[4] for r in rows], np.float32), noise=np.array([r[5] for r in rows], np.float32),
                     teeth_h_max=np.float32(max(heights)))
    print(f"{a.out}: {len(rows)} exemplars (ids {' '.join(r[1] for r in rows)}), aspects "
          f"{rows[0][0]:.3f}..{rows[-1][0]:.3f}, {saved}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
