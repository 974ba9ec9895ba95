"""Speed benchmark (issue 5): per-stage and end-to-end times, peak memory, start-up, naive baseline.

    python -m pipeline.bench [--quick] [--repeat N] [--out docs/speed.md] [--check]

Each scenario runs in its own subprocess (`--worker`), so its peak RSS is its own: one scenario's
models or buffers never mask another's. Times are wall-clock medians and p90s after a warm-up run.
The naive baseline (scikit-image's piecewise-affine warp of the same face, same control points, same
region) runs in the same invocation and is interleaved with Mien's warp, so the speed-up ratio holds
on a noisy machine even when absolute milliseconds drift. `--check` exits 1 when a ratio or memory
target is missed; absolute-ms targets are reported only (shared CPUs make them flaky).
"""
from __future__ import annotations

import argparse
import datetime
import inspect
import json
import os
import platform
import resource
import socket
import subprocess
import sys
import time
import urllib.request
from collections import defaultdict
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
EMOTION = "happy"
PEOPLE = ("001", "005", "021", "025", "064")
GRID = (3, 2, 512)  # group photo: 3 x 2 cells of 512 px, so 1, 3 and 6 faces share one canvas size
MIN_RUNS = 3


# ------------------------------------------------------------------------------------------ photos

def _portrait(i: int = 0) -> np.ndarray:
    from .datasets import TEST_DATA
    from .imageio import load_image

    rgb = load_image(TEST_DATA / "london" / f"{PEOPLE[i % len(PEOPLE)]}_neutral.jpg").rgb
    return rgb[:, ::-1].copy() if i >= len(PEOPLE) else rgb  # 6th face: a mirrored first person


def photo(kind: str, arg) -> np.ndarray:
    """'size', s: one face, s x s px. 'grid', n: n faces on a 1536 x 1024 canvas. 't1': insightface's
    six-face group photo."""
    if kind == "size":
        rgb = _portrait()
        interp = cv2.INTER_AREA if arg < rgb.shape[0] else cv2.INTER_CUBIC
        return cv2.resize(rgb, (arg, arg), interpolation=interp)
    if kind == "grid":
        cols, rows, cell = GRID
        base = _portrait()
        canvas = np.empty((rows * cell, cols * cell, 3), np.uint8)
        canvas[:] = np.median(base[:16].reshape(-1, 3), 0)  # studio background colour, no face
        for i in range(arg):
            r, c = divmod(i, cols)
            canvas[r * cell:(r + 1) * cell, c * cell:(c + 1) * cell] = cv2.resize(
                _portrait(i), (cell, cell), interpolation=cv2.INTER_AREA)
        return canvas
    if kind == "t1":
        from .imageio import load_image
        from .sheet import insightface_sample

        path = insightface_sample("t1.jpg")
        if path is None:
            raise SystemExit("insightface's t1.jpg is missing (make setup installs it)")
        return load_image(path).rgb
    raise ValueError(kind)


def jpeg(rgb: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".jpg", rgb[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 95])
    return buf.tobytes()


def naive_warp(img: np.ndarray, src: np.ndarray, dst: np.ndarray, region) -> np.ndarray:
    """The textbook way: scikit-image's PiecewiseAffineTransform on the same control points (mesh +
    Mien's anchor ring), evaluated at every pixel of the same region. Outside the hull: -1."""
    from skimage.transform import PiecewiseAffineTransform, warp

    from .engines.geometric.warp import anchor_ring

    ring = anchor_ring(src)
    o = np.array([region.x0, region.y0])
    s = np.concatenate([src[:, :2], ring]) - o
    d = np.concatenate([dst[:, :2], ring]) - o
    if hasattr(PiecewiseAffineTransform, "from_estimate"):  # skimage >= 0.26
        t = PiecewiseAffineTransform.from_estimate(d, s)  # output -> input positions
    else:
        t = PiecewiseAffineTransform()
        t.estimate(d, s)
    return warp(img[region.slices], t, order=1, preserve_range=True, cval=-1)


# ----------------------------------------------------------------------------------------- worker

def _ms(t0: float) -> float:
    return (time.perf_counter() - t0) * 1000


