"""Reliability: concurrent load through the real app, memory soak, privacy of uploads.

Reduced forms of `scripts/load_test.py` (8 clients x 25 edits) and `scripts/soak.py` (500 edits),
which run the full forms; plus the privacy checks: where uploads land and when they go, which
paths the server refuses to serve, that an edit writes nothing into the repository, and that an
upload's URL cannot be listed or derived from the photo.

Every server is `python app.py` (or the app with a short time-to-live, see TTL_APP) on a free
127.0.0.1 port with its own GRADIO_TEMP_DIR and TMPDIR under the test's tmp dir.
"""
from __future__ import annotations

import ast
import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from scripts.load_test import app_server, make_client, run_load
from tests.conftest import london

ROOT = Path(__file__).resolve().parent.parent
IGNORED = {".git", ".venv", "out", ".pytest_cache", "__pycache__", ".hypothesis"}
TTL_S = 4  # the short time-to-live of TTL_APP
# The real app, with its time-to-live (pipeline.ui.session.CACHE_TTL_S and demo.delete_cache: uploads,
# downloads and the work dir) cut to seconds; it prints the real settings first.
TTL_APP = f"""
import app
from pipeline.ui import session
print("SETTINGS", repr((session.CACHE_TTL_S, app.demo.delete_cache)), flush=True)
session.CACHE_TTL_S = {TTL_S}
app.demo.delete_cache = (1, {TTL_S})
app.main()
"""

httpx = pytest.importorskip("httpx")
pytest.importorskip("gradio_client")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """`python app.py` on a free loopback port, temp dirs of its own."""
    with app_server(tmp_path_factory.mktemp("app")) as s:
        print(f"\napp start-up: {s.startup_s:.1f} s")
        yield s


@pytest.fixture(scope="module")
def ttl_server(tmp_path_factory):
    """The app with a time-to-live of TTL_S seconds (see TTL_APP)."""
    with app_server(tmp_path_factory.mktemp("ttl-app"), code=TTL_APP) as s:
        yield s


def _files(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file()} if root.exists() else set()


def _upload(server, path: Path) -> str:
    """POST one file to Gradio's upload route; returns the server-side path it was stored at."""
    with open(path, "rb") as f:
        r = httpx.post(server.url + "gradio_api/upload", files={"files": (path.name, f)}, timeout=30)
    r.raise_for_status()
    (stored,) = r.json()
    return stored


def _edit(server, tmp_path: Path, photo: Path, emotion="happy"):
    from gradio_client import handle_file

    client = make_client(server.url, tmp_path / "client")
    try:
        return client.predict(handle_file(str(photo)), emotion, 1.0, "all", "", api_name="/edit")
    finally:
        client.close()


def _raw_edit(server, image: dict, timeout: float = 60) -> tuple[str, str]:
    """"/edit" over the plain HTTP API with a hand-made file payload: (last SSE event, its data)."""
    r = httpx.post(server.url + "gradio_api/call/edit", json={"data": [image, "happy", 1.0, "all", ""]}, timeout=30)
    r.raise_for_status()
    event_id = r.json()["event_id"]
    r = httpx.get(server.url + f"gradio_api/call/edit/{event_id}", timeout=timeout)
    event = data = ""
    for line in r.text.splitlines():
        if line.startswith("event:"):
            event = line.split(":", 1)[1].strip()
        elif line.startswith("data:"):
            data = line.split(":", 1)[1].strip()
    return event, data


def _file_url(server, path: str) -> str:
    return server.url + "gradio_api/file=" + path


# ------------------------------------------------------------------------------------------ load

def test_load_concurrent_clients_every_result_correct(server, tmp_path):
    """4 clients x 3 edits at once (the app runs 2 at a time): every result is a PNG of the input's
    size, changed only inside the returned face regions, with a summary for every face."""
    tracebacks = server.log_text().count("Traceback")  # (the privacy tests cause some on purpose)
    report = run_load(server.url, clients=4, edits=3, timeout=150, download_dir=tmp_path)
    print("\n" + report.text())
    assert not report.errors, report.text()
    assert report.done == 12
    assert server.log_text().count("Traceback") == tracebacks, server.log_text()[-3000:]


# ------------------------------------------------------------------------------------------ soak

def _soak(*args: str) -> subprocess.CompletedProcess:
    """scripts/soak.py in a fresh process (its RSS is the soak's own, not the test session's)."""
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=240)


