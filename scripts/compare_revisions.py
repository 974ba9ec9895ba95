"""Are the edits of two revisions byte-identical? Renders the same London faces x targets with
the code of a git revision (checked out in a temporary worktree) and with the working tree, and
compares every output image. Used to show that a refactor changed no pixel:

    python scripts/compare_revisions.py --base 73ee9a9 --faces 001,002,021 --gate off,on
"""
from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# Runs inside the revision's checkout: only the public API that every revision has.
RENDER = r"""
import hashlib, json, sys
from pipeline import edit
from pipeline.datasets import london_photo
faces, targets, gates, kinds = (a.split(",") for a in sys.argv[1:5])
out = {}
for fid in faces:
    for kind in kinds:
        for g in gates:
            for t in targets:
                r = edit(str(london_photo(fid, kind)), t, 1.0, gate={"off": False, "on": True}[g])
                out[f"{fid}_{kind}/{t}/gate-{g}"] = hashlib.sha256(r.image.tobytes()).hexdigest()
print(json.dumps(out))
"""


def render(checkout: Path, args) -> dict[str, str]:
    from pipeline.config import settings

    # Both read the same photos: a worktree elsewhere would not find ../shared beside it.
    env = {"PYTHONPATH": str(checkout), "PATH": "/usr/bin:/bin", "MIEN_FACES": str(settings().faces)}
    res = subprocess.run([sys.executable, "-c", RENDER, args.faces, args.targets, args.gate, args.kinds],
                         cwd=checkout, capture_output=True, text=True, env=env)
    if res.returncode:
        sys.exit(f"rendering in {checkout} failed:\n{res.stderr[-2000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--base", required=True, help="git revision to compare with the working tree")
    p.add_argument("--faces", default="001,002,021")
    p.add_argument("--kinds", default="neutral,happy")
    p.add_argument("--targets", default="neutral,happy,sad,angry,fearful,disgusted,surprised,contempt")
    p.add_argument("--gate", default="off,on")
    a = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        wt = Path(tmp) / "base"
        subprocess.run(["git", "worktree", "add", "--detach", str(wt), a.base], cwd=ROOT, check=True,
                       capture_output=True)
        try:
            base = render(wt, a)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(wt)], cwd=ROOT, capture_output=True)
    now = render(ROOT, a)
    diff = sorted(k for k in base if base[k] != now.get(k))
    for k in diff:
        print(f"differs: {k}")
    print(f"{len(base) - len(diff)} of {len(base)} outputs byte-identical to {a.base}")
    digest = hashlib.sha256(json.dumps(now, sort_keys=True).encode()).hexdigest()[:12]
    print(f"digest of this tree's outputs: {digest}")
    return 1 if diff else 0


if __name__ == "__main__":
    sys.exit(main())
