"""Writing a built data file into weights/ (shared by the build_* scripts): save, then report its
size and sha256 (what weights/README.md records)."""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np


def save_npz(path: Path, **arrays) -> str:
    """Save `arrays` compressed at `path`; returns '<bytes> bytes, sha256 <hex>'."""
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **arrays)
    return f"{path.stat().st_size} bytes, sha256 {hashlib.sha256(path.read_bytes()).hexdigest()}"