SOAK_ARGS = ["--edits", "150", "--warmup", "40", "--every", "10", "--gate-every", "10", "--detect-every", "7",
             "--max-growth", "5"]


def test_soak_memory_levels_off():
    """150 edits (every 10th gated, every 7th with detection inside edit()): RSS grows at most 5 %
    after a warm-up of 40 edits (all models loaded by then: the first edit is gated). Measured on
    the dev box: +0.0 to +1.0 % here, +0.03 % over the full 500 (scripts/soak.py); RSS moves by
    about 3 MB of ~190-220 MB (1.5 %) from sample to sample, so 5 % stays clear of noise while a
    leak of 400 kB per edit (44 MB over the 110 edits after the warm-up) fails it (next test).
    About 10 s."""
    p = _soak("scripts/soak.py", *SOAK_ARGS)
    print("\n" + p.stdout)
    assert p.returncode == 0, p.stdout + p.stderr[-3000:]
    assert "OK: growth" in p.stdout


def test_soak_catches_a_leak():
    """The soak is sensitive: an `edit()` that keeps 400 kB per call alive fails it (ungated, on a
    ~200-215 MB base: +15 to +21 %). A 200 kB leak read anywhere from +4.9 to +9.9 % (the heap
    hands the leak memory the edits freed, so RSS shows only part of it): fresh-clone CI at d8c1350
    read +4.91 % and the 5 % limit let it through. Leaks that small can pass the soak."""
    code = ("import sys, numpy as np, scripts.soak as s\n"
            "kept, real = [], s.edit\n"
            "def leaky(*a, **k):\n"
            "    kept.append(np.ones(400_000, np.uint8))\n"
            "    return real(*a, **k)\n"
            "s.edit = leaky\n"
            f"sys.exit(s.main({SOAK_ARGS[:4] + ['--gate-every', '0']!r}))\n")
    p = _soak("-c", code)
    print("\n" + p.stdout)
    assert p.returncode == 1 and "FAIL: RSS grew" in p.stdout, p.stdout + p.stderr[-3000:]


# --------------------------------------------------------------------------------------- privacy

def test_uploads_and_results_stay_in_the_app_temp_dirs(server, tmp_path):
    """(a) An upload is stored under the app's GRADIO_TEMP_DIR; an edit's files all land under
    GRADIO_TEMP_DIR or the app's work dir (TMPDIR/mien-app), nowhere else in its temp tree."""
    src = london("021")
    stored = Path(_upload(server, src))
    assert stored.is_relative_to(server.temp), stored
    assert stored.read_bytes() == src.read_bytes()
    before = _files(server.temp.parent)
    png, summary = _edit(server, tmp_path, src)
    assert summary["faces"]
    new = _files(server.temp.parent) - before
    assert new, "an edit should leave its upload/result in the app's temp dirs"
    stray = [p for p in new if not (p.is_relative_to(server.temp) or p.is_relative_to(server.work))]
    assert not stray, stray
    assert any(p.suffix == ".png" and p.is_relative_to(server.temp) for p in new), new  # the served result


def _snapshot(root: Path) -> dict[str, tuple[int, int]]:
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in IGNORED]
        for name in filenames:
            p = Path(dirpath) / name
            try:
                st = p.stat()
            except OSError:
                continue
            out[str(p.relative_to(root))] = (st.st_mtime_ns, st.st_size)
    return out


def test_edit_writes_nothing_into_the_repository(server, tmp_path):
    """(c) Upload + edit + download through the API changes no file in the repository tree
    (ignoring .git, .venv, out/, caches); the files it makes are in the temp dirs instead."""
    temp_before = _files(server.temp.parent)
    snap = _snapshot(ROOT)
    png, summary = _edit(server, tmp_path, london("064"), "surprised")
    png2, _ = _edit(server, tmp_path, london("064", "happy"), "sad")
    time.sleep(0.5)  # background moves of uploads into the cache
    after = _snapshot(ROOT)
    changed = sorted(k for k in set(snap) | set(after) if snap.get(k) != after.get(k))
    assert not changed, f"files written in the repository during an edit: {changed}"
    assert len(_files(server.temp.parent) - temp_before) >= 4  # two uploads, two results (at least)


SECRET_FILES = ["/etc/passwd", str(ROOT / "app.py"), str(ROOT / "tests/data/london/001_neutral.jpg"),
                str(ROOT / "weights/gate_calibration.json")]


