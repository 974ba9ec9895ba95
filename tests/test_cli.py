"""The installed command, run as a user would: from a folder outside the checkout."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import london

VENV_BIN = Path(sys.executable).parent


def mien(*args, cwd):
    exe = shutil.which("mien", path=str(VENV_BIN))
    cmd = [exe] if exe else [sys.executable, "-m", "pipeline"]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # the installed package, not the tree
    return subprocess.run([*cmd, *args], cwd=cwd, capture_output=True, text=True, env=env, timeout=120)


@pytest.mark.skipif(shutil.which("mien", path=str(VENV_BIN)) is None and not os.environ.get("CI"),
                    reason="the mien console script is installed by `make` (pip install -e .)")
def test_mien_edit_works_from_any_folder_and_prints_no_runtime_noise(tmp_path):
    photo = shutil.copy(london("001"), tmp_path / "me.jpg")
    r = mien("edit", str(photo), "--emotion", "happy", "--out", "x.png", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "x.png").stat().st_size > 10_000
    assert r.stdout.startswith("x.png: happy at 1 on 1 of 1 face(s)")
    assert "INFO" not in r.stderr and "XNNPACK" not in r.stderr, r.stderr  # LiteRT's banner is silenced


def test_a_rejected_face_is_explained_on_the_command_line(tmp_path):
    r = mien("edit", str(london("001")), "--emotion", "happy", "--intensity", "0.1", "--out", "y.png",
             cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "face 0: rejected: The smile is not clear enough at 10%. Try " in r.stdout


def test_unknown_backend_is_refused_by_the_parser(tmp_path):
    r = mien("edit", str(london("001")), "--detector", "nope", "--out", "z.png", cwd=tmp_path)
    assert r.returncode == 2 and "invalid choice: 'nope'" in r.stderr


def test_mien_edit_with_the_insightface_detector(tmp_path):
    from pipeline.config import settings

    if not (settings().weights / "insightface" / "scrfd.onnx").is_file():
        if os.environ.get("CI"):
            pytest.fail("weights/insightface/scrfd.onnx missing: `make models` should have fetched it")
        pytest.skip("SCRFD model not fetched (make models)")
    r = mien("edit", str(london("001")), "--emotion", "surprised", "--detector", "insightface", "--out", "y.png",
             "--json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert '"faces_detected": 1' in r.stdout and (tmp_path / "y.png").is_file()
