"""Event handlers of the web app. Each returns its updates as a dict keyed by component name
(`app.py` maps the names to its components); `@outputs(...)` declares which names a handler may
set. The handlers call the library's `edit()` and read its `EditResult` / `FaceEdit` objects.

The edit for the current settings is kept as a plan: face index -> (emotion, intensity 0..1.5,
extra AUs). Every checked plan is pushed onto a history, so "Undo last step" can step back.
"""
from __future__ import annotations

import functools
import logging
import time

import gradio as gr
import numpy as np

from .. import AU_NAMES, EditResult, MienError, edit
from . import views
from .session import Photo, gpu, order, photo_for, save_png

log = logging.getLogger("mien.app")
AU_KEYS = list(AU_NAMES)
AU_IDS = [f"au-{k}" for k in AU_KEYS]
OPTIONS = ["auto", "leave", "teeth"]  # checkboxes for every face; not in the plan, so undo keeps them as set
CONTROLS = ["emotion", "intensity", *OPTIONS, *AU_IDS]  # the inputs that decide an edit
RENDER = ["result", "compare", "banner", "status", "verdict", "before_lbl", "after_lbl", "download", "last"]
MAX_HISTORY = 50


def outputs(*names: str):
    """Declare the component names a handler may update (app.py wires them)."""
    def mark(fn):
        fn.outputs = names
        return fn
    return mark


