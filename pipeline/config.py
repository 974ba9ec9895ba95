"""Where Mien's files are and which backends and thresholds it uses: one place, read once.

Every setting has a default that works offline on any machine; environment variables override
them (the app and the CLI also pass choices per call, which win over both):

| variable | setting | default |
|---|---|---|
| MIEN_WEIGHTS | folder of model files | <repo>/weights |
| MIEN_FACES | the licensed London/lisa photos | <repo>/../shared/data/faces |
| MIEN_ENGINE | renderer: geometric, diffusion | geometric |
| MIEN_DIFFUSION_MODEL, MIEN_DIFFUSION_ADAPTER | the diffusion engine's base model and emotion adapter (hub id or folder) | unset |
| MIEN_DETECTOR | face detector: blazeface, insightface | blazeface |
| MIEN_EMBEDDER | identity model for the gate | see `registry` |
| MIEN_CLASSIFIER | emotion classifier for the gate: ensemble, face-api, mini-xception | ensemble |
| MIEN_INSIGHTFACE_MODELS | an InsightFace model-pack folder (e.g. buffalo_l) | unset |
| MIEN_CACHE_TTL_S | how long the app keeps an uploaded photo | 3600 |
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _env(name: str, default: str | None) -> str | None:
    v = os.environ.get(name, "").strip()
    return v or default


@dataclass(frozen=True)
class Settings:
    weights: Path = field(default_factory=lambda: Path(_env("MIEN_WEIGHTS", str(REPO / "weights"))))
    faces: Path = field(default_factory=lambda: Path(_env("MIEN_FACES", str(REPO.parent / "shared" / "data" / "faces"))))
    engine: str = field(default_factory=lambda: _env("MIEN_ENGINE", "geometric"))
    diffusion_model: str | None = field(default_factory=lambda: _env("MIEN_DIFFUSION_MODEL", None))
    diffusion_adapter: str | None = field(default_factory=lambda: _env("MIEN_DIFFUSION_ADAPTER", None))
    detector: str = field(default_factory=lambda: _env("MIEN_DETECTOR", "blazeface"))
    landmarker: str = field(default_factory=lambda: _env("MIEN_LANDMARKER", "facemesh"))
    embedder: str | None = field(default_factory=lambda: _env("MIEN_EMBEDDER", None))
    classifier: str = field(default_factory=lambda: _env("MIEN_CLASSIFIER", "ensemble"))
    insightface_models: str | None = field(default_factory=lambda: _env("MIEN_INSIGHTFACE_MODELS", None))
    cache_ttl_s: int = field(default_factory=lambda: int(_env("MIEN_CACHE_TTL_S", "3600")))

    def weight(self, name: str) -> Path:
        return self.weights / name


@lru_cache(maxsize=1)
def settings() -> Settings:
    """The settings of this process (environment read once)."""
    return Settings()


WEIGHTS = settings().weights
