"""Backends by name: lazy, shared, tagged, with one-line errors."""
import os
import subprocess
import sys

import pytest

from pipeline import InvalidRequest, registry
from pipeline.registry import BackendUnavailable, Backends


class Thing:
    made = 0

    def __init__(self):
        Thing.made += 1


@pytest.fixture
def thing():
    Thing.made = 0
    registry.register("detector", "thing", Thing)
    yield
    registry.BACKENDS["detector"].pop("thing")


def test_a_backend_is_made_once_shared_and_tagged(thing):
    a, b = registry.get("detector", "thing"), registry.get("detector", " Thing ")
    assert a is b and Thing.made == 1 and a.backend_name == "thing"


def test_re_registering_replaces_the_cached_instance(thing):
    a = registry.get("detector", "thing")
    registry.register("detector", "thing", Thing)
    assert registry.get("detector", "thing") is not a


def test_a_missing_package_is_one_line():
    registry.register("detector", "ghost", "no_such_package_here.mod:Det")
    try:
        with pytest.raises(BackendUnavailable, match="needs the 'no_such_package_here' package"):
            registry.get("detector", "ghost")
    finally:
        registry.BACKENDS["detector"].pop("ghost")


def test_unknown_kinds_and_names_list_what_exists():
    with pytest.raises(InvalidRequest, match="Kinds: detector, landmarker, embedder, classifier"):
        registry.get("renderer")
    with pytest.raises(InvalidRequest, match="Available: ensemble, face-api, mini-xception"):
        Backends.choose(classifier="nope").get("classifier")


def test_defaults_come_from_the_environment():
    code = "from pipeline.registry import Backends; print(Backends.choose())"
    env = {**os.environ, "MIEN_DETECTOR": "insightface", "MIEN_EMBEDDER": "dlib"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert "detector='insightface'" in out and "embedder='dlib'" in out and "classifier='ensemble'" in out
    plain = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           env={k: v for k, v in os.environ.items() if not k.startswith("MIEN_")}).stdout
    assert "detector='blazeface'" in plain and "embedder='mobilefacenet'" in plain


def test_importing_pipeline_loads_no_model_runtime():
    code = ("import sys, pipeline, pipeline.editor, pipeline.registry; "
            "print(sorted(m for m in ('torch', 'diffusers', 'insightface', 'onnxruntime', 'dlib', "
            "'ai_edge_litert', 'gradio') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