def run_scenario(spec: dict) -> dict:
    """Time one scenario in this process: a warm-up run, then up to `repeat` runs (at least
    MIN_RUNS) within `budget_s`. Returns per-metric samples (ms) and this process's peak RSS."""
    from .engines.geometric import expression, warp
    from .classify import classify_faces
    from .detection import default_detector, default_landmarker
    from .editor import detect, edit
    from .identity import default_embedder
    from .imageio import encode_png

    rgb = photo(*spec["photo"])
    data = jpeg(rgb)
    rgb, faces = detect(data)  # the cached detections of the slider path (decoded as the app does)
    has_gate = "gate" in inspect.signature(edit).parameters
    off = {"gate": False} if has_gate else {}  # the engine alone; the gate is timed on its own
    s = defaultdict(list)

    def warp_split(out):
        # edit()'s warp stage, split: build the backward map vs resample the image.
        for f in faces:
            p = expression.plan(f.landmarks, EMOTION, 1.0)
            reg = warp.region_for(f.landmarks, rgb.shape[:2])
            t = time.perf_counter()
            m, _ = warp.backward_map(f.landmarks, p.target, reg)
            out["warp.map"] += _ms(t)
            t = time.perf_counter()
            w = warp.remap(rgb, m)
            out["warp.remap"] += _ms(t)
            out["warp"] = out["warp.map"] + out["warp.remap"]
            yield f, p, reg, w

    def timed(out, key, fn, *a, **kw):
        t = time.perf_counter()
        r = fn(*a, **kw)
        out[key] = _ms(t)
        return r

    def once() -> dict:
        out = defaultdict(float)
        r = timed(out, "edit", edit, data, EMOTION, **off)  # bytes in: decode, detect, mesh, faces, paste
        out["stage.warp"] = r.timings_ms["warp"]
        if spec.get("baseline"):  # Mien's warp and the naive one, interleaved on the same faces
            diffs = []
            for f, p, reg, mine in warp_split(out):
                ref = timed(out, "naive.1", naive_warp, rgb, f.landmarks, p.target, reg)
                out["naive"] += out.pop("naive.1")
                ok = ref[..., 0] >= 0
                diffs.append(float(np.abs(ref - mine)[ok].mean()))
                out["region_px"] += reg.shape[0] * reg.shape[1]
            out["diff"] = float(np.mean(diffs))
            return out
        timed(out, "encode", encode_png, r.image)
        out["edit+png"] = out["edit"] + out["encode"]
        for k, v in r.timings_ms.items():
            out[f"stage.{k}"] = v
        boxes = timed(out, "detect", default_detector().detect, rgb)
        timed(out, "landmarks", lambda: [default_landmarker().landmarks(rgb, b) for b in boxes])
        for _ in warp_split(out):
            pass
        timed(out, "slider", edit, rgb, EMOTION, detections=faces, **off)  # pixels and faces cached
        timed(out, "classifier", classify_faces, r.image, faces)
        timed(out, "identity", default_embedder().embed, r.image, faces)
        if has_gate:
            g = timed(out, "edit+gate", edit, data, EMOTION)  # the default: full gate, fresh detections
            out["stage.gate"] = g.timings_ms.get("gate", 0.0)
            out["attempts"] = sum(getattr(f, "attempts", 1) or 1 for f in g.faces)
            timed(out, "slider+emotion", edit, rgb, EMOTION, detections=faces, gate="emotion")
            timed(out, "slider+gate", edit, rgb, EMOTION, detections=faces, gate=True)
        return out

    once()  # warm-up: models load, caches fill
    deadline = time.perf_counter() + spec["budget_s"]
    for i in range(spec["repeat"]):
        for k, v in once().items():
            s[k].append(v)
        if i + 1 >= MIN_RUNS and time.perf_counter() > deadline:
            break
    return {"samples": dict(s), "faces": len(faces), "shape": list(rgb.shape[:2]), "gate": has_gate,
            "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


# ------------------------------------------------------------------------------- start-up checks

# Fresh process: imports, then either the first (cold: models load lazily) and a warm default edit,
# or each model's load on its own.
COLD = """
import json, sys, time
t0 = time.perf_counter()
import pipeline
t1 = time.perf_counter()
from pipeline.editor import edit
r = {"import pipeline": t1 - t0, "import pipeline.editor": time.perf_counter() - t1}
if sys.argv[2] == "edit":
    for k in ("first edit (cold, models load)", "warm edit"):
        t = time.perf_counter()
        edit(sys.argv[1], "happy")
        r[k] = time.perf_counter() - t
else:
    from pipeline.classify import default_classifier
    from pipeline.detection import default_detector, default_landmarker
    from pipeline.identity import default_embedder
    for k, f in (("load detector", default_detector), ("load face mesh", default_landmarker),
                 ("load classifier", default_classifier), ("load identity (dlib)", default_embedder)):
        t = time.perf_counter()
        f()
        r[k] = time.perf_counter() - t
print(json.dumps(r))
"""


def _wall(cmd: list[str]) -> tuple[float, str, str]:
    t = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, check=True)
    return time.perf_counter() - t, p.stdout, p.stderr


