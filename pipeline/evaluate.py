"""`python -m pipeline evaluate`: the survey's experiment on a folder of photos.

Edits every face in DIR to every target and measures expression accuracy (a confusion matrix of
target vs recognised emotion, hit rate per target), identity preservation, background preservation
(PSNR outside the face), the gate's accept rate and the time per stage; per group when a CSV of
people's attributes is given (the survey's fairness concern). `--no-edit` scores the real photos
as they are, so the classifier's own confusion on real faces can be compared with the edits'.

    python -m pipeline evaluate --images ../shared/data/faces/london --glob '*_neutral.jpg' \\
        --out out/eval --groups ../shared/data/faces/london/info.csv

"Recognised" is the classifier's top class on the edited face; for contempt (no classifier class)
it is "contempt" when the geometric check (one-sided corner raise, by optical flow) passes.
"""
from __future__ import annotations

import csv
import sys
import time
from collections import defaultdict
from pathlib import Path

import cv2
import numpy as np

from .classify import EMOTIONS as CLASSES
from .emotions import EMOTIONS
from .errors import InvalidRequest

COLUMNS = tuple(CLASSES) + ("contempt",)
BOX_MARGIN = 0.3  # "background" = outside the face box grown by this much on every side


def _progress(i: int, n: int, t0: float, label: str) -> None:
    done = int(30 * i / max(n, 1))
    eta = (time.time() - t0) / max(i, 1) * (n - i)
    sys.stderr.write(f"\r[{'#' * done}{'.' * (30 - done)}] {i}/{n} {label[:30]:30s} eta {eta:4.0f}s")
    sys.stderr.flush()
    if i == n:
        sys.stderr.write("\n")


def psnr_outside(a: np.ndarray, b: np.ndarray, boxes) -> float:
    """PSNR between a and b outside the given face boxes (each grown by BOX_MARGIN)."""
    mask = np.ones(a.shape[:2], bool)
    h, w = mask.shape
    for x0, y0, x1, y1 in boxes:
        mx, my = (x1 - x0) * BOX_MARGIN, (y1 - y0) * BOX_MARGIN
        mask[max(int(y0 - my), 0):min(int(y1 + my), h), max(int(x0 - mx), 0):min(int(x1 + mx), w)] = False
    if not mask.any():
        return float("nan")
    mse = np.mean((a[mask].astype(np.float64) - b[mask]) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(255.0 ** 2 / mse))


def _load_groups(path: Path | None) -> dict[str, dict[str, str]]:
    if not path:
        return {}
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    key = next(iter(rows[0])) if rows else "face_id"
    out = {}
    for r in rows:
        g = {k: v for k, v in r.items() if k != key}
        if g.get("age", "").isdigit():
            a = int(g["age"])
            g["age"] = "<25" if a < 25 else "25-34" if a < 35 else "35+"
        out[r[key]] = g
    return out


def _group_of(name: str, groups: dict) -> dict[str, str]:
    for k, g in groups.items():
        if name.startswith(k):
            return g
    return {}


