"""Rebuild weights/lip_bank.npz: real closed lips from the London neutral photos.

    python scripts/build_lip_bank.py [--faces ../shared/data/faces/london]

Each neutral photo whose lips are closed (no teeth, no dark opening) is cut
out level with the mouth's corners (pipeline/engines/geometric/lipbank.py: 192 x 128 px, corners
128 px apart) and stored as JPEG (quality 95) with its face-mesh landmarks in the cut-out, its lip
thickness and its mean lip colour. Photos: Face Research Lab London Set (DeBruine & Jones 2017),
CC BY 4.0; the face ids are stored for attribution and so evaluations can leave a person out.
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
from pipeline.engines.geometric import lipbank, mouth, mouthbank


PAIRS = list(zip(mouth._UPPER_INNER, mouth._LOWER_INNER))
SEARCH = 3  # cut-out pixels beyond the two inner-lip points where the meeting line is looked for


def on_the_line(cut: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """The landmarks with each pair of inner-lip points moved onto the line where the lips meet:
    the darkest row (grey, smoothed) between them in the cut-out (level, so columns are vertical).
    On closed lips the mesh often leaves the upper inner points a few pixels up on the lip (105):
    warped onto a target's meeting line, the real line then landed beside it."""
    g = cv2.GaussianBlur(cut.astype(np.float32).mean(-1), (3, 3), 0)
    out = pts.copy()
    for u, lo in PAIRS:
        x = int(round((pts[u, 0] + pts[lo, 0]) / 2))
        y0 = int(np.floor(min(pts[u, 1], pts[lo, 1]))) - SEARCH
        y1 = int(np.ceil(max(pts[u, 1], pts[lo, 1]))) + SEARCH + 1
        y = y0 + int(np.argmin(g[y0:y1, x]))
        out[u] = out[lo] = (pts[u, 0] + pts[lo, 0]) / 2, y
    return out


# Cut-out pixels (median over the mouth) between the mesh's met inner lips and the real meeting
# line that `mouth.on_meeting_line` finds, beyond which an exemplar is left out: `on_the_line` only
# searches SEARCH pixels, and the exemplar's line, warped onto a target's, then crossed it in a
# jagged dark crack (061's dark lips, 7.7 px off, on 042's closed smile; every other London
# neutral 0.6-3.6 px).
OFF_LINE = 2 * SEARCH


def off_the_line(rgb: np.ndarray, lm: np.ndarray, m: np.ndarray) -> float:
    """Median distance (cut-out pixels, `m` the cut transform) the engine's meeting-line finder
    moves the met inner lips of `lm` in the photo `rgb`."""
    d = mouth.on_meeting_line(rgb, lm)[mouth._UPPER_INNER, :2] - lm[mouth._UPPER_INNER, :2]
    return float(np.median(np.hypot(*(d @ m[:, :2].T).T)))


def teeth_on_line(cut, pts, rgb, lm) -> bool:
    """Whether enamel shows along the meeting line (103's neutral shows a tooth between its lips)."""
    band = np.zeros(cut.shape[:2], np.uint8)
    line = pts[mouth._UPPER_INNER]
    cv2.polylines(band, [np.round(line).astype(np.int32)], False, 1, 5)
    return float(mouth._enamel(cut[band > 0], rgb, lm).mean()) > 0.003  # 103: 0.007; the others: 0


RED_NEAR, RED_KEPT = 5.0, 0.3  # Lab a* over the skin's near the line, and the share left 3/4 of the way out


def mesh_overshoots(cut: np.ndarray, pts: np.ndarray) -> bool:
    """Whether the mesh puts an outer lip edge well out on the skin: on lips redder than the skin
    (Lab a* more than RED_NEAR over it near the line), less than RED_KEPT of that redness is left
    three quarters of the way to the mesh's outer edge (021: 0.02, its thin upper lip drawn twice as
    thick). Warped onto another mouth, that skin landed inside the lips as a pale line."""
    a = cv2.GaussianBlur(cv2.cvtColor(cut, cv2.COLOR_RGB2LAB)[..., 1].astype(np.float32), (5, 5), 0)

    def red(p, q, f):
        x, y = np.clip(np.round(p + (q - p) * f), 0, [cut.shape[1] - 1, cut.shape[0] - 1]).astype(int)
        return a[y, x]

    for pairs in (((13, 0), (82, 37), (312, 267)), ((14, 17), (87, 84), (317, 314))):
        v = np.mean([[red(pts[i], pts[o], f) - red(pts[i], pts[o], 1.6) for f in (0.25, 0.75)] for i, o in pairs], 0)
        if v[0] > RED_NEAR and v[1] < RED_KEPT * v[0]:
            return True
    return False


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--faces", type=Path, default=SHARED_FACES / "london")
    ap.add_argument("--out", type=Path, default=lipbank.BANK_PATH)
    a = ap.parse_args(argv)
    rows, skipped = [], []
    for path in sorted(a.faces.glob("*_neutral.jpg")):
        rgb, faces = detect(path)
        fid = path.name.split("_")[0]
        if not faces:
            skipped.append(f"{fid} (no face)")
            continue
        lm = faces[0].landmarks
        if mouth.teeth_showing(rgb, lm) or mouth._dark_opening(rgb, lm):
            skipped.append(f"{fid} (lips apart)")
            continue
        # Full lips whose inner edges the landmarker puts apart on the red: met half-way, as the
        # engine sees them, so the exemplar's meeting line lands on the target's.
        lm = mouth.meet_closed_lips(rgb, lm)
        m = lipbank.cut_transform(lm)
        cut = cv2.warpAffine(rgb, m, (lipbank.WIDTH, lipbank.HEIGHT), flags=cv2.INTER_AREA,
                             borderMode=cv2.BORDER_REFLECT101)
        pts = on_the_line(cut, lm[:, :2].astype(np.float64) @ m[:, :2].T + m[:, 2])
        if off_the_line(rgb, lm, m) > OFF_LINE:
            skipped.append(f"{fid} (mesh off the meeting line)")
            continue
        if teeth_on_line(cut, pts, rgb, lm):
            skipped.append(f"{fid} (teeth between the lips)")
            continue
        if mesh_overshoots(cut, pts):
            skipped.append(f"{fid} (mesh lip edge on the skin)")
            continue
        ok, jpg = cv2.imencode(".jpg", cv2.cvtColor(cut, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95])
        rows.append((fid, jpg.ravel(), pts.astype(np.float32), lipbank.lip_shape(lm), mouth._lip_colour(rgb, lm),
                     mouthbank.skin_colour(rgb, lm)))
    saved = save_npz(a.out, ids=np.array([r[0] for r in rows]),
                     jpeg=np.concatenate([r[1] for r in rows]), jpeg_sizes=np.array([len(r[1]) for r in rows]),
                     landmarks=np.stack([r[2] for r in rows]).astype(np.float16),
                     shape=np.array([r[3] for r in rows], np.float32), lips=np.array([r[4] for r in rows], np.float32),
                     skin=np.array([r[5] for r in rows], np.float32))
    print(f"{a.out}: {len(rows)} exemplars; skipped {', '.join(skipped) or 'none'}; {saved}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
