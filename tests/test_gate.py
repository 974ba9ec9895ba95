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
    assert f.reason == "The surprise is not clear enough at 0%."
    assert "'surprised'" in f.detail and "needed" in f.detail  # the technical reason is kept too
    assert np.array_equal(res.image, rgb)  # intensity 0 renders nothing, and the gate says so


def test_a_good_edit_is_accepted_with_scores(face001):
    rgb, faces = face001
    res = edit(rgb, "happy", 1.0, detections=faces)
    f = res.faces[0]
    assert f.verdict == "accepted" and f.reason == "accepted" and res.accepted
    assert f.probs_after["happy"] >= gate.thresholds()["happy"]
    assert f.probs_after["happy"] > f.probs_before["happy"] + 0.2
    assert f.identity is not None and f.identity >= f.identity_threshold
    assert f.attempts == 1 and f.intensity == 1.0 and f.advice is None


@pytest.mark.parametrize("person", ["001", "021"])
def test_a_smirk_from_a_smiling_photo_passes_the_contempt_check(person):
    """From a smile, the smirk lowers both corners (the smile goes), one far less: the check reads
    the difference (001: 0.128 IOD, 021: 0.151), where it read the other corner's fall against it
    (-0.141, -0.126: rejected). Taking a smile away evenly is no smirk."""
    rgb, faces = detect(london(person, "happy"))
    smirk = edit(rgb, "contempt", 1.0, detections=faces, gate=False).image
    assert gate.contempt_score(rgb, smirk, faces[0]) >= 2 * gate.CONTEMPT_MIN
    relaxed = edit(rgb, "neutral", 1.0, detections=faces, gate=False).image
    assert abs(gate.contempt_score(rgb, relaxed, faces[0])) < gate.CONTEMPT_MIN


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


def test_a_faint_edit_is_rejected_at_the_requested_intensity_with_measured_advice(face001):
    rgb, faces = face001
    res = edit(rgb, "happy", 0.1, detections=faces)
    f = res.faces[0]
    assert f.verdict == "rejected" and f.attempts == 1 and f.intensity == f.requested_intensity == 0.1
    assert f.reason == "The smile is not clear enough at 10%."
    assert "classifier saw 'neutral'" in f.detail and "needed" in f.detail
    assert not np.array_equal(res.image, rgb), "the rejected edit is still returned, marked"
    # The advice names an intensity that was measured to pass: asking for it is accepted.
    pct = int(f.advice.removeprefix("Try ").split("%")[0])
    again = edit(rgb, "happy", pct / 100, detections=faces).faces[0]
    assert again.verdict == "accepted" and again.intensity == pct / 100


def test_rejected_faces_can_be_left_unchanged(face001):
    rgb, faces = face001
    res = edit(rgb, "happy", 0.1, detections=faces, leave_rejected=True)
    assert res.faces[0].left_unchanged and res.faces[0].verdict == "rejected"
    assert np.array_equal(res.image, rgb)
    ok = edit(rgb, "happy", 1.0, detections=faces, leave_rejected=True)
    assert not ok.faces[0].left_unchanged and not np.array_equal(ok.image, rgb)


def test_auto_strength_may_change_the_intensity_and_says_so(face001):
    rgb, faces = face001
    f = edit(rgb, "happy", 0.3, detections=faces, auto_strength=True).faces[0]
    assert f.attempts > 1 and f.strengthened and f.intensity > f.requested_intensity == 0.3
    assert f.advice.startswith("Auto strength changed 30% to ")


LEVELS = (0.3, 0.6, 0.9, 1.2)


@pytest.mark.parametrize("emotion", ["happy", "sad", "angry", "fearful", "disgusted", "surprised"])
def test_the_applied_intensity_is_always_the_requested_one(face001, emotion):
    rgb, faces = face001
    for level in LEVELS:
        f = edit(rgb, emotion, level, detections=faces).faces[0]
        assert f.intensity == f.requested_intensity == level, (emotion, level, f.reason)
        assert not f.strengthened


def _displacement(f) -> float:
    return float(np.abs(f.landmarks_after - f.landmarks_before)[:, :2].sum())


