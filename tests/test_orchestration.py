"""edit()'s orchestration with fake backends and a fake engine: milliseconds, no model. Real-model
behaviour is tested elsewhere (test_gate, test_editor); these pin down the seam itself: backends
chosen by name, caches tagged by the model that made them, the gate loop asking the engine for
its next request, the shared paste, one-line errors."""
import numpy as np
import pytest

from pipeline import InvalidRequest, edit, registry
from pipeline.engines import ENGINES, Rendered, RenderRequest, get_engine
from pipeline.types import Face

H, W = 64, 80


class FakeDetector:
    def detect(self, rgb):
        return [Face(box=(40, 10, 70, 50), score=0.9, keypoints=np.zeros((6, 2))),
                Face(box=(5, 10, 35, 50), score=0.9, keypoints=np.zeros((6, 2)))]


class FakeLandmarker:
    def landmarks(self, rgb, face):
        x0, y0, x1, y1 = face.box
        return np.tile(np.array([(x0 + x1) / 2, (y0 + y1) / 2, 0], np.float32), (468, 1))


class FakeClassifier:
    """Reads the mean red value of the face box: > 150 = the target."""
    labels = ("neutral", "happy", "sad", "angry", "fearful", "disgusted", "surprised")
    calls = 0

    def predict(self, rgb, faces):
        FakeClassifier.calls += 1
        out = []
        for f in faces:
            x0, y0, x1, y1 = (int(v) for v in f.box)
            red = rgb[y0:y1, x0:x1, 0].mean()
            p = {k: 0.0 for k in self.labels}
            p["happy" if red > 150 else "neutral"] = 1.0
            out.append(p)
        return out


class FakeEmbedder:
    dim, threshold = 2, 0.5
    calls = 0

    def embed(self, rgb, faces):
        FakeEmbedder.calls += 1
        return np.array([[1.0, 0.0]] * len(faces), np.float32)


class FakeEngine:
    """Paints the face box red with value 100 + 100 * intensity (so >= 0.51 reads 'happy')."""
    name = "fake"

    def render(self, image, base, face, request):
        x0, y0, x1, y1 = (int(v) for v in face.box)
        px = np.zeros((y1 - y0, x1 - x0, 3), np.uint8)
        px[..., 0] = min(255, int(100 + 100 * request.intensity))
        mask = np.ones(px.shape[:2], bool)
        return Rendered(request, (x0, y0, x1, y1), px, mask, face.landmarks, {"AU12": request.intensity}, {},
                        self.name)

    def next_request(self, last, check):
        return last.next(intensity=min(1.5, last.intensity + 0.3)) if last.intensity < 1.5 else None


@pytest.fixture(autouse=True)
def fakes():
    registry.register("detector", "fake", FakeDetector)
    registry.register("landmarker", "fake", FakeLandmarker)
    registry.register("classifier", "fake", FakeClassifier)
    registry.register("embedder", "fake", FakeEmbedder)
    registry.register("embedder", "fake2", FakeEmbedder)
    ENGINES["fake"] = "tests.test_orchestration:FakeEngine"
    yield
    for kind in ("detector", "landmarker", "classifier", "embedder"):
        registry.BACKENDS[kind].pop("fake", None)
    registry.BACKENDS["embedder"].pop("fake2", None)
    ENGINES.pop("fake", None)


def run(intensity=1.0, **kw):
    img = np.full((H, W, 3), 30, np.uint8)
    opts = dict(engine="fake", detector="fake", landmarker="fake", classifier="fake", embedder="fake")
    return img, edit(img, "happy", intensity, **{**opts, **kw})


def test_backends_are_chosen_by_name_and_faces_numbered_left_to_right():
    img, res = run()
    assert res.faces_detected == 2 and [f.box[0] for f in res.faces] == [5, 40]
    assert all(f.engine == "fake" and f.verdict == "accepted" for f in res.faces)
    assert res.image[30, 20, 0] == 200 and res.image[30, 50, 0] == 200 and res.image[5, 5, 0] == 30


def test_the_gate_judges_the_requested_intensity_and_probes_only_for_advice():
    img, res = run(0.3)
    f = res.faces[0]
    assert f.verdict == "rejected" and f.intensity == f.requested_intensity == 0.3 and f.attempts == 1
    assert res.image[30, 20, 0] == 130  # the requested edit is what comes back
    assert f.reason == "The smile is not clear enough at 30%." and f.advice == "Try 70% or more."


def test_auto_strength_asks_the_engine_for_its_next_request():
    img, res = run(0.3, auto_strength=True)
    f = res.faces[0]
    assert f.verdict == "accepted" and f.attempts == 2 and f.intensity == pytest.approx(0.6) and f.strengthened
    assert res.image[30, 20, 0] == 160


def test_rejected_faces_can_be_left_unchanged():
    img, res = run(0.3, leave_rejected=True)
    assert all(f.left_unchanged for f in res.faces) and np.array_equal(res.image, img)


def test_face_caches_are_tagged_with_the_model_that_made_them():
    img = np.full((H, W, 3), 30, np.uint8)
    opts = dict(engine="fake", detector="fake", landmarker="fake", classifier="fake")
    faces = [Face(box=(40, 10, 70, 50), score=0.9, keypoints=np.zeros((6, 2)),
                  landmarks=FakeLandmarker().landmarks(img, Face((40, 10, 70, 50), 1, None)))]
    FakeEmbedder.calls = 0
    edit(img, "happy", 1.0, detections=faces, embedder="fake", **opts)
    assert faces[0].embedding_by == "fake" and faces[0].emotion_probs_by == "fake"
    n = FakeEmbedder.calls
    edit(img, "happy", 1.0, detections=faces, embedder="fake", **opts)
    assert FakeEmbedder.calls == n + 1  # the source embedding is reused; only the edit is embedded
    edit(img, "happy", 1.0, detections=faces, embedder="fake2", **opts)
    assert faces[0].embedding_by == "fake2" and FakeEmbedder.calls == n + 3  # another model: recomputed


def test_unknown_names_are_one_line_errors():
    with pytest.raises(InvalidRequest, match="Unknown detector 'nope'. Available: blazeface, insightface"):
        run(detector="nope")
    with pytest.raises(InvalidRequest, match="Unknown engine 'nope'. Available: geometric, diffusion"):
        run(engine="nope")
    with pytest.raises(InvalidRequest, match="Unknown embedder"):
        registry.get("embedder", "nope")


def test_the_render_request_keeps_the_users_aus_and_adds_a_retrys_adjustment():
    r = RenderRequest("happy", 0.5, {"AU6": 0.2})
    assert r.action_units() == {"AU6": 0.2}
    n = r.next(adjust={"AU6": 0.1, "AU12": 0.3})
    assert n.attempt == 2 and n.action_units() == pytest.approx({"AU6": 0.3, "AU12": 0.3})


def test_the_geometric_engine_is_the_default():
    assert get_engine().name == "geometric"
