"""`edit()`: the one entry point the CLI, the app and the Gradio API call.

image -> faces (detect + mesh, or reuse cached faces) -> per face: expression plan (AUs) -> dense
warp of the face region -> mouth interior -> shading -> paste back. Only the face's region is
resampled; every pixel outside the pixels that actually moved or were shaded is copied unchanged.
"""
from __future__ import annotations

import time
from contextlib import contextmanager

import numpy as np

from . import expression, mouth, shading, warp
from .errors import InvalidRequest, NoFaceError
from .types import EditResult, Face, FaceEdit

ENGINES = ("geometric",)
MAX_FACES = 32  # faces edited in one request; more are refused with a message


@contextmanager
def _timer(store: dict, key: str):
    t = time.perf_counter()
    yield
    store[key] = store.get(key, 0.0) + (time.perf_counter() - t) * 1000


def select_faces(spec, n: int) -> list[int]:
    """'all' | int | '0,2' | [0, 2] -> sorted indices, with a clear message when out of range."""
    if spec is None or (isinstance(spec, str) and spec.strip().lower() in ("all", "")):
        return list(range(n))
    if isinstance(spec, str):
        try:
            spec = [int(s) for s in spec.replace(" ", "").split(",") if s]
        except ValueError:
            raise InvalidRequest(f"Faces are chosen as 'all' or numbers like 0,2 (got '{spec}').") from None
    if isinstance(spec, (int, np.integer)):
        spec = [int(spec)]
    idx = sorted({int(i) for i in spec})
    bad = [i for i in idx if not 0 <= i < n]
    if bad:
        raise InvalidRequest(f"Face {bad[0]} does not exist: the photo has {n} face(s), numbered 0 to {n - 1}.")
    return idx


def _face_to_edit(img: np.ndarray, out: np.ndarray, face: Face, index: int, emotion: str, intensity: float,
                  aus: dict[str, float]) -> FaceEdit | None:
    t: dict[str, float] = {}
    src = face.landmarks
    with _timer(t, "expression"):
        p = expression.plan(src, emotion, intensity, aus)
    move = np.abs(p.target - src)[:, :2].max()
    if move < 1e-3 and not p.applied:
        return None
    region = warp.region_for(src, img.shape[:2])
    iod = p.pose.s
    with _timer(t, "warp"):
        mapping, changed = warp.backward_map(src, p.target, region)
        warped = warp.remap(out, mapping).astype(np.float32)
    with _timer(t, "mouth"):
        if mouth.needs_interior(img, src, p.lip_gap_before, p.lip_gap_after):
            m = mouth.render_interior(img, src, p.target, warped, region, iod)
            if m is not None:
                changed |= m > 0
    with _timer(t, "shading"):
        m = shading.render(warped, p.target, p.applied, region, iod)
        if m is not None:
            changed |= m > 1e-3
    with _timer(t, "blend"):
        roi = out[region.slices]
        new = np.clip(warped + 0.5, 0, 255).astype(np.uint8)
        roi[changed] = new[changed]
    return FaceEdit(index=index, box=face.box, landmarks_before=src, landmarks_after=p.target,
                    emotion=emotion, intensity=intensity, aus_applied=p.applied, aus_removed=p.removed,
                    region=(region.x0, region.y0, region.x1, region.y1), timings_ms=t)


def detect(image) -> tuple[np.ndarray, list[Face]]:
    """Load an image and find its faces (with landmarks). Cache this to re-edit without re-detecting."""
    from .detect import detect_faces
    from .imageio import load_image

    rgb = load_image(image).rgb
    return rgb, detect_faces(rgb)


def edit(image, emotion: str = "happy", intensity: float = 1.0, faces="all", aus=None,
         engine: str = "geometric", detections: list[Face] | None = None) -> EditResult:
    """Change the expression of the faces in `image`.

    image: path, bytes, PIL image or numpy array (RGB/gray, uint8). emotion: one of
    `expression.EMOTIONS`. intensity: 0..1.5 (1 = clear and natural). faces: 'all', an index or
    indices (numbered left to right). aus: extra action units, e.g. {'AU12': 0.5} or 'AU6=0.3'.
    detections: faces from an earlier `detect()` of the same image (skips detection: the slider path).
    Returns an `EditResult` with the image at the input's full resolution.
    """
    timings: dict[str, float] = {}
    emotion = expression.normalize_emotion(emotion)
    intensity = expression.check_intensity(intensity)
    aus = expression.parse_aus(aus)
    if engine not in ENGINES:
        raise InvalidRequest(f"Unknown engine '{engine}'. Available: {', '.join(ENGINES)}.")
    with _timer(timings, "decode"):
        from .imageio import load_image

        rgb = load_image(image).rgb
    if detections is None:
        from .detect import detect_faces

        with _timer(timings, "detect"):
            detections = detect_faces(rgb)
    if not detections:
        raise NoFaceError("No face was found in the photo: try a clearer, larger, front-facing face.")
    chosen = select_faces(faces, len(detections))
    if len(chosen) > MAX_FACES:
        raise InvalidRequest(f"{len(chosen)} faces selected; at most {MAX_FACES} are edited at once: pick some.")
    out = rgb.copy()
    edits = []
    for i in chosen:
        fe = _face_to_edit(rgb, out, detections[i], i, emotion, intensity, aus)
        if fe is None:  # nothing to change (intensity 0 and no AUs)
            continue
        for k, v in fe.timings_ms.items():
            timings[k] = timings.get(k, 0.0) + v
        edits.append(fe)
    timings["total"] = sum(v for k, v in timings.items())
    return EditResult(image=out, faces=edits, faces_detected=len(detections), timings_ms=timings)