def startup(runs: int, path: Path, app: bool = True) -> dict:
    """Seconds (median of `runs` fresh processes): interpreter, imports, cold vs warm first edit,
    model loads; plus the heaviest third-party imports and the app's time to first HTTP 200."""
    py = sys.executable
    out = {"python -c pass (process)": float(np.median([_wall([py, "-c", "pass"])[0] for _ in range(runs)])),
           "python -c 'import pipeline' (process)": float(np.median(
               [_wall([py, "-c", "import pipeline"])[0] for _ in range(runs)]))}
    for mode in ("edit", "load"):
        try:
            got = [json.loads(_wall([py, "-c", COLD, str(path), mode])[1].strip().splitlines()[-1])
                   for _ in range(runs)]
        except subprocess.CalledProcessError as e:  # report it; the timings gathered so far still count
            out[f"cold {mode}"] = "failed: " + (e.stderr.strip().splitlines() or ["?"])[-1]
            continue
        out.update({k: float(np.median([g[k] for g in got])) for k in got[0]})
    # -X importtime lines: "import time: self | cumulative | name"; keep each top-level package's
    # largest cumulative (its first, outermost import).
    err = _wall([py, "-X", "importtime", "-c", "import pipeline.editor, pipeline.detection, pipeline.gate"])[2]
    tops = {}
    for line in err.splitlines():
        parts = line.split("|")
        if len(parts) == 3 and parts[1].strip().isdigit():
            pkg = parts[2].strip().split(".")[0]
            tops[pkg] = max(tops.get(pkg, 0), int(parts[1]) / 1e6)
    tops.pop("pipeline", None)
    out["heaviest imports"] = sorted(((v, k) for k, v in tops.items()), reverse=True)[:5]
    out["app ready"] = app_ready() if app else "skipped (--quick)"
    return out


def app_ready(timeout: float = 60.0):
    """Seconds from `python app.py` to the first HTTP 200, or a string saying why it was skipped."""
    if not (ROOT / "app.py").exists():
        return "skipped: app.py does not exist yet"
    with socket.socket() as sk:
        sk.bind(("127.0.0.1", 0))
        port = sk.getsockname()[1]
    env = {**os.environ, "GRADIO_SERVER_PORT": str(port), "PORT": str(port), "GRADIO_ANALYTICS_ENABLED": "False"}
    t = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        while time.perf_counter() - t < timeout:
            if proc.poll() is not None:
                return f"failed: app.py exited with code {proc.returncode}"
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1) as r:
                    if r.status == 200:
                        return time.perf_counter() - t
            except OSError:
                time.sleep(0.1)
        return f"failed: no HTTP 200 within {timeout:.0f} s"
    finally:
        os.killpg(proc.pid, 15)  # the session this call started (the app and any children)
        proc.wait(10)


# ---------------------------------------------------------------------------------------- report

def _med(x) -> float:
    return float(np.median(x)) if x else float("nan")


def _p90(x) -> float:
    return float(np.percentile(x, 90)) if x else float("nan")


def _f(v: float) -> str:
    return "–" if v != v else f"{v:.0f}" if v >= 10 else f"{v:.1f}"


def _row(cells) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def _table(head: list[str], rows: list[list]) -> list[str]:
    return [_row(head), _row(["---"] * len(head)), *map(_row, rows), ""]


