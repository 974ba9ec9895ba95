"""Mien web app: change the facial expression of the people in a photo (Gradio; runs on CPU).

    python app.py            # http://127.0.0.1:7860 (GRADIO_SERVER_NAME / GRADIO_SERVER_PORT override)

A thin UI over the `pipeline` library: photos are decoded by `pipeline.imageio` (EXIF orientation,
size limits, one-line errors), faces are detected once per photo and cached (the sliders only
re-run `edit()` on the cached faces), and the download is a full-resolution PNG written by
`pipeline.imageio.save_image` (no EXIF/GPS, a provenance note instead). The only image work done
here is drawing face numbers, resizing for display and putting the intensity strip together.

API (gradio_client), endpoint "/edit":
    from gradio_client import Client, handle_file
    client = Client("http://127.0.0.1:7860/")
    png_path, summary = client.predict(handle_file("photo.jpg"), "surprised", 1.0, "all", "",
                                       api_name="/edit")
inputs: image, emotion (one of EMOTIONS), intensity (0 to 1.5; 1 = clear and natural),
faces ("all" or indices numbered left to right from 0, e.g. "0,2"), aus (extra action units,
e.g. "AU12=0.5,AU6=0.3" or ""). outputs: the edited full-resolution PNG and
`EditResult.summary()` (per face: region, probabilities before/after, identity, verdict, ...).
"""
from __future__ import annotations

import time

_T_START = time.perf_counter()  # for the start-up time printed when the app is ready

import functools
import hashlib
import inspect
import logging
import os
import shutil
import tempfile
import threading
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import gradio as gr
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from pipeline import AU_NAMES, EMOTIONS, EditResult, MienError, detect, edit
from pipeline import imageio
from pipeline.emotions import INTENSITY_MAX

try:  # Hugging Face ZeroGPU: the decorator is required there; elsewhere (and locally) a no-op
    import spaces

    gpu = spaces.GPU
except ImportError:
    def gpu(fn=None, **_kwargs):
        return fn if fn is not None else (lambda f: f)

log = logging.getLogger("mien.app")
ROOT = Path(__file__).resolve().parent
EXAMPLES_DIR = ROOT / "examples"
EXAMPLES = sorted(EXAMPLES_DIR.glob("*.jpg"))
DISPLAY_MAX = 1280  # longest side of the pictures shown in the page (the download is full size)
# Uploads, detections and downloads are forgotten after an hour (MIEN_CACHE_TTL_S overrides).
CACHE_TTL_S = int(os.environ.get("MIEN_CACHE_TTL_S", 3600))
CACHE_ENTRIES = 16
CACHE_BYTES = 600_000_000  # decoded photos kept for the sliders, all sessions together
STRIP_STEPS = (0, 25, 50, 75, 100, 125, 150)  # percent
WORK = Path(tempfile.gettempdir()) / "mien-app"  # display copies and downloads (pruned hourly)

EMOJI = {"neutral": "😐", "happy": "😀", "sad": "😢", "angry": "😠", "fearful": "😨",
         "disgusted": "🤢", "surprised": "😮", "contempt": "😏"}
AU_KEYS = list(AU_NAMES)


def _editor_has_gate() -> bool:
    from pipeline import editor

    return "gate" in inspect.signature(editor.edit).parameters


HAS_GATE = _editor_has_gate()


def _gate_kwargs(gate: bool) -> dict:
    return {"gate": gate} if HAS_GATE else {}


# ------------------------------------------------------------------ per-photo cache (detection)

@dataclass
class Photo:
    key: str  # sha256 of the uploaded file
    loaded: imageio.LoadedImage
    faces: list
    name: str
    before_file: str  # display-size copy of the upright photo (left side of the before/after slider)
    numbered: np.ndarray  # display-size copy with numbered face boxes
    used: float = field(default_factory=time.time)

    @property
    def nbytes(self) -> int:
        return self.loaded.rgb.nbytes + self.numbered.nbytes

    @property
    def before(self) -> str:
        if not os.path.exists(self.before_file):  # its folder outlived the hour while in use
            self.before_file = _write_before(self.loaded.rgb)
        return self.before_file


