"""Landmark accuracy of the face mesh against the hand-placed London points.

    python scripts/landmark_accuracy.py

Error per point = distance / inter-pupil distance (the usual normalisation); prints the mean over
points and people, the per-point means, and the worst people.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a plain script from anywhere

import numpy as np

from pipeline.datasets import TEM_PUPILS, london_ids, london_photo, mesh_at_tem, read_tem
from pipeline.detection import detect_faces
from pipeline.imageio import load_image


def errors(photo, tem_path):
    tem = read_tem(tem_path)
    faces = detect_faces(load_image(photo).rgb)
    if not faces:
        return None
    pts, keys = mesh_at_tem(faces[0].landmarks)
    iod = np.linalg.norm(tem[TEM_PUPILS[0]] - tem[TEM_PUPILS[1]])
    return np.linalg.norm(pts - tem[keys], axis=1) / iod, keys


def main():
    rows, missed = [], []
    for fid in london_ids():
        r = errors(london_photo(fid), london_photo(fid).with_suffix(".tem"))
        if r is None:
            missed.append(fid)
            continue
        rows.append((fid, r[0]))
        keys = r[1]
    err = np.stack([e for _, e in rows])
    print(f"London neutral: {len(rows)} faces, {len(missed)} missed {missed}")
    print(f"normalised mean error (by inter-pupil distance): {err.mean():.4f}  median face {np.median(err.mean(1)):.4f}  worst face {err.mean(1).max():.4f}")
    print("per template point:", " ".join(f"{k}:{v:.3f}" for k, v in zip(keys, err.mean(0))))
    worst = sorted(rows, key=lambda r: -r[1].mean())[:3]
    print("worst:", ", ".join(f"{fid} {e.mean():.3f}" for fid, e in worst))
    return 0 if not missed else 1


if __name__ == "__main__":
    sys.exit(main())