def test_paths_outside_the_cache_are_refused(server, tmp_path):
    """(b) /file= requests for anything outside the app's cache (system files, the repository,
    another request's result in the app's work dir, traversal out of the cache, the cache dir
    itself) are refused with 403/404 and do not leak the content; the cache's own file is served."""
    png, _ = _edit(server, tmp_path, london("005"), "angry")  # leaves a result in the work dir
    work_files = sorted(_files(server.work))
    assert work_files
    stored = _upload(server, london("025"))
    assert httpx.get(_file_url(server, stored), timeout=30).content == london("025").read_bytes()  # control
    t = str(server.temp)
    cases = {
        "/gradio_api/file=/etc/passwd": "/etc/passwd",
        "/file=/etc/passwd": "/etc/passwd",
        "/file=../../etc/passwd": "/etc/passwd",
        "/gradio_api/file=../../../../../etc/passwd": "/etc/passwd",
        "/gradio_api/file=..%2F..%2F..%2F..%2F..%2Fetc%2Fpasswd": "/etc/passwd",
        f"/gradio_api/file={t}/..%2F..%2F..%2F..%2F..%2F..%2Fetc%2Fpasswd": "/etc/passwd",
        f"/gradio_api/file={t}/%2E%2E/%2E%2E/%2E%2E/%2E%2E/%2E%2E/%2E%2E/etc/passwd": "/etc/passwd",
        f"/gradio_api/file={t}": None,  # no listing of the cache
        f"/gradio_api/file={Path(stored).parent}": None,
        f"/gradio_api/file={server.work}": None,
        **{f"/gradio_api/file={p}": p for p in SECRET_FILES[1:]},
        **{f"/gradio_api/file={p}": str(p) for p in work_files},  # another request's files, outside the cache
    }
    for path, secret in cases.items():
        r = httpx.get(server.url.rstrip("/") + path, timeout=30)
        assert r.status_code in (403, 404), (path, r.status_code, r.text[:200])
        if secret is not None:
            content = Path(secret).read_bytes()
            assert content[:64] not in r.content, path
        assert b"root:" not in r.content and len(r.content) < 1000, path


@pytest.mark.parametrize("path", SECRET_FILES + ["work_file", "http://127.0.0.1:{port}/gradio_api/file={stored}"])
def test_api_refuses_files_it_did_not_receive(server, tmp_path, path):
    """(b) "/edit" given a file path (or a loopback URL) that was not uploaded through the app
    answers with an error, never with an edit of that file."""
    if path == "work_file":
        _edit(server, tmp_path, london("001"))
        path = str(sorted(_files(server.work))[0])
    elif path.startswith("http"):
        path = path.format(port=server.port, stored=_upload(server, london("001")))
    event, data = _raw_edit(server, {"path": path, "meta": {"_type": "gradio.FileData"}})
    assert event == "error", (event, data[:300])
    assert "root:" not in data and "Traceback" not in data


def test_upload_urls_are_not_listable_or_guessable(server):
    """(d) An upload's URL holds a 64-hex folder keyed with the server's secret seed: not the plain
    SHA-256 of the photo or its name, so it cannot be derived from the photo; the folders cannot
    be listed; the page config and API info name no upload."""
    src = london("001", "happy")
    a, b = Path(_upload(server, src)), Path(_upload(server, src))
    other = Path(_upload(server, london("005", "happy")))
    assert a.parent.parent == server.temp and a.name == src.name
    key = a.parent.name
    assert len(key) == 64 and int(key, 16) >= 0
    data = src.read_bytes()
    assert key not in {hashlib.sha256(data).hexdigest(), hashlib.sha256(src.name.encode()).hexdigest(),
                       hashlib.sha256(str(src).encode()).hexdigest()}
    assert a == b and other.parent != a.parent  # one folder per distinct photo (content-keyed)
    guessed = server.temp / hashlib.sha256(data).hexdigest() / src.name
    for path in (guessed, server.temp, a.parent):
        r = httpx.get(_file_url(server, str(path)), timeout=30)
        assert r.status_code in (403, 404) and data[:64] not in r.content, (path, r.status_code)
    for route in ("config", "gradio_api/info"):  # (they do name the examples' cached copies)
        r = httpx.get(server.url + route, timeout=30)
        assert r.status_code == 200 and key not in r.text and src.name not in r.text, route
    # results are served the same way: a fresh 64-hex folder in the cache
    event, payload = _raw_edit(server, {"path": str(a), "meta": {"_type": "gradio.FileData"}})
    assert event == "complete", (event, payload[:300])
    result = Path(json.loads(payload)[0]["path"])
    assert result.is_relative_to(server.temp) and len(result.parent.name) == 64 and result.parent.name != key


