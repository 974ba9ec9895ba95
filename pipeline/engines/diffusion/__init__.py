"""The diffusion engine: warp-guided, image- and emotion-conditioned refinement of the face.

One render: the geometric engine moves the features (its result sets the geometry) -> a square crop
around the face, resized to the model's size -> a diffusers UNet (InstructPix2Pix family by
default, see `model`) refines appearance (teeth, folds, shading) conditioned on that crop and on the
emotion (an instruction prompt plus the adapter's learned emotion x intensity vector) -> the result
goes back at the crop's size, blended in by a feathered face-oval alpha, so `pipeline.paste`
composites it at full resolution and every pixel outside the face oval (and outside what the
geometric engine moved) keeps its value. `RenderRequest.seed` makes it reproducible (None = 0).

Configuration (first match wins): `configure(model=..., adapter=...)` (the CLI's
`--diffusion-model/--adapter`, the app's setting), then MIEN_DIFFUSION_MODEL / MIEN_DIFFUSION_ADAPTER.
Also read here: MIEN_DIFFUSION_DEVICE (cuda, mps, cpu; default: the best there is),
MIEN_DIFFUSION_STEPS (20), MIEN_DIFFUSION_STRENGTH (0.75: how far down the noise schedule the
refine starts; 1 = from pure noise), MIEN_DIFFUSION_GUIDANCE (7.5: text guidance). No model -> `EngineUnavailable` with one line, never a silent
fallback. Importing this package does not import torch; building the engine does.
"""
from __future__ import annotations

import os
import threading
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np

from ...mesh import FACE_OVAL
from ...timing import timer
from ...types import Face
from .. import EngineUnavailable, Rendered, RenderRequest

CROP_SCALE = 1.6  # crop side / face-oval size: room for the jaw to drop and context for the model
FEATHER = 0.04  # alpha ramp width, as a fraction of the crop side: no visible seam at the oval

_options: dict[str, object] = {}


def configure(model: str | None = None, adapter: str | None = None, **options) -> None:
    """Choose the model and adapter (and `device`, `steps`, `strength`, `guidance`) for this
    process; the next `get_engine("diffusion")` builds the engine with them."""
    from .. import _cache, _lock

    _options.update({k: v for k, v in dict(model=model, adapter=adapter, **options).items() if v is not None})
    with _lock:
        _cache.pop("diffusion", None)


def _setting(key: str, default=None):
    from ...config import settings

    if key in _options:
        return _options[key]
    env = os.environ.get(f"MIEN_DIFFUSION_{key.upper()}", "").strip()
    return getattr(settings(), f"diffusion_{key}", None) or env or default


def face_crop(landmarks: np.ndarray, shape: tuple[int, int]) -> tuple[int, int, int, int]:
    """A square (x0, y0, x1, y1) around the face oval, CROP_SCALE times its size, moved (not
    cut) to stay inside the image; smaller only when the image is."""
    oval = landmarks[FACE_OVAL, :2]
    (ax, ay), (bx, by) = oval.min(0), oval.max(0)
    h, w = shape
    side = int(min(round(CROP_SCALE * max(bx - ax, by - ay)), h, w))
    x0 = int(np.clip(round((ax + bx - side) / 2), 0, w - side))
    y0 = int(np.clip(round((ay + by - side) / 2), 0, h - side))
    return x0, y0, x0 + side, y0 + side


def face_alpha(landmarks: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """float32 alpha of the face oval in `box`: 1 inside, a feathered ramp just inside the edge,
    exactly 0 outside the oval (the ramp is eroded in first, so it never leaks out)."""
    x0, y0, x1, y1 = box
    side = x1 - x0
    poly = np.zeros((y1 - y0, side), np.uint8)
    cv2.fillPoly(poly, [np.round(landmarks[FACE_OVAL, :2] - (x0, y0)).astype(np.int32)], 1)
    r = max(1, int(FEATHER * side))
    inner = cv2.erode(poly, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1)))
    a = cv2.GaussianBlur(inner.astype(np.float32), (0, 0), r / 2) * poly
    a[a < 1 / 255] = 0
    return a


def load_components(model: str, adapter: str | None = None, device: str | None = None, dtype=None):
    """`model.load` with every way it can fail (packages, files, hub) as one `EngineUnavailable` line."""
    try:
        from . import model as m
    except ImportError as e:
        raise EngineUnavailable(f"The diffusion engine needs the '{e.name}' package, which is not installed "
                                "(pip install -r requirements.txt).") from None
    try:
        return m.load(model, adapter, device, dtype)
    except (OSError, ValueError, KeyError) as e:  # hub and diffusers report missing files this way
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        hint = " (offline: HF_HUB_OFFLINE is set, so nothing is downloaded)" if m.offline() else ""
        raise EngineUnavailable(f"The diffusion model '{model}'{' with adapter ' + repr(adapter) if adapter else ''} "
                                f"could not be loaded{hint}: {reason[:200]}") from None