def machine() -> dict:
    cpu = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                if ln.startswith("model name")), platform.processor() or "unknown") \
        if Path("/proc/cpuinfo").exists() else platform.processor()
    return {"nproc": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
            "cpu": cpu, "python": platform.python_version(), "numpy": np.__version__, "opencv": cv2.__version__,
            "load": os.getloadavg()[0], "commit": _commit()}


def _commit() -> str:
    """The code measured: HEAD, marked '+changes' when engine files differ from it."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "pipeline", ":!pipeline/bench.py"],
                               cwd=ROOT, capture_output=True, text=True).stdout.strip()
        return head + (" +changes" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _ratio(num, den) -> float:
    """Median of per-run ratios: runs are interleaved, so slow spells hit both sides alike."""
    return _med([a / b for a, b in zip(num, den)])


def targets(res: dict, up: dict, quick: bool) -> list[tuple]:
    """(target, measured, limit, passed or None, enforced by --check)."""
    edit = {k[1]: _med(v["samples"]["edit"]) for k, v in res.items() if k[0] == "size"}
    grid = {k[1]: v["samples"]["edit"] for k, v in res.items() if k[0] == "grid"}
    n = max(grid)
    small, big = (512, 1024) if quick else (1024, 2048)
    bsize = 1024 if ("baseline", 1024) in res else max(k[1] for k in res if k[0] == "baseline")
    b = res[("baseline", bsize)]["samples"]
    slider = _med(res[("size", 1024)]["samples"]["slider"])
    faces, area = _med(grid[n]) / _med(grid[1]), edit[big] / edit[small]
    speed = _ratio(b["naive"], b["warp"])
    rss = max(v["rss_mb"] for v in res.values())
    ready = up["app ready"]
    ok_ready = ready <= 8 if isinstance(ready, float) else None
    rows = []
    s1024 = res[("size", 1024)]["samples"]
    if s1024.get("edit+gate"):
        gated = _med(s1024["edit+gate"])
        ratio = _ratio(s1024["edit+gate"], s1024["edit"])  # interleaved runs: the noise cancels
        rows = [("1024 px, 1 face: default (gated) edit", f"{gated:.0f} ms", "≤ 60 ms", gated <= 60, False),
                ("gated / ungated edit, 1024 px, same run", f"{ratio:.2f}×", "≤ 4×", ratio <= 4, True)]
    return rows + [
        ("1024 px, 1 face: edit (bytes in → image out)", f"{edit[1024]:.0f} ms", "≤ 150 ms", edit[1024] <= 150, False),
        ("512 px, 1 face: edit", f"{edit[512]:.0f} ms", "≤ 60 ms", edit[512] <= 60, False),
        ("slider-only path (cached detections), 1024 px", f"{slider:.0f} ms", "≤ 50 ms", slider <= 50, False),
        (f"faces: time({n} faces) / time(1 face), same canvas", f"{faces:.2f}", f"≤ {6.5 * n / 6:.2f}",
         faces <= 6.5 * n / 6, True),
        (f"area: time({big} px) / time({small} px), 1 face", f"{area:.2f}", "≤ 4", area <= 4, True),
        (f"warp vs naive scikit-image warp ({bsize} px)", f"{speed:.0f}×", "≥ 20×", speed >= 20, True),
        ("app ready (process start → HTTP 200)", f"{ready:.1f} s" if ok_ready is not None else ready, "≤ 8 s",
         ok_ready, False),
        ("peak RSS, worst scenario", f"{rss:.0f} MB", "≤ 1229 MB (1.2 GB)", rss <= 1.2 * 1024, True),
    ]


def _label(key, r) -> str:
    h, w = r["shape"]
    return {"size": f"{w} px", "grid": f"group {w}×{h}", "t1": f"t1.jpg {w}×{h}", "baseline": f"{w} px"}[key[0]]


def report(res: dict, up: dict, tg: list, info: dict, cmd: str) -> str:
    runs = [(k, v) for k, v in res.items() if k[0] != "baseline"]
    L = [f"# Mien speed ({datetime.date.today().isoformat()})", "",
         f"Generated by `{cmd}` at commit {info['commit']}. Machine: {info['nproc']} CPUs ({info['cpu']}), Python {info['python']}, "
         f"numpy {info['numpy']}, OpenCV {info['opencv']}; 1-min load average {info['load']:.1f} at start, "
         f"{info['load_end']:.1f} at end (a shared machine: compare ratios, not absolute ms). Emotion '{EMOTION}' at "
         "intensity 1; one-face photos are London portrait 001 resized; group photos are 1, 3 or 6 London "
         f"portraits in {GRID[0]}×{GRID[1]} cells of {GRID[2]} px (same canvas, so only the face count changes). "
         "Each scenario runs in its own process after one warm-up edit; ms are medians over `runs`.", "",
         "## Stages (median ms)", "",
         "`detect` and `landmarks` time the BlazeFace and Face Mesh backends directly (all faces); `warp` is "
         "`backward_map` + `remap` (summed over faces); `mouth`, `shading`, `blend`, `expression` are edit()'s own "
         "per-stage timers; `encode` is `encode_png` of the result; classifier and identity run once on all faces "
         "in one batch; `gate` is the gated edit's own gate timer (all attempts, all faces).", ""]
    cols = ["stage.decode", "detect", "landmarks", "stage.expression", "warp.map", "warp.remap", "stage.mouth",
            "stage.shading", "stage.blend", "encode", "classifier", "identity", "stage.gate"]
    L += _table(["photo", "faces", "decode", "detect", "landmarks", "expression", "warp map", "warp remap",
                 "mouth", "shading", "blend", "encode PNG", "classifier", "identity", "gate (in gated edit)"],
                [[_label(k, v), v["faces"]] + [_f(_med(v["samples"].get(c, [])))
                                               for c in cols] for k, v in runs])
    L += ["## End to end (ms: median / p90)", "",
          "`edit` = `edit(jpeg_bytes, gate=False)`: decode, detect, mesh, every face, paste back (the engine's end "
          "to end, used for the targets). `+ PNG` adds encoding the response. `gated` = `edit(jpeg_bytes)` with the "
          "default full gate (classifier + identity, retries; `attempts` summed over faces). `slider` = "
          "`edit(rgb, detections=faces)` (faces cached, as the app does), ungated / `gate='emotion'` / full gate. "
          "Peak RSS is the scenario process's own, all models loaded.", ""]
    cols = ("edit", "edit+png", "edit+gate", "slider", "slider+emotion", "slider+gate")
    L += _table(["photo", "faces", "runs", "edit", "edit + PNG", "gated edit", "attempts", "slider",
                 "slider, emotion gate", "slider, full gate", "peak RSS MB"],
                [[_label(k, v), v["faces"], len(v["samples"]["edit"])]
                 + [f"{_f(_med(v['samples'].get(c, [])))} / {_f(_p90(v['samples'].get(c, [])))}" for c in cols[:3]]
                 + [_f(_med(v["samples"].get("attempts", [])))]
                 + [f"{_f(_med(v['samples'].get(c, [])))} / {_f(_p90(v['samples'].get(c, [])))}" for c in cols[3:]]
                 + [f"{v['rss_mb']:.0f}"] for k, v in runs])
    L += ["## Naive baseline", "",
          "scikit-image `PiecewiseAffineTransform` (estimated per edit) + `skimage.transform.warp` (order 1) of the "
          "same face region with the same control points (468 landmarks → plan target, plus Mien's anchor ring), "
          "interleaved with Mien's `backward_map` + `remap`. `edit, naive` = Mien's edit with its warp stage replaced "
          "by the naive one. Δ = mean absolute difference of the two warped regions (gray levels, 0-255).", ""]
    L += _table(["photo", "region px", "runs", "Mien warp ms", "naive warp ms", "warp speed-up", "edit ms",
                 "edit, naive ms", "edit speed-up", "Δ"],
                [[_label(k, v), f"{_med(v['samples']['region_px']) / 1e3:.0f} k", len(v["samples"]["edit"]),
                  _f(_med(v["samples"]["warp"])), _f(_med(v["samples"]["naive"])),
                  f"{_ratio(v['samples']['naive'], v['samples']['warp']):.0f}×", _f(_med(v["samples"]["edit"])),
                  _f(_med([e - w + n for e, w, n in zip(v["samples"]["edit"], v["samples"]["stage.warp"],
                                                         v["samples"]["naive"])])),
                  f"{_ratio([e - w + n for e, w, n in zip(v['samples']['edit'], v['samples']['stage.warp'], v['samples']['naive'])], v['samples']['edit']):.1f}×",
                  f"{_med(v['samples']['diff']):.1f}"]
                 for k, v in res.items() if k[0] == "baseline"])
    L += ["## Start-up (s, median of fresh processes)", "",
          "Import and load times are measured inside fresh processes; `first edit` is a default (gated) edit of a "
          "768 px photo, loading every model on the way.", ""]
    L += _table(["step", "s"], [[k, f"{v:.2f}" if isinstance(v, float) else v] for k, v in up.items()
                                if k != "heaviest imports"])
    L += ["Heaviest packages under `import pipeline.editor, pipeline.detection, pipeline.gate` (`-X importtime`, "
          "cumulative): "
          + ", ".join(f"{name} {s:.2f} s" for s, name in up["heaviest imports"]) + ".", ""]
    L += ["## Targets", "",
          "Ratio and memory targets are enforced by `--check` (exit 1 when missed); absolute-ms targets are "
          "reported only, because these machines are shared and noisy.", ""]
    L += _table(["target", "measured", "limit", "result", "--check"],
                [[n, m, lim, "n/a" if ok is None else "pass" if ok else "**FAIL**", "enforced" if enf else "reported"]
                 for n, m, lim, ok, enf in tg])
    return "\n".join(L)


# ------------------------------------------------------------------------------------------- main

def scenarios(quick: bool, repeat: int | None) -> list[dict]:
    n = repeat or (3 if quick else 15)
    budget = 4.0 if quick else 45.0
    sizes, groups, bases = ([512, 1024], [1, 3], [512]) if quick else ([512, 1024, 2048, 4096], [1, 3, 6], [512, 1024, 2048])
    out = [{"photo": ["size", s], "repeat": n, "budget_s": budget} for s in sizes]
    out += [{"photo": ["grid", g], "repeat": n, "budget_s": budget} for g in groups]
    if not quick:
        out.append({"photo": ["t1", None], "repeat": n, "budget_s": budget})
    # The naive warp takes seconds: few runs are enough for a ratio of ~100.
    out += [{"photo": ["size", s], "repeat": min(n, 5), "budget_s": budget / 2, "baseline": True} for s in bases]
    return out


def _worker(spec: dict) -> dict:
    p = subprocess.run([sys.executable, "-m", "pipeline.bench", "--worker", json.dumps(spec)], cwd=ROOT,
                       capture_output=True, text=True)
    if p.returncode:
        raise SystemExit(f"bench worker {spec['photo']} failed:\n{p.stderr[-3000:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m pipeline.bench", description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true",
                    help="smoke run: 3 runs, 512/1024 px, 1/3 faces, no app start (~45 s)")
    ap.add_argument("--repeat", type=int, default=None, help="timed runs per scenario (default 15; quick 3)")
    ap.add_argument("--out", default="docs/speed.md", help="markdown report ('' to skip writing)")
    ap.add_argument("--check", action="store_true", help="exit 1 when a ratio or memory target is missed")
    ap.add_argument("--worker", help=argparse.SUPPRESS)  # internal: run one scenario, print JSON
    a = ap.parse_args(argv)
    if a.worker:
        print(json.dumps(run_scenario(json.loads(a.worker))))
        return 0
    cmd = " ".join(["python -m pipeline.bench", *(argv if argv is not None else sys.argv[1:])])
    info = machine()
    res = {}
    for spec in scenarios(a.quick, a.repeat):
        key = ("baseline" if spec.get("baseline") else spec["photo"][0], spec["photo"][1])
        t = time.perf_counter()
        res[key] = _worker(spec)
        print(f"[bench] {key[0]} {key[1]}: {len(res[key]['samples']['edit'])} runs, "
              f"{time.perf_counter() - t:.0f} s", file=sys.stderr, flush=True)
    up = startup(1 if a.quick else 3, ROOT / "tests" / "data" / "london" / "001_neutral.jpg", app=not a.quick)
    info["load_end"] = os.getloadavg()[0]
    tg = targets(res, up, a.quick)
    md = report(res, up, tg, info, cmd)
    print(md)
    if a.out:
        out = Path(a.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(md + "\n")
    missed = [t[0] for t in tg if t[4] and t[3] is False]
    if a.check and missed:
        print("bench --check: missed " + "; ".join(missed), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
