"""Dataset augmentation: edited copies of every face photo in a folder, with a labels.csv.

`augment(in_dir, out_dir, emotions, intensities)` edits every face of every photo to every
(emotion, intensity) and writes one image per (photo, face, emotion, intensity) plus a row of
`labels.csv` (output, source, face, emotion, intensity, verdict, identity, p_target, scores: the
classifier's probabilities after the edit, JSON). The gate runs by default, so `verdict` says
whether the edit read as the target and kept the person; rejected edits are written too, marked
(filter on `verdict` to train on accepted ones only). A photo without a face, or one that cannot
be read, gets a row with verdict `no face` / `error` (the message in `scores`).

- Resumable: a (source, emotion, intensity) already in labels.csv is skipped; each photo's rows
  are appended as soon as it is done, so an interrupted run loses at most the photos in flight.
- Parallel: one job per photo (faces detected once, then every target). `workers` processes from
  a forkserver pool each load the models once; `engine="ray"` runs the same job function on Ray
  Data (`ray.data.from_items(...).map_batches(...)`, an actor per worker), locally or on a
  cluster (docs/augment.md).
- `balance`: an existing labels CSV (an `emotion` or `label` column); only what it lacks is
  made: every emotion is filled up to the count of its most frequent one.
"""
from __future__ import annotations

import csv
import json
import os
import time
from collections import Counter
from pathlib import Path

from .emotions import check_intensity, normalize_emotion
from .errors import InvalidRequest, MienError

PHOTO_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp"}
COLUMNS = ["output", "source", "face", "emotion", "intensity", "verdict", "identity", "p_target", "scores"]
LABELS = "labels.csv"
GATES = {"on": True, "off": False, "emotion": "emotion"}


def photos(in_dir: Path, out_dir: Path | None = None) -> list[Path]:
    """Image files under `in_dir` (recursive, sorted), outside `out_dir`."""
    if not in_dir.is_dir():
        raise InvalidRequest(f"'{in_dir}' is not a folder of photos.")
    skip = out_dir.resolve() if out_dir else None
    return sorted(p for p in in_dir.rglob("*") if p.suffix.lower() in PHOTO_SUFFIXES and p.is_file()
                  and not (skip and skip in p.resolve().parents))


def key(source: str, emotion: str, intensity: float) -> tuple[str, str, str]:
    return source, emotion, f"{float(intensity):.3f}"


def done_keys(labels: Path) -> set[tuple[str, str, str]]:
    if not labels.is_file():
        return set()
    with open(labels, newline="") as f:
        return {key(r["source"], r["emotion"], float(r["intensity"])) for r in csv.DictReader(f)}


def balance_counts(labels_csv: Path) -> Counter:
    """Per-emotion counts of an existing labelled folder's CSV (column `emotion` or `label`)."""
    if not labels_csv.is_file():
        raise InvalidRequest(f"Balance file '{labels_csv}' does not exist.")
    with open(labels_csv, newline="") as f:
        rows = list(csv.DictReader(f))
    col = next((c for c in ("emotion", "label") if rows and c in rows[0]), None)
    if col is None:
        raise InvalidRequest(f"'{labels_csv}' needs an 'emotion' or 'label' column.")
    return Counter(normalize_emotion(r[col]) for r in rows)


def plan(sources: list[str], emotions: list[str], intensities: list[float],
         balance: Counter | None = None) -> list[tuple[str, str, float]]:
    """(source, emotion, intensity) to make. With `balance`, each emotion gets as many as it
    lacks against the most frequent one, taken in order from the sources x intensities."""
    combos = [(s, i) for i in intensities for s in sources]
    if balance is None:
        return [(s, e, i) for s in sources for e in emotions for i in intensities]
    top = max(balance.values(), default=0)
    out = []
    for e in emotions:
        need = top - balance.get(e, 0)
        out += [(s, e, i) for s, i in combos[:max(need, 0)]]
    return out


def output_name(source: str, face: int, emotion: str, intensity: float, ext: str) -> str:
    stem = Path(source).with_suffix("").as_posix().replace("/", "__")
    return f"{stem}__f{face}_{emotion}_{round(intensity * 100):03d}.{ext}"


# ---------------------------------------------------------------------------------------------
# The job: one photo, every pending target. Runs in a pool worker, a Ray actor or in-process.
def warm(options: dict) -> None:
    """Load the models this process needs, once (the registry keeps them)."""
    from .engines import get_engine
    from .registry import get

    get_engine()
    get("detector"), get("landmarker")
    if options["gate"]:
        get("classifier")
        if options["gate"] is True:
            get("embedder")


def _row(*values) -> dict:
    """A labels.csv row from the values in COLUMNS order (missing scores left empty)."""
    return dict(zip(COLUMNS, values + ("",) * (len(COLUMNS) - len(values))))


def process(job: dict, options: dict) -> list[dict]:
    """Edit one photo to its targets; write the images; return the labels rows."""
    from .editor import detect, edit
    from .imageio import load_image, save_image

    try:
        loaded = load_image(job["path"])
        _, faces = detect(loaded.rgb)
    except MienError as e:  # one bad file must not stop a data set: recorded, and not retried
        return [_row("", job["source"], -1, em, i, "error", "", "", str(e)) for em, i in job["todo"]]
    rows = []
    if not faces:  # recorded, so a resumed run does not try again
        return [_row("", job["source"], -1, e, i, "no face") for e, i in job["todo"]]
    for emotion, intensity in job["todo"]:
        for fi in range(len(faces)):
            r = edit(loaded.rgb, emotion, intensity, faces=[fi], detections=faces, gate=options["gate"])
            fe = r.faces[0]
            name = output_name(job["source"], fi, emotion, intensity, options["ext"])
            save_image(Path(options["out_dir"]) / name, r.image, loaded,
                       provenance={"emotion": emotion, "intensity": intensity})
            probs = fe.probs_after or {}
            rows.append(_row(name, job["source"], fi, emotion, intensity, fe.verdict or "ungated",
                             "" if fe.identity is None else round(float(fe.identity), 4),
                             round(float(probs[emotion]), 4) if emotion in probs else "",
                             json.dumps({k: round(float(v), 4) for k, v in probs.items()})))
    return rows


