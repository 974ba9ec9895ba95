"""The offline editor end to end on real photos: detection, AU motion, pixels, intensity, CLI.

Motion is checked on the *output image*: its landmarks are detected afresh and compared with the
input's, so a test passes only if the rendered pixels show the expression, not just the plan."""
import json
import subprocess
import sys

import cv2
import numpy as np
import pytest

from pipeline import EMOTIONS, InvalidRequest, NoFaceError, detect
from pipeline import edit as gated_edit
from pipeline.detection import detect_faces
from pipeline.engines.geometric.expression import measures
from pipeline.mesh import EYE_L, EYE_R
from pipeline.motion import observed_motion

from .conftest import PEOPLE, london


def edit(*args, **kwargs):
    """These tests are about rendering: ungated, so no retry changes the intensity asked for."""
    return gated_edit(*args, gate=kwargs.pop("gate", False), **kwargs)


def _measures(rgb):
    faces = detect_faces(rgb)
    assert len(faces) == 1
    return measures(faces[0].landmarks)


@pytest.fixture(scope="module")
def neutral():
    rgb, faces = detect(london("001"))
    return rgb, faces


def test_finds_every_face_on_t1(t1_path):
    rgb, faces = detect(t1_path)
    assert len(faces) == 6
    xs = [(f.box[0] + f.box[2]) / 2 for f in faces]
    assert xs == sorted(xs), "faces are numbered left to right"


@pytest.mark.parametrize("face_id", PEOPLE)
def test_finds_one_face_with_mesh_on_each_portrait(face_id):
    rgb, faces = detect(london(face_id))
    assert len(faces) == 1 and faces[0].landmarks.shape == (468, 3)


# What each emotion must do, as (measure, direction, minimum change in the plan, minimum change seen
# by re-detecting the output). IOD units. The second column is smaller: the face mesh follows
# unusual shapes only partly (it regresses towards typical faces); None where it cannot see the
# change at all, which `motion` (optical flow) then checks instead.
EXPECTED = {
    "happy": [("corner_lift", +1, 0.07, 0.02)],
    "sad": [("corner_lift", -1, 0.06, 0.003), ("inner_brow_height", +1, 0.06, 0.012)],
    "surprised": [("inner_brow_height", +1, 0.08, 0.02), ("outer_brow_height", +1, 0.06, 0.018),
                  ("lip_gap", +1, 0.08, 0.06), ("eye_open", +1, 0.03, None)],
    # fear's lips only part now (no grin): the re-detected mesh hardly follows the sideways stretch
    # of barely parted lips (005: planned +0.32 IOD, seen +0.004)
    "fearful": [("inner_brow_height", +1, 0.02, 0.007), ("mouth_width", +1, 0.1, None), ("lip_gap", +1, 0.02, 0.008)],
    "angry": [("inner_brow_height", -1, 0.1, 0.008), ("brow_gap", -1, 0.05, None)],
    "disgusted": [("upper_lip_raise", +1, 0.02, 0.006), ("inner_brow_height", -1, 0.04, 0.01)],
    "contempt": [("corner_asymmetry", +1, 0.1, None)],
}


@pytest.mark.parametrize("emotion", sorted(EXPECTED))
@pytest.mark.parametrize("face_id", ["001", "005"])
def test_landmarks_move_as_the_action_units_say(face_id, emotion):
    rgb, faces = detect(london(face_id))
    before = measures(faces[0].landmarks)
    res = edit(rgb, emotion, 1.0, detections=faces)
    planned = measures(res.faces[0].landmarks_after)
    seen = _measures(res.image)
    for key, sign, plan_min, seen_min in EXPECTED[emotion]:
        change = (planned[key] - before[key]) * sign
        assert change >= plan_min, f"{emotion}: planned {key} {sign * change:+.3f}, expected {sign * plan_min:+.3f}"
        if seen_min is not None:
            change = (seen[key] - before[key]) * sign
            assert change >= seen_min, f"{emotion}: output {key} {sign * change:+.3f}, expected {sign * seen_min:+.3f}"


def _iod(lm):
    return float(np.linalg.norm(lm[263, :2] - lm[33, :2]) * 0.75)  # eye centres are ~3/4 of the corners' span


# Points whose surroundings have texture enough for optical flow (brows, lids, corners).
BROWS_LIDS = [105, 334, 55, 285, 159, 386]
CORNERS = [61, 291]


