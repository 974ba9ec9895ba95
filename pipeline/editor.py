"""`edit()`: the one entry point the CLI, the app and the Gradio API call.

image -> faces (a detector + landmarker backend, or cached faces) -> per face: the chosen engine
renders the new expression (`pipeline.engines`) -> the gate judges it and asks the engine for
another attempt when it misses (`pipeline.gate`) -> the shared paste writes it back at full
resolution (`pipeline.paste`). Backends are chosen by name (`pipeline.registry`).
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from . import paste
from .emotions import INTENSITY_MAX, check_intensity, normalize_emotion, parse_aus
from .engines import Engine, Rendered, RenderRequest, get_engine
from .errors import InvalidRequest, NoFaceError
from .registry import Backends
from .timing import timer
from .types import EditResult, Face, FaceEdit

MAX_FACES = 32  # faces edited in one request; more are refused with a message


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


def _face_edit(face: Face, index: int, r: Rendered) -> FaceEdit:
    req = r.request
    return FaceEdit(index=index, box=face.box, landmarks_before=face.landmarks, landmarks_after=r.landmarks_after,
                    emotion=req.emotion, intensity=req.intensity, aus_applied=r.applied, aus_removed=r.removed,
                    region=r.region, timings_ms=r.timings_ms, engine=r.engine)


def _composed(out: np.ndarray, r: Rendered) -> np.ndarray | None:
    """The region's pixels with the render pasted over what `out` holds there now."""
    if not r.changes:
        return None
    x0, y0, x1, y1 = r.region
    with timer(r.timings_ms, "blend"):
        return paste.compose(out[y0:y1, x0:x1], r.pixels, r.mask)


def _judge(img, out, face, r: Rendered, roi, emotion, use_id, backends: Backends):
    """Judge one attempt in place: pasted into `out` for the checks, then undone."""
    from . import gate

    x0, y0, x1, y1 = r.region
    saved = out[y0:y1, x0:x1].copy()
    paste.paste(out, r.region, roi)
    try:
        return gate.check(img, out, face, emotion, identity=use_id, classifier=backends.get("classifier"),
                          embedder=backends.get("embedder") if use_id else None)
    finally:
        out[y0:y1, x0:x1] = saved


def _edit_face(img, out, face, index, request: RenderRequest, gate_mode, engine: Engine, backends: Backends,
               auto_strength: bool = False, leave_rejected: bool = False) -> FaceEdit:
    """Render and judge one face; paste the result into `out`. The requested intensity is what is
    rendered; only `auto_strength` lets the engine's retries change it."""
    r = engine.render(img, out, face, request)
    roi = _composed(out, r)
    if not gate_mode:
        paste.paste(out, r.region, roi)
        fe = _face_edit(face, index, r)
        fe.requested_intensity = request.intensity
        return fe
    from . import gate

    use_id = gate_mode != "emotion"
    t: dict[str, float] = {}
    with timer(t, "gate"):
        gate.prepare(img, [face], identity=use_id, classifier=backends.get("classifier"),
                     embedder=backends.get("embedder") if use_id else None)

    def judge(rr: Rendered, rroi):
        with timer(t, "gate"):
            return _judge(img, out, face, rr, rroi, request.emotion, use_id, backends)

    c = judge(r, roi)
    best, attempt = (r, roi, c), 1
    while auto_strength and not c.accepted and r.request.intensity > 0 and attempt < gate.MAX_ATTEMPTS:
        nxt = engine.next_request(r.request, c)
        if nxt is None:
            break
        r = engine.render(img, out, face, nxt)
        roi = _composed(out, r)
        c = judge(r, roi)
        attempt += 1
        if gate.better(c, best[2]):
            best = (r, roi, c)
    r, roi, c = best
    passes_at = None
    if not c.accepted and not auto_strength:
        with timer(t, "advice"):
            passes_at = _passing_intensity(img, out, face, request, c, engine, judge)
    fe = _face_edit(face, index, r)
    fe.requested_intensity = request.intensity
    fe.reason, fe.advice = gate.explain(c, request.emotion, r.request.intensity, passes_at)
    fe.strengthened = abs(r.request.intensity - request.intensity) > 1e-9
    if fe.strengthened:
        fe.advice = (f"Auto strength changed {gate.pct(request.intensity)} to {gate.pct(r.request.intensity)} "
                     + ("so that it reads clearly." if c.accepted else "and it still did not read clearly."))
    fe.left_unchanged = leave_rejected and not c.accepted
    if not fe.left_unchanged:
        paste.paste(out, r.region, roi)
    fe.probs_before = face.emotion_probs
    fe.probs_after = c.probs
    fe.identity = c.identity
    fe.identity_threshold = c.identity_threshold
    fe.contempt_score = c.contempt_score
    fe.verdict = "accepted" if c.accepted else "rejected"
    fe.detail = c.reason
    fe.attempts = attempt
    fe.timings_ms.update(t)
    return fe


ADVICE_PROBES = 3  # extra renders, only for a rejected edit, to find an intensity that passes
GENTLER = (0.8, 0.5)  # of the request: tried after the stronger probes for a missed emotion