def _write_before(rgb: np.ndarray) -> str:
    path = _new_dir() / "before.jpg"
    Image.fromarray(_display(rgb)).save(path, quality=90)
    return str(path)


_cache: OrderedDict[str, Photo] = OrderedDict()
_cache_lock = threading.Lock()
_key_locks: dict[str, threading.Lock] = {}


def _prune_cache() -> None:
    now = time.time()
    with _cache_lock:
        for k in [k for k, p in _cache.items() if now - p.used > CACHE_TTL_S]:
            del _cache[k]
        while len(_cache) > CACHE_ENTRIES or (
                len(_cache) > 1 and sum(p.nbytes for p in _cache.values()) > CACHE_BYTES):
            _cache.popitem(last=False)


def _sweep_s() -> int:
    """How often the caches are swept; files are deleted at age TTL - sweep, so nothing outlives
    the TTL even between two sweeps."""
    return max(1, min(300, CACHE_TTL_S // 4))


def _prune_files() -> None:
    WORK.mkdir(mode=0o700, parents=True, exist_ok=True)  # private: other local users can't read it
    now = time.time()
    for d in WORK.iterdir():
        try:
            if now - d.stat().st_mtime > CACHE_TTL_S - _sweep_s():
                shutil.rmtree(d) if d.is_dir() else d.unlink()
        except OSError:
            pass


def _new_dir() -> Path:
    _prune_files()
    d = WORK / uuid.uuid4().hex
    d.mkdir(parents=True)
    return d


@gpu
def _detect(rgb: np.ndarray) -> list:
    """Pure (ZeroGPU runs decorated functions in a worker process): faces of `rgb`."""
    return detect(rgb)[1]


def photo_for(path: str) -> Photo:
    """Decode (pipeline.imageio) and detect faces once per distinct file; later calls are cached."""
    try:
        with open(path, "rb") as f:
            head = f.read(imageio.MAX_BYTES + 1)
    except OSError:
        raise MienError("The photo is no longer on the server: please upload it again.") from None
    key = hashlib.sha256(head).hexdigest()
    _prune_cache()
    with _cache_lock:
        lock = _key_locks.setdefault(key, threading.Lock())
    try:
        with lock:  # two events for the same new photo: detect once
            with _cache_lock:
                photo = _cache.get(key)
                if photo is not None:
                    _cache.move_to_end(key)
                    photo.used = time.time()
                    return photo
            loaded = imageio.load_image(head)  # EXIF orientation, size limits, friendly errors
            faces = _detect(loaded.rgb)
            name = Path(path).stem or "photo"
            photo = Photo(key, loaded, faces, name, _write_before(loaded.rgb),
                          _numbered(_display(loaded.rgb), faces, loaded.rgb.shape))
            with _cache_lock:
                _cache[key] = photo
    finally:
        with _cache_lock:
            _key_locks.pop(key, None)
    _prune_cache()
    return photo


# ------------------------------------------------------------------------------ drawing helpers

def _display(rgb: np.ndarray) -> np.ndarray:
    h, w = rgb.shape[:2]
    if max(h, w) <= DISPLAY_MAX:
        return rgb
    k = DISPLAY_MAX / max(h, w)
    return np.asarray(Image.fromarray(rgb).resize((round(w * k), round(h * k)), Image.BILINEAR))


def _font(size: int):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1
        return ImageFont.load_default()


def _numbered(small: np.ndarray, faces: list, full_shape) -> np.ndarray:
    """Face boxes with their numbers (the numbers the face picker and the API use)."""
    im = Image.fromarray(small).copy()
    k = small.shape[1] / full_shape[1]
    draw = ImageDraw.Draw(im)
    lw = max(2, round(max(im.size) / 300))
    font = _font(max(14, round(max(im.size) / 30)))
    for i, f in enumerate(faces):
        x0, y0, x1, y1 = (v * k for v in f.box)
        draw.rectangle((x0, y0, x1, y1), outline=(255, 214, 0), width=lw)
        tx0, ty0, tx1, ty1 = draw.textbbox((x0, y0), str(i), font=font)
        pad = lw + 2
        ly = max(0, y0 - (ty1 - ty0) - 2 * pad)
        draw.rectangle((x0, ly, x0 + (tx1 - tx0) + 2 * pad, ly + (ty1 - ty0) + 2 * pad), fill=(255, 214, 0))
        draw.text((x0 + pad - (tx0 - x0), ly + pad - (ty0 - y0)), str(i), fill=(0, 0, 0), font=font)
    return np.asarray(im)


def _strip(tiles: list[np.ndarray], labels: list[str]) -> np.ndarray:
    size, bar = 200, 28
    out = Image.new("RGB", (size * len(tiles), size + bar), "white")
    draw = ImageDraw.Draw(out)
    font = _font(18)
    for n, (t, label) in enumerate(zip(tiles, labels)):
        out.paste(Image.fromarray(t).resize((size, size), Image.LANCZOS), (n * size, 0))
        w = draw.textlength(label, font=font)
        draw.text((n * size + (size - w) / 2, size + 4), label, fill=(20, 20, 20), font=font)
    return np.asarray(out)


def _face_square(shape, box, margin: float = 0.8) -> tuple[int, int, int, int]:
    h, w = shape[:2]
    x0, y0, x1, y1 = box
    cx, cy, r = (x0 + x1) / 2, (y0 + y1) / 2, max(x1 - x0, y1 - y0) * margin
    r = max(8.0, min(r, w / 2, h / 2))
    cx, cy = min(max(cx, r), w - r), min(max(cy, r), h - r)  # slide the square inside the photo
    return int(cx - r), int(cy - r), int(cx + r), int(cy + r)


# ------------------------------------------------------------------------------ edit plan + run

def _aus_from(values) -> tuple[tuple[str, float], ...]:
    return tuple((k, round(float(v) / 100, 3)) for k, v in zip(AU_KEYS, values) if v)


def _settings(emotion, intensity_pct, au_values) -> tuple:
    return (emotion or "happy", round(float(intensity_pct) / 100, 3), _aus_from(au_values))


@gpu
def _run_plan(rgb: np.ndarray, faces: list, plan: dict, gate: bool) -> tuple[np.ndarray, list, dict]:
    """Pure: apply each face's (emotion, intensity, aus) on the running result, faces that share
    settings in one edit() call. Returns (image, face edits, timings)."""
    groups: dict[tuple, list[int]] = {}
    for i, s in sorted(plan.items()):
        groups.setdefault(s, []).append(i)
    out, edits, timings = rgb, [], {}
    for (emotion, intensity, aus), idx in groups.items():
        res = edit(out, emotion, intensity, faces=idx, aus=dict(aus) or None, detections=faces,
                   **_gate_kwargs(gate))
        out = res.image
        edits += res.faces
        for k, v in res.timings_ms.items():
            timings[k] = timings.get(k, 0.0) + v
    return out, sorted(edits, key=lambda f: f.index), timings


def _pct(x: float) -> str:
    return f"{x * 100:.0f}%"


def _provenance(plan: dict) -> dict:
    return {"edits": {f"face{i}": f"{e}@{t:g}" + ("+" + "+".join(f"{a}{v:+g}" for a, v in aus) if aus else "")
                      for i, (e, t, aus) in sorted(plan.items())}}


def _save_png(photo: Photo, rgb: np.ndarray, provenance: dict) -> str:
    path = _new_dir() / f"{photo.name}_mien.png"
    imageio.save_image(path, rgb, photo.loaded, provenance=provenance)
    return str(path)


def _not_checked(x) -> str:
    return "not checked" if x is None else x


def _verdict_md(summary: dict, n_faces: int, plan: dict) -> str:
    faces = summary["faces"]
    if not faces:
        return "No face is changed yet: pick an emotion (and a face) to edit."
    rows = ["| Face | Change | Check | Identity | Tries |", "|---|---|---|---|---|"]
    for f in faces:
        v = f.get("verdict")
        verdict = "not checked" if v is None else ("✅ accepted" if v == "accepted" else "⚠️ " + str(v))
        if f.get("reason") and f["reason"] != v:
            verdict += f" — {f['reason']}"
        ident = "not checked" if f.get("identity") is None else f"{f['identity']:.2f}"
        change = f"{EMOJI.get(f['emotion'], '')} {f['emotion']} {_pct(f['intensity'])}"
        _, asked, extra = plan.get(f["index"], (None, f["intensity"], ()))
        if abs(asked - f["intensity"]) > 1e-3:  # the gate retried at another strength
            change += f" (asked {_pct(asked)})"
        if extra:
            change += " + " + ", ".join(f"{a} {_pct(v)}" for a, v in extra)
        rows.append(f"| {f['index']} | {change} | {verdict} | {ident} | {f.get('attempts', 1)} |")
    unchanged = n_faces - len(faces)
    tail = f"\n\n{unchanged} other face(s) left unchanged." if unchanged > 0 else ""
    return "\n".join(rows) + tail


def _labels(summary: dict, focus: int | None):
    """(before, after) values for the two gr.Label score panels: the focused face's probabilities."""
    faces = {f["index"]: f for f in summary.get("faces", [])}
    f = faces.get(focus) if focus is not None else next(iter(faces.values()), None)
    if f is None:
        return gr.update(value=None, label="Scores before"), gr.update(value=None, label="Scores after")
    name = f"face {f['index']}"
    return (gr.update(value=_not_checked(f.get("probs_before")), label=f"Before ({name})"),
            gr.update(value=_not_checked(f.get("probs_after")), label=f"After ({name})"))


def _focus(target) -> int | None:
    return None if target in (None, "", "all") else int(target)


# ----------------------------------------------------------------------------------- handlers

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


def _render(state: dict | None, plan: dict, target, gate: bool) -> dict:
    """The result for the current plan: before/after, scores, verdicts, download."""
    if not state:
        return {result: None, status: "Upload a photo or pick an example to start.", verdict: "",
                before_lbl: gr.update(value=None), after_lbl: gr.update(value=None),
                download: gr.update(value=None, interactive=False), last: None}
    t0 = time.perf_counter()
    photo = photo_for(state["path"])
    image, edits, timings = _run_plan(photo.loaded.rgb, photo.faces, plan, gate)
    res = EditResult(image=image, faces=edits, faces_detected=len(photo.faces), timings_ms=timings)
    shown = _display(image)
    ms = (time.perf_counter() - t0) * 1000
    faces_txt = f"{len(photo.faces)} face{'s' if len(photo.faces) != 1 else ''} found"
    out = {result: (photo.before, shown)}
    if not gate:  # slider being dragged: image only; checks and the download follow on release
        out[status] = f"{faces_txt} · preview in {ms:.0f} ms · let go of the slider to check it"
        out[download] = gr.update(interactive=False)  # never download a picture other than the one shown
        return out
    summary = res.summary()
    b, a = _labels(summary, _focus(target))
    dl = _save_png(photo, image, _provenance(plan)) if edits else None
    ms = (time.perf_counter() - t0) * 1000
    out.update({status: f"{faces_txt} · edited in {ms:.0f} ms", verdict: _verdict_md(summary, len(photo.faces), plan),
                before_lbl: b, after_lbl: a, last: summary,
                download: gr.update(value=dl, interactive=dl is not None)})
    return out


@friendly
def on_photo(path, emotion, intensity_pct, *au_values):
    """New photo (upload, clipboard, webcam, example): decode, detect, apply the current settings
    to every face."""
    empty = {state_: None, plan_: {}, target_: gr.update(choices=[("All faces", "all")], value="all", visible=False),
             faces_img: gr.update(value=None, visible=False)}
    if not path:
        return {**empty, **_render(None, {}, "all", True)}
    try:
        photo = photo_for(path)
    except MienError as e:
        msg = str(e)
        gr.Warning(msg)
        return {**empty, **_render(None, {}, "all", True), status: f"⚠️ {msg}"}
    if not photo.faces:
        msg = "No face was found in the photo: try a clearer, larger, front-facing face."
        gr.Warning(msg)
        return {**empty, **_render(None, {}, "all", True), status: f"⚠️ {msg}"}
    n = len(photo.faces)
    s = _settings(emotion, intensity_pct, au_values)
    plan = {i: s for i in range(n)}
    state = {"path": path, "key": photo.key, "n": n}
    choices = [("All faces", "all")] + [(f"Face {i}", str(i)) for i in range(n)]
    return {state_: state, plan_: plan,
            target_: gr.update(choices=choices, value="all", visible=n > 1),
            faces_img: gr.update(value=photo.numbered, visible=n > 1),
            **_render(state, plan, "all", True)}


def _apply(state, plan, target, emotion, intensity_pct, au_values, gate):
    if not state:
        raise gr.Error("Upload a photo first (or click one of the examples).", print_exception=False)
    plan = dict(plan or {})
    s = _settings(emotion, intensity_pct, au_values)
    f = _focus(target)
    for i in range(state["n"]) if f is None else [f]:
        plan[i] = s
    return {plan_: plan, **_render(state, plan, target, gate)}


@friendly
def on_control(state, plan, target, emotion, intensity_pct, *au_values):
    """Emotion picked or slider released: apply to the chosen face(s), run the checks."""
    return _apply(state, plan, target, emotion, intensity_pct, au_values, True)


@friendly
def on_drag(state, plan, target, emotion, intensity_pct, *au_values):
    """Slider moving: re-render the image only (cached faces, no checks)."""
    return _apply(state, plan, target, emotion, intensity_pct, au_values, False)


@friendly
def on_target(state, plan, target, summary):
    """Face picked: show its settings and its scores."""
    f = _focus(target)
    out = {}
    if f is not None and plan and f in plan:
        e, t, aus = plan[f]
        extra = dict(aus)
        out.update({emotion_: e, intensity_: round(t * 100)})
        out.update({sl: round(extra.get(k, 0.0) * 100) for k, sl in zip(AU_KEYS, au_sliders)})
    if summary:
        out[before_lbl], out[after_lbl] = _labels(summary, f)
    return out


@friendly
def on_reset(state, target):
    """Undo every edit: the result shows the photo as uploaded."""
    return {plan_: {}, emotion_: "happy", intensity_: 100, **{sl: 0 for sl in au_sliders},
            **_render(state, {}, target, True)}


@friendly
def on_strip(state, target, emotion, *au_values):
    """The chosen face (or face 0) at 0, 25, ..., 150 % of the chosen emotion."""
    if not state:
        raise gr.Error("Upload a photo first (or click one of the examples).", print_exception=False)
    photo = photo_for(state["path"])
    i = _focus(target) or 0
    aus = dict(_aus_from(au_values)) or None
    box = _face_square(photo.loaded.rgb.shape, photo.faces[i].box)
    tiles = []
    for pct in STRIP_STEPS:
        img = photo.loaded.rgb
        if pct:
            img = edit(img, emotion, pct / 100, faces=[i], aus=aus, detections=photo.faces,
                       **_gate_kwargs(False)).image
        x0, y0, x1, y1 = box
        tiles.append(img[y0:y1, x0:x1])
    return gr.update(value=_strip(tiles, [f"{p}%" for p in STRIP_STEPS]),
                     label=f"Face {i}: {emotion} at 0–150%")


@friendly
def api_edit(image, emotion="happy", intensity=1.0, faces="all", aus=""):
    """Edit a photo: emotion, intensity 0..1.5, faces 'all' or '0,2', aus 'AU12=0.5'. Returns the
    full-resolution PNG and a JSON summary (per face: region, scores, identity, verdict)."""
    if not image:
        raise MienError("No image was given.")
    photo = photo_for(image)
    faces = "all" if faces in (None, "") else faces
    res = edit(photo.loaded.rgb, emotion, intensity, faces=faces, aus=aus or None,
               detections=photo.faces, **_gate_kwargs(True))
    prov = {"emotion": res.faces[0].emotion if res.faces else emotion, "intensity": float(intensity),
            "faces": faces, **({"aus": aus} if aus else {})}
    return _save_png(photo, res.image, prov), res.summary()


# ------------------------------------------------------------------------------------------ UI

def PhotoInput(**kwargs) -> gr.Image:
    """gr.Image that passes the uploaded file's path on untouched, so `pipeline.imageio` decodes it
    (EXIF orientation, limits, one-line errors) instead of Pillow's defaults inside Gradio. (An
    instance override: a subclass would make Gradio write an app.pyi stub next to this file.)"""
    component = gr.Image(type="filepath", image_mode=None, **kwargs)
    default = component.preprocess

    def preprocess(payload):
        if payload is not None and payload.path and not (payload.url or "").startswith("data:"):
            return str(payload.path)
        return default(payload)

    component.preprocess = preprocess
    return component


CSS = """
.gradio-container {max-width: 1200px !important; margin: 0 auto;}
#emotion .wrap {gap: 6px;}
#emotion label {min-width: 0; padding: 6px 10px;}
#verdict table {font-size: 0.9em;}
@media (max-width: 640px) { .gradio-container {padding-left: 6px !important; padding-right: 6px !important;} }
"""

INTRO = """# Mien — change a facial expression
1. **Upload a photo** (or paste it, or use the webcam), or click an example below.
2. **Pick an emotion** and drag the **intensity**; with several people, pick a face and give each its own.
3. Compare **before / after** with the slider, check the scores, and **download** the full-resolution PNG.

Everything runs on this server's CPU; photos are deleted within an hour."""

with gr.Blocks(title="Mien — change a facial expression",
               delete_cache=(_sweep_s(), CACHE_TTL_S - _sweep_s())) as demo:  # sweep + age <= TTL
    state_ = gr.State(None)  # {"path", "key", "n"} of the current photo
    plan_ = gr.State({})  # face index -> (emotion, intensity 0..1.5, extra AUs)
    last = gr.State(None)  # summary of the last checked result
    gr.Markdown(INTRO)
    with gr.Row(equal_height=False):
        with gr.Column(min_width=300):
            photo_in = PhotoInput(label="Your photo", sources=["upload", "clipboard", "webcam"], height=380, elem_id="photo")
            if EXAMPLES:
                gr.Examples([[str(p)] for p in EXAMPLES], inputs=[photo_in],
                            label="Examples (Face Research Lab London Set, CC BY 4.0)", examples_per_page=8)
        with gr.Column(min_width=300):
            result = gr.ImageSlider(label="Before / after", type="numpy", format="jpeg", height=380,
                                    interactive=False, elem_id="result")
            status = gr.Markdown("Upload a photo or pick an example to start.", elem_id="status")
            download = gr.DownloadButton("⬇ Download full-resolution PNG", interactive=False, elem_id="download")
    with gr.Row(equal_height=False):
        with gr.Column(min_width=300):
            faces_img = gr.Image(label="Faces found (numbered left to right)", interactive=False, visible=False,
                                 height=260, format="jpeg", elem_id="faces")
            target_ = gr.Radio([("All faces", "all")], value="all", label="Edit which face?", visible=False,
                               elem_id="target")
            emotion_ = gr.Radio([(f"{EMOJI[e]} {e}", e) for e in EMOTIONS], value="happy", label="Emotion",
                                elem_id="emotion")
            intensity_ = gr.Slider(0, round(INTENSITY_MAX * 100), value=100, step=5, label="Intensity (%)",
                                   info="100% = clear and natural; above that, exaggerated", elem_id="intensity")
            with gr.Accordion("Advanced: individual face movements (action units)", open=False):
                gr.Markdown("Added on top of the emotion, in % (negative values push the other way).")
                au_sliders = [gr.Slider(-round(INTENSITY_MAX * 100), round(INTENSITY_MAX * 100), value=0, step=5,
                                        label=f"{AU_NAMES[k]} ({k})", elem_id=f"au-{k}") for k in AU_KEYS]
            reset = gr.Button("↺ Undo all edits", variant="secondary", size="sm")
        with gr.Column(min_width=300):
            with gr.Row():
                before_lbl = gr.Label(label="Scores before", num_top_classes=8, min_width=150, elem_id="scores-before")
                after_lbl = gr.Label(label="Scores after", num_top_classes=8, min_width=150, elem_id="scores-after")
            verdict = gr.Markdown("", elem_id="verdict")
            with gr.Accordion("Intensity strip: the face at 0, 25, …, 150 %", open=False):
                strip_btn = gr.Button("Make the strip", size="sm")
                strip_img = gr.Image(label="Intensity strip", interactive=False, format="jpeg", elem_id="strip")

    with gr.Row(visible=False):  # the named API endpoint (gradio_client), not shown in the page
        api_image = PhotoInput(label="image")
        api_emotion = gr.Textbox(value="happy", label="emotion")
        api_intensity = gr.Number(value=1.0, label="intensity")
        api_faces = gr.Textbox(value="all", label="faces")
        api_aus = gr.Textbox(value="", label="aus")
        api_out = gr.Image(type="filepath", format="png", label="edited image")
        api_json = gr.JSON(label="summary")
        api_btn = gr.Button("edit")

    controls = [emotion_, intensity_, *au_sliders]
    render_out = [result, status, verdict, before_lbl, after_lbl, download, last]
    private = dict(api_visibility="private")
    photo_in.change(on_photo, [photo_in, *controls], [state_, plan_, target_, faces_img, *render_out],
                    show_progress="minimal", trigger_mode="always_last", **private)
    emotion_.input(on_control, [state_, plan_, target_, *controls], [plan_, *render_out],
                   show_progress="minimal", trigger_mode="always_last", **private)
    for sl in [intensity_, *au_sliders]:
        sl.input(on_drag, [state_, plan_, target_, *controls], [plan_, *render_out],
                 show_progress="hidden", trigger_mode="always_last", **private)
        sl.release(on_control, [state_, plan_, target_, *controls], [plan_, *render_out],
                   show_progress="minimal", trigger_mode="always_last", **private)
    target_.input(on_target, [state_, plan_, target_, last], [*controls, before_lbl, after_lbl],
                  show_progress="hidden", **private)
    reset.click(on_reset, [state_, target_], [plan_, *controls, *render_out], **private)
    strip_btn.click(on_strip, [state_, target_, emotion_, *au_sliders], [strip_img], **private)
    api_btn.click(api_edit, [api_image, api_emotion, api_intensity, api_faces, api_aus], [api_out, api_json],
                  api_name="edit")

demo.queue(default_concurrency_limit=2, max_size=32)


def warm() -> float:
    """Load the models (detector, face mesh, expression model, gate) so the first click is fast."""
    t = time.perf_counter()
    src = EXAMPLES[0] if EXAMPLES else None
    if src is not None:
        rgb, faces = detect(src)
        if faces:
            edit(rgb, "happy", 1.0, faces=[0], detections=faces, **_gate_kwargs(True))
    return time.perf_counter() - t


def _sweeper() -> None:
    """Forget photos and delete work files on a timer too, not only when a request comes in: an idle
    server must not keep anyone's photo past the TTL."""
    while True:
        time.sleep(_sweep_s())
        _prune_cache()
        _prune_files()


def launch(**kwargs):
    kwargs.setdefault("max_file_size", imageio.MAX_BYTES)
    threading.Thread(target=_sweeper, name="mien-sweeper", daemon=True).start()
    return demo.launch(css=CSS, theme=gr.themes.Soft(), footer_links=["api"], **kwargs)


def main() -> None:
    logging.basicConfig(level=logging.INFO)
    t_import = time.perf_counter() - _T_START
    warm_s = warm()
    launch(prevent_thread_lock=True)
    print(f"Mien ready in {time.perf_counter() - _T_START:.1f} s (imports {t_import:.1f} s, "
          f"models warmed {warm_s:.1f} s)", flush=True)
    demo.block_thread()


if __name__ == "__main__":
    main()
