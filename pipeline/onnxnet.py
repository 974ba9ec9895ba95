"""One ported ONNX network, run by OpenCV's dnn module (no onnxruntime, no TensorFlow): the shared
plumbing of the emotion classifiers and the held-out identity judge."""
from __future__ import annotations

import threading
from pathlib import Path

import cv2
import numpy as np

from .errors import MienError


class OnnxNet:
    def __init__(self, model_path: Path, porter: str, what: str, error: type[MienError] = MienError):
        if not model_path.exists():
            raise error(f"{what} missing: {model_path} (run scripts/{porter})")
        self._net = cv2.dnn.readNetFromONNX(str(model_path))
        self._lock = threading.Lock()  # a cv2.dnn.Net is not safe to run from two threads at once

    def _run(self, blob: np.ndarray) -> np.ndarray:
        """(n, ...) float32 input -> (n, k) output."""
        with self._lock:
            self._net.setInput(np.ascontiguousarray(blob, dtype=np.float32))
            return self._net.forward().reshape(len(blob), -1)
