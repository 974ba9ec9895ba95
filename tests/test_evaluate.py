"""`python -m pipeline evaluate` on the repo's real photos: the report, its numbers and the judges."""
from pathlib import Path

from pipeline.__main__ import main
from pipeline.evaluate import run

DATA = Path(__file__).parent / "data" / "london"


def test_evaluate_edits_scores_and_writes_the_report(tmp_path):
    s = run(DATA, tmp_path, targets="happy,surprised,contempt", glob="*_neutral.jpg", limit=2)
    report = (tmp_path / "report.md").read_text()
    assert (tmp_path / "confusion.png").stat().st_size > 1000 and (tmp_path / "hit_rate.png").exists()
    assert set(s["hit_rate"]) == {"happy", "surprised", "contempt"}
    assert all(0 <= v <= 1 for v in s["hit_rate"].values())
    assert s["hit_rate"]["happy"] == 1.0  # two clear smiles on real photos
    assert s["psnr_bg_min"] > 45 and 0 <= s["identity_pass"] <= 1
    assert "| happy | 2 |" in report and "Held-out judges" in report
    assert "n/a (no class)" in report  # the judge has no contempt class and says so


def test_no_edit_mode_scores_the_real_photos(tmp_path):
    s = run(DATA, tmp_path, no_edit=True, judges=False)
    # Real neutral photos read neutral; the mild real smiles less reliably (as measured on all 68).
    assert s["hit_rate"]["neutral"] >= 0.8 and s["hit_rate"]["happy"] >= 0.4
    assert "Held-out judges" not in (tmp_path / "report.md").read_text()


def test_cli_evaluate(tmp_path, capsys):
    assert main(["evaluate", "--images", str(DATA), "--glob", "*_neutral.jpg", "--out", str(tmp_path),
                 "--targets", "sad", "--limit", "1", "--no-judges"]) == 0
    assert "| sad | 1 |" in capsys.readouterr().out
    assert "| sad | 1 |" in (tmp_path / "report.md").read_text()