def _union(a, b):
    return min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])


class DiffusionEngine:
    name = "diffusion"

    def __init__(self, model: str | None = None, adapter: str | None = None, device: str | None = None):
        self.model_name = model or _setting("model")
        self.adapter_name = adapter or _setting("adapter")
        if not self.model_name:
            raise EngineUnavailable("The diffusion engine needs a model: set MIEN_DIFFUSION_MODEL (or --diffusion-model) "
                                    "to a hub id such as timbrooks/instruct-pix2pix or a local folder.")
        for what, name in (("model", self.model_name), ("adapter", self.adapter_name)):
            if name and _looks_local(name) and not Path(name).expanduser().is_dir():
                raise EngineUnavailable(f"The diffusion {what} folder {name} does not exist: "
                                        f"set MIEN_DIFFUSION_{what.upper()} to a hub id or an existing folder.")
        self.steps = int(_setting("steps", 20))
        self.strength = float(_setting("strength", 0.75))
        self.guidance = float(_setting("guidance", 7.5))
        self._lock = threading.Lock()
        self.components = load_components(self.model_name, self.adapter_name, device or _setting("device"))
        from . import model

        self._m = model

    def render(self, image: np.ndarray, base: np.ndarray, face: Face, request: RenderRequest) -> Rendered:
        from ... import paste
        from .. import get_engine

        geo = get_engine("geometric").render(image, base, face, request)
        r = Rendered(request, geo.region, geo.pixels, geo.mask, geo.landmarks_after, geo.applied, geo.removed,
                     self.name, dict(geo.timings_ms))
        if request.intensity <= 0 and not request.action_units():
            return r  # nothing asked: the photo stays as it is (the geometric engine's answer)
        crop = face_crop(geo.landmarks_after, image.shape[:2])
        region = _union(crop, geo.region) if geo.changes else crop
        x0, y0, x1, y1 = region
        geometry = base[y0:y1, x0:x1].copy()  # the photo so far with the geometric result on it
        alpha = np.zeros(geometry.shape[:2], np.float32)
        if geo.changes:
            gx0, gy0, gx1, gy1 = geo.region
            sl = np.s_[gy0 - y0:gy1 - y0, gx0 - x0:gx1 - x0]
            geometry[sl] = paste.compose(geometry[sl], geo.pixels, geo.mask)
            alpha[sl] = geo.mask.astype(np.float32)
        cx0, cy0, cx1, cy1 = crop
        cs = np.s_[cy0 - y0:cy1 - y0, cx0 - x0:cx1 - x0]
        face_a = face_alpha(geo.landmarks_after, crop)
        s = self.components.size
        with timer(r.timings_ms, "diffusion"):
            small = cv2.resize(geometry[cs], (s, s), interpolation=cv2.INTER_AREA)
            small_a = cv2.resize(face_a, (s, s), interpolation=cv2.INTER_LINEAR)
            with self._lock:  # one denoising loop at a time per model (the scheduler keeps state)
                out = self._m.generate(self.components, small, small_a, request.emotion, request.intensity,
                                       0 if request.seed is None else request.seed, steps=self.steps,
                                       strength=self.strength, guidance=self.guidance)
            refined = cv2.resize(out, (cx1 - cx0, cy1 - cy0), interpolation=cv2.INTER_CUBIC)
        # Wanted: the refined face fading (by face_a) into the geometric result. Where the geometric
        # engine moved pixels (alpha 1) the pixels are that blend; elsewhere the paste's own alpha
        # does the fading, so the pixels are the refined face itself (blending twice would square it).
        a = face_a[..., None]
        blend = np.clip(geometry[cs] * (1 - a) + refined * a + 0.5, 0, 255).astype(np.uint8)
        geometry[cs] = np.where(alpha[cs][..., None] > 0, blend, refined)
        alpha[cs] = np.maximum(alpha[cs], face_a)
        r.region, r.pixels, r.mask = region, geometry, alpha
        return r

    def next_request(self, last: RenderRequest, check) -> RenderRequest | None:
        """The geometric engine's policy (more of the emotion, or less when identity slips), with
        the next seed; when that has nothing left, another seed is still worth one more try."""
        from .. import get_engine

        nxt = get_engine("geometric").next_request(last, check)
        seed = (last.seed or 0) + 1
        return replace(nxt, seed=seed) if nxt else last.next(seed=seed)

    def describe(self) -> str:
        c = self.components
        return (f"diffusion: {self.model_name} ({c.kind}, {c.size} px, {c.device})"
                + (f" + adapter {self.adapter_name}" if self.adapter_name else ""))


def _looks_local(name: str) -> bool:
    # Hub ids are "owner/name"; anything with more parts, a leading . / ~ or a drive is a path.
    return name.startswith((".", "/", "~")) or name.count("/") > 1 or "\\" in name or Path(name).expanduser().exists()
