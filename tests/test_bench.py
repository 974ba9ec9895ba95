"""Smoke test: the benchmark runs end to end in its quick mode and writes a complete report.
No timing assertions: CI machines are shared and noisy (bench --check is the place for targets)."""
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("skimage", reason="the naive baseline needs scikit-image (requirements-dev.txt)")

ROOT = Path(__file__).resolve().parent.parent


def test_quick_bench_writes_report(tmp_path):
    out = tmp_path / "speed.md"
    p = subprocess.run([sys.executable, "-m", "pipeline.bench", "--quick", "--repeat", "1", "--out", str(out)],
                       cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    md = out.read_text()
    assert md.strip() == p.stdout.strip()  # printed and written alike
    for section in ("## Stages", "## End to end", "## Naive baseline", "## Start-up", "## Targets"):
        assert section in md
    for photo in ("| 512 px | 1 |", "| 1024 px | 1 |", "| group 1536×1024 | 3 |"):
        assert photo in md
    assert re.search(r"Machine: \d+ CPUs", md)
    assert "failed" not in md, md
    # Every target row has a verdict; the baseline warps the same face the same way (Δ in gray levels).
    rows = [ln for ln in md.split("## Targets")[1].splitlines() if ln.startswith("| ") and "---" not in ln][1:]
    assert len(rows) == 10 and all(re.search(r"\| (pass|\*\*FAIL\*\*|n/a) \|", r) for r in rows)
    base = next(ln for ln in md.split("## Naive baseline")[1].splitlines() if ln.startswith("| 512 px"))
    assert float(base.strip("| ").split(" | ")[-1]) < 5


def test_naive_warp_matches_mien_warp():
    """The baseline is the same transformation, so the speed-up compares like with like."""
    from pipeline.engines.geometric import expression, warp
    from pipeline.bench import naive_warp, photo
    from pipeline.editor import detect

    rgb, faces = detect(photo("size", 512))
    src = faces[0].landmarks
    dst = expression.plan(src, "happy", 1.0).target
    reg = warp.region_for(src, rgb.shape[:2])
    mine = warp.remap(rgb, warp.backward_map(src, dst, reg)[0]).astype(np.float32)
    ref = naive_warp(rgb, src, dst, reg)
    inside = ref[..., 0] >= 0
    assert inside.mean() > 0.6
    assert np.abs(ref - mine)[inside].mean() < 3
