"""MobileFaceNet identity backend on real photos: same person across a smile passes, strangers
fail, batching does not change a face's embedding, a missing model file is a clear error."""
from __future__ import annotations

import numpy as np
import pytest

from pipeline.backends.mobilefacenet import MobileFaceNet, align, keypoints5
from pipeline.identity import IdentityModelUnavailable, similarity
from pipeline.types import Face

from .conftest import PEOPLE, first_face, london, needs_shared


@pytest.fixture(scope="module")
def net() -> MobileFaceNet:
    return MobileFaceNet()


@pytest.fixture(scope="module")
def photos():
    """{(person, kind): (rgb, [face])} for the five London people copied into tests/data."""
    return {(p, k): first_face(london(p, k)) for p in PEOPLE for k in ("neutral", "happy")}


@pytest.fixture(scope="module")
def embeddings(net, photos):
    """(neutral, happy), each (5, 192)."""
    return tuple(np.array([net.embed(*photos[p, k])[0] for p in PEOPLE]) for k in ("neutral", "happy"))


def test_rows_are_unit_float32(net, embeddings, photos):
    neutral, _ = embeddings
    assert neutral.shape == (len(PEOPLE), 192) and neutral.dtype == np.float32
    assert np.allclose(np.linalg.norm(neutral, axis=1), 1, atol=1e-5)
    assert net.dim == 192 and 0 < net.threshold < 1
    assert net.embed(np.zeros((10, 10, 3), np.uint8), []).shape == (0, 192)
    rgb, faces = photos[PEOPLE[0], "neutral"]
    chip = align(rgb, faces[0])
    assert chip.shape == (112, 112, 3) and chip.dtype == np.uint8


def test_same_person_across_a_smile_passes(net, embeddings):
    neutral, happy = embeddings
    same = np.einsum("id,id->i", neutral, happy)
    # All 68 London people pass (min 0.787, median 0.947; threshold 0.465).
    assert (same >= net.threshold).all(), same
    assert np.median(same) > 0.85


def test_strangers_fail(net, embeddings):
    neutral, happy = embeddings
    allv = np.concatenate([neutral, happy])
    owner = np.tile(np.arange(len(PEOPLE)), 2)
    sims = allv @ allv.T
    cross = sims[owner[:, None] != owner[None, :]]
    assert (cross < net.threshold).all(), cross.max()  # max over all 9112 London pairs: 0.548
    assert (neutral @ happy.T).argmax(axis=1).tolist() == list(range(len(PEOPLE)))


def test_batches_of_one_and_three_match_one_at_a_time(net, t1_path):
    # A group photo: three faces go through as a pair plus a padded single (fixed batch of 2).
    from pipeline.editor import detect

    rgb, faces = detect(t1_path)
    assert len(faces) >= 3
    three = net.embed(rgb, faces[:3])
    singles = np.array([net.embed(rgb, [f])[0] for f in faces[:3]])
    assert three.shape == (3, 192)
    assert np.allclose(three, singles, atol=1e-5)
    assert (three @ three.T)[~np.eye(3, dtype=bool)].max() < 0.9  # three different people, not one row


def test_without_mesh_blazeface_keypoints_still_align(net, photos):
    rgb, (face,) = photos[PEOPLE[0], "neutral"]
    bare = Face(box=face.box, score=face.score, keypoints=face.keypoints)
    assert len(keypoints5(bare)[0]) == 4
    assert similarity(net.embed(rgb, [bare])[0], net.embed(rgb, [face])[0]) > net.threshold


def test_missing_or_broken_model_file_is_a_clear_error(tmp_path):
    with pytest.raises(IdentityModelUnavailable, match="not found"):
        MobileFaceNet(tmp_path / "absent.tflite")
    bad = tmp_path / "broken.tflite"
    bad.write_bytes(b"not a model")
    with pytest.raises(IdentityModelUnavailable):
        MobileFaceNet(bad)


@needs_shared
def test_london_subset_separates(net):
    """Every 4th of the 68 London people: same-person pairs pass, stranger pairs fail."""
    from pipeline.datasets import london_ids, london_photo

    ids = london_ids()[::4]
    emb = {(p, k): net.embed(*first_face(london_photo(p, k)))[0] for p in ids for k in ("neutral", "happy")}
    neutral = np.array([emb[p, "neutral"] for p in ids])
    happy = np.array([emb[p, "happy"] for p in ids])
    assert (np.einsum("id,id->i", neutral, happy) >= net.threshold).all()
    cross = (neutral @ happy.T)[~np.eye(len(ids), dtype=bool)]
    assert np.mean(cross >= net.threshold) <= 0.01