def _passing_intensity(img, out, face, request: RenderRequest, c, engine: Engine, judge) -> float | None:
    """For the advice on a rejected edit: the nearest intensity (stronger when the emotion was
    missed, gentler when identity was lost) that was measured to pass, or None. A missed emotion
    that no stronger setting reads is tried gentler too: on some faces a stronger face reads less
    as the target (042's fear: fearful at 100%, neutral at 125%; 005's disgust reads at 100%, not at 125%)."""
    from . import gate

    i = request.intensity
    if gate.emotion_ok(c):
        steps = [round(i * f, 2) for f in (0.75, 0.5, 0.25)]
    else:
        # Round to 5% steps: advice reads "try 65%", not "try 63%".
        steps = [round(float(v) * 20) / 20 for v in np.linspace(i, INTENSITY_MAX, ADVICE_PROBES + 1)[1:]]
        steps += [round(i * f * 20) / 20 for f in GENTLER]
    for v in dict.fromkeys(s for s in steps if s != round(i, 2) and s > 0):
        r = engine.render(img, out, face, replace(request, intensity=v))
        if judge(r, _composed(out, r)).accepted:
            return v
    return None


def detect(image, detector: str | None = None, landmarker: str | None = None) -> tuple[np.ndarray, list[Face]]:
    """Load an image and find its faces (with landmarks). Cache this to re-edit without re-detecting."""
    from .imageio import load_image

    rgb = load_image(image).rgb
    return rgb, _detect(rgb, Backends.choose(detector, landmarker))


def _detect(rgb: np.ndarray, backends: Backends) -> list[Face]:
    from .detection import detect_faces

    return detect_faces(rgb, backends.get("detector"), backends.get("landmarker"))


def edit(image, emotion: str = "happy", intensity: float = 1.0, faces="all", aus=None,
         engine: str | None = None, detections: list[Face] | None = None, gate: bool | str = True,
         detector: str | None = None, landmarker: str | None = None, embedder: str | None = None,
         classifier: str | None = None, seed: int | None = None, auto_strength: bool = False,
         leave_rejected: bool = False, reference=None, strength: float = 1.0, teeth: bool = True) -> EditResult:
    """Change the expression of the faces in `image`.

    image: path, bytes, PIL image or numpy array (RGB/gray, uint8). emotion: one of
    `pipeline.EMOTIONS`. intensity: 0..1.5 (1 = clear and natural). faces: 'all', an index or
    indices (numbered left to right). aus: extra action units, e.g. {'AU12': 0.5} or 'AU6=0.3'.
    engine: 'geometric' (default) or 'diffusion'. detections: faces from an earlier `detect()` of
    the same image (skips detection: the slider path).
    gate: True = emotion classifier + identity check with retries (see `pipeline.gate`); "emotion" =
    the classifier only (fast, for live previews); False = ungated.
    detector, landmarker, embedder, classifier: backend names (`pipeline.registry`; None = the
    configured default). seed: makes engines with randomness reproducible.
    auto_strength: let the gate retry at other intensities until the edit reads (off: the applied
    intensity is always the requested one; a rejected edit comes back marked, with advice).
    leave_rejected: faces the gate rejects are left as they were in the photo.
    teeth: False drops the recipe's lip parting (a closed-mouth smile; your own `aus` still apply).
    reference: a photo whose (largest) face's expression is copied at `strength` 0..1.5
    (`pipeline.transfer`: emotion, intensity and gate are then set from it).
    Returns an `EditResult` with the image at the input's full resolution.
    """
    if reference is not None:
        from .transfer import reference_request

        emotion, intensity, aus, gate = reference_request(reference, strength, aus, classifier)
    timings: dict[str, float] = {}
    emotion = normalize_emotion(emotion)
    intensity = check_intensity(intensity)
    aus = parse_aus(aus)
    if gate not in (True, False, "emotion", "full"):
        raise InvalidRequest(f"gate must be True, False or 'emotion' (got {gate!r}).")
    backends = Backends.choose(detector, landmarker, embedder, classifier)
    eng = get_engine(engine)
    with timer(timings, "decode"):
        from .imageio import load_image

        rgb = load_image(image).rgb
    if detections is None:
        with timer(timings, "detect"):
            detections = _detect(rgb, backends)
    if not detections:
        raise NoFaceError("No face was found in the photo: try a clearer, larger, front-facing face.")
    chosen = select_faces(faces, len(detections))
    if len(chosen) > MAX_FACES:
        raise InvalidRequest(f"{len(chosen)} faces selected; at most {MAX_FACES} are edited at once: pick some.")
    out = rgb.copy()
    edits = []
    request = RenderRequest(emotion, intensity, aus, seed=seed, teeth=teeth)
    for i in chosen:
        fe = _edit_face(rgb, out, detections[i], i, request, gate, eng, backends, auto_strength, leave_rejected)
        for k, v in fe.timings_ms.items():
            timings[k] = timings.get(k, 0.0) + v
        edits.append(fe)
    timings["total"] = sum(v for k, v in timings.items())
    return EditResult(image=out, faces=edits, faces_detected=len(detections), timings_ms=timings)
