"""Backends by name: detector, landmarker, embedder (identity), classifier (emotion).

Each kind follows one small protocol (`detection.Detector`, `detection.Landmarker`,
`identity.Embedder`, `classify.EmotionClassifier`). A backend is chosen by name per call
(`edit(..., detector="insightface")`, CLI `--detector`, the app's settings) or by environment
(`MIEN_DETECTOR`, ...; see `pipeline.config`), loaded on first use and shared. Every instance
carries `backend_name`, which tags what it computed (a Face's cached embedding, say), so a cache
made by one model is never read as another's.

To add a backend: write the class (one module, lazy heavy imports), add its "module:factory" to
BACKENDS below, or call `register()` at run time (tests use that for fakes).
"""
from __future__ import annotations

import importlib
import threading
from dataclasses import dataclass
from typing import Any, Callable

from .errors import InvalidRequest, MienError

KINDS = ("detector", "landmarker", "embedder", "classifier")

BACKENDS: dict[str, dict[str, str | Callable[[], Any]]] = {
    "detector": {
        "blazeface": "pipeline.detection:BlazeFace",
        "insightface": "pipeline.backends.insightface:SCRFDDetector",
    },
    "landmarker": {"facemesh": "pipeline.detection:FaceMesh"},
    "embedder": {
        "dlib": "pipeline.identity:DlibResNet",
        "mobilefacenet": "pipeline.backends.mobilefacenet:MobileFaceNet",
        "arcface": "pipeline.backends.insightface:ArcFaceEmbedder",
    },
    "classifier": {
        "ensemble": "pipeline.classify:ensemble",
        "face-api": "pipeline.classify:face_api",
        "mini-xception": "pipeline.classify:mini_xception",
    },
}
# MobileFaceNet separates London people far better than dlib (same-person min 0.787 vs strangers
# max 0.548; dlib 0.959 vs 0.945) at ~4 ms a face instead of ~65 (scripts/calibrate_identity.py).
DEFAULTS = {"detector": "blazeface", "landmarker": "facemesh", "embedder": "mobilefacenet", "classifier": "ensemble"}


class BackendUnavailable(MienError):
    """A known backend that cannot load here (package or model file missing)."""


_instances: dict[tuple[str, str], Any] = {}
_lock = threading.RLock()


def names(kind: str) -> list[str]:
    return list(BACKENDS[kind])


def default_name(kind: str) -> str:
    from .config import settings

    return getattr(settings(), kind, None) or DEFAULTS[kind]


def register(kind: str, name: str, factory: Callable[[], Any]) -> None:
    """Add or replace a backend (drops a cached instance of the same name)."""
    with _lock:
        BACKENDS[kind][name] = factory
        _instances.pop((kind, name), None)


def get(kind: str, name: str | None = None) -> Any:
    """The shared backend of `kind` called `name` (None: the configured default)."""
    if kind not in BACKENDS:
        raise InvalidRequest(f"Unknown backend kind '{kind}'. Kinds: {', '.join(KINDS)}.")
    name = (name or default_name(kind)).strip().lower()
    if name not in BACKENDS[kind]:
        raise InvalidRequest(f"Unknown {kind} '{name}'. Available: {', '.join(BACKENDS[kind])}.")
    with _lock:
        key = (kind, name)
        if key not in _instances:
            factory = BACKENDS[kind][name]
            if isinstance(factory, str):
                mod, attr = factory.split(":")
                try:
                    factory = getattr(importlib.import_module(mod), attr)
                except ImportError as e:
                    raise BackendUnavailable(f"The {name} {kind} needs the '{e.name}' package, which is not installed.") from None
            try:
                inst = factory()
            except MienError:
                raise
            except (OSError, RuntimeError, ValueError) as e:  # a model file missing or unreadable
                raise BackendUnavailable(f"The {name} {kind} cannot load: {e}") from None
            try:
                inst.backend_name = name
            except AttributeError:  # a slotted object stays untagged: its caches carry no model name
                pass
            _instances[key] = inst
        return _instances[key]


@dataclass(frozen=True)
class Backends:
    """The backends one `edit()` call uses, resolved once from names."""
    detector: str
    landmarker: str
    embedder: str
    classifier: str

    @classmethod
    def choose(cls, detector=None, landmarker=None, embedder=None, classifier=None) -> Backends:
        return cls(*(((v or default_name(k)).strip().lower()) for k, v in
                     zip(KINDS, (detector, landmarker, embedder, classifier))))

    def get(self, kind: str):
        return get(kind, getattr(self, kind))
