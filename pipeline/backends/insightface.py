"""InsightFace backends, run by the `insightface` package's own code: SCRFD face detection (five
keypoints) and ArcFace identity embeddings.

Nothing here is the default, and nothing heavy is imported until a class is built: `insightface`
(MIT code) needs `onnxruntime` and `requests` on top of Mien's dev requirements (`onnx`, `scipy`,
`scikit-image`, which its `model_zoo` and `utils.face_align` import).

Model files. InsightFace's pretrained models are for NON-COMMERCIAL research only, so none is
committed or downloaded by Mien at run time:

- detection: an InsightFace model-pack folder (`MIEN_INSIGHTFACE_MODELS`, e.g. buffalo_l with
  `det_10g.onnx`), else SCRFD-2.5GF (`scrfd.onnx`, fixed 640x640 input) that
  `scripts/fetch_insightface_models.py` puts in weights/insightface/ (git-ignored);
- recognition: the pack's ArcFace model (`w600k_r50.onnx` in buffalo_l); none is available
  offline, so `ArcFaceEmbedder` raises `IdentityModelUnavailable` without one;
- `download=True` (off by default; for e.g. Hugging Face Spaces) lets InsightFace's own
  `FaceAnalysis(name="buffalo_l", root=...)` download the pack when it is not there yet.

Keypoints. SCRFD gives five points: image-left eye, image-right eye, nose tip, image-left mouth
corner, image-right mouth corner. `Face.keypoints` keeps BlazeFace's six-point layout so the face
mesh (`detection.FaceMesh`, which reads points 0 and 1 for the eye line) and every other consumer
work unchanged:

    keypoints[0] = SCRFD 0 (image-left eye = subject's right eye)   keypoints[1] = SCRFD 1
    keypoints[2] = SCRFD 2 (nose tip)    keypoints[3] = mean of SCRFD 3 and 4 (mouth centre)
    keypoints[4], [5] = ears, ESTIMATED (SCRFD has none): eye midpoint -/+ EAR_ALONG x the eye
                        vector + EAR_DOWN x its perpendicular (BlazeFace's median on London)

The five points themselves are kept on the face as `face.keypoints5` ((5, 2) float32, SCRFD
order) for ArcFace alignment.

Boxes. SCRFD's box is a tall rectangle (forehead to chin, height/width median 1.39 on London);
BlazeFace's, which the face mesh's ROI recipe (a square 1.5x the box) and the rest of Mien
expect, is a square. On the 136 London photos (68 people x neutral/happy, one face each, all
found by both) BlazeFace's side = 0.827 x SCRFD's longer side (p5 0.789, p95 0.884) and its centre
lies 0.063 x that side lower (p5 0.033, p95 0.082; sideways -0.008, ignored). With
`blazeface_box=True` (default) the box is converted so; the face mesh then lands 0.0138 inter-ocular
distances (mean over 468 points; worst face 0.028) from the mesh on BlazeFace's box, and 0.0617 IOD
from the hand-placed London points (BlazeFace's box: 0.0628). On SCRFD's raw box the mesh is off by
0.054 IOD from BlazeFace's and 0.086 from the hand-placed points, hence the conversion.
"""
from __future__ import annotations

import threading
import warnings
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from .. import config as _config
from ..errors import MienError
from ..identity import IdentityModelUnavailable, _normalise
from ..mesh import EYE_L, EYE_R
from ..types import Face

FETCHED_DIR = "insightface"  # under settings().weights: where scripts/fetch_insightface_models.py puts scrfd.onnx
FETCHED_DETECTOR = "scrfd.onnx"

# Known file names in InsightFace's model packs (buffalo_l/_m/_s, antelopev2), best first.
DETECTION_FILES = ("det_10g.onnx", "scrfd_10g_bnkps.onnx", "det_2.5g.onnx", "det_500m.onnx", "scrfd.onnx")
DETECTION_GLOBS = ("det_*.onnx", "scrfd*.onnx")
RECOGNITION_FILES = ("w600k_r50.onnx", "glintr100.onnx", "w600k_mbf.onnx")
RECOGNITION_GLOBS = ("w600k*.onnx", "glint*.onnx", "*arcface*.onnx")

# SCRFD box -> BlazeFace box (see the module docstring): square side and downward shift, both in
# units of SCRFD's longer side. Median of the 136 London photos.
BOX_SCALE = 0.827
BOX_DOWN = 0.063
# BlazeFace's ear points in the eye frame (origin: eye midpoint; u: image-left eye -> image-right
# eye; v: u turned 90 degrees, pointing down the face). Median on London: right ear (-1.030, 0.336),
# left ear (1.064, 0.356); used symmetrically. Error vs BlazeFace's ears: median 0.07 IOD.
EAR_ALONG = 1.047
EAR_DOWN = 0.346

