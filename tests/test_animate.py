"""Eased animations (pipeline.animate) on real photos: smooth steps, a still background, GIF/MP4."""
import cv2
import numpy as np
import pytest
from PIL import Image

from pipeline import animate
from pipeline.__main__ import main
from pipeline.editor import detect
from pipeline.engines.geometric import warp
from pipeline.errors import InvalidRequest

from .conftest import london

N = 12


@pytest.fixture(scope="module")
def clip():
    return animate.frames(london("021"), "happy", 1.0, N)


def outside_face(frame: np.ndarray) -> np.ndarray:
    """Mask of the pixels outside the face's warp region (the engine never touches them)."""
    _, faces = detect(frame)
    r = warp.region_for(faces[0].landmarks, frame.shape[:2])
    m = np.ones(frame.shape[:2], bool)
    m[r.y0:r.y1, r.x0:r.x1] = False
    return m


def steps(frames) -> np.ndarray:
    f = np.stack(frames).astype(np.int16)
    return np.abs(np.diff(f, axis=0)).mean(axis=(1, 2, 3))


def test_frames_start_at_the_photo_capped_at_720(clip):
    src = cv2.cvtColor(cv2.imread(str(london("021"))), cv2.COLOR_BGR2RGB)
    assert max(src.shape[:2]) > 720 and len(clip) == N
    assert max(clip[0].shape[:2]) == 720 and clip[0].shape[:2] == (720, 720)  # square in, square out
    assert np.array_equal(clip[0], animate.fit_size(src))


def test_steps_are_eased_without_jumps_or_stalls(clip):
    s = steps(clip)
    assert s.min() > 0  # never stalls (the engine's fold-free cap is where the ease ends)
    assert s.max() <= 3 * np.median(s)
    mid = len(s) // 2
    assert s[0] < 0.5 * s[mid - 1:mid + 2].max() and s[-1] < 0.5 * s[mid - 1:mid + 2].max()


def test_background_is_identical_in_every_frame(clip):
    out = outside_face(clip[0])
    assert out.mean() > 0.5
    for f in clip[1:]:
        assert np.array_equal(f[out], clip[0][out])


def test_gif_keeps_the_background_still_and_holds_the_end(clip, tmp_path):
    path = animate.save(clip, tmp_path / "a.gif", fps=10)
    im = Image.open(path)
    assert im.n_frames == N
    decoded, durations = [], []
    for k in range(im.n_frames):
        im.seek(k)
        decoded.append(np.array(im.convert("RGB")))
        durations.append(im.info["duration"])
    assert durations[0] == 100 and durations[-1] == 100 * animate.HOLD
    out = outside_face(clip[0])
    assert all(np.array_equal(d[out], decoded[0][out]) for d in decoded)  # no palette shimmer
    assert np.abs(decoded[-1].astype(int) - clip[-1]).mean() < 3  # quantised, close to the frame


def test_mp4_has_every_frame(clip, tmp_path):
    path = animate.save(clip, tmp_path / "a.mp4", fps=12)
    cap = cv2.VideoCapture(str(path))
    n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    cap.release()
    assert n == N + animate.HOLD - 1


def test_bad_requests_are_one_line_errors(clip, tmp_path):
    with pytest.raises(InvalidRequest, match="gif or .mp4"):
        animate.save(clip, tmp_path / "a.png")
    with pytest.raises(InvalidRequest, match="2 to 120 frames"):
        animate.frames(london("021"), "happy", 1.0, 1)


def test_cli_animate_towards_a_reference(tmp_path, capsys):
    out = tmp_path / "copy.gif"
    assert main(["animate", str(london("001")), "--reference", str(london("025", "happy")), "--frames", "6",
                 "--max-side", "360", "--out", str(out)]) == 0
    im = Image.open(out)
    assert im.n_frames == 6 and max(im.size) == 360
    assert capsys.readouterr().out.strip() == str(out)
