"""`edit()`: the one entry point the CLI, the app and the Gradio API call.

image -> faces (detect + mesh, or reuse cached faces) -> per face: expression plan (AUs) -> dense
warp of the face region -> mouth interior -> shading -> paste back. Only the face's region is
resampled; every pixel outside the pixels that actually moved or were shaded is copied unchanged.
"""
from __future__ import annotations

import time
from contextlib import contextmanager

import cv2
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


def _render(img: np.ndarray, base: np.ndarray, face: Face, index: int, emotion: str, intensity: float,
            aus: dict[str, float]) -> tuple[FaceEdit, np.ndarray | None]:
    """Render one face's edit from `base` (the image so far). Returns the record and the new pixels
    of its region (None when nothing changes: intensity 0 and no AUs)."""
    t: dict[str, float] = {}
    src = face.landmarks
    with _timer(t, "expression"):
        p = expression.plan(src, emotion, intensity, aus)
    fe = FaceEdit(index=index, box=face.box, landmarks_before=src, landmarks_after=p.target, emotion=emotion,
                  intensity=intensity, aus_applied=p.applied, aus_removed=p.removed, region=(0, 0, 0, 0),
                  timings_ms=t)
    if np.abs(p.target - src)[:, :2].max() < 1e-3 and not p.applied:
        return fe, None
    region = warp.region_for(src, img.shape[:2])
    iod = p.pose.s
    with _timer(t, "warp"):
        mapping, changed = warp.backward_map(src, p.target, region)
        warped = warp.remap(base, mapping)  # uint8: float only where mouth and shading draw
    with _timer(t, "mouth"):
        if mouth.needs_interior(img, src, p.lip_gap_before, p.lip_gap_after):
            m = mouth.render_interior(img, src, p.target, warped, region, iod)
            if m is not None:
                changed |= m > 0
    with _timer(t, "shading"):
        m = shading.render(warped, p.target, p.applied, region, iod)
        if m is not None:
            changed |= m
    with _timer(t, "blend"):
        # Only pixels that moved or were drawn on change; the rest stay bit-identical.
        roi = base[region.slices].copy()
        cv2.copyTo(warped, changed.view(np.uint8), roi)
    fe.region = (region.x0, region.y0, region.x1, region.y1)
    return fe, roi


def _paste(out: np.ndarray, fe: FaceEdit, roi: np.ndarray | None) -> None:
    if roi is not None:
        x0, y0, x1, y1 = fe.region
        out[y0:y1, x0:x1] = roi


def _judge(img, out, face, fe, roi, emotion, use_id):
    """Judge one attempt in place: pasted into `out` for the checks, then undone."""
    from . import gate

    x0, y0, x1, y1 = fe.region
    saved = out[y0:y1, x0:x1].copy()
    _paste(out, fe, roi)
    try:
        return gate.check(img, out, face, emotion, identity=use_id)
    finally:
        out[y0:y1, x0:x1] = saved


def _edit_face(img, out, face, index, emotion, intensity, aus, gate_mode) -> FaceEdit:
    """Render, judge and retry one face; paste the chosen attempt into `out`."""
    fe, roi = _render(img, out, face, index, emotion, intensity, aus)
    if not gate_mode:
        _paste(out, fe, roi)
        return fe
    from . import gate

    use_id = gate_mode != "emotion"
    t: dict[str, float] = {}
    with _timer(t, "gate"):
        gate.prepare(img, [face], identity=use_id)
    best = None
    for attempt in range(1, gate.MAX_ATTEMPTS + 1):
        with _timer(t, "gate"):
            c = _judge(img, out, face, fe, roi, emotion, use_id)
        if best is None or gate.better(c, best[2]):
            best = (fe, roi, c)
        if c.accepted or fe.intensity <= 0:
            break
        nxt = gate.next_intensity(fe.intensity, c, expression.INTENSITY_MAX)
        extra = gate.contrast(emotion, c.probs, nxt or fe.intensity) if c.identity_ok else {}
        if nxt is None and not extra:
            break  # nothing stronger and nothing different left to try
        nxt = nxt or fe.intensity
        mix = {k: aus.get(k, 0.0) + extra.get(k, 0.0) for k in {*aus, *extra}}
        fe, roi = _render(img, out, face, index, emotion, nxt, mix)
    fe, roi, c = best
    _paste(out, fe, roi)
    fe.probs_before = face.emotion_probs
    fe.probs_after = c.probs
    fe.identity = c.identity
    fe.verdict = "accepted" if c.accepted else "rejected"
    fe.reason = c.reason
    fe.attempts = attempt
    fe.timings_ms.update(t)
    return fe


def detect(image) -> tuple[np.ndarray, list[Face]]:
    """Load an image and find its faces (with landmarks). Cache this to re-edit without re-detecting."""
    from .detection import detect_faces
    from .imageio import load_image

    rgb = load_image(image).rgb
    return rgb, detect_faces(rgb)


def edit(image, emotion: str = "happy", intensity: float = 1.0, faces="all", aus=None,
         engine: str = "geometric", detections: list[Face] | None = None, gate: bool | str = True) -> EditResult:
    """Change the expression of the faces in `image`.

    image: path, bytes, PIL image or numpy array (RGB/gray, uint8). emotion: one of
    `expression.EMOTIONS`. intensity: 0..1.5 (1 = clear and natural). faces: 'all', an index or
    indices (numbered left to right). aus: extra action units, e.g. {'AU12': 0.5} or 'AU6=0.3'.
    detections: faces from an earlier `detect()` of the same image (skips detection: the slider path).
    gate: True = emotion classifier + identity check with retries (see `pipeline.gate`); "emotion" =
    the classifier only (fast, for live previews); False = ungated.
    Returns an `EditResult` with the image at the input's full resolution.
    """
    timings: dict[str, float] = {}
    emotion = expression.normalize_emotion(emotion)
    intensity = expression.check_intensity(intensity)
    aus = expression.parse_aus(aus)
    if engine not in ENGINES:
        raise InvalidRequest(f"Unknown engine '{engine}'. Available: {', '.join(ENGINES)}.")
    if gate not in (True, False, "emotion", "full"):
        raise InvalidRequest(f"gate must be True, False or 'emotion' (got {gate!r}).")
    with _timer(timings, "decode"):
        from .imageio import load_image

        rgb = load_image(image).rgb
    if detections is None:
        from .detection import detect_faces

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
        fe = _edit_face(rgb, out, detections[i], i, emotion, intensity, aus, gate)
        for k, v in fe.timings_ms.items():
            timings[k] = timings.get(k, 0.0) + v
        edits.append(fe)
    timings["total"] = sum(v for k, v in timings.items())
    return EditResult(image=out, faces=edits, faces_detected=len(detections), timings_ms=timings)
