"""The held-out identity judge (HSE FaceRes, ported from Human's tfjs model to ONNX): the port, and
its reading of real photos. It is for evaluation only and must stay out of the gate."""
from pathlib import Path

import numpy as np

from pipeline.identity import default_embedder
from pipeline.identity_judge import FaceResJudge, crops, identity_judge, normalise

from .conftest import PEOPLE, first_face, load_script, london

ROOT = Path(__file__).resolve().parents[1]

def test_onnx_port_matches_an_independent_numpy_forward_pass():
    """cv2.dnn running the ONNX graph (built by walking the tfjs graph) vs a numpy MobileNet v1
    written from the layer structure, on the weights read back from the graph's initialisers, on a
    real face crop. The porter measured 3.9e-6 against the tfjs weights themselves."""
    port = load_script("port_human_embedder")
    weights = port.weights_from_onnx(ROOT / "weights" / "face_embedder_faceres.onnx")
    x = normalise(crops(*first_face(london("001", "happy"))))
    ours, ref = identity_judge().forward(x), port.forward_numpy(weights, x)
    assert ours.shape == ref.shape == (1, 1024)
    assert np.abs(ours - ref).max() < 1e-4 * max(1.0, ref.max())
    assert ref.std() > 0.1 and (ref > 0).mean() > 0.3  # a real feature vector, not a constant


def test_same_person_scores_above_every_stranger():
    """5 London people, neutral vs happy: every same-person pair above every different-person pair,
    and on the right sides of the threshold (calibrated on all 68: same min 0.789, strangers max 0.689)."""
    judge = identity_judge()
    emb = {(p, k): judge.embed(*first_face(london(p, k)))[0] for p in PEOPLE for k in ("neutral", "happy")}
    assert all(e.shape == (1024,) and abs(np.linalg.norm(e) - 1) < 1e-5 for e in emb.values())
    n = np.stack([emb[p, "neutral"] for p in PEOPLE])
    h = np.stack([emb[p, "happy"] for p in PEOPLE])
    sim = n @ h.T
    same, strangers = np.diag(sim), sim[~np.eye(len(PEOPLE), dtype=bool)]
    assert same.min() > strangers.max(), (same, strangers.max())
    assert (same >= judge.threshold).all() and (strangers < judge.threshold).all()


def test_judge_is_held_out_of_the_gate():
    assert not isinstance(default_embedder(), FaceResJudge)
    assert identity_judge().embed(np.zeros((10, 10, 3), np.uint8), []).shape == (0, 1024)
    gate_src = (ROOT / "pipeline" / "gate.py").read_text()
    assert "identity_judge" not in gate_src
