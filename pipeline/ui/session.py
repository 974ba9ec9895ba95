"""Per-photo cache and work files of the web app.

A photo is decoded (`pipeline.imageio`) and its faces detected once per distinct file; the sliders
then re-run `edit()` on the cached faces. Photos, detections and work files are forgotten after
CACHE_TTL_S (MIEN_CACHE_TTL_S), by the requests themselves and by a sweeper thread, so an idle
server keeps no one's photo past the TTL.
"""
from __future__ import annotations

import hashlib
import itertools
import os
import shutil
import tempfile
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from .. import imageio
from ..editor import detect
from ..errors import MienError
from .views import display, numbered

try:  # Hugging Face ZeroGPU: the decorator is required there; elsewhere (and locally) a no-op
    import spaces

    gpu = spaces.GPU
except ImportError:
    def gpu(fn=None, **_kwargs):
        return fn if fn is not None else (lambda f: f)

CACHE_TTL_S = int(os.environ.get("MIEN_CACHE_TTL_S", 3600))
CACHE_ENTRIES = 16
CACHE_BYTES = 600_000_000  # decoded photos kept for the sliders, all sessions together
WORK = Path(tempfile.gettempdir()) / "mien-app"  # display copies and downloads


@dataclass
class Photo:
    key: str  # sha256 of the uploaded file
    loaded: imageio.LoadedImage
    faces: list
    name: str
    before_file: str  # display-size copy of the upright photo
    numbered: np.ndarray  # display-size copy with numbered face boxes
    used: float = field(default_factory=time.time)

    @property
    def nbytes(self) -> int:
        return self.loaded.rgb.nbytes + self.numbered.nbytes

    @property
    def before(self) -> str:
        if not os.path.exists(self.before_file):  # its folder outlived the TTL while in use
            self.before_file = _write_before(self.loaded.rgb)
        return self.before_file


def _write_before(rgb: np.ndarray) -> str:
    path = new_dir() / "before.jpg"
    Image.fromarray(display(rgb)).save(path, quality=90)
    return str(path)


_cache: OrderedDict[str, Photo] = OrderedDict()
_cache_lock = threading.Lock()
_key_locks: dict[str, threading.Lock] = {}


def prune_cache() -> None:
    now = time.time()
    with _cache_lock:
        for k in [k for k, p in _cache.items() if now - p.used > CACHE_TTL_S]:
            del _cache[k]
        while len(_cache) > CACHE_ENTRIES or (
                len(_cache) > 1 and sum(p.nbytes for p in _cache.values()) > CACHE_BYTES):
            _cache.popitem(last=False)


