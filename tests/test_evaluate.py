"""`python -m pipeline evaluate` on the repo's real photos: the report, its numbers and the judges."""
from collections import Counter
from pathlib import Path

import pytest

from pipeline.__main__ import main
from pipeline.datasets import SHARED_FACES, london_groups, london_ids, london_split
from pipeline.errors import MienError
from pipeline.evaluate import READERS, gap_interval, rate_interval, run
from tests.conftest import needs_shared

DATA = Path(__file__).parent / "data" / "london"


def test_evaluate_edits_scores_and_writes_the_report(tmp_path):
    s = run(DATA, tmp_path, targets="happy,surprised,contempt", glob="*_neutral.jpg", limit=2)
    report = (tmp_path / "report.md").read_text()
    assert (tmp_path / "confusion.png").stat().st_size > 1000 and (tmp_path / "hit_rate.png").exists()
    assert set(s["hit_rate"]) == {"happy", "surprised", "contempt"}
    assert all(0 <= v <= 1 for v in s["hit_rate"].values())
    assert s["hit_rate"]["happy"] == 1.0  # two clear smiles on real photos
    assert s["psnr_bg_min"] > 45 and 0 <= s["identity_pass"] <= 1
    assert "| happy | 2 |" in report and "Every reader" in report
    assert "n/a (no class)" in report  # the judge has no contempt class and says so
    assert set(s["readers"]) == set(READERS) and "Split: **all**" in report
    assert all(0 <= v <= 1 for r in ("face-api", "mini-xception", "PyEmotion") for v in
               [s["readers"][r]["happy"], s["readers"][r]["surprised"]])


def test_no_edit_mode_scores_the_real_photos(tmp_path):
    s = run(DATA, tmp_path, no_edit=True, judges=False)
    # Real neutral photos read neutral; the mild real smiles less reliably (as measured on all 68).
    assert s["hit_rate"]["neutral"] >= 0.8 and s["hit_rate"]["happy"] >= 0.4
    assert "PyEmotion" in (tmp_path / "report.md").read_text()
    assert s["readers"]["PyEmotion"]["neutral"] != s["readers"]["PyEmotion"]["neutral"]  # nan: no judge ran


def test_cli_evaluate(tmp_path, capsys):
    assert main(["evaluate", "--images", str(DATA), "--glob", "*_neutral.jpg", "--out", str(tmp_path),
                 "--targets", "sad", "--limit", "1", "--no-judges"]) == 0
    assert "| sad | 1 |" in capsys.readouterr().out
    assert "| sad | 1 |" in (tmp_path / "report.md").read_text()


@needs_shared
def test_split_is_fixed_disjoint_and_stratified():
    tune, report = london_split("tune"), london_split("report")
    assert not set(tune) & set(report) and sorted(tune + report) == london_ids() == list(london_split("all"))
    assert abs(len(tune) - len(report)) <= 1 and len(london_ids()) == 68
    g = london_groups()
    ct, cr = Counter(g[i] for i in tune), Counter(g[i] for i in report)
    for group in ("black", "east_asian", "west_asian", "white"):  # every group in both halves, evenly
        assert ct[group] >= 3 and cr[group] >= 3 and abs(ct[group] - cr[group]) <= 1
    assert ("001" in report, "005" in tune) == (True, True)  # the halves never change (fixed seed)
    with pytest.raises(MienError):
        london_split("train")


@needs_shared
def test_evaluate_keeps_only_the_requested_half(tmp_path):
    s = run(DATA, tmp_path, targets="neutral", glob="*_happy.jpg", split="report", gate=False, judges=False,
            groups_csv=SHARED_FACES / "london" / "info.csv")
    report = (tmp_path / "report.md").read_text()
    assert "Split: **report**" in report and "2 photos" in report  # 001 and 025 of the five copies
    assert set(s["readers"]["ensemble"]) == {"neutral"}
    assert set(s["groups"]["ethnicity"]) == {"white", "black"}  # 001, 025; per-group rates from every reader
    assert set(s["groups"]["ethnicity"]["white"]) == set(READERS) and "## By ethnicity" in report
    # one person per group: no interval, and the gap says why it has none
    assert s["group_intervals"]["ethnicity"]["black"]["ensemble"] is None
    assert "Gap to white" in report and "| black | n/a (too few people) |" in report
    with pytest.raises(MienError):
        run(DATA, tmp_path, glob="*_nothing.jpg", split="tune", judges=False)


def _records(outcomes: dict[str, list[bool]], target: str = "sad") -> list[dict]:
    """Face-edits of people NNN, hit or missed by every reader."""
    return [{"photo": f"{pid}_neutral", "target": target, "recognised": target if hit else "neutral",
             "members": {"face-api": "neutral", "mini-xception": "neutral"}, "judge_recognised": None}
            for pid, hits in outcomes.items() for hit in hits]


def test_group_intervals_resample_people_not_edits():
    # Two people read every time, two never (7 edits each): 50% with 4 people behind it. An interval
    # over the 28 edits as if independent would be about 31-69%; over people it spans nearly all.
    split = _records({"a": [True] * 7, "b": [True] * 7, "c": [False] * 7, "d": [False] * 7})
    lo, hi = rate_interval(split, "ensemble")
    assert lo <= 0.25 and hi >= 0.75
    # The same 50% from four people who each read half the time: people agree, the interval is narrow.
    even = _records({p: [True, False] * 3 + [True] for p in "abcd"})
    lo, hi = rate_interval(even, "ensemble")
    assert hi - lo < 0.05 and lo <= 4 / 7 <= hi
    assert rate_interval(_records({"a": [True, False]}), "ensemble") is None  # one person: none
    assert rate_interval(split, "PyEmotion") is None  # a reader that did not run: none


def test_gap_interval_is_reference_minus_group():
    ref = _records({f"w{i}": [True] * 6 + [False] for i in range(20)})  # 86%
    few = _records({"a": [True] * 7, "b": [False] * 7, "c": [True] * 7, "d": [False] * 7})  # 50%
    gap, lo, hi = gap_interval(ref, few, "ensemble")
    assert gap == pytest.approx(6 / 7 - 0.5) and lo < gap < hi
    assert lo < 0.1 < hi  # four people cannot show a 36-point gap is over 10 points
    assert gap_interval(few, ref, "ensemble")[0] == pytest.approx(-gap)
