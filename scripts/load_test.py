"""Load test of the Mien app: N concurrent `gradio_client` clients x M edits each through "/edit".

    python scripts/load_test.py                    # 8 clients x 25 edits, at most 600 s
    python scripts/load_test.py --clients 4 --edits 3 --timeout 120

Starts `python app.py` on a free loopback port (127.0.0.1 only) with its own temp dirs
(GRADIO_TEMP_DIR and TMPDIR under a fresh temporary folder, removed afterwards), runs the
clients over a mix of photos (London portraits, insightface's six-face t1.jpg), emotions and
intensities, checks every result and stops the server. Each result must be a PNG of the input's
size that differs from the input only inside the face `region`s of its summary, with a face
summary per detected face; identical requests must give identical pictures and a photo must
always be found with the same number of faces (concurrency must not mix state up). The run is
bounded: no request is started after the deadline and every wait ends at it.

Prints errors (if any), p50/p95/max latency (submit to downloaded result, seen by the client),
throughput and the server's memory; exits 1 on any error.
"""
from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a plain script from anywhere

import numpy as np
from PIL import Image

from pipeline.emotions import EMOTIONS
from pipeline.imageio import load_image

INTENSITIES = (0.7, 1.2)
READY = "Mien ready"


def default_photos() -> list[Path]:
    """London portraits (neutral and happy) and, when installed, insightface's t1.jpg (6 faces)."""
    from pipeline.datasets import TEST_DATA
    from pipeline.sheet import insightface_sample

    photos = sorted((TEST_DATA / "london").glob("*.jpg"))
    t1 = insightface_sample("t1.jpg")
    return photos + ([t1] if t1 else [])


# ------------------------------------------------------------------------------------ the server

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    proc: subprocess.Popen
    url: str
    port: int
    log: Path
    temp: Path  # GRADIO_TEMP_DIR: uploads and the files Gradio serves
    tmp: Path  # TMPDIR of the server: the app's own work dir (tempfile.gettempdir()/mien-app)
    startup_s: float

    @property
    def work(self) -> Path:
        return self.tmp / "mien-app"

    def rss_mb(self) -> float | None:
        return rss_mb(self.proc.pid)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