def test_files_are_deleted_after_the_time_to_live(ttl_server, tmp_path):
    """(a) With the app's time-to-live cut to TTL_S s, its uploads and results vanish from the
    Gradio cache on their own, and the app's work dir is pruned by the next request; the real
    settings delete everything within the hour the page promises."""
    line = next(l for l in ttl_server.log_text().splitlines() if l.startswith("SETTINGS "))
    ttl, delete_cache = ast.literal_eval(line.split(" ", 1)[1])
    assert ttl <= 3600 and delete_cache is not None
    every, age = delete_cache
    assert age <= ttl, "Gradio's cache must not outlive the app's time-to-live"
    assert every + age <= 3600, f"delete_cache={delete_cache}: a file may live {every + age} s, over the hour promised"

    examples = _files(ttl_server.temp)  # the examples' copies, kept for the page (not uploads)
    src = london("025", "happy")
    png, summary = _edit(ttl_server, tmp_path, src, "fearful")
    assert summary["faces"]
    cached, work = _files(ttl_server.temp) - examples, _files(ttl_server.work)
    assert any(p.name == src.name for p in cached) and any(p.suffix == ".png" for p in cached), cached
    assert work
    deadline = time.monotonic() + TTL_S + 10
    while _files(ttl_server.temp) & cached and time.monotonic() < deadline:
        time.sleep(0.5)
    left = _files(ttl_server.temp) & cached
    assert not left, f"still in the cache {TTL_S} s + 10 s after the edit: {left}"
    idle_left = _files(ttl_server.work) & work  # swept by the app's own timer, with no request
    assert not idle_left, f"{len(idle_left)} download/display file(s) outlived the time-to-live on an idle server"
    _edit(ttl_server, tmp_path, london("021", "happy"), "sad")
    assert not (_files(ttl_server.work) & work), "the app's work dir was not pruned after its time-to-live"


def _short_reads(save, cache_dir: Path, times: int = 100) -> int:
    """Reads of a cached image, by a thread reading it over and over as a browser fetches it,
    that came back shorter than the file, while `save` caches the same image `times` more times."""
    import threading

    import numpy as np
    from PIL import Image

    img = Image.fromarray(np.random.default_rng(0).integers(0, 255, (400, 400, 3), dtype=np.uint8))
    path = save(img, str(cache_dir), format="jpeg")
    size, short, done = os.path.getsize(path), [0], threading.Event()

    def fetch():
        while not done.is_set():
            with open(path, "rb") as f:
                short[0] += len(f.read()) != size

    t = threading.Thread(target=fetch)
    t.start()
    try:
        for _ in range(times):
            assert save(img, str(cache_dir), format="jpeg") == path
    finally:
        done.set()
        t.join()
    return short[0]


def test_an_image_shown_again_is_never_rewritten_while_it_is_fetched(tmp_path):
    """Gradio caches each returned image under a name made from its content and rewrote the file in
    place whenever the same image came back (the before picture beside every slider move, a
    result after Undo): a browser fetching the earlier copy got a truncated file, and the app
    logged uvicorn's "Too little data for declared Content-Length" (seen once in test_app). Gradio's
    own writer, reproduced: hundreds of short reads in 100 saves; the app's (installed when app.py
    builds the page): none, and a new image still lands complete under the same name."""
    from gradio import processing_utils as pu

    from pipeline.ui import session

    current = pu.save_pil_to_cache  # the app's, if an earlier test imported app.py
    try:
        pu.save_pil_to_cache = getattr(current, "gradio_original", current)
        assert _short_reads(pu.save_pil_to_cache, tmp_path / "gradio") > 0  # the race is real here
        assert session.serve_images_atomically()
        assert getattr(pu.save_pil_to_cache, "mien_atomic", False)
        assert _short_reads(pu.save_pil_to_cache, tmp_path / "mien") == 0
        assert not list((tmp_path / "mien").rglob(".*"))  # no staging file left behind
    finally:
        pu.save_pil_to_cache = current
    code = "import app; from gradio import processing_utils as pu; print(pu.save_pil_to_cache.mien_atomic)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.stdout.strip().endswith("True"), out.stderr[-2000:]  # app.py installs it
