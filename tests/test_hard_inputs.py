"""Hard but valid photos through edit(): each gets a correct result or one clear MienError line."""
import cv2
import numpy as np
import pytest

from pipeline import InvalidRequest, MienError, NoFaceError, edit
from pipeline.datasets import SHARED_FACES
from pipeline.imageio import load_image

from .conftest import london, needs_shared


@pytest.fixture(scope="module")
def portrait():
    return load_image(london("005")).rgb


def _changed_only_inside(res, rgb):
    mask = np.zeros(rgb.shape[:2], bool)
    for f in res.faces:
        x0, y0, x1, y1 = f.region
        mask[y0:y1, x0:x1] = True
    return np.array_equal(res.image[~mask], rgb[~mask])


def test_a_face_cut_by_the_image_border(portrait):
    half = np.ascontiguousarray(portrait[:, 330:])  # the left third of the face is outside the photo
    res = edit(half, "happy", 1.0, gate=False)
    assert res.image.shape == half.shape and len(res.faces) == 1
    assert _changed_only_inside(res, half) and not np.array_equal(res.image, half)


def test_thirty_faces_are_all_edited(portrait):
    tile = cv2.resize(portrait[150:650, 150:620], (160, 170), interpolation=cv2.INTER_AREA)
    grid = np.concatenate([np.concatenate([tile] * 6, 1)] * 5, 0)  # 30 faces, 960 x 850
    res = edit(grid, "surprised", 1.0, gate=False)
    assert res.faces_detected == 30 and len(res.faces) == 30
    assert _changed_only_inside(res, grid)


def test_more_faces_than_the_limit_is_a_clear_refusal(portrait, monkeypatch):
    import pipeline.editor as editor

    monkeypatch.setattr(editor, "MAX_FACES", 2)
    tile = cv2.resize(portrait[150:650, 150:620], (200, 212))
    with pytest.raises(InvalidRequest, match="at most 2"):
        edit(np.concatenate([tile] * 3, 1), "happy", gate=False)


def test_a_face_too_small_to_find_is_a_clear_no_face(portrait):
    tiny = cv2.resize(portrait, (40, 40), interpolation=cv2.INTER_AREA)
    canvas = np.full((600, 600, 3), 200, np.uint8)
    canvas[280:320, 280:320] = tiny  # a face ~15 px wide
    with pytest.raises(NoFaceError, match="No face"):
        edit(canvas, "happy")


@needs_shared
def test_turned_faces_are_edited_inside_their_region():
    for name in ("lisa1.jpg", "lisa2.jpg", "lisa3.jpg", "lisa4.jpg"):
        rgb = load_image(SHARED_FACES / "lisa" / name).rgb
        res = edit(rgb, "happy", 1.0, gate=False)
        assert len(res.faces) >= 1 and _changed_only_inside(res, rgb), name


@pytest.mark.parametrize("intensity", [0.0, 1e-9, 1.5])
def test_extreme_intensities(portrait, intensity):
    res = edit(portrait, "fearful", intensity, gate=False)
    assert res.image.shape == portrait.shape
    if intensity == 0:
        assert np.array_equal(res.image, portrait)


@pytest.mark.parametrize("bad", [float("inf"), -0.1, "lots", None])
def test_bad_intensity_values_are_one_line_errors(portrait, bad):
    with pytest.raises(MienError) as e:
        edit(portrait, "happy", bad)
    assert "\n" not in str(e.value)