# ArcFace cosine threshold. NOT calibrated on Mien's data (no ArcFace model is available offline):
# it is InsightFace's own default for buffalo-pack recognition, `DEFAULT_THRESHOLD = 0.4` in
# insightface 2.1's gui/core/constants.py and `similarity_threshold: 0.40` in its PrivateFrame
# config (app/privateframe/base_config.py); commonly used values for w600k_r50 are 0.3-0.4.
# Calibrate with scripts/calibrate_identity.py once a recognition model is at hand.
ARCFACE_THRESHOLD = 0.40

_INSTALL_HINT = "pip install onnxruntime requests && pip install --no-deps insightface==2.1"


class InsightFaceUnavailable(MienError):
    """insightface / onnxruntime or an InsightFace model file is missing."""


def _import_insightface(error: type[MienError] = InsightFaceUnavailable):
    """The `insightface` package (importing it pulls in onnxruntime, onnx, scipy, scikit-image)."""
    try:
        import insightface
        from insightface.model_zoo import get_model  # noqa: F401
    except ImportError as e:
        raise error(f"InsightFace backends need the '{e.name}' package: {_INSTALL_HINT}") from None
    import insightface

    return insightface


# ---------------------------------------------------------------------------------------------
# model files


@dataclass(frozen=True)
class ModelPack:
    """The InsightFace model files found for each task (None: none found)."""
    detection: Path | None
    recognition: Path | None
    folder: Path | None  # the model-pack folder searched (None: not set)


def fetched_detector() -> Path:
    """Where scripts/fetch_insightface_models.py keeps SCRFD-2.5GF (it may not be there)."""
    return _config.settings().weights / FETCHED_DIR / FETCHED_DETECTOR


def _find(folder: Path, names: tuple[str, ...], globs: tuple[str, ...]) -> Path | None:
    for n in names:
        if (folder / n).is_file():
            return folder / n
    for g in globs:
        hits = sorted(p for p in folder.glob(g) if p.is_file())
        if hits:
            return hits[0]
    return None


def model_pack(folder: str | Path | None = None) -> ModelPack:
    """SCRFD and ArcFace files in an InsightFace model-pack folder (`folder`, else the setting
    `MIEN_INSIGHTFACE_MODELS`; buffalo_l layout: det_10g.onnx, w600k_r50.onnx). Detection falls
    back to the fetched weights/insightface/scrfd.onnx. Never downloads."""
    if folder is None:
        folder = _config.settings().insightface_models
    det = rec = None
    root = Path(folder).expanduser() if folder else None
    if root is not None and root.is_dir():
        det = _find(root, DETECTION_FILES, DETECTION_GLOBS)
        rec = _find(root, RECOGNITION_FILES, RECOGNITION_GLOBS)
    if det is None and fetched_detector().is_file():
        det = fetched_detector()
    return ModelPack(detection=det, recognition=rec, folder=root)


_analysis_lock = threading.Lock()


@lru_cache(maxsize=4)
def _face_analysis(name: str, root: str, download: bool, providers: tuple | None):
    _import_insightface()
    from insightface.app import FaceAnalysis

    direct = Path(name).expanduser()
    packed = Path(root).expanduser() / "models" / name
    if not direct.is_dir() and not packed.is_dir() and not download:
        raise InsightFaceUnavailable(
            f"InsightFace model pack '{name}' is not in {packed} and downloading is off (download=True lets InsightFace fetch it)")
    try:
        app = FaceAnalysis(name=str(direct) if direct.is_dir() else name, root=root,
                           allowed_modules=["detection", "recognition"],
                           providers=list(providers) if providers else None)
    except (OSError, AssertionError) as e:  # download failed, or no detection model in the pack
        raise InsightFaceUnavailable(f"InsightFace FaceAnalysis('{name}') could not load: {e or 'no detection model'}") from None
    app.prepare(ctx_id=0, det_size=(640, 640))
    return app


def face_analysis(name: str = "buffalo_l", root: str = "~/.insightface", *, download: bool = False,
                  providers: list[str] | None = None):
    """InsightFace's own `FaceAnalysis(name=..., root=...)` (detection + recognition only), shared
    per arguments. `name` is a pack name under root/models or a folder. With download=False (the
    default) a pack that is not on disk raises instead of being downloaded."""
    with _analysis_lock:
        return _face_analysis(str(name), str(root), bool(download), tuple(providers) if providers else None)


