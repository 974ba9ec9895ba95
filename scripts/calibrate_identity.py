"""Measure same-person vs different-person similarity on the London set and suggest a threshold.

    python scripts/calibrate_identity.py [path/to/faces/london]

    python scripts/calibrate_identity.py --edits   # also: each emotion's edit vs its source photo

Same person = NNN_neutral vs NNN_happy (a real smile: the kind of change an edit makes).
Different people = every neutral/happy photo of one person vs every photo of another.
The suggested threshold is the different-people 99.9th percentile: a false-accept rate of 0.1%.
With --edits, every neutral photo is edited to each emotion at intensity 1 (ungated) and compared
with its source, to see where edits fall between the two distributions.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.detection import detect_faces  # noqa: E402
from pipeline.identity import IDENTITY_THRESHOLD, default_embedder  # noqa: E402


def embed_london(folder: Path, embedder) -> tuple[list[str], np.ndarray, np.ndarray]:
    """people, (n, d) neutral embeddings, (n, d) happy embeddings."""
    people = sorted(p.stem.split("_")[0] for p in folder.glob("*_neutral.jpg"))
    emb = {}
    for person in people:
        for kind in ("neutral", "happy"):
            rgb = cv2.cvtColor(cv2.imread(str(folder / f"{person}_{kind}.jpg")), cv2.COLOR_BGR2RGB)
            faces = detect_faces(rgb)
            if len(faces) != 1:
                raise SystemExit(f"{person}_{kind}: {len(faces)} faces detected")
            emb[person, kind] = embedder.embed(rgb, faces)[0]
    return people, *(np.array([emb[p, k] for p in people]) for k in ("neutral", "happy"))


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    folder = Path(args[0]) if args else ROOT.parent / "shared" / "data" / "faces" / "london"
    embedder = default_embedder()
    t = time.perf_counter()
    people, neutral, happy = embed_london(folder, embedder)
    n = len(people)
    print(f"{type(embedder).__name__}: {2 * n} photos in {time.perf_counter() - t:.1f} s (detect + embed)")

    same = np.einsum("id,id->i", neutral, happy)
    allv = np.concatenate([neutral, happy])
    owner = np.tile(np.arange(n), 2)
    sims = allv @ allv.T
    iu = np.triu_indices(2 * n, k=1)
    diff = sims[iu][owner[iu[0]] != owner[iu[1]]]

    pct = lambda v, q: np.percentile(v, q)  # noqa: E731
    print(f"same person   (n={same.size}): min {same.min():.3f}  p5 {pct(same, 5):.3f}  "
          f"median {np.median(same):.3f}  max {same.max():.3f}")
    print(f"different     (n={diff.size}): median {np.median(diff):.3f}  p99 {pct(diff, 99):.3f}  "
          f"p99.9 {pct(diff, 99.9):.3f}  max {diff.max():.3f}")
    worst = people[int(same.argmin())]
    print(f"lowest same-person pair: {worst}; gap (same min - diff max): {same.min() - diff.max():+.3f}")
    far = float(np.ceil(pct(diff, 99.9) * 1000) / 1000)
    print(f"false-accept rate 0.1% threshold (different-people p99.9, rounded up): {far:.3f}")
    for thr in sorted({IDENTITY_THRESHOLD, round(float((same.min() + diff.max()) / 2), 3), far}):
        print(f"threshold {thr:.3f}: same pass {np.mean(same >= thr):.3f} ({int((same >= thr).sum())}/{same.size}), "
              f"different pass {np.mean(diff >= thr):.5f} ({int((diff >= thr).sum())}/{diff.size})")
    print(f"IDENTITY_THRESHOLD in pipeline/identity.py = {IDENTITY_THRESHOLD}")
    if "--edits" in sys.argv:
        edit_similarities(folder, people, neutral, embedder)


def edit_similarities(folder: Path, people: list[str], neutral: np.ndarray, embedder) -> None:
    from pipeline.editor import detect, edit
    from pipeline.expression import EMOTIONS

    sims: dict[str, list[float]] = {e: [] for e in EMOTIONS if e != "neutral"}
    for person, e0 in zip(people, neutral):
        rgb, faces = detect(str(folder / f"{person}_neutral.jpg"))
        for emotion in sims:
            out = edit(rgb, emotion, 1.0, detections=faces, gate=False).image
            sims[emotion].append(float(embedder.embed(out, faces)[0] @ e0))
    for emotion, v in sims.items():
        v = np.array(v)
        print(f"edit {emotion:10s} vs source: min {v.min():.3f}  p10 {np.percentile(v, 10):.3f}  "
              f"median {np.median(v):.3f}  pass at {IDENTITY_THRESHOLD}: {np.mean(v >= IDENTITY_THRESHOLD):.0%}")


if __name__ == "__main__":
    main()
