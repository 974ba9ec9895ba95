"""Measure same-person vs different-person similarity on the London set and suggest a threshold.

    python scripts/calibrate_identity.py [path/to/faces/london] [--embedder dlib,mobilefacenet]

    python scripts/calibrate_identity.py --edits [--limit 20]   # also: each emotion's edit vs its source
    python scripts/calibrate_identity.py --time                 # also: embed time per face

Same person = NNN_neutral vs NNN_happy (a real smile: the kind of change an edit makes).
Different people = every neutral/happy photo of one person vs every photo of another.
The suggested threshold is the different-people 99.9th percentile: a false-accept rate of 0.1%.
With --edits, the first --limit neutral photos (default all) are edited to each emotion at
intensity 1 (ungated) and compared with their source, to see where edits fall between the two
distributions. Several embedders (comma-separated, default dlib) are measured in one run on the
same detections and the same edits.
"""
from __future__ import annotations

import importlib
import sys
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.detection import detect_faces

EMBEDDERS = {
    "dlib": "pipeline.identity:DlibResNet",
    "mobilefacenet": "pipeline.backends.mobilefacenet:MobileFaceNet",
}


def load_embedder(name: str):
    mod, cls = EMBEDDERS[name].split(":")
    return getattr(importlib.import_module(mod), cls)()


def option(name: str, default: str | None = None) -> str | None:
    """The value of `--name value` or `--name=value` on the command line."""
    for i, a in enumerate(sys.argv):
        if a == f"--{name}" and i + 1 < len(sys.argv):
            return sys.argv[i + 1]
        if a.startswith(f"--{name}="):
            return a.split("=", 1)[1]
    return default


def embed_london(folder: Path, embedders: dict) -> tuple[list[str], dict[str, tuple[np.ndarray, np.ndarray]]]:
    """people, {embedder name: ((n, d) neutral embeddings, (n, d) happy embeddings)}."""
    people = sorted(p.stem.split("_")[0] for p in folder.glob("*_neutral.jpg"))
    emb = {}
    for person in people:
        for kind in ("neutral", "happy"):
            rgb = cv2.cvtColor(cv2.imread(str(folder / f"{person}_{kind}.jpg")), cv2.COLOR_BGR2RGB)
            faces = detect_faces(rgb)
            if len(faces) != 1:
                raise SystemExit(f"{person}_{kind}: {len(faces)} faces detected")
            for name, e in embedders.items():
                emb[name, person, kind] = e.embed(rgb, faces)[0]
    return people, {name: tuple(np.array([emb[name, p, k] for p in people]) for k in ("neutral", "happy"))
                    for name in embedders}


def report(name: str, embedder, people: list[str], neutral: np.ndarray, happy: np.ndarray) -> None:
    n = len(people)
    same = np.einsum("id,id->i", neutral, happy)
    allv = np.concatenate([neutral, happy])
    owner = np.tile(np.arange(n), 2)
    sims = allv @ allv.T
    iu = np.triu_indices(2 * n, k=1)
    diff = sims[iu][owner[iu[0]] != owner[iu[1]]]

    pct = lambda v, q: np.percentile(v, q)
    print(f"\n== {name} ({type(embedder).__name__}, {embedder.dim}-D)")
    print(f"same person   (n={same.size}): min {same.min():.3f}  p5 {pct(same, 5):.3f}  "
          f"median {np.median(same):.3f}  max {same.max():.3f}")
    print(f"different     (n={diff.size}): median {np.median(diff):.3f}  p99 {pct(diff, 99):.3f}  "
          f"p99.9 {pct(diff, 99.9):.3f}  max {diff.max():.3f}")
    worst = people[int(same.argmin())]
    print(f"lowest same-person pair: {worst}; gap (same min - diff max): {same.min() - diff.max():+.3f}")
    far = float(np.ceil(pct(diff, 99.9) * 1000) / 1000)
    print(f"false-accept rate 0.1% threshold (different-people p99.9, rounded up): {far:.3f}")
    for thr in sorted({round(float(t), 3) for t in (embedder.threshold, (same.min() + diff.max()) / 2, far)}):
        print(f"threshold {thr:.3f}: same pass {np.mean(same >= thr):.3f} ({int((same >= thr).sum())}/{same.size}), "
              f"different pass {np.mean(diff >= thr):.5f} ({int((diff >= thr).sum())}/{diff.size})")
    print(f"{type(embedder).__name__}.threshold = {embedder.threshold}")


def main() -> None:
    skip = {option("embedder"), option("limit")}
    args = [a for a in sys.argv[1:] if not a.startswith("--") and a not in skip]
    folder = Path(args[0]) if args else ROOT.parent / "shared" / "data" / "faces" / "london"
    embedders = {name: load_embedder(name) for name in option("embedder", "dlib").split(",")}
    t = time.perf_counter()
    people, emb = embed_london(folder, embedders)
    print(f"{', '.join(embedders)}: {2 * len(people)} photos in {time.perf_counter() - t:.1f} s (detect + embed)")
    for name, e in embedders.items():
        report(name, e, people, *emb[name])
    if "--edits" in sys.argv:
        limit = int(option("limit", "0")) or len(people)
        edit_similarities(folder, people[:limit], {k: v[0][:limit] for k, v in emb.items()}, embedders)
    if "--time" in sys.argv:
        embed_times(folder / f"{people[0]}_neutral.jpg", embedders)


def edit_similarities(folder: Path, people: list[str], neutral: dict[str, np.ndarray], embedders: dict) -> None:
    from pipeline.editor import detect, edit
    from pipeline.emotions import EMOTIONS

    emotions = [e for e in EMOTIONS if e != "neutral"]
    sims = {(name, e): [] for name in embedders for e in emotions}
    for i, person in enumerate(people):
        rgb, faces = detect(str(folder / f"{person}_neutral.jpg"))
        for emotion in emotions:
            out = edit(rgb, emotion, 1.0, detections=faces, gate=False).image
            for name, e in embedders.items():  # the gate's comparison: the edit, read at the input's face
                sims[name, emotion].append(float(e.embed(out, faces)[0] @ neutral[name][i]))
    for name, e in embedders.items():
        print(f"\n== {name}: edit vs its source, intensity 1, {len(people)} London neutrals "
              f"(threshold {e.threshold})")
        for emotion in emotions:
            v = np.array(sims[name, emotion])
            print(f"edit {emotion:10s} vs source: min {v.min():.3f}  p10 {np.percentile(v, 10):.3f}  "
                  f"median {np.median(v):.3f}  pass {np.mean(v >= e.threshold):.0%}")


def embed_times(path: Path, embedders: dict, calls: int = 50) -> None:
    """Median wall time of one embed() call on one face (alignment included), after a warm-up."""
    rgb = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
    faces = detect_faces(rgb)[:1]
    print()
    for name, e in embedders.items():
        e.embed(rgb, faces)
        ts = []
        for _ in range(calls):
            t = time.perf_counter()
            e.embed(rgb, faces)
            ts.append(time.perf_counter() - t)
        print(f"embed time {name}: median {1000 * np.median(ts):.1f} ms per face ({calls} calls, one face)")


if __name__ == "__main__":
    main()