def friendly(fn):
    """User mistakes (MienError) become a one-line message; anything else is logged, not shown."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except MienError as e:
            raise gr.Error(str(e), print_exception=False) from None
        except Exception:
            log.exception("unexpected error in %s", fn.__name__)
            raise gr.Error("Something went wrong on our side while editing this photo; please try again "
                           "or try another photo.", print_exception=False) from None
    return wrapper


def _session(request: gr.Request | None) -> str | None:
    return getattr(request, "session_hash", None)


# ------------------------------------------------------------------------------ plan + edit

def aus_from(values) -> tuple[tuple[str, float], ...]:
    return tuple((k, round(float(v) / 100, 3)) for k, v in zip(AU_KEYS, values) if v)


def settings(emotion, intensity_pct, au_values) -> tuple:
    return (emotion or "happy", round(float(intensity_pct) / 100, 3), aus_from(au_values))


@gpu
def run_plan(rgb: np.ndarray, faces: list, plan: dict, gate: bool, auto_strength: bool = False,
             leave_rejected: bool = False, teeth: bool = True) -> EditResult:
    """Pure: apply each face's (emotion, intensity, aus) on the running result, faces that share
    settings in one edit() call. `teeth` False keeps every face's lips closed (edit(teeth=False)),
    the preview included."""
    groups: dict[tuple, list[int]] = {}
    for i, s in sorted(plan.items()):
        groups.setdefault(s, []).append(i)
    out, edits, timings = rgb, [], {}
    for (emotion, intensity, aus), idx in groups.items():
        res = edit(out, emotion, intensity, faces=idx, aus=dict(aus) or None, detections=faces, gate=gate,
                   auto_strength=auto_strength and gate, leave_rejected=leave_rejected and gate,
                   teeth=bool(teeth))
        out = res.image
        edits += res.faces
        for k, v in res.timings_ms.items():
            timings[k] = timings.get(k, 0.0) + v
    return EditResult(image=out, faces=sorted(edits, key=lambda f: f.index), faces_detected=len(faces),
                      timings_ms=timings)


def _provenance(plan: dict, teeth: bool = True) -> dict:
    """The note saved in the PNG; a closed mouth is recorded only when asked (the default shows teeth)."""
    return {"edits": {f"face{i}": f"{e}@{t:g}" + ("+" + "+".join(f"{a}{v:+g}" for a, v in aus) if aus else "")
                      for i, (e, t, aus) in sorted(plan.items())}, **({} if teeth else {"teeth": "off"})}


def _focus(target) -> int | None:
    return None if target in (None, "", "all") else int(target)


def _focused(edits, focus):
    by = {f.index: f for f in edits or []}
    return by.get(focus) if focus is not None else next(iter(by.values()), None)


def _scores(edits, focus) -> dict:
    f = _focused(edits, focus)
    (b, bl), (a, al) = views.scores(f, after=False), views.scores(f, after=True)
    return {"before_lbl": gr.update(value=b, label=bl), "after_lbl": gr.update(value=a, label=al)}


EMPTY = "Upload a photo or pick an example to start."


def render(state: dict | None, plan: dict, target, gate: bool, auto=False, leave=False, teeth=True) -> dict:
    """The result for the current plan: the after picture, the rejected mark, checks, download."""
    if not state:
        return {"result": gr.update(value=None, label="Result"), "compare": None, "banner": gr.update(visible=False),
                "status": EMPTY, "verdict": "", "before_lbl": gr.update(value=None), "after_lbl": gr.update(value=None),
                "download": gr.update(value=None, interactive=False), "last": None}
    t0 = time.perf_counter()
    photo = photo_for(state["path"])
    res = run_plan(photo.loaded.rgb, photo.faces, plan, gate, auto, leave, teeth)
    shown = views.display(res.image)
    out = {"result": gr.update(value=shown, label=views.result_label(res.faces) if gate else "After (preview)"),
           "compare": (photo.before, shown)}
    if not gate:  # slider being dragged: the picture only; checks and the download follow on release
        out["status"] = views.status_line(len(photo.faces), res.faces, (time.perf_counter() - t0) * 1000, False)
        out["download"] = gr.update(interactive=False)  # never download a picture other than the one shown
        return out
    dl = _download(photo, res, plan, teeth)
    out.update({"status": views.status_line(len(photo.faces), res.faces, (time.perf_counter() - t0) * 1000, True),
                "banner": _banner(res.faces), "verdict": views.check_table(res.faces, len(photo.faces), plan),
                "last": res.faces, "download": gr.update(value=dl, interactive=dl is not None),
                **_scores(res.faces, _focus(target))})
    return out


def _banner(edits) -> dict:
    text = views.banner(edits)
    return gr.update(value=text, visible=bool(text))


def _download(photo: Photo, res: EditResult, plan: dict, teeth: bool = True) -> str | None:
    if not res.faces:
        return None
    return save_png(photo, res.image, _provenance(plan, teeth), views.download_suffix(res.faces))


def _ordered(request, check: bool, make) -> dict:
    """Run `make()` unless a checked edit of this browser session started after this event did
    (its result would replace a newer, checked one)."""
    session = _session(request)
    ticket = order.start(session, check)
    out = make()
    return {} if order.stale(session, ticket) else out


def _pushed(history, plan) -> list:
    history = list(history or [])
    if not history or history[-1] != plan:
        history.append(plan)
    return history[-MAX_HISTORY:]


# ----------------------------------------------------------------------------------- handlers

@outputs("state", "plan", "history", "target", "faces_img", "photo", "before", *RENDER)
@friendly
def on_photo(request: gr.Request, path, prior, emotion, intensity_pct, auto, leave, teeth, *au_values):
    """New photo (upload, clipboard, webcam, example): decode, detect, apply the current settings
    to every face. A photo that can't be read is removed from the input (no broken thumbnail)
    and the reason stays in the status line."""
    empty = {"state": None, "plan": {}, "history": [],
             "target": gr.update(choices=[("All faces", "all")], value="all", visible=False),
             "faces_img": gr.update(value=None, visible=False), "before": None, **render(None, {}, "all", True)}
    if not path:
        if not prior:  # the input was cleared after an unreadable file: keep its message
            empty.pop("status")
        return empty
    try:
        photo = photo_for(path)
    except MienError as e:
        gr.Warning(str(e))
        return {**empty, "photo": None, "status": f"**Could not use this file:** {e}"}
    if not photo.faces:
        msg = "No face was found in the photo: try a clearer, larger, front-facing face."
        gr.Warning(msg)
        return {**empty, "status": f"**{msg}**"}
    n = len(photo.faces)
    s = settings(emotion, intensity_pct, au_values)
    plan = {i: s for i in range(n)}
    state = {"path": path, "key": photo.key, "n": n}
    choices = [("All faces", "all")] + [(f"Face {i}", str(i)) for i in range(n)]
    return {"state": state, "plan": plan, "history": [plan], "before": photo.before,
            "target": gr.update(choices=choices, value="all", visible=n > 1),
            "faces_img": gr.update(value=photo.numbered, visible=n > 1),
            **_ordered(request, True, lambda: render(state, plan, "all", True, auto, leave, teeth))}


def _apply(request, state, plan, history, target, emotion, intensity_pct, auto, leave, teeth, au_values, gate):
    if not state:
        raise gr.Error("Upload a photo first (or click one of the examples).", print_exception=False)
    plan = dict(plan or {})
    s = settings(emotion, intensity_pct, au_values)
    f = _focus(target)
    for i in range(state["n"]) if f is None else [f]:
        plan[i] = s

    def make():
        out = {"plan": plan, **render(state, plan, target, gate, auto, leave, teeth)}
        if gate:
            out["history"] = _pushed(history, plan)
        return out
    return _ordered(request, gate, make)


@outputs("plan", "history", *RENDER)
@friendly
def on_control(request: gr.Request, state, plan, history, target, emotion, intensity_pct, auto, leave, teeth,
               *au_values):
    """Emotion picked, slider released, value typed, keys let go, option ticked: apply to the
    chosen face(s) and run the checks."""
    return _apply(request, state, plan, history, target, emotion, intensity_pct, auto, leave, teeth, au_values, True)


@outputs("plan", *RENDER)
@friendly
def on_drag(request: gr.Request, state, plan, history, target, emotion, intensity_pct, auto, leave, teeth,
            *au_values):
    """Slider moving: re-render the picture only (cached faces, no checks)."""
    return _apply(request, state, plan, history, target, emotion, intensity_pct, auto, leave, teeth, au_values, False)


def _controls_for(plan, f) -> dict:
    """The emotion, intensity and AU sliders showing face `f`'s settings in `plan`."""
    if f is None or not plan or f not in plan:
        return {}
    e, t, aus = plan[f]
    extra = dict(aus)
    return {"emotion": e, "intensity": round(t * 100), **{n: round(extra.get(k, 0.0) * 100)
                                                          for k, n in zip(AU_KEYS, AU_IDS)}}


