"""Expression measuring (pipeline.measure) and cross-person transfer (edit(reference=...)) on real
London photos."""
import numpy as np
import pytest

from pipeline.__main__ import main
from pipeline.editor import detect, edit
from pipeline.engines.geometric import expression
from pipeline.measure import fit_aus, measure, nnls

from .conftest import PEOPLE, london, needs_shared


def corner_lift(rgb) -> float:
    """Corner lift of the re-detected face (the output is measured afresh, not by our landmarks)."""
    _, faces = detect(rgb)
    return expression.measures(faces[0].landmarks)["corner_lift"]


def test_nnls_matches_a_known_nonnegative_solution():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(60, 5))
    x = np.array([0.7, 0.0, 1.2, 0.0, 0.3])
    np.testing.assert_allclose(nnls(a, a @ x), x, atol=1e-8)
    # A target that wants a negative weight gets zero there, and the KKT conditions hold.
    b = a @ np.array([0.5, -1.0, 0.0, 0.2, 0.0])
    w = nnls(a, b)
    g = a.T @ (b - a @ w)
    assert w.min() >= 0 and w[1] == 0
    assert np.all(g[w == 0] <= 1e-8) and np.allclose(g[w > 0], 0, atol=1e-8)


def test_fit_recovers_the_engines_own_aus():
    """Round trip: the mean face moved by known AUs reads those AUs back."""
    c = expression.model().mean.astype(np.float64)
    truth = {"AU12": 0.8, "AU1": 0.6, "AU26": 0.5}
    moved = c + expression.displacement(expression.Geometry(c), truth)
    got = fit_aus(moved)
    for au, v in truth.items():
        assert got.get(au, 0) == pytest.approx(v, abs=0.15), (au, got)
    assert not {"AU15", "AU4"} & set(got)
    # A one-sided smile (contempt's AU12R) reads one-sided, not as a symmetric smile.
    got = fit_aus(c + expression.displacement(expression.Geometry(c), {"AU12R": 0.6}))
    assert got.get("AU12R", 0) == pytest.approx(0.6, abs=0.1) and "AU12" not in got


def test_smiles_read_more_au12_than_neutral_faces():
    smile = {p: measure(london(p, "happy"))[0] for p in PEOPLE}
    neutral = {p: measure(london(p, "neutral"))[0] for p in PEOPLE}
    s = np.array([smile[p].aus.get("AU12", 0) for p in PEOPLE])
    n = np.array([neutral[p].aus.get("AU12", 0) for p in PEOPLE])
    assert s.mean() > 0.4 and n.mean() < 0.1, (s, n)
    assert np.all(s >= n)
    assert all(max(m.probs, key=m.probs.get) == "neutral" for m in neutral.values())


def test_a_smile_transferred_raises_the_targets_corners():
    rgb, faces = detect(london("021"))
    before = corner_lift(rgb)
    smiled = edit(rgb, reference=london("025", "happy"), detections=faces)
    assert corner_lift(smiled.image) - before > 0.03
    assert smiled.faces[0].aus_applied.get("AU12", 0) > 0.3
    assert smiled.faces[0].verdict is None  # ungated: a copied expression names no target emotion


def test_a_neutral_reference_changes_little():
    rgb, faces = detect(london("001"))
    assert measure(london("064"))[0].aus == {}  # 064's neutral photo reads no AU
    calm = edit(rgb, reference=london("064"), detections=faces)
    smile = edit(rgb, reference=london("025", "happy"), detections=faces)
    d_calm, d_smile = (np.abs(r.image.astype(int) - rgb).mean() for r in (calm, smile))
    assert abs(corner_lift(calm.image) - corner_lift(rgb)) < 0.01
    assert d_calm < 0.5 * d_smile


def test_strength_zero_leaves_the_photo_and_bad_strength_is_refused(capsys):
    rgb, faces = detect(london("021"))
    r = edit(rgb, reference=london("025", "happy"), strength=0, detections=faces)
    assert np.array_equal(r.image, rgb)
    assert main(["edit", str(london("021")), "--reference", str(london("025", "happy")), "--strength", "2",
                 "--out", "/tmp/never.png"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: Strength must be a number between 0 and 1.5") and err.count("\n") == 1


def test_cli_measure_and_edit_reference(tmp_path, capsys):
    assert main(["measure", str(london("025", "happy"))]) == 0
    line = capsys.readouterr().out
    assert line.startswith("face 0: happy") and "AU12=" in line
    out = tmp_path / "copied.png"
    assert main(["edit", str(london("021")), "--reference", str(london("025", "happy")), "--out", str(out)]) == 0
    assert out.is_file() and "the expression of" in capsys.readouterr().out


@needs_shared
def test_au12_separates_the_68_london_smiles_from_the_neutrals():
    """The figures in pipeline/measure.py's docstring: gated reads separate, ungated ones leak identity."""
    from pipeline.datasets import london_ids, london_photo
    from pipeline.measure import WITNESS, canonical, separation

    sets = {k: [canonical(detect(london_photo(i, k))[1][0]) for i in london_ids()] for k in ("neutral", "happy")}
    gated = separation(sets["neutral"], sets["happy"])
    ungated = separation(sets["neutral"], sets["happy"], list(WITNESS))
    assert gated["auc"] > 0.85 and gated["neutral_p95"] < 0.05 and gated["smile_median"] > 0.3
    assert ungated["neutral_p95"] > 0.3 and gated["auc"] > ungated["auc"]
