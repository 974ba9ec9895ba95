"""Shared fixtures: real photos (copied London subset; t1.jpg from the insightface package)."""
from pathlib import Path

import pytest

from pipeline.datasets import SHARED_FACES, TEST_DATA
from pipeline.sheet import insightface_sample

LONDON = TEST_DATA / "london"
PEOPLE = ("001", "005", "021", "025", "064")


@pytest.fixture(scope="session")
def t1_path() -> Path:
    p = insightface_sample("t1.jpg")
    assert p is not None, "insightface's sample photos are missing: run `make test` (installs insightface --no-deps)"
    return p


# The full London set lives beside the repo (CI has it); tests over all 68 people need it.
HAVE_SHARED = (SHARED_FACES / "london").is_dir()
needs_shared = pytest.mark.skipif(not HAVE_SHARED, reason="../shared/data/faces is not present")


def london(face_id: str, kind: str = "neutral") -> Path:
    return LONDON / f"{face_id}_{kind}.jpg"


def load_script(name: str):
    """A module from scripts/ (not a package), e.g. a porting script with its numpy reference."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, Path(__file__).resolve().parents[1] / "scripts" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def first_face(path):
    """(rgb, [the first detected face]) of a photo."""
    from pipeline.editor import detect

    rgb, faces = detect(path)
    return rgb, faces[:1]
