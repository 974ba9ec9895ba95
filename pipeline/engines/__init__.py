"""Engines: what renders one face's new expression. `edit()` talks to every engine through the
small `Engine` protocol below, so a new renderer (the diffusion engine, a future 3-D one) slots in
without touching the editor, the gate or the paste.

An engine gets the input image, the image edited so far (other faces may already be done), one
`Face` and a `RenderRequest`, and returns a `Rendered`: the new pixels of a rectangle of the image
and the mask of which of them change. `pipeline.paste` composites it; the gate judges it; when the
gate rejects it, `next_request` says what the engine would try next (or None: nothing left).
"""
from __future__ import annotations

import importlib
import threading
from dataclasses import dataclass, field, replace
from typing import Protocol

import numpy as np

from ..errors import InvalidRequest, MienError
from ..types import Face


class EngineUnavailable(MienError):
    """The engine exists but cannot run here (weights or packages missing); one line says which."""


@dataclass(frozen=True)
class RenderRequest:
    emotion: str
    intensity: float
    aus: dict[str, float] = field(default_factory=dict)  # the user's extra action units
    # AUs a retry adds to (or takes from) the recipe; the intensity a user asked for stays.
    adjust: dict[str, float] = field(default_factory=dict)
    seed: int | None = None
    attempt: int = 1
    teeth: bool = True  # False: no lip parting from the recipe (a closed-mouth smile)

    def action_units(self) -> dict[str, float]:
        """The user's AUs with the retry's adjustment added."""
        if self.attempt == 1:
            return self.aus
        return {k: self.aus.get(k, 0.0) + self.adjust.get(k, 0.0) for k in {*self.aus, *self.adjust}}

    def next(self, **changes) -> RenderRequest:
        return replace(self, attempt=self.attempt + 1, **changes)


@dataclass
class Rendered:
    """One face rendered. `pixels` are the new values of `region` (x0, y0, x1, y1) and `mask` says
    which change: bool = copied exactly, float32 0..1 = alpha-blended. None = nothing changes."""
    request: RenderRequest
    region: tuple[int, int, int, int]
    pixels: np.ndarray | None
    mask: np.ndarray | None
    landmarks_after: np.ndarray
    applied: dict[str, float]  # AU -> weight applied (after any scaling)
    removed: dict[str, float]  # expression read in the input and relaxed
    engine: str = ""
    timings_ms: dict[str, float] = field(default_factory=dict)

    @property
    def changes(self) -> bool:
        return self.pixels is not None


class Engine(Protocol):
    name: str

    def render(self, image: np.ndarray, base: np.ndarray, face: Face, request: RenderRequest) -> Rendered:
        """Render `face` of `image` (the untouched input) on top of `base` (the image edited so far)."""
        ...

    def next_request(self, last: RenderRequest, check) -> RenderRequest | None:
        """After the gate rejected `last` with `check` (a `pipeline.gate.Check`): what to try next,
        or None when there is nothing different left to try."""
        ...


# name -> "module:attribute" of a zero-argument factory; imported on first use (heavy engines
# such as diffusion pull torch only when chosen).
ENGINES = {
    "geometric": "pipeline.engines.geometric:GeometricEngine",
    "diffusion": "pipeline.engines.diffusion:DiffusionEngine",
}
_cache: dict[str, Engine] = {}
_lock = threading.Lock()


def get_engine(name: str | None = None) -> Engine:
    """The shared engine called `name` (default: settings().engine). Unknown names and engines that
    cannot run here raise a one-line `MienError`."""
    from ..config import settings

    name = (name or settings().engine).strip().lower()
    if name not in ENGINES:
        raise InvalidRequest(f"Unknown engine '{name}'. Available: {', '.join(ENGINES)}.")
    with _lock:
        if name not in _cache:
            mod, attr = ENGINES[name].split(":")
            try:
                factory = getattr(importlib.import_module(mod), attr)
            except ImportError as e:
                raise EngineUnavailable(f"The {name} engine needs the '{e.name}' package, which is not installed.") from None
            _cache[name] = factory()
        return _cache[name]