@outputs("emotion", "intensity", *AU_IDS, "before_lbl", "after_lbl")
@friendly
def on_target(state, plan, target, last):
    """Face picked: show its settings and its scores."""
    f = _focus(target)
    out = _controls_for(plan, f)
    if last:
        out.update(_scores(last, f))
    return out


@outputs("plan", "history", *CONTROLS, *RENDER)
@friendly
def on_reset(request: gr.Request, state, history, target, auto, leave, teeth):
    """Undo every edit: the photo as uploaded; no emotion is selected, so picking any one
    (happy included) applies it again."""
    return {"plan": {}, "emotion": None, "intensity": 100, **{n: 0 for n in AU_IDS},
            "history": _pushed(history, {}),
            **_ordered(request, True, lambda: render(state, {}, target, True, auto, leave, teeth))}


@outputs("plan", "history", *CONTROLS, *RENDER)
@friendly
def on_undo_step(request: gr.Request, state, history, target, auto, leave, teeth):
    """Step back to the previous checked edit."""
    history = list(history or [])
    if len(history) < 2:
        raise gr.Error("Nothing to undo.", print_exception=False)
    history.pop()
    plan = history[-1]
    f = _focus(target)
    controls = _controls_for(plan, 0 if f is None else f) or {"emotion": None}
    return {"plan": plan, "history": history, **controls,
            **_ordered(request, True, lambda: render(state, plan, target, True, auto, leave, teeth))}


@outputs("strip")
@friendly
def on_strip(state, target, emotion, teeth, *au_values):
    """The chosen face (or face 0) at 0, 25, ..., 150 % of the chosen emotion, one tile each."""
    if not state:
        raise gr.Error("Upload a photo first (or click one of the examples).", print_exception=False)
    photo = photo_for(state["path"])
    i = _focus(target) or 0
    emotion = emotion or "happy"
    aus = dict(aus_from(au_values)) or None
    square = views.face_square(photo.loaded.rgb.shape, photo.faces[i].box)
    tiles = []
    for p in views.STRIP_STEPS:
        img = photo.loaded.rgb
        if p:
            img = edit(img, emotion, p / 100, faces=[i], aus=aus, detections=photo.faces, gate=False,
                       teeth=bool(teeth)).image
        tiles.append((views.tile(img, square), f"{emotion} {p}%"))
    return {"strip": gr.update(value=tiles, label=f"Face {i}: {emotion} at 0 to 150%")}


@friendly
def api_edit(image, emotion="happy", intensity=1.0, faces="all", aus=""):
    """Edit a photo: emotion, intensity 0..1.5, faces 'all' or '0,2', aus 'AU12=0.5'. Returns the
    full-resolution PNG and a JSON summary (per face: region, scores, identity, verdict, advice)."""
    if not image:
        raise MienError("No image was given.")
    photo = photo_for(image)
    faces = "all" if faces in (None, "") else faces
    res = edit(photo.loaded.rgb, emotion, intensity, faces=faces, aus=aus or None, detections=photo.faces, gate=True)
    prov = {"emotion": res.faces[0].emotion if res.faces else emotion, "intensity": float(intensity),
            "faces": faces, **({"aus": aus} if aus else {})}
    return save_png(photo, res.image, prov), res.summary()


def warm(example=None) -> float:
    """Load the models (detector, face mesh, expression model, gate) so the first click is fast."""
    from .. import detect

    t = time.perf_counter()
    if example is not None:
        rgb, faces = detect(example)
        if faces:
            edit(rgb, "happy", 1.0, faces=[0], detections=faces, gate=True)
    return time.perf_counter() - t