# Probabilities are the gate's ensemble's; 0.05 is its noise between near-identical faces.
MONOTONE_CHECKED = ("happy", "sad", "angry", "fearful", "surprised")  # disgust is not monotone on 025 (README, Limits)
SATURATED = 0.8


@pytest.mark.parametrize("person", ["001", "021", "025"])
def test_a_stronger_request_never_gives_a_weaker_face(person):
    """Monotone in intensity, with the gate on, from 0.25 to 1.5: the landmark displacement never
    falls; the classifier's probability of the target never falls by more than its noise (0.05)
    unless it stays above SATURATED (a face that reads clearly at both levels); and once the
    emotion passes the gate it passes at every stronger level."""
    rgb, faces = detect(london(person))
    for emotion in MONOTONE_CHECKED:
        probs, moves, passed = [], [], []
        for level in (0.25, 0.5, 0.75, 1.0, 1.25, 1.5):
            f = edit(rgb, emotion, level, detections=faces).faces[0]
            probs.append(f.probs_after[emotion])
            moves.append(_displacement(f))
            passed.append(f.verdict == "accepted" or "no longer look like" in (f.reason or ""))
        assert all(b >= a - 0.05 or min(a, b) >= SATURATED for a, b in zip(probs, probs[1:])), (emotion, probs)
        assert all(b >= a for a, b in zip(moves, moves[1:])), (emotion, moves)
        assert passed == sorted(passed), (emotion, passed)  # never pass, then fail


def test_reasons_are_plain_words_with_advice():
    miss = gate.Check(False, "classifier saw 'neutral' 0.9", {"neutral": 0.9, "happy": 0.05}, 0.05, 0.99, True,
                      emotion_ok=False)
    assert gate.explain(miss, "happy", 0.3, 0.6) == ("The smile is not clear enough at 30%.", "Try 60% or more.")
    rival = gate.Check(False, "x", {"surprised": 0.6, "fearful": 0.35, "neutral": 0.05}, 0.35, 0.99, True,
                       emotion_ok=False)
    reason, advice = gate.explain(rival, "fearful", 1.0, None)
    assert reason == "At 100% the face reads more as surprise than fear."
    assert "strongest setting" in advice
    grin = gate.Check(False, "x", {"happy": 0.6, "sad": 0.3}, 0.3, 0.99, True, emotion_ok=False)
    assert gate.explain(grin, "sad", 1.0)[0] == "At 100% the face reads more as a smile than sadness."
    lost = gate.Check(False, "identity", {"happy": 0.9}, 0.9, 0.3, False, 0.465, emotion_ok=True)
    assert gate.explain(lost, "happy", 1.5, 1.1) == (
        "At 150% the face may no longer look like the same person.", "Try 110% or less.")


def test_a_retry_moves_the_au_mix_away_from_the_emotion_seen_instead():
    """With auto_strength: fear mistaken for surprise gets more of what fear uses more than
    surprise does, less of what they share; never an AU below zero."""
    from pipeline.engines.geometric import contrast
    from pipeline.engines.geometric.expression import RECIPES

    fear, surprise = RECIPES["fearful"], RECIPES["surprised"]
    extra = contrast("fearful", {"surprised": 0.6, "fearful": 0.3, "neutral": 0.1}, 1.2)
    assert set(extra) == set(fear)
    assert all((extra[a] > 0) == (w > surprise.get(a, 0.0)) for a, w in fear.items())
    assert all(fear[a] * 1.2 + v >= 0 for a, v in extra.items())  # never below zero
    # Seen as neutral: nothing to move away from (the retry is just stronger); contempt: geometric.
    assert contrast("angry", {"neutral": 0.9, "angry": 0.1}, 1.0) == {}
    assert contrast("contempt", {"happy": 0.9}, 1.0) == {}

class _Fixed:
    """A classifier that reads every face as the given probabilities (to pin one rule down)."""

    def __init__(self, **p):
        self.p = {e: 0.0 for e in gate.thresholds()} | p

    def predict(self, rgb, faces):
        return [dict(self.p) for _ in faces]