def _load(path: Path, providers: list[str] | None, error: type[MienError]):
    _import_insightface(error)
    from insightface.model_zoo import get_model

    try:
        return get_model(str(path), providers=providers)
    except Exception as e:  # onnxruntime raises its own exception types on a bad file
        raise error(f"cannot load InsightFace model {path}: {str(e).splitlines()[0] if str(e) else type(e).__name__}") from None


# ---------------------------------------------------------------------------------------------
# detection


def _nms_sorted(dets: np.ndarray, thresh: float) -> list[int]:
    """Plain NMS (as SCRFD's own), over boxes of several passes."""
    x0, y0, x1, y1, s = dets.T
    areas = (x1 - x0 + 1) * (y1 - y0 + 1)
    order = np.argsort(-s, kind="stable")
    keep = []
    while order.size:
        i = order[0]
        keep.append(int(i))
        w = np.maximum(0.0, np.minimum(x1[i], x1[order[1:]]) - np.maximum(x0[i], x0[order[1:]]) + 1)
        h = np.maximum(0.0, np.minimum(y1[i], y1[order[1:]]) - np.maximum(y0[i], y0[order[1:]]) + 1)
        inter = w * h
        order = order[1:][inter / (areas[i] + areas[order[1:]] - inter) <= thresh]
    return keep


def six_keypoints(kps5: np.ndarray) -> np.ndarray:
    """BlazeFace's six-point layout from SCRFD's five (see the module docstring)."""
    k = np.asarray(kps5, np.float64)
    re, le = k[0], k[1]
    mid, u = (re + le) / 2, le - re
    v = np.array([-u[1], u[0]])  # u turned towards the chin (image y grows downwards)
    out = np.empty((6, 2), np.float64)
    out[:3] = k[:3]
    out[3] = k[3:5].mean(0)
    out[4] = mid - EAR_ALONG * u + EAR_DOWN * v
    out[5] = mid + EAR_ALONG * u + EAR_DOWN * v
    return out.astype(np.float32)


def blazeface_box(box) -> tuple[float, float, float, float]:
    """SCRFD box -> the square BlazeFace-convention box (module docstring: London medians)."""
    x0, y0, x1, y1 = (float(v) for v in box[:4])
    side = max(x1 - x0, y1 - y0)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2 + BOX_DOWN * side
    half = BOX_SCALE * side / 2
    return (cx - half, cy - half, cx + half, cy + half)


