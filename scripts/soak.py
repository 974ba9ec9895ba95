"""Memory soak: many consecutive `edit()` calls in one process; resident memory must level off.

    python scripts/soak.py                         # 500 edits, warm-up 50, RSS every 10 edits
    python scripts/soak.py --edits 120 --warmup 40 --gate-every 0

Each call varies the photo (London portraits, insightface's six-face t1.jpg), the emotion and the
intensity. Every `--gate-every`-th call runs the full gate (classifier + identity check, retries;
slow), every `--detect-every`-th call passes the photo's path (decode + detection inside
`edit()`); the rest reuse cached detections, as the app's sliders do. Resident memory (VmRSS from
/proc/self/status, after gc.collect()) is sampled every `--every` edits.

Prints the RSS after the warm-up, the final and the largest RSS, the growth after the warm-up and a
curve; exits 1 when the growth is over `--max-growth` percent.
"""
from __future__ import annotations

import argparse
import gc
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a plain script from anywhere

from pipeline import detect, edit  # noqa: E402
from pipeline.emotions import EMOTIONS  # noqa: E402

INTENSITIES = (0.4, 0.8, 1.0, 1.3)


def rss_mb() -> float:
    """This process's resident memory in MB (Linux /proc; no psutil needed)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("VmRSS not found in /proc/self/status")


def photos() -> list[Path]:
    from pipeline.datasets import TEST_DATA
    from pipeline.sheet import insightface_sample

    out = sorted((TEST_DATA / "london").glob("*.jpg"))
    t1 = insightface_sample("t1.jpg")
    return out + ([t1] if t1 else [])


@dataclass
class SoakReport:
    edits: int
    warmup: int
    samples: list[tuple[int, float]] = field(default_factory=list)  # (edits done, RSS MB)
    wall_s: float = 0.0
    gated: int = 0
    detected: int = 0

    def at(self, n: int) -> float:
        """RSS at the first sample taken after `n` edits."""
        return next(r for i, r in self.samples if i >= n)

    @property
    def warm(self) -> float:
        return self.at(self.warmup)

    @property
    def final(self) -> float:
        return self.samples[-1][1]

    @property
    def peak(self) -> float:
        return max(r for _, r in self.samples)

    @property
    def growth_pct(self) -> float:
        """Final over warm-up RSS, in percent."""
        return (self.final / self.warm - 1) * 100

    @property
    def peak_growth_pct(self) -> float:
        """Largest RSS after the warm-up over warm-up RSS, in percent."""
        return (max(r for i, r in self.samples if i >= self.warmup) / self.warm - 1) * 100

    def curve(self, step: int = 50) -> str:
        pts = [(i, r) for i, r in self.samples if i % step == 0 or i == self.samples[-1][0]]
        return "  ".join(f"{i}:{r:.0f}" for i, r in pts)

    def text(self, step: int = 50) -> str:
        return (f"{self.edits} edits in {self.wall_s:.0f} s ({self.gated} gated, {self.detected} with detection); "
                f"RSS start {self.samples[0][1]:.0f} MB, after warm-up ({self.warmup}) {self.warm:.1f} MB, "
                f"final {self.final:.1f} MB, max {self.peak:.1f} MB; growth after warm-up "
                f"{self.growth_pct:+.2f}% (peak {self.peak_growth_pct:+.2f}%)\n"
                f"RSS curve (edits:MB): {self.curve(step)}")


def soak(edits: int = 500, warmup: int = 50, every: int = 10, gate_every: int = 5, detect_every: int = 7,
         progress=None) -> SoakReport:
    """Run the soak; `gate_every`/`detect_every` 0 turn the gate / in-call detection off."""
    imgs = photos()
    cached = [detect(p) for p in imgs]  # (rgb, faces): the slider path's cached detections
    report = SoakReport(edits, warmup)
    gc.collect()
    report.samples.append((0, rss_mb()))
    t0 = time.perf_counter()
    for k in range(edits):
        i = k % len(imgs)
        emotion = EMOTIONS[k % len(EMOTIONS)]
        intensity = INTENSITIES[(k // len(EMOTIONS)) % len(INTENSITIES)]
        gate = bool(gate_every) and k % gate_every == 0
        if detect_every and k % detect_every == 0:
            res = edit(imgs[i], emotion, intensity, gate=gate)
            report.detected += 1
        else:
            rgb, faces = cached[i]
            res = edit(rgb, emotion, intensity, detections=faces, gate=gate)
        report.gated += gate
        assert res.image.shape == cached[i][0].shape and res.faces, (imgs[i], emotion)
        del res
        if (k + 1) % every == 0 or k + 1 == edits:
            gc.collect()
            report.samples.append((k + 1, rss_mb()))
            if progress:
                progress(k + 1, report.samples[-1][1])
    report.wall_s = time.perf_counter() - t0
    return report


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--edits", type=int, default=500)
    ap.add_argument("--warmup", type=int, default=50, help="growth is measured from the RSS after this many edits")
    ap.add_argument("--every", type=int, default=10, help="sample RSS every N edits")
    ap.add_argument("--gate-every", type=int, default=5, help="full gate on every Nth edit (0: never)")
    ap.add_argument("--detect-every", type=int, default=7, help="detection inside edit() every Nth edit (0: never)")
    ap.add_argument("--max-growth", type=float, default=5.0, help="percent")
    ap.add_argument("-v", "--verbose", action="store_true", help="print every sample")
    args = ap.parse_args(argv)
    if args.warmup >= args.edits:
        ap.error("--warmup must be below --edits")
    progress = (lambda n, r: print(f"  {n:5d} edits  RSS {r:7.1f} MB", flush=True)) if args.verbose else None
    report = soak(args.edits, args.warmup, args.every, args.gate_every, args.detect_every, progress)
    print(report.text())
    if report.growth_pct > args.max_growth:
        print(f"FAIL: RSS grew {report.growth_pct:.2f}% after the warm-up (limit {args.max_growth}%)")
        return 1
    print(f"OK: growth {report.growth_pct:+.2f}% <= {args.max_growth}%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