def rss_mb(pid: int | str = "self") -> float | None:
    """Resident memory in MB from /proc/<pid>/status (Linux; no psutil needed)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


@contextlib.contextmanager
def app_server(workdir: Path, code: str | None = None, start_timeout: float = 180.0):
    """`python app.py` (or `python -c code`, run in the repo) on a free loopback port with its temp
    dirs under `workdir`; yields a Server once it prints that it is ready, then stops it."""
    port = free_port()
    temp, tmp = workdir / "gradio", workdir / "tmp"
    temp.mkdir(parents=True, exist_ok=True)
    tmp.mkdir(parents=True, exist_ok=True)
    log = workdir / "app.log"
    env = {**os.environ, "GRADIO_SERVER_NAME": "127.0.0.1", "GRADIO_SERVER_PORT": str(port),
           "GRADIO_ANALYTICS_ENABLED": "False", "GRADIO_TEMP_DIR": str(temp), "TMPDIR": str(tmp),
           "PYTHONUNBUFFERED": "1", "no_proxy": "127.0.0.1,localhost", "NO_PROXY": "127.0.0.1,localhost"}
    cmd = [sys.executable, "app.py"] if code is None else [sys.executable, "-c", code]
    t0 = time.perf_counter()
    with open(log, "w") as f:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=f, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + start_timeout
        while READY not in log.read_text(errors="replace"):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"app did not start (exit {proc.poll()}):\n{log.read_text()[-3000:]}")
            time.sleep(0.2)
        yield Server(proc, f"http://127.0.0.1:{port}/", port, log, temp, tmp, time.perf_counter() - t0)
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def make_client(url: str, download_dir: Path):
    from gradio_client import Client

    return Client(url, verbose=False, download_files=str(download_dir), analytics_enabled=False)


# ----------------------------------------------------------------------------- checking results

_inputs: dict[str, np.ndarray] = {}
_inputs_lock = threading.Lock()


def input_rgb(path: Path) -> np.ndarray:
    """The photo as the app decodes it (pipeline.imageio: EXIF orientation), cached."""
    key = str(path)
    with _inputs_lock:
        if key not in _inputs:
            _inputs[key] = load_image(path).rgb
        return _inputs[key]


def region_mask(shape, regions) -> np.ndarray:
    m = np.zeros(shape[:2], bool)
    for x0, y0, x1, y1 in regions:
        m[y0:y1, x0:x1] = True
    return m


def check_result(src: Path, png_path, summary, emotion: str, intensity: float) -> tuple[list[str], str | None]:
    """Problems with one "/edit" result (empty when it is right) and a digest of its pixels."""
    errs: list[str] = []
    try:
        data = Path(png_path).read_bytes()
    except (OSError, TypeError) as e:
        return [f"no result file ({e})"], None
    if not data.startswith(b"\x89PNG\r\n\x1a\n"):
        errs.append("result is not a PNG")
    try:
        out = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    except Exception as e:  # noqa: BLE001 - any decoding failure is a wrong result
        return errs + [f"result does not decode ({e})"], None
    inp = input_rgb(src)
    if out.shape != inp.shape:
        return errs + [f"result is {out.shape[1]}x{out.shape[0]}, input {inp.shape[1]}x{inp.shape[0]}"], None
    if not isinstance(summary, dict):
        return errs + [f"summary is not a JSON object: {summary!r:.200}"], None
    faces = summary.get("faces") or []
    n = summary.get("faces_detected")
    if not faces:
        errs.append("summary has no faces")
    elif len(faces) != n:
        errs.append(f"{len(faces)} faces edited of {n} detected (asked for all)")
    if summary.get("size") != [inp.shape[1], inp.shape[0]]:
        errs.append(f"summary size {summary.get('size')} != {[inp.shape[1], inp.shape[0]]}")
    if any(f.get("emotion") != emotion for f in faces):
        errs.append(f"emotions {[f.get('emotion') for f in faces]} != {emotion}")
    regions = [f["region"] for f in faces if "region" in f]
    diff = np.abs(out.astype(np.int16) - inp.astype(np.int16)).max(axis=2)
    outside = ~region_mask(inp.shape, regions)
    if diff[outside].any():
        errs.append(f"{int((diff[outside] > 0).sum())} pixels changed outside the face regions "
                    f"(max diff {int(diff[outside].max())})")
    if emotion != "neutral" and intensity > 0 and not diff.any():
        errs.append("nothing changed")
    return errs, hashlib.sha1(out.tobytes()).hexdigest()


# --------------------------------------------------------------------------------- the load run

@dataclass
class Request:
    client: int
    n: int
    photo: Path
    emotion: str
    intensity: float


@dataclass
class LoadReport:
    clients: int
    edits: int
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    done: int = 0
    wall_s: float = 0.0
    digests: dict = field(default_factory=dict)  # (photo, emotion, intensity) -> pixel digest
    faces_found: dict = field(default_factory=dict)  # photo -> faces_detected
    duplicates: int = 0

    def pct(self, q: float) -> float:
        return float(np.percentile(self.latencies, q)) if self.latencies else float("nan")

    @property
    def throughput(self) -> float:
        return self.done / self.wall_s if self.wall_s else 0.0

    def text(self) -> str:
        lines = [f"requests: {self.clients} clients x {self.edits} edits = {self.clients * self.edits}; "
                 f"{self.done} checked OK, {len(self.errors)} errors"]
        if self.latencies:
            lines.append(f"latency (s): p50 {self.pct(50):.2f}  p95 {self.pct(95):.2f}  max {max(self.latencies):.2f}"
                         f"  min {min(self.latencies):.2f}")
        lines.append(f"wall {self.wall_s:.1f} s, throughput {self.throughput:.2f} edits/s; "
                     f"{self.duplicates} repeated requests matched their first result pixel for pixel")
        lines += [f"ERROR {e}" for e in self.errors[:50]]
        if len(self.errors) > 50:
            lines.append(f"... and {len(self.errors) - 50} more errors")
        return "\n".join(lines)


def plan(clients: int, edits: int, photos: list[Path]) -> list[list[Request]]:
    """A deterministic mix: request k gets photo k mod P, emotion k mod 8, one of two intensities."""
    out = []
    for c in range(clients):
        reqs = []
        for j in range(edits):
            k = c * edits + j
            reqs.append(Request(c, j, photos[k % len(photos)], EMOTIONS[k % len(EMOTIONS)],
                                INTENSITIES[(k // len(EMOTIONS)) % len(INTENSITIES)]))
        out.append(reqs)
    return out


def run_load(url: str, clients: int = 8, edits: int = 25, timeout: float = 600.0,
             photos: list[Path] | None = None, download_dir: Path | None = None) -> LoadReport:
    """`clients` threads, each with its own gradio_client Client, sending `edits` requests one after
    another; every result is checked. Nothing is started after `timeout` seconds."""
    from gradio_client import handle_file

    photos = photos or default_photos()
    for p in photos:
        input_rgb(p)
    report = LoadReport(clients, edits)
    lock = threading.Lock()
    t_start = time.monotonic()
    deadline = t_start + timeout
    own_dir = download_dir is None
    download_dir = Path(tempfile.mkdtemp(prefix="mien-load-")) if own_dir else download_dir

    def error(req: Request | None, msg: str) -> None:
        with lock:
            where = f"client {req.client} edit {req.n} ({req.photo.name}, {req.emotion}, {req.intensity})" if req else ""
            report.errors.append(f"{where}: {msg}")

    def worker(c: int, reqs: list[Request]) -> None:
        try:
            client = make_client(url, download_dir / f"client{c}")
        except Exception as e:  # noqa: BLE001
            error(None, f"client {c} could not connect: {type(e).__name__}: {e}")
            return
        for req in reqs:
            left = deadline - time.monotonic()
            if left <= 0:
                error(req, "not started: out of time")
                continue
            t = time.perf_counter()
            try:
                job = client.submit(handle_file(str(req.photo)), req.emotion, req.intensity, "all", "",
                                    api_name="/edit")
                png, summary = job.result(timeout=left)
            except Exception as e:  # noqa: BLE001 - every failure is reported, none stops the run
                error(req, f"{type(e).__name__}: {str(e)[:300]}")
                continue
            dt = time.perf_counter() - t
            errs, digest = check_result(req.photo, png, summary, req.emotion, req.intensity)
            with lock:
                key = (req.photo.name, req.emotion, req.intensity)
                n = summary.get("faces_detected") if isinstance(summary, dict) else None
                seen_n = report.faces_found.setdefault(req.photo.name, n)
                if seen_n != n:
                    errs.append(f"{n} faces detected, {seen_n} in an earlier request for the same photo")
                if digest is not None:
                    first = report.digests.get(key)
                    if first is None:
                        report.digests[key] = digest
                    elif first != digest:
                        errs.append("differs from an earlier result of the same request")
                    elif not errs:
                        report.duplicates += 1
                if not errs:
                    report.latencies.append(dt)
                    report.done += 1
            for e in errs:
                error(req, e)
            with contextlib.suppress(OSError):
                Path(png).unlink()
        with contextlib.suppress(Exception):
            client.close()

    threads = [threading.Thread(target=worker, args=(c, reqs), daemon=True, name=f"client{c}")
               for c, reqs in enumerate(plan(clients, edits, photos))]
    for th in threads:
        th.start()
    for th in threads:
        th.join(max(0.0, deadline - time.monotonic()) + 30)
    report.wall_s = time.monotonic() - t_start
    if any(th.is_alive() for th in threads):
        report.errors.append("some clients were still running at the deadline")
    if own_dir:
        shutil.rmtree(download_dir, ignore_errors=True)
    return report


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--edits", type=int, default=25, help="edits per client")
    ap.add_argument("--timeout", type=float, default=600, help="seconds for the whole load (start-up not included)")
    ap.add_argument("--url", help="test a running app instead of starting one")
    args = ap.parse_args(argv)
    if args.url:
        report = run_load(args.url, args.clients, args.edits, args.timeout)
        print(report.text())
        return 1 if report.errors else 0
    with tempfile.TemporaryDirectory(prefix="mien-loadtest-") as d:
        with app_server(Path(d)) as server:
            print(f"app ready in {server.startup_s:.1f} s at {server.url} (RSS {server.rss_mb():.0f} MB)", flush=True)
            report = run_load(server.url, args.clients, args.edits, args.timeout,
                              download_dir=Path(d) / "client")
            rss = server.rss_mb()
            tracebacks = server.log_text().count("Traceback")
        print(report.text())
        print(f"server RSS after the load: {rss:.0f} MB")
        if tracebacks:
            print(f"ERROR the server log has {tracebacks} traceback(s)")
    return 1 if report.errors or tracebacks else 0


if __name__ == "__main__":
    sys.exit(main())
