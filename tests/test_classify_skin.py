"""The gate reads dark skin in a lifted light (`classify.SKIN_LIFT`): sad edits of the darkest
London faces, plainly sad zoomed in, read neutral to both gate classifiers until the crop is
brightened. Real photos of those people, lighter faces and the held-out judge read as before."""
from __future__ import annotations

import numpy as np
import pytest

from pipeline import classify
from pipeline.datasets import london_groups, london_photo, london_split
from pipeline.editor import detect, edit
from pipeline.engines.geometric import mouthbank

from .conftest import PEOPLE, london, needs_shared

DARK = ("061",)  # tune half: its sad edit reads neutral without the lift (042 reads disgust with it)


def _top(p: dict) -> str:
    return max(p, key=p.get)


def test_lighter_skin_is_read_exactly_as_before(monkeypatch):
    """Four of the five test people (tests/data) are lighter than SKIN_LIFT: gamma 1, the same
    numbers; 025 (black, skin 0.39) is raised a little."""
    rgb, faces = detect(london("025", "neutral"))
    assert 0.9 < classify.skin_gamma(rgb, faces)[0] < 1
    for face_id in (p for p in PEOPLE if p != "025"):
        rgb, faces = detect(london(face_id, "neutral"))
        assert classify.skin_gamma(rgb, faces).tolist() == [1.0]
        p = classify.ensemble().predict(rgb, faces)[0]
        monkeypatch.setattr(classify, "SKIN_LIFT", 0.0)
        assert classify.ensemble().predict(rgb, faces)[0] == p
        monkeypatch.undo()


@needs_shared
def test_only_the_darkest_tune_faces_are_lifted():
    groups = london_groups()
    lifted = {i for i in london_split("tune")
              if classify.skin_gamma(*detect(london_photo(i)))[0] < 1}
    assert lifted == {i for i in london_split("tune") if groups[i] == "black"}, lifted


@needs_shared
@pytest.mark.parametrize("face_id", DARK)
def test_a_dark_faces_sad_edit_reads_sad(monkeypatch, face_id):
    """061 sad (ungated, intensity 1, the person left out of the mouth banks): neutral to
    the ensemble in the photo's own light, sad in the lifted one; the real neutral photo still
    reads neutral; the held-out judge's reading does not move."""
    rgb, faces = detect(london_photo(face_id))
    with mouthbank.leaving_out(face_id):
        out = edit(rgb, "sad", 1.0, detections=faces, gate=False).image
    assert classify.skin_gamma(out, faces)[0] < 0.8
    lit = classify.ensemble().predict(out, faces)[0]
    judged = classify.judge().predict(out, faces)[0]
    assert _top(lit) == "sad", lit
    assert _top(classify.ensemble().predict(rgb, faces)[0]) == "neutral"
    monkeypatch.setattr(classify, "SKIN_LIFT", 0.0)
    assert _top(classify.ensemble().predict(out, faces)[0]) == "neutral"
    assert classify.judge().predict(out, faces)[0] == judged


def test_lifted_raises_dark_values_and_keeps_the_dtype():
    crops = np.array([[[0, 60, 255]], [[0, 60, 255]]], np.uint8)
    out = classify.lifted(crops, np.array([1.0, 0.5]))
    assert out.dtype == np.uint8 and out[0].tolist() == crops[0].tolist()
    assert out[1].tolist() == [[0, 123, 255]]  # 255 * (60 / 255) ** 0.5 = 123.7
