"""The held-out judge (PyEmotion's FER2013 network, ported to ONNX): the port, and its reading of
real photos. It is for evaluation only and must stay out of the gate."""
from pathlib import Path

import numpy as np

from pipeline.classify import EMOTIONS, PyEmotionJudge, default_classifier, judge
from pipeline.datasets import london_ids, london_photo

from .conftest import PEOPLE, first_face, load_script, london

ROOT = Path(__file__).resolve().parents[1]

def test_onnx_port_matches_an_independent_numpy_forward_pass():
    """cv2.dnn running the ONNX graph vs a numpy reflection-pad/im2col implementation of the same
    network, on the weights read back from the graph's initialisers, on real face crops."""
    port = load_script("port_pyemotion")
    weights = port.weights_from_onnx(ROOT / "weights" / "emotion_pyemotion.onnx")
    crops = np.concatenate([PyEmotionJudge.crops(*first_face(london(pid, kind)))
                            for pid in PEOPLE for kind in ("neutral", "happy")])
    x = PyEmotionJudge.normalise(crops)
    ours, ref = judge().forward(x), port.forward_numpy(weights, x)
    assert ours.shape == (10, 7)
    # The porter measured 4.6e-6 for cv2.dnn vs PyEmotion's torch network on 136 London crops.
    assert np.abs(ours - ref).max() < 1e-4
    assert (ours.argmax(1) == ref.argmax(1)).all()
    assert ours.std() > 0.05  # not a constant output


def test_real_smiles_read_happy_and_neutral_faces_read_neutral():
    """All 68 London pairs when ../shared is present (measured: 46/68 smiles read happy, 51/68
    neutral faces read neutral; mean normalised happy score 0.68 vs 0.02), else the 5 copies here."""
    ids = london_ids() or list(PEOPLE)
    top, happy_p = {}, {}
    for pid in ids:
        for kind in ("neutral", "happy"):
            path = london_photo(pid, kind) if london_ids() else london(pid, kind)
            p = judge().predict(*first_face(path))[0]
            assert tuple(p) == EMOTIONS and abs(sum(p.values()) - 1) < 1e-6
            top[pid, kind], happy_p[pid, kind] = max(p, key=p.get), p["happy"]
    happy = np.mean([top[p, "happy"] == "happy" for p in ids])
    neutral = np.mean([top[p, "neutral"] == "neutral" for p in ids])
    assert happy >= 0.6 and neutral >= 0.65, (happy, neutral)
    gap = np.mean([happy_p[p, "happy"] for p in ids]) - np.mean([happy_p[p, "neutral"] for p in ids])
    assert gap > 0.5, gap


def test_judge_is_held_out_of_the_gate():
    assert all(not isinstance(m, PyEmotionJudge) for m, _ in default_classifier().members)
    assert judge() is judge()
    rgb, faces = first_face(london("001", "happy"))
    assert judge().predict(rgb, []) == []