@pytest.mark.parametrize("emotion", ["happy", "sad", "angry", "surprised", "fearful", "disgusted", "contempt"])
def test_pixels_move_where_the_plan_says(emotion):
    """Optical flow between input and output agrees with the planned landmark motion: the image
    really shows the expression. (Flow is unreliable next to the mouth when it opens or the lower
    lip rolls up, so corners are checked only for anger and contempt; the others by re-detection.)"""
    rgb, faces = detect(london("005"))
    res = edit(rgb, emotion, 1.0, detections=faces)
    f = res.faces[0]
    pts = BROWS_LIDS + (CORNERS if emotion in ("angry", "contempt") else [])
    planned = (f.landmarks_after - f.landmarks_before)[pts, :2]
    seen = observed_motion(rgb, res.image, f.landmarks_before[pts], faces[0].box)
    err = np.linalg.norm(seen - planned, axis=1)
    # Lowered brows bunch the skin at their heads (55, 285), and Farneback's 21 px window reads less
    # of the move there: 005's anger plans 21-23 px and is read 10.7 px short, and 12.1 px once a
    # dark spike on the lid below was gone (the warp's map at the brow heads unchanged to 0.2 px).
    share = np.where(np.isin(pts, (55, 285)), 0.55, 0.45)
    assert np.all(err <= share * np.linalg.norm(planned, axis=1) + 2.0), list(zip(pts, planned.round(1), seen.round(1)))


@pytest.mark.parametrize("face_id", ["001", "005", "021"])
def test_contempt_raises_one_corner_in_the_pixels(face_id):
    rgb, faces = detect(london(face_id))
    lm = faces[0].landmarks
    res = edit(rgb, "contempt", 1.0, detections=faces)
    left, right = observed_motion(rgb, res.image, lm[CORNERS], faces[0].box)
    assert right[1] < -0.06 * _iod(lm), f"the subject's left corner (image right) must rise; moved {right}"
    assert abs(left[1]) < 0.5 * abs(right[1]), f"the other corner must stay; moved {left} vs {right}"


def test_happy_photo_can_become_sad_and_neutral():
    rgb, faces = detect(london("025", "happy"))  # a broad smile with teeth
    before = measures(faces[0].landmarks)
    for emotion, drop in (("sad", 0.06), ("neutral", 0.04)):
        res = edit(rgb, emotion, 1.0, detections=faces)
        assert res.faces[0].aus_removed.get("AU12", 0) > 0.5, "the smile is read and taken away"
        after = _measures(res.image)
        assert after["corner_lift"] < before["corner_lift"] - drop, (emotion, before["corner_lift"], after["corner_lift"])
        assert after["lip_gap"] < before["lip_gap"] - 0.05, "the lips close over the teeth"


def test_output_is_full_size_and_unchanged_outside_the_edited_region(neutral):
    rgb, faces = neutral
    res = edit(rgb, "surprised", 1.0, detections=faces)
    assert res.image.shape == rgb.shape and res.image.dtype == np.uint8
    x0, y0, x1, y1 = res.faces[0].region
    outside = np.ones(rgb.shape[:2], bool)
    outside[y0:y1, x0:x1] = False
    assert np.array_equal(res.image[outside], rgb[outside])
    inside = np.abs(res.image[y0:y1, x0:x1].astype(int) - rgb[y0:y1, x0:x1]).max(-1)
    assert (inside > 8).mean() > 0.02, "the face itself must change"
    # The edit fades out: the region's border rows and columns are (almost) untouched.
    border = np.concatenate([inside[0], inside[-1], inside[:, 0], inside[:, -1]])
    assert border.mean() < 0.5 and border.max() <= 6


def test_intensity_zero_returns_the_input_unchanged(neutral):
    rgb, faces = neutral
    for emo in EMOTIONS:
        assert np.array_equal(edit(rgb, emo, 0.0, detections=faces).image, rgb)


def test_intensity_scales_the_motion(neutral):
    rgb, faces = neutral
    lifts = [edit(rgb, "happy", k, detections=faces).faces[0] for k in (0.5, 1.0, 1.5)]
    d = [np.abs(f.landmarks_after - f.landmarks_before)[:, :2].max() for f in lifts]
    assert d[0] < d[1] < d[2]