class SCRFDDetector:
    """InsightFace SCRFD (the `Detector` protocol): `detect(rgb) -> list[Face]` with five keypoints.

    Model: `model_file`, else the pack folder `models` (default: setting MIEN_INSIGHTFACE_MODELS),
    else, with `download=True`, InsightFace's FaceAnalysis(name=pack, root=root) (downloads the
    pack if absent), else the fetched weights/insightface/scrfd.onnx.

    SCRFD sees the photo letterboxed into 640x640 (it finds faces from ~10-15 px there, so ~50 px
    in a 2560 px photo); photos of 2560 px and more also get a pyramid of overlapping tiles (like
    BlazeFace's) unless every face found is large. A 4000x3000 test canvas with 12 faces of ~55 px:
    8 found by the whole-photo pass alone, 12 with the 6 tiles of side 2000 (~1 s in all on 2 cores).
    """

    TILE_MIN = 1280  # finest tile side: at most 2x downscale into 640, faces from ~25 px
    PORTRAIT = 0.15  # every face at least this fraction of the photo: no tiles

    def __init__(self, model_file: str | Path | None = None, models: str | Path | None = None, *,
                 min_score: float = 0.5, nms: float = 0.4, det_size: tuple[int, int] = (640, 640),
                 blazeface_box: bool = True, tiles: bool = True, download: bool = False,
                 pack: str = "buffalo_l", root: str = "~/.insightface", providers: list[str] | None = None):
        self.min_score, self.nms, self.tiles, self.convert_box = float(min_score), float(nms), tiles, blazeface_box
        found = model_pack(models)
        path = Path(model_file) if model_file is not None else None
        if path is None and found.detection is not None and found.detection != fetched_detector():
            path = found.detection
        if path is None and download:
            self._det = face_analysis(pack, root, download=True, providers=providers).det_model
            self.model_file = Path(self._det.model_file)
        else:
            path = path or found.detection
            if path is None or not Path(path).is_file():
                raise InsightFaceUnavailable(
                    f"no SCRFD model: {path or fetched_detector()} is missing (run python scripts/fetch_insightface_models.py, "
                    "or set MIEN_INSIGHTFACE_MODELS to an InsightFace model-pack folder)")
            self._det = _load(Path(path), providers, InsightFaceUnavailable)
            self.model_file = Path(path)
        if getattr(self._det, "taskname", None) != "detection" or not getattr(self._det, "use_kps", False):
            raise InsightFaceUnavailable(f"{self.model_file} is not an SCRFD detector with keypoints")
        self._det.prepare(0, det_thresh=self.min_score, nms_thresh=self.nms, input_size=tuple(det_size))

    def _pass(self, bgr: np.ndarray, x0: int = 0, y0: int = 0, inner: tuple | None = None):
        """(n, 5) boxes+scores and (n, 5, 2) keypoints in image pixels for one window. `inner`:
        the window's edges that are inside the photo; faces touching them are dropped (cut faces:
        the neighbouring tile sees them whole)."""
        dets, kps = self._det.detect(bgr, det_thresh=self.min_score)
        if kps is None:
            kps = np.zeros((len(dets), 5, 2), np.float32)
        if inner is not None and len(dets):
            h, w = bgr.shape[:2]
            m = 2.0
            left, top, right, bottom = inner
            cut = ((left & (dets[:, 0] <= m)) | (top & (dets[:, 1] <= m))
                   | (right & (dets[:, 2] >= w - m)) | (bottom & (dets[:, 3] >= h - m)))
            dets, kps = dets[~cut], kps[~cut]
        dets = dets.astype(np.float64) + [x0, y0, x0, y0, 0]
        return dets, kps.astype(np.float64) + [x0, y0]

    def _windows(self, shape):
        """Tiles of side t = side/2, /4, ... while t >= TILE_MIN, 25% overlap, at full resolution."""
        h, w = shape[:2]
        t = max(h, w) / 2
        while t >= self.TILE_MIN:
            s = round(t)
            step = int(s * 0.75)
            for ty in sorted({*range(0, max(h - s, 0) + 1, step), max(h - s, 0)}):
                for tx in sorted({*range(0, max(w - s, 0) + 1, step), max(w - s, 0)}):
                    yield tx, ty, s
            t /= 2

    def detect(self, rgb: np.ndarray) -> list[Face]:
        bgr = np.ascontiguousarray(np.asarray(rgb)[..., ::-1])  # InsightFace models take BGR (cv2 order)
        h, w = bgr.shape[:2]
        parts = [self._pass(bgr)]
        side = max(h, w)
        sizes = np.maximum(parts[0][0][:, 2] - parts[0][0][:, 0], parts[0][0][:, 3] - parts[0][0][:, 1])
        if self.tiles and side >= 2 * self.TILE_MIN and (not len(sizes) or sizes.min() < self.PORTRAIT * side):
            for tx, ty, s in self._windows(bgr.shape):
                win = bgr[ty:ty + s, tx:tx + s]
                parts.append(self._pass(win, tx, ty, (tx > 0, ty > 0, tx + s < w, ty + s < h)))
        dets = np.concatenate([p[0] for p in parts])
        kps = np.concatenate([p[1] for p in parts])
        faces = []
        for i in _nms_sorted(dets, self.nms) if len(dets) > 1 else range(len(dets)):
            box = dets[i, :4]
            if max(box[2] - box[0], box[3] - box[1]) < 8:
                continue
            out = blazeface_box(box) if self.convert_box else tuple(float(v) for v in box)
            face = Face(box=out, score=float(dets[i, 4]), keypoints=six_keypoints(kps[i]))
            face.keypoints5 = kps[i].astype(np.float32)  # SCRFD's own five points (ArcFace alignment)
            faces.append(face)
        return faces


# ---------------------------------------------------------------------------------------------
# identity

NOSE_TIP, MOUTH_L, MOUTH_R = 1, 61, 291  # face-mesh indices for ArcFace's nose and mouth corners