def _draw_matrix(m: np.ndarray, rows, cols, title: str, path: Path) -> None:
    """Row-normalised confusion matrix as a PNG (drawn with OpenCV: no plotting dependency)."""
    cell, left, top = 64, 110, 120
    img = np.full((top + cell * len(rows) + 20, left + cell * len(cols) + 20, 3), 255, np.uint8)
    frac = m / np.maximum(m.sum(1, keepdims=True), 1)
    for i in range(len(rows)):
        for j in range(len(cols)):
            v = frac[i, j]
            colour = tuple(int(c) for c in (255 - 200 * v, 255 - 120 * v, 255 - 30 * v))  # white -> blue (BGR)
            x, y = left + j * cell, top + i * cell
            cv2.rectangle(img, (x, y), (x + cell, y + cell), colour, -1)
            cv2.rectangle(img, (x, y), (x + cell, y + cell), (200, 200, 200), 1)
            txt = f"{v:.2f}" if m[i].sum() else "-"
            cv2.putText(img, txt, (x + 12, y + 38), cv2.FONT_HERSHEY_SIMPLEX, 0.5,
                        (255, 255, 255) if v > 0.55 else (30, 30, 30), 1, cv2.LINE_AA)
    for i, r in enumerate(rows):
        cv2.putText(img, r, (6, top + i * cell + 38), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    for j, c in enumerate(cols):
        org = (left + j * cell + 8, top - 8)
        cv2.putText(img, c[:9], org, cv2.FONT_HERSHEY_SIMPLEX, 0.42, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(img, title, (6, 30), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(img, "rows: target   columns: recognised", (6, 60), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (80, 80, 80), 1,
                cv2.LINE_AA)
    cv2.imwrite(str(path), img)


def _draw_bars(values: dict[str, float], title: str, path: Path) -> None:
    w, h, left = 520, 40 + 34 * len(values), 110
    img = np.full((h, w, 3), 255, np.uint8)
    cv2.putText(img, title, (6, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 1, cv2.LINE_AA)
    for i, (k, v) in enumerate(values.items()):
        y = 40 + 34 * i
        cv2.putText(img, k, (6, y + 20), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
        cv2.rectangle(img, (left, y + 4), (left + int((w - left - 70) * v), y + 26), (200, 130, 40), -1)
        cv2.putText(img, f"{v:.0%}", (w - 60, y + 20), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.imwrite(str(path), img)


def _table(header, rows) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def held_out_judges() -> dict:
    """Second opinions from models that Mien never gates with or tunes on: an emotion classifier
    (PyEmotion, a different FER2013 network) and, where ported, a second face embedder."""
    from .classify import judge
    from .identity_judge import identity_judge

    return {"emotion": judge(), "identity": identity_judge()}


def _top(p: dict[str, float]) -> str:
    return max(p, key=p.get)


def _gate_members() -> dict:
    """The gate ensemble's two classifiers, each scored on its own too: a recipe that only one of
    them reads is tuned to that model's quirks."""
    from .classify import face_api, mini_xception

    return {"face-api": face_api(), "mini-xception": mini_xception()}


def _opinions(judges: dict, members: dict, after: np.ndarray, face, emb0) -> dict:
    """Each gate classifier's and the held-out judges' reading of one face of `after`."""
    r = {"members": {n: _top(m.predict(after, [face])[0]) for n, m in members.items()}}
    if not judges:
        return r
    r["judge_recognised"] = _top(judges["emotion"].predict(after, [face])[0])
    if emb0 is not None:
        from .identity import similarity

        sim = similarity(emb0, judges["identity"].embed(after, [face])[0])
        r["judge_identity"] = float(sim)
        r["judge_identity_ok"] = sim >= judges["identity"].threshold
    return r


def run(images: Path, out: Path, targets=None, groups_csv: Path | None = None, glob: str = "*",
        intensity: float = 1.0, gate=True, no_edit: bool = False, limit: int | None = None,
        judges: bool = True, split: str = "all") -> dict:
    """split: "tune" or "report" keeps the photos of that half of the London people
    (`datasets.london_split`; file names start with the face id), "all" keeps every photo."""
    from .classify import classify_faces
    from .datasets import london_split
    from .editor import detect, edit
    from .engines.geometric import mouthbank

    jd = held_out_judges() if judges else {}
    members = _gate_members()

    out.mkdir(parents=True, exist_ok=True)
    files = sorted(p for p in Path(images).glob(glob) if p.suffix.lower() in (".jpg", ".jpeg", ".png", ".webp"))
    if split != "all":
        half = set(london_split(split))
        files = [p for p in files if p.stem.split("_")[0] in half]
        if not files:
            raise InvalidRequest(f"No photo in {images} belongs to the London {split} half.")
    if limit:
        files = files[:limit]
    targets = list(EMOTIONS) if targets in (None, "all") else [t.strip() for t in targets.split(",")]
    groups = _load_groups(groups_csv)
    rec: list[dict] = []
    t0 = time.time()
    n = len(files) * (1 if no_edit else len(targets))
    k = 0
    for path in files:
        rgb, faces = detect(path)
        if no_edit:
            truth = next((e for e in EMOTIONS if e in path.stem), "unknown")
            for f, p in zip(faces, classify_faces(rgb, faces)):
                rec.append({"photo": path.stem, "target": truth, "recognised": _top(p),
                            "p_target": p.get(truth, float("nan")), "group": _group_of(path.stem, groups),
                            **_opinions(jd, members, rgb, f, None)})
            k += 1
            _progress(k, n, t0, path.stem)
            continue
        emb0 = jd["identity"].embed(rgb, faces) if jd else [None] * len(faces)
        for target in targets:
            # Leave-one-person-out: a London person's own teeth (in the mouth bank) never fill their edit.
            with mouthbank.leaving_out(path.stem.split("_")[0]):
                res = edit(rgb, target, intensity, detections=faces, gate=gate)
            boxes = [f.box for f in faces]
            bg = psnr_outside(rgb, res.image, boxes)
            for fe in res.faces:
                p = fe.probs_after or classify_faces(res.image, [faces[fe.index]])[0]
                if target == "contempt":
                    from .gate import CONTEMPT_MIN, contempt_score

                    hit = contempt_score(rgb, res.image, faces[fe.index]) >= CONTEMPT_MIN
                    recognised = "contempt" if hit else _top(p)
                else:
                    recognised = _top(p)
                rec.append({"photo": path.stem, "face": fe.index, "target": target, "recognised": recognised,
                            "p_target": p.get(target, float("nan")), "identity": fe.identity,
                            # each embedder has its own threshold: the one the gate used is recorded
                            "identity_ok": None if fe.identity is None else fe.identity >= fe.identity_threshold,
                            "verdict": fe.verdict, "attempts": fe.attempts, "intensity": fe.intensity,
                            "psnr_bg": bg, "timings": fe.timings_ms, "group": _group_of(path.stem, groups),
                            **_opinions(jd, members, res.image, faces[fe.index], emb0[fe.index])})
            k += 1
            _progress(k, n, t0, f"{path.stem} -> {target}")
    summary = _report(rec, out, targets, no_edit, intensity, gate, images, glob, split)
    return summary


def _median_or_na(v: list[float]) -> str:
    v = [x for x in v if np.isfinite(x)]  # contempt has no classifier probability
    return f"{np.median(v):.2f}" if v else "n/a"


# Who reads each face-edit: the gate's ensemble (the configured classifier), its two members on
# their own, and the held-out PyEmotion judge.
READERS = {
    "ensemble": lambda r: r["recognised"],
    "face-api": lambda r: r["members"]["face-api"],
    "mini-xception": lambda r: r["members"]["mini-xception"],
    "PyEmotion": lambda r: r.get("judge_recognised"),
}


def _rate(rs: list[dict], reader: str) -> float:
    """Share of `rs` that `reader` reads as its target (nan when it did not read them)."""
    got = [READERS[reader](r) for r in rs]
    return float(np.mean([g == r["target"] for g, r in zip(got, rs)])) if rs and None not in got else float("nan")


def _identity_pass(rs: list[dict]) -> float:
    """Share of edits the gate's own embedder (at its own threshold) calls the same person."""
    return float(np.mean([r["identity_ok"] for r in rs if r.get("identity_ok") is not None]))


def _pct(v: float) -> str:
    return f"{v:.0%}" if np.isfinite(v) else "n/a"


# Group figures rest on a few people (the London halves hold 3-4 black, east and west Asian people
# each): a group's edits are not independent draws, one person's face decides several of them. The
# intervals resample people, not edits (a cluster bootstrap, 95% percentile interval); with fewer
# than INTERVAL_MIN people there is no interval to give. With 3-4 people it is, if anything, too
# narrow (a percentile bootstrap on so few clusters under-covers).
BOOTSTRAPS = 4000
INTERVAL_MIN = 2


def _person(r: dict) -> tuple[str, int]:
    """Who a face-edit is of: its photo's id and face (London: NNN_kind.jpg, one face each)."""
    return r["photo"].split("_")[0], r.get("face", 0)


def _by_person(rs: list[dict], reader: str) -> tuple[np.ndarray, np.ndarray] | None:
    """(hits, face-edits) per person of `rs` by `reader`; None when it did not read them."""
    got = [READERS[reader](r) for r in rs]
    if not rs or None in got:
        return None
    hits: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for g, r in zip(got, rs):
        h = hits[_person(r)]
        h[0] += g == r["target"]
        h[1] += 1
    a = np.array(list(hits.values()), dtype=float)
    return a[:, 0], a[:, 1]


def _resampled(hn: tuple[np.ndarray, np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """BOOTSTRAPS hit rates, each over people drawn with replacement."""
    h, n = hn
    idx = rng.integers(0, len(h), (BOOTSTRAPS, len(h)))
    return h[idx].sum(1) / n[idx].sum(1)


def rate_interval(rs: list[dict], reader: str, seed: int = 0) -> tuple[float, float] | None:
    """95% interval of `reader`'s hit rate on `rs`, resampling people (None: too few people)."""
    hn = _by_person(rs, reader)
    if hn is None or len(hn[0]) < INTERVAL_MIN:
        return None
    lo, hi = np.percentile(_resampled(hn, np.random.default_rng(seed)), [2.5, 97.5])
    return float(lo), float(hi)


def gap_interval(ref: list[dict], other: list[dict], reader: str, seed: int = 0) -> tuple[float, float, float] | None:
    """(gap, low, high): `ref`'s hit rate minus `other`'s by `reader`, with a 95% interval that
    resamples each group's people on its own (None: too few people in either)."""
    a, b = _by_person(ref, reader), _by_person(other, reader)
    if a is None or b is None or min(len(a[0]), len(b[0])) < INTERVAL_MIN:
        return None
    rng = np.random.default_rng(seed)
    d = _resampled(a, rng) - _resampled(b, rng)
    lo, hi = np.percentile(d, [2.5, 97.5])
    return float(a[0].sum() / a[1].sum() - b[0].sum() / b[1].sum()), float(lo), float(hi)


def _with_interval(v: float, ci: tuple[float, float] | None) -> str:
    return _pct(v) + (f" [{ci[0]:.0%}-{ci[1]:.0%}]" if ci and np.isfinite(v) else "")


def _points(g: tuple[float, float, float] | None) -> str:
    if g is None:
        return "n/a (too few people)"
    gap, lo, hi = (round(100 * x) for x in g)  # ints: no "-0"
    return f"{gap:+d} [{lo:+d}, {hi:+d}]"


def _readers_section(rec: list[dict], rows: list[str]) -> tuple[str, dict]:
    """Hit rate per target by every reader, and the held-out embedder's identity verdict."""
    trs, rates = [], {k: {} for k in READERS}
    for t in rows:
        rt = [r for r in rec if r["target"] == t]
        for k in READERS:  # only the ensemble's contempt has a (geometric) check; no model has the class
            rates[k][t] = _rate(rt, k) if k == "ensemble" or t != "contempt" else float("nan")
        sims = [r["judge_identity"] for r in rt if "judge_identity" in r]
        trs.append((t, len(rt), *(_pct(rates[k][t]) if t != "contempt" or k == "ensemble" else "n/a (no class)"
                                  for k in READERS),
                    _pct(np.mean([r["judge_identity_ok"] for r in rt])) if sims else "n/a",
                    f"{np.median(sims):.3f}" if sims else "n/a"))
    md = ("\n## Every reader (PyEmotion and the identity embedder are held out: never used by the gate "
          "or for tuning)\n\n"
          "ensemble = the gate's classifier (face-api 0.7 + mini-Xception 0.3), face-api and mini-Xception "
          "= its members alone; PyEmotion = a different FER2013 network, a second opinion "
          "(its accuracy on real photos: `evaluate --no-edit`). Identity = HSE FaceRes embedder, "
          "edit vs source, pass at its London stranger p99.9 threshold.\n\n"
          + _table(["target", "n", *READERS, "identity pass (held-out embedder)", "median identity cosine"], trs))
    return md, rates


def _report(rec, out: Path, targets, no_edit: bool, intensity, gate, images, glob, split) -> dict:

    rows = sorted({r["target"] for r in rec}, key=lambda t: EMOTIONS.index(t) if t in EMOTIONS else 99)
    cols = COLUMNS
    m = np.zeros((len(rows), len(cols)))
    for r in rec:
        if r["recognised"] in cols:
            m[rows.index(r["target"]), cols.index(r["recognised"])] += 1
    title = "Real photos, classifier only" if no_edit else f"Edits at intensity {intensity} (gate: {gate})"
    _draw_matrix(m, rows, cols, title, out / "confusion.png")
    hit = {t: float(np.mean([r["recognised"] == t for r in rec if r["target"] == t])) for t in rows}
    _draw_bars(hit, "Recognised as the target", out / "hit_rate.png")
    half = {"tune": "the TUNE half of the London people (recipes may be tuned on it)",
            "report": "the REPORT half of the London people (never tuned on)", "all": "all photos"}[split]
    md = [f"# Mien evaluation\n", f"Split: **{split}**, {half}.\n",
          f"Images: `{images}` (`{glob}`), {len({r['photo'] for r in rec})} photos, "
          f"{len(rec)} face-edits. Mode: {'no edit (real photos)' if no_edit else f'edit, intensity {intensity}, gate {gate}'}.\n",
          "![confusion](confusion.png) ![hit rate](hit_rate.png)\n"]
    summary: dict = {"hit_rate": hit, "records": rec}
    if no_edit:
        md.append(_table(["true label", "n", "recognised as itself"],
                         [(t, sum(r["target"] == t for r in rec), f"{hit[t]:.0%}") for t in rows]))
    else:
        per = []
        for t in rows:
            rt = [r for r in rec if r["target"] == t]
            ids = [r["identity"] for r in rt if r["identity"] is not None]
            psnr = [r["psnr_bg"] for r in rt]
            tot = [r["timings"].get("total", sum(r["timings"].values())) for r in rt]
            per.append((t, len(rt), f"{hit[t]:.0%}", _median_or_na([r["p_target"] for r in rt]),
                        _pct(_identity_pass(rt)) if ids else "n/a",
                        f"{np.median(ids):.3f}" if ids else "n/a",
                        f"{np.min(psnr):.1f}" if np.isfinite(np.min(psnr)) else "inf",
                        f"{np.mean([r['verdict'] == 'accepted' for r in rt]):.0%}" if rt[0]["verdict"] else "n/a",
                        f"{np.mean([r['attempts'] for r in rt]):.2f}", f"{np.median(tot):.0f}"))
        md.append(_table(["target", "n", "hit rate", "median p(target)", "identity pass", "median identity",
                          "min background PSNR (dB)", "gate accept", "mean attempts", "median ms/face"], per))
        ids = [r["identity"] for r in rec if r["identity"] is not None]
        stages = defaultdict(list)
        for r in rec:
            for s, v in r["timings"].items():
                stages[s].append(v)
        md.append("\n## Time per stage (ms per face-edit, median / p90)\n")
        md.append(_table(["stage", "median", "p90"],
                         [(s, f"{np.median(v):.1f}", f"{np.percentile(v, 90):.1f}") for s, v in stages.items()]))
        summary.update(identity_pass=_identity_pass(rec) if ids else None,
                       psnr_bg_min=float(min(r["psnr_bg"] for r in rec)),
                       accept_rate=float(np.mean([r["verdict"] == "accepted" for r in rec])) if rec[0]["verdict"] else None)
    readers_md, summary["readers"] = _readers_section(rec, rows)
    md.append(readers_md)
    summary["groups"], summary["group_intervals"], summary["group_gaps"] = {}, {}, {}
    scored = [r for r in rec if r["target"] != "contempt"]  # no reader but the ensemble has contempt
    for key in sorted({k for r in rec for k in r["group"]}):
        md.append(f"\n## By {key} (hit rate over every target but contempt)\n")
        md.append("In brackets: 95% interval resampling people (edits of one person are not independent); "
                  "none with fewer than two people. With 3-4 people it understates the uncertainty: a group "
                  "whose people all scored alike shows no spread at all.\n")
        trs, summary["groups"][key], summary["group_intervals"][key] = [], {}, {}
        members = {v: [r for r in scored if r["group"].get(key, "?") == v]
                   for v in sorted({r["group"].get(key, "?") for r in rec})}
        people = {v: len({_person(r) for r in rv}) for v, rv in members.items()}
        for v, rv in members.items():
            ids = [r["identity"] for r in rv if r.get("identity") is not None]
            jid = [r["judge_identity_ok"] for r in rv if "judge_identity_ok" in r]
            summary["groups"][key][v] = {k: _rate(rv, k) for k in READERS}
            summary["group_intervals"][key][v] = {k: rate_interval(rv, k) for k in READERS}
            trs.append((v, people[v], len(rv),
                        *(_with_interval(x, summary["group_intervals"][key][v][k])
                          for k, x in summary["groups"][key][v].items()),
                        _pct(_identity_pass(rv)) if ids else "n/a",
                        _pct(np.mean(jid)) if jid else "n/a"))
        md.append(_table([key, "people", "face-edits", *READERS, "identity pass (gate)",
                          "identity pass (held-out)"], trs))
        # Each group against the one with the most people (London: white), in points of hit rate.
        ref = max(members, key=lambda v: (people[v], v))
        gaps = {v: {k: gap_interval(members[ref], rv, k) for k in ("ensemble", "PyEmotion")}
                for v, rv in members.items() if v != ref and rv}
        summary["group_gaps"][key] = {"reference": ref, **gaps}
        if gaps:
            md.append(f"\nGap to {ref} (points of hit rate, {ref} minus the group; 95% interval resampling "
                      "each group's people):\n")
            md.append(_table([key, "ensemble", "PyEmotion"],
                             [(v, *(_points(g[k]) for k in ("ensemble", "PyEmotion"))) for v, g in gaps.items()]))
    (out / "report.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))
    return summary