def test_action_units_alone_and_on_top_of_a_preset(neutral):
    rgb, faces = neutral
    before = measures(faces[0].landmarks)
    # The face mesh does not see closed eyes well, so closure is read from the pixels: the dark iris,
    # pupil and lash pixels inside the open eyes are mostly covered by lid skin.
    closed = edit(rgb, "neutral", 1.0, aus={"eyes_closed": 1.0}, detections=faces).image
    eyes = np.zeros(rgb.shape[:2], np.uint8)
    for eye in (EYE_L, EYE_R):
        cv2.fillPoly(eyes, [np.round(faces[0].landmarks[eye, :2]).astype(np.int32)], 1)
    dark = [(cv2.cvtColor(im, cv2.COLOR_RGB2GRAY)[eyes > 0] < 80).mean() for im in (rgb, closed)]
    assert dark[1] < 0.65 * dark[0], dark  # measured 0.50 -> 0.29 on 001
    smile = _measures(edit(rgb, "neutral", 1.0, aus="AU12=1.0", detections=faces).image)
    assert smile["corner_lift"] > before["corner_lift"] + 0.015  # measured +0.026 on 001
    res = edit(rgb, "sad", 1.0, aus={12: 0.3, "AU5": 0.5}, detections=faces)
    assert res.faces[0].aus_applied["AU12"] == 0.3 and res.faces[0].aus_applied["AU15"] > 0


def test_only_the_chosen_face_changes_on_a_group_photo(t1_path):
    rgb, faces = detect(t1_path)
    res = edit(rgb, "happy", 1.0, faces="2", detections=faces)
    assert [f.index for f in res.faces] == [2]
    x0, y0, x1, y1 = res.faces[0].region
    changed = np.argwhere(np.any(res.image != rgb, -1))
    assert len(changed) > 100
    assert changed[:, 0].min() >= y0 and changed[:, 0].max() < y1
    assert changed[:, 1].min() >= x0 and changed[:, 1].max() < x1


def test_all_faces_on_a_group_photo_are_edited(t1_path):
    res = edit(t1_path, "surprised", 1.0)
    assert len(res.faces) == 6 and res.faces_detected == 6


@pytest.mark.parametrize("kwargs, words", [
    ({"emotion": "bored"}, "Unknown emotion"),
    ({"intensity": 2.0}, "between 0 and 1.5"),
    ({"intensity": float("nan")}, "between 0 and 1.5"),
    ({"aus": "AU99=1"}, "Unknown action unit"),
    ({"aus": "AU12"}, "NAME=VALUE"),
    ({"faces": "7"}, "does not exist"),
    ({"engine": "magic"}, "Unknown engine"),
])
def test_bad_requests_get_one_clear_message(neutral, kwargs, words):
    rgb, faces = neutral
    args = {"emotion": "happy", "intensity": 1.0, **kwargs}
    with pytest.raises(InvalidRequest, match=words):
        edit(rgb, detections=faces, **args)


def test_a_photo_without_a_face_is_refused_clearly():
    sky = np.full((256, 256, 3), (120, 170, 230), np.uint8)
    with pytest.raises(NoFaceError, match="No face"):
        edit(sky, "happy")


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "pipeline", *args], capture_output=True, text=True, timeout=120)


def test_cli_edits_and_prints_json(tmp_path):
    out = tmp_path / "out.png"
    r = _cli("edit", str(london("021")), "--emotion", "happy", "--intensity", "0.8", "--out", str(out),
             "--aus", "AU6=0.3", "--json")
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    assert summary["faces_detected"] == 1 and summary["faces"][0]["aus_applied"]["AU6"] > 0.3
    from PIL import Image

    with Image.open(out) as im:
        assert im.size == (768, 768)
        assert "Mien" in im.info.get("Description", "") + im.info.get("Software", "")


def test_cli_errors_are_one_line_with_nonzero_exit(tmp_path):
    r = _cli("edit", str(tmp_path / "missing.jpg"), "--out", str(tmp_path / "o.png"))
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and r.stderr.startswith("error:")
    r = _cli("edit", str(london("001")), "--emotion", "bored", "--out", str(tmp_path / "o.png"))
    assert r.returncode != 0 and "Unknown emotion" in r.stderr and "Traceback" not in r.stderr


def test_sheet_command_writes_a_picture(tmp_path):
    out = tmp_path / "sheet.png"
    r = _cli("sheet", str(london("025")), "--out", str(out), "--size", "96")
    assert r.returncode == 0, r.stderr
    img = cv2.imread(str(out))
    assert img.shape[1] == 96 * (1 + len(EMOTIONS))


@pytest.mark.parametrize("name, content", [
    ("notes.jpg", b"this is text, not a photo\n"),
    ("empty.png", b""),
    ("cut.jpg", None),  # a real JPEG cut in half
    ("photo.heic", b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic"),
])
def test_cli_bad_files_get_one_line_and_a_nonzero_exit(tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content if content is not None else london("001").read_bytes()[:20000])
    r = _cli("edit", str(path), "--out", str(tmp_path / "o.png"))
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and r.stderr.startswith("error: ")
    assert not (tmp_path / "o.png").exists()