def five_points(face: Face) -> np.ndarray:
    """ArcFace's five alignment points (image-left eye, image-right eye, nose tip, image-left and
    image-right mouth corners) for any Face: SCRFD's own (`face.keypoints5`), else from the face
    mesh (eye = mean of its contour), else from BlazeFace's four (eyes, nose, mouth centre): their
    least-squares similarity onto ArcFace's template, with the template's mouth corners mapped
    back, so `norm_crop` reproduces that transform."""
    k5 = getattr(face, "keypoints5", None)
    if k5 is not None:
        return np.asarray(k5, np.float32).reshape(5, 2)
    if face.landmarks is not None:
        m = np.asarray(face.landmarks, np.float64)[:, :2]
        return np.stack([m[EYE_L].mean(0), m[EYE_R].mean(0), m[NOSE_TIP], m[MOUTH_L], m[MOUTH_R]]).astype(np.float32)
    from insightface.utils.face_align import arcface_dst

    src = np.asarray(face.keypoints, np.float64)[:4]
    tpl = np.asarray(arcface_dst, np.float64)
    dst = np.vstack([tpl[:3], tpl[3:].mean(0)])
    # Least-squares similarity template -> image: [u; v] = [[x, -y, 1, 0], [y, x, 0, 1]] @ [a, b, tx, ty]
    x, y = dst[:, 0], dst[:, 1]
    one, zero = np.ones_like(x), np.zeros_like(x)
    A = np.concatenate([np.stack([x, -y, one, zero], 1), np.stack([y, x, zero, one], 1)])
    a, b, tx, ty = np.linalg.lstsq(A, np.concatenate([src[:, 0], src[:, 1]]), rcond=None)[0]
    mouth = tpl[3:] @ np.array([[a, b], [-b, a]]) + [tx, ty]
    return np.vstack([src[:3], mouth]).astype(np.float32)


class ArcFaceEmbedder:
    """InsightFace ArcFace (the `identity.Embedder` protocol) via the package's own `ArcFaceONNX`:
    each face is aligned on its five points by `insightface.utils.face_align.norm_crop` and
    embedded by `ArcFaceONNX.get` (512-D for w600k_r50); rows L2-normalised.

    Model: `model_file`, else the recognition model in the pack folder `models` (default: setting
    MIEN_INSIGHTFACE_MODELS), else, with `download=True`, FaceAnalysis(name=pack, root=root)'s.
    None of them offline here: raises `IdentityModelUnavailable`.
    """

    dim = 512
    threshold = ARCFACE_THRESHOLD

    def __init__(self, model_file: str | Path | None = None, models: str | Path | None = None, *,
                 download: bool = False, pack: str = "buffalo_l", root: str = "~/.insightface",
                 providers: list[str] | None = None):
        path = Path(model_file) if model_file is not None else model_pack(models).recognition
        if path is None and download:
            try:
                self._rec = face_analysis(pack, root, download=True, providers=providers).models.get("recognition")
            except InsightFaceUnavailable as e:
                raise IdentityModelUnavailable(str(e)) from None
            if self._rec is None:
                raise IdentityModelUnavailable(f"InsightFace model pack '{pack}' has no recognition model")
        else:
            if path is None or not Path(path).is_file():
                where = path or (_config.settings().insightface_models if models is None else models)
                raise IdentityModelUnavailable(
                    f"ArcFace needs an InsightFace recognition model (e.g. buffalo_l's w600k_r50.onnx): none found in "
                    f"{where or 'MIEN_INSIGHTFACE_MODELS (unset)'}")
            self._rec = _load(Path(path), providers, IdentityModelUnavailable)
        if getattr(self._rec, "taskname", None) != "recognition":
            raise IdentityModelUnavailable(f"{path} is not an ArcFace recognition model")
        self._rec.prepare(0)
        # insightface's face_align.norm_crop calls scikit-image's deprecated SimilarityTransform.estimate
        # (a FutureWarning on every face with scikit-image >= 0.26); it is theirs and harmless here.
        warnings.filterwarnings("ignore", message="`estimate` is deprecated", category=FutureWarning,
                                module="insightface.utils.face_align")
        self.model_file = Path(self._rec.model_file)
        self.dim = int(self._rec.output_shape[-1])

    def embed(self, rgb: np.ndarray, faces: list[Face]) -> np.ndarray:
        if not faces:
            return np.zeros((0, self.dim), np.float32)
        from insightface.app.common import Face as IFace

        bgr = np.ascontiguousarray(np.asarray(rgb)[..., ::-1])
        # One InsightFace Face per face, as FaceAnalysis.get builds them (ONNX Runtime sessions are
        # safe to run from several threads; each call gets its own Face).
        rows = [self._rec.get(bgr, IFace(bbox=np.asarray(f.box, np.float32), kps=five_points(f), det_score=f.score))
                for f in faces]
        return _normalise(np.stack(rows).astype(np.float64))
