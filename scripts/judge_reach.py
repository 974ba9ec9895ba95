"""Which classes can each reader be made to say at all? Every face-edit the engine can make of one
half of the London people (their neutral and smiling photos, each emotion at 50%, 100% and 150%,
ungated) and the photos themselves, read by the gate's classifiers and the held-out PyEmotion judge:
per class, how often it is the reader's top class and its highest probability.

    python scripts/judge_reach.py [--split tune]

A class no edit and no photo ever makes a reader's top class (PyEmotion's "disgusted") is not a
target any recipe can be tuned to on that reader: what it reads there says more about the reader
than about the face. Its last layer shows why: `--weights` prints each class's weight-vector norm.
"""
import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a plain script from anywhere

import numpy as np

from pipeline.classify import face_api, judge, mini_xception
from pipeline.datasets import london_photo, london_split
from pipeline.editor import detect, edit
from pipeline.emotions import EMOTIONS
from pipeline.engines.geometric import mouthbank

LEVELS = (0.5, 1.0, 1.5)
CLASSES = [e for e in EMOTIONS if e != "contempt"]


def _weights() -> None:
    import onnx
    from onnx import numpy_helper

    from pipeline.classify import PyEmotionJudge
    from pipeline.config import WEIGHTS

    m = onnx.load(str(WEIGHTS / "emotion_pyemotion.onnx"))
    w = {i.name: numpy_helper.to_array(i) for i in m.graph.initializer}
    last = next(a for a in w.values() if a.ndim == 2 and a.shape[0] == 7)
    norms = np.linalg.norm(last, axis=1)
    print("PyEmotion last layer, weight-vector norm per class:",
          ", ".join(f"{k} {n:.2f}" for k, n in zip(PyEmotionJudge.fer_labels, norms)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--split", default="tune", choices=("tune", "report", "all"))
    ap.add_argument("--weights", action="store_true", help="also print PyEmotion's last-layer norms")
    a = ap.parse_args()
    readers = {"face-api": face_api(), "mini-Xception": mini_xception(), "PyEmotion": judge()}
    top = {r: dict.fromkeys(CLASSES, 0) for r in readers}
    peak = {r: dict.fromkeys(CLASSES, 0.0) for r in readers}
    n = 0
    for fid in london_split(a.split):
        for kind in ("neutral", "happy"):
            rgb, faces = detect(london_photo(fid, kind))
            images = [rgb]
            with mouthbank.leaving_out(fid):
                images += [edit(rgb, e, k, detections=faces[:1], gate=False).image for e in EMOTIONS for k in LEVELS]
            for img in images:
                n += 1
                for name, r in readers.items():
                    p = r.predict(img, faces[:1])[0]
                    top[name][max(p, key=p.get)] += 1
                    for c in CLASSES:
                        peak[name][c] = max(peak[name][c], p[c])
    print(f"{n} images ({a.split} half: photos and every edit at {', '.join(f'{k:.0%}' for k in LEVELS)})")
    print("| reader | " + " | ".join(CLASSES) + " |")
    print("|---" * (len(CLASSES) + 1) + "|")
    for name in readers:
        print(f"| {name} | " + " | ".join(f"{top[name][c]} ({peak[name][c]:.4f})" for c in CLASSES) + " |")
    print("cells: images whose top class it is (its highest probability on any image)")
    if a.weights:
        _weights()


if __name__ == "__main__":
    main()