_OPTIONS: dict = {}


def _init_worker(options: dict) -> None:
    import cv2

    cv2.setNumThreads(1)  # one process per core: threads inside each would only contend
    _OPTIONS.update(options)
    warm(options)


def _pool_job(job: dict) -> tuple[int, list[dict]]:
    return len(job["todo"]), process(job, _OPTIONS)


def _run_local(jobs: list[dict], options: dict, workers: int):
    if workers <= 1:
        warm(options)
        for job in jobs:
            yield len(job["todo"]), process(job, options)
        return
    import multiprocessing as mp

    ctx = mp.get_context("forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn")
    with ctx.Pool(workers, initializer=_init_worker, initargs=(options,)) as pool:
        yield from pool.imap_unordered(_pool_job, jobs)


class RayWorker:
    """A Ray Data actor: models loaded once in __init__, one photo per batch."""

    def __init__(self, options: dict):
        self.options = options
        _init_worker(options)

    def __call__(self, batch: dict) -> dict:
        import numpy as np

        out = [json.dumps(process(json.loads(j), self.options)) for j in batch["job"]]
        return {"rows": np.array(out, dtype=object), "n": np.array([len(json.loads(j)["todo"]) for j in batch["job"]])}


def _run_ray(jobs: list[dict], options: dict, workers: int, address: str | None):
    try:
        import ray
    except ImportError:
        raise InvalidRequest("--engine ray needs the 'ray' package (pip install 'ray[data]').") from None
    if not ray.is_initialized():
        # No address (and no RAY_ADDRESS): a local Ray with `workers` CPUs; else join the cluster.
        local = address is None and not os.environ.get("RAY_ADDRESS")
        ray.init(address=address, num_cpus=workers if local else None, include_dashboard=False,
                 log_to_driver=False, configure_logging=False)
    ds = ray.data.from_items([{"job": json.dumps(j)} for j in jobs])
    ds = ds.map_batches(RayWorker, fn_constructor_kwargs={"options": options}, batch_size=1,
                        concurrency=workers, num_cpus=1)
    for row in ds.iter_rows():
        yield int(row["n"]), json.loads(row["rows"])


def augment(in_dir, out_dir, emotions=("happy",), intensities=(1.0,), workers: int | None = None,
            balance=None, engine: str = "local", gate="on", ext: str = "jpg", ray_address: str | None = None,
            progress: bool = True) -> dict:
    """Run the augmentation (see the module docstring). Returns counts and images per second."""
    from tqdm import tqdm

    in_dir, out_dir = Path(in_dir), Path(out_dir)
    emotions = [normalize_emotion(e) for e in emotions]
    intensities = [check_intensity(i) for i in intensities]
    if gate not in GATES:
        raise InvalidRequest(f"gate is one of {', '.join(GATES)} (got '{gate}').")
    if engine not in ("local", "ray"):
        raise InvalidRequest(f"--engine is 'local' or 'ray' (got '{engine}').")
    ext = ext.lower().lstrip(".")
    if ext not in ("jpg", "png", "webp"):
        raise InvalidRequest(f"Output format is jpg, png or webp (got '{ext}').")
    workers = max(1, int(workers or os.cpu_count() or 1))
    files = photos(in_dir, out_dir)
    by_source = {p.relative_to(in_dir).as_posix(): p for p in files}
    wanted = plan(list(by_source), emotions, intensities, balance_counts(Path(balance)) if balance else None)
    out_dir.mkdir(parents=True, exist_ok=True)
    labels = out_dir / LABELS
    done = done_keys(labels)
    jobs: dict[str, dict] = {}
    for s, e, i in wanted:
        if key(s, e, i) not in done:
            jobs.setdefault(s, {"source": s, "path": str(by_source[s]), "todo": []})["todo"].append((e, i))
    todo = list(jobs.values())
    options = {"gate": GATES[gate], "out_dir": str(out_dir), "ext": ext}
    n_todo = sum(len(j["todo"]) for j in todo)
    written = 0
    t = time.perf_counter()
    new_file = not labels.is_file()
    with open(labels, "a", newline="") as f, tqdm(total=n_todo, unit="edit", disable=not progress) as bar:
        w = csv.DictWriter(f, COLUMNS)
        if new_file:
            w.writeheader()
        results = _run_ray(todo, options, workers, ray_address) if engine == "ray" else _run_local(todo, options, workers)
        for n, rows in results:
            w.writerows(rows)
            f.flush()  # the rows of a finished photo survive an interrupted run
            written += sum(1 for r in rows if r["output"])
            bar.update(n)
    secs = time.perf_counter() - t
    return {"photos": len(files), "planned": len(wanted), "skipped": len(wanted) - n_todo, "edits": n_todo,
            "images_written": written, "seconds": round(secs, 2),
            "images_per_s": round(written / secs, 3) if secs > 0 and written else 0.0,
            "workers": workers, "engine": engine, "labels": str(labels)}
