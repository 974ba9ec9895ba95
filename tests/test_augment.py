"""Dataset augmentation (pipeline.augment) on real London photos: labels, resume, balance, workers,
Ray (skipped when ray is not installed)."""
import csv
import importlib.util
import json
import shutil
from collections import Counter

import numpy as np
import pytest
from PIL import Image

from pipeline.__main__ import main
from pipeline.augment import augment, plan
from pipeline.errors import InvalidRequest

from .conftest import london


@pytest.fixture
def photos(tmp_path):
    d = tmp_path / "in"
    (d / "sub").mkdir(parents=True)
    shutil.copy(london("001"), d / "001.jpg")
    shutil.copy(london("021"), d / "sub" / "021.jpg")
    Image.new("RGB", (200, 200), (120, 120, 120)).save(d / "blank.png")  # no face in it
    (d / "broken.jpg").write_bytes(b"\xff\xd8\xff not really a jpeg")
    return d


def rows(out_dir):
    with open(out_dir / "labels.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_labels_and_resume(photos, tmp_path):
    out = tmp_path / "out"
    r = augment(photos, out, ["happy", "sad"], [1.0], workers=1, progress=False)
    assert r["photos"] == 4 and r["edits"] == 8 and r["images_written"] == 4
    got = rows(out)
    assert list(got[0]) == ["output", "source", "face", "emotion", "intensity", "verdict", "identity", "p_target",
                            "scores"]
    faces = [x for x in got if x["verdict"] not in ("no face", "error")]
    broken = [x for x in got if x["source"] == "broken.jpg"]
    assert [x["verdict"] for x in broken] == ["error", "error"] and broken[0]["scores"]
    assert {x["source"] for x in faces} == {"001.jpg", "sub/021.jpg"}
    assert [x["verdict"] for x in got if x["source"] == "blank.png"] == ["no face", "no face"]
    for x in faces:
        img = Image.open(out / x["output"])
        assert img.size == Image.open(photos / x["source"]).size
        assert x["verdict"] in ("accepted", "rejected")
        assert float(x["p_target"]) == json.loads(x["scores"])[x["emotion"]]
    # The scores mean something: each emotion's edits score higher for it than the other's edits.
    def mean_score(edited, read):
        return np.mean([json.loads(x["scores"])[read] for x in faces if x["emotion"] == edited])

    assert mean_score("happy", "happy") > mean_score("sad", "happy") + 0.3
    assert mean_score("sad", "sad") > mean_score("happy", "sad") + 0.3
    again = augment(photos, out, ["happy", "sad"], [1.0, 0.5], workers=1, progress=False)
    assert again["skipped"] == 8 and again["edits"] == 8  # only the new intensity is made
    assert len(rows(out)) == 16 and len({(x["source"], x["emotion"], x["intensity"]) for x in rows(out)}) == 16


def test_two_workers_write_the_same_images(photos, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    augment(photos, a, ["surprised"], [1.0], workers=1, gate="off", progress=False)
    r = augment(photos, b, ["surprised"], [1.0], workers=2, gate="off", progress=False)
    assert r["workers"] == 2 and r["images_written"] == 2
    for x in rows(a):
        if x["output"]:
            assert (a / x["output"]).read_bytes() == (b / x["output"]).read_bytes()
    assert {x["verdict"] for x in rows(b) if x["output"]} == {"ungated"}


def test_balance_fills_what_an_existing_folder_lacks(photos, tmp_path):
    existing = tmp_path / "existing.csv"
    existing.write_text("file,label\n" + "".join(f"x{i}.jpg,{e}\n" for i, e in
                                                 enumerate(["happy"] * 3 + ["sad"] + ["angry"] * 2)))
    srcs = ["a.jpg", "b.jpg"]
    assert plan(srcs, ["happy", "sad", "angry"], [1.0, 0.5], Counter(happy=3, sad=1, angry=2)) == [
        ("a.jpg", "sad", 1.0), ("b.jpg", "sad", 1.0), ("a.jpg", "angry", 1.0)]
    out = tmp_path / "out"
    r = augment(photos, out, ["happy", "sad", "angry"], [1.0], workers=1, gate="off", balance=existing,
                progress=False)
    made = Counter(x["emotion"] for x in rows(out))
    assert made == Counter(sad=2, angry=1) and r["planned"] == 3


def test_bad_requests(photos, tmp_path):
    with pytest.raises(InvalidRequest, match="not a folder"):
        augment(tmp_path / "nope", tmp_path / "o")
    with pytest.raises(InvalidRequest, match="Unknown emotion"):
        augment(photos, tmp_path / "o", ["glee"])
    assert main(["augment", str(photos), str(tmp_path / "o"), "--intensities", "x"]) == 1


def test_cli_augment(photos, tmp_path, capsys):
    out = tmp_path / "cli"
    assert main(["augment", str(photos), str(out), "--emotions", "happy", "--gate", "off", "--workers", "1",
                 "--format", "png"]) == 0
    r = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert r["images_written"] == 2 and all(x["output"].endswith(".png") for x in rows(out) if x["output"])


@pytest.fixture
def ray_local():
    import ray

    yield
    ray.shutdown()  # do not leave a Ray instance running for the rest of the suite


@pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="ray is not installed")
def test_ray_local_mode_matches_local(photos, tmp_path, ray_local):
    a, b = tmp_path / "a", tmp_path / "b"
    augment(photos, a, ["angry"], [1.0], workers=1, gate="off", progress=False)
    r = augment(photos, b, ["angry"], [1.0], workers=1, gate="off", engine="ray", progress=False)
    assert r["engine"] == "ray" and r["images_written"] == 2
    assert sorted(map(dict, rows(a)), key=str) == sorted(map(dict, rows(b)), key=str)
    for x in rows(a):
        if x["output"]:
            assert (a / x["output"]).read_bytes() == (b / x["output"]).read_bytes()