def test_neutral_is_judged_by_what_lingers_not_by_a_very_high_p_neutral(face001):
    """Real neutral faces often read only 0.6-0.8 neutral; what marks a face that kept its smile is
    the smile still read above what real neutral faces show. Real photos: the five test people's
    neutral photos pass as neutral, their smiles with teeth do not."""
    rgb, faces = face001
    ok = gate.check(rgb, rgb, faces[0], "neutral", identity=False, classifier=_Fixed(neutral=0.7, sad=0.2))
    assert ok.accepted  # the former rule (p(neutral) >= 0.82) rejected it
    kept = gate.check(rgb, rgb, faces[0], "neutral", identity=False, classifier=_Fixed(neutral=0.7, happy=0.3))
    assert not kept.accepted
    assert gate.explain(kept, "neutral", 0.5)[0] == "At 50% the face still shows some of the smile."
    for person in ("001", "005", "021", "025", "064"):
        im, f = detect(london(person, "neutral"))
        assert gate.check(im, im, f[0], "neutral", identity=False).accepted, person
    for person in ("001", "021", "025", "064"):
        im, f = detect(london(person, "happy"))
        assert not gate.check(im, im, f[0], "neutral", identity=False).accepted, person


class _Reads:
    """A classifier stand-in that reads every face as the given probabilities (the real ones are
    tested elsewhere; this pins the gate's rule, not a network's opinion)."""

    def __init__(self, probs):
        self.probs = probs

    def predict(self, rgb, faces):
        return [dict(self.probs) for _ in faces]


def test_an_edit_that_reads_as_another_emotion_is_rejected(face001):
    """'Accepted' means the gate's classifier reads the target most: sadness well over its
    threshold but trailing fear (lisa4: fearful 0.49, sad 0.30) was accepted before, as were 2 of
    34 tune-half disgust edits read angry. A tie, or the target on top, passes."""
    rgb, faces = face001
    need = gate.thresholds()["sad"]
    base = {e: 0.0 for e in gate.thresholds()}
    trailing = dict(base, sad=max(need, 0.3), fearful=max(need, 0.3) + 0.19)
    c = gate.check(rgb, rgb, faces[0], "sad", identity=False, classifier=_Reads(trailing))
    assert not c.accepted and "'fearful'" in c.reason
    reason, _ = gate.explain(c, "sad", 1.0)
    assert reason == "At 100% the face reads more as fear than sadness."
    for top in (dict(base, sad=0.5, fearful=0.5), dict(base, sad=0.6, fearful=0.4)):
        assert gate.check(rgb, rgb, faces[0], "sad", identity=False, classifier=_Reads(top)).emotion_ok


def test_advice_points_to_a_gentler_setting_when_only_that_reads(monkeypatch):
    """On some faces a stronger face reads less as the target (the motion only grows): 070's fear
    read at 100% and not at 125% (neutral 0.49, fearful 0.19) until fear's stretch was narrowed
    (2026-12-06); no test photo and no tune-half face does so now at 125% or 150% (scanned). The
    advice for such a rejected edit names the gentler setting that was measured to read, instead of
    "not even at the strongest setting". The renders and the gate at 100% or less are real (070's
    fear reads at 100%); stronger attempts are read as 070's 125% used to be, so the probes run
    as they did on that face. (005's disgust was the example before 070.)"""
    from pipeline import editor

    real = editor._judge
    missed = gate.Check(False, "x", {"neutral": 0.49, "fearful": 0.19}, 0.19, 0.99, True, emotion_ok=False)

    def judge(img, out, face, r, roi, *args):
        return missed if r.request.intensity > 1.0 + 1e-9 else real(img, out, face, r, roi, *args)

    monkeypatch.setattr(editor, "_judge", judge)
    rgb, faces = detect(london("070"))
    f = edit(rgb, "fearful", 1.25, detections=faces).faces[0]
    assert f.verdict == "rejected" and f.intensity == 1.25
    assert f.advice.startswith("On this face it reads as fear at 100%: try that"), f.advice
    assert edit(rgb, "fearful", 1.0, detections=faces).faces[0].verdict == "accepted"
    rival = gate.Check(False, "x", {"neutral": 0.6, "fearful": 0.2}, 0.2, 0.99, True, emotion_ok=False)
    assert gate.explain(rival, "fearful", 1.25, 1.0)[1].startswith("On this face it reads as fear at 100%")
