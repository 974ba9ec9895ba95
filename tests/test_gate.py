"""The gate on real photos: it rejects edits that miss the target (with a reason) and accepts good ones."""
import numpy as np
import pytest

from pipeline import detect, edit
from pipeline import gate

from .conftest import london


@pytest.fixture(scope="module")
def face001():
    return detect(london("001"))


def test_thresholds_are_calibrated_on_real_neutral_faces():
    th = gate.thresholds()
    assert set(th) == {"neutral", "happy", "sad", "angry", "fearful", "disgusted", "surprised"}
    assert all(gate.MIN_PROB <= v < 1 for v in th.values())


def test_a_deliberately_wrong_edit_is_rejected_with_a_reason(face001):
    rgb, faces = face001
    res = edit(rgb, "surprised", 0.0, detections=faces)
    f = res.faces[0]
    assert f.verdict == "rejected" and not res.accepted
    assert "surprised" in f.reason and "needed" in f.reason
    assert np.array_equal(res.image, rgb)  # intensity 0 renders nothing, and the gate says so


def test_a_good_edit_is_accepted_with_scores(face001):
    rgb, faces = face001
    res = edit(rgb, "happy", 1.0, detections=faces)
    f = res.faces[0]
    assert f.verdict == "accepted" and f.reason == "accepted" and res.accepted
    assert f.probs_after["happy"] >= gate.thresholds()["happy"]
    assert f.probs_after["happy"] > f.probs_before["happy"] + 0.2
    assert f.identity is not None and f.identity > 0.952
    assert f.attempts in range(1, gate.MAX_ATTEMPTS + 1)


def test_the_caller_can_ask_for_the_ungated_result(face001):
    rgb, faces = face001
    res = edit(rgb, "happy", 1.0, detections=faces, gate=False)
    assert res.faces[0].verdict is None and res.faces[0].probs_after is None
    fast = edit(rgb, "happy", 1.0, detections=faces, gate="emotion")
    assert fast.faces[0].verdict == "accepted" and fast.faces[0].identity is None


def test_contempt_is_checked_geometrically(face001):
    rgb, faces = face001
    smirk = edit(rgb, "contempt", 1.0, detections=faces, gate=False).image
    smile = edit(rgb, "happy", 1.0, detections=faces, gate=False).image
    assert gate.contempt_score(rgb, smirk, faces[0]) >= gate.CONTEMPT_MIN
    assert gate.contempt_score(rgb, smile, faces[0]) < gate.CONTEMPT_MIN  # both corners up is not contempt
    res = edit(rgb, "contempt", 1.0, detections=faces)
    assert res.faces[0].verdict == "accepted"


def test_a_missed_emotion_is_retried_stronger_and_identity_loss_gentler():
    miss = gate.Check(False, "x", {}, 0.1, 0.99, True)
    assert gate.next_intensity(1.0, miss, 1.5) == pytest.approx(1.35)
    assert gate.next_intensity(1.5, miss, 1.5) is None  # nothing stronger left to try
    lost = gate.Check(False, "x", {}, 0.9, 0.90, False)
    assert gate.next_intensity(1.0, lost, 1.5) == pytest.approx(0.75)


def test_retries_are_bounded_and_the_best_attempt_is_returned_marked(face001):
    rgb, faces = face001
    # A faint anger (0.1, retried at 0.225 and 0.38) still reads neutral: the gate says no.
    res = edit(rgb, "angry", 0.1, detections=faces)
    f = res.faces[0]
    assert f.verdict == "rejected" and f.attempts == gate.MAX_ATTEMPTS
    assert "classifier saw 'neutral'" in f.reason and "'angry' 0.0" in f.reason and "needed" in f.reason
    assert not np.array_equal(res.image, rgb), "the best attempt is still returned, marked"


def test_a_retry_moves_the_au_mix_away_from_the_emotion_seen_instead():
    from pipeline.engines.geometric import contrast
    from pipeline.engines.geometric.expression import RECIPES

    # Fear mistaken for surprise: more of fear's stretched lips and knit brows, less dropped jaw.
    extra = contrast("fearful", {"surprised": 0.6, "fearful": 0.3, "neutral": 0.1}, 1.2)
    assert extra["AU20"] > 0 and extra["AU4"] > 0 and extra["AU26"] < 0 and extra["AU2"] < 0
    assert all(RECIPES["fearful"][a] * 1.2 + v >= 0 for a, v in extra.items())  # never below zero
    # Seen as neutral: nothing to move away from (the retry is just stronger); contempt: geometric.
    assert contrast("angry", {"neutral": 0.9, "angry": 0.1}, 1.0) == {}
    assert contrast("contempt", {"happy": 0.9}, 1.0) == {}