def sweep_s() -> int:
    """How often the caches are swept; files are deleted at age TTL - sweep, so nothing outlives
    the TTL even between two sweeps."""
    return max(1, min(300, CACHE_TTL_S // 4))


def prune_files() -> None:
    WORK.mkdir(mode=0o700, parents=True, exist_ok=True)  # private: other local users can't read it
    now = time.time()
    for d in WORK.iterdir():
        try:
            if now - d.stat().st_mtime > CACHE_TTL_S - sweep_s():
                shutil.rmtree(d) if d.is_dir() else d.unlink()
        except OSError:
            pass


def new_dir() -> Path:
    prune_files()
    d = WORK / uuid.uuid4().hex
    d.mkdir(parents=True)
    return d


def start_sweeper() -> threading.Thread:
    def sweep():
        while True:
            time.sleep(sweep_s())
            prune_cache()
            prune_files()

    t = threading.Thread(target=sweep, name="mien-sweeper", daemon=True)
    t.start()
    return t


def serve_images_atomically() -> bool:
    """Make Gradio write each image it caches for the browser once, atomically. Its
    `save_pil_to_cache` names a file by the image's content and rewrites it in place whenever the
    same image is returned again (the before picture beside every slider move, a result after
    "Undo", two events with the same settings): a browser still fetching the earlier copy read a
    truncated file (uvicorn: "Too little data for declared Content-Length"; a broken picture).
    Here an existing copy is only touched (Gradio's cache deletion ages files by their time stamps,
    as its own `save_file_to_cache` does) and a new one is written under a temporary name and
    renamed into place. Returns False, changing nothing, if this Gradio lacks the functions."""
    try:
        from gradio import processing_utils as pu
    except ImportError:
        return False
    if getattr(pu.save_pil_to_cache, "mien_atomic", False):
        return True
    if not all(hasattr(pu, n) for n in ("save_pil_to_cache", "encode_pil_to_bytes", "hash_bytes")):
        return False

    def save_pil_to_cache(img, cache_dir, name: str = "image", format: str = "webp") -> str:
        data = pu.encode_pil_to_bytes(img, format)
        folder = Path(cache_dir) / pu.hash_bytes(data)
        folder.mkdir(exist_ok=True, parents=True)
        path = (folder / f"{name}.{format}").resolve()
        if path.exists():
            try:
                os.utime(path)
            except OSError:
                pass
            return str(path)
        fd, staging = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(staging, path)
        except BaseException:
            Path(staging).unlink(missing_ok=True)
            raise
        return str(path)

    save_pil_to_cache.mien_atomic = True
    save_pil_to_cache.gradio_original = pu.save_pil_to_cache
    pu.save_pil_to_cache = save_pil_to_cache
    return True


@gpu
def _detect(rgb: np.ndarray) -> list:
    """Pure (ZeroGPU runs decorated functions in a worker process): faces of `rgb`."""
    return detect(rgb)[1]


def photo_for(path: str) -> Photo:
    """Decode and detect faces once per distinct file; later calls are cached."""
    try:
        with open(path, "rb") as f:
            head = f.read(imageio.MAX_BYTES + 1)
    except OSError:
        raise MienError("The photo is no longer on the server: please upload it again.") from None
    key = hashlib.sha256(head).hexdigest()
    prune_cache()
    with _cache_lock:
        lock = _key_locks.setdefault(key, threading.Lock())
    try:
        with lock:  # two events for the same new photo: detect once
            with _cache_lock:
                photo = _cache.get(key)
                if photo is not None:
                    _cache.move_to_end(key)
                    photo.used = time.time()
                    return photo
            loaded = imageio.load_image(head)  # EXIF orientation, size limits, friendly errors
            faces = _detect(loaded.rgb)
            name = Path(path).stem or "photo"
            photo = Photo(key, loaded, faces, name, _write_before(loaded.rgb),
                          numbered(display(loaded.rgb), faces, loaded.rgb.shape))
            with _cache_lock:
                _cache[key] = photo
    finally:
        with _cache_lock:
            _key_locks.pop(key, None)
    prune_cache()
    return photo


def save_png(photo: Photo, rgb: np.ndarray, provenance: dict, suffix: str = "") -> str:
    """The full-resolution download (no EXIF/GPS, a provenance note instead)."""
    path = new_dir() / f"{photo.name}_mien{suffix}.png"
    imageio.save_image(path, rgb, photo.loaded, provenance=provenance)
    return str(path)


class Order:
    """Per browser session: which checked edit started last. The live preview and the checked edit
    of one slider move run as separate events and may finish in either order; a result is dropped
    when a checked edit started after it did, so a stale picture never replaces the checked one."""

    def __init__(self):
        self._n = itertools.count()
        self._last_check: dict[str, int] = {}
        self._lock = threading.Lock()

    def start(self, session: str | None, check: bool) -> int:
        with self._lock:
            n = next(self._n)
            if check and session:
                self._last_check[session] = n
                if len(self._last_check) > 4096:  # forget old sessions
                    self._last_check.pop(next(iter(self._last_check)))
            return n

    def stale(self, session: str | None, ticket: int) -> bool:
        with self._lock:
            return bool(session) and self._last_check.get(session, -1) > ticket


order = Order()
