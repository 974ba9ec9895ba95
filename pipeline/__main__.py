"""Command line: `mien edit|sheet|evaluate ...` (also `python -m pipeline ...`). Errors print one
line and exit non-zero."""
from __future__ import annotations

import argparse
import json
import sys

from .errors import MienError

EXIT_USAGE, EXIT_INPUT = 2, 1


def _cmd_edit(a) -> int:
    from .editor import edit
    from .imageio import load_image, save_image

    loaded = load_image(a.input)
    gate = {"on": True, "off": False, "emotion": "emotion"}[a.gate]
    if a.diffusion_model or a.adapter:
        from .engines.diffusion import configure

        configure(model=a.diffusion_model, adapter=a.adapter)
    result = edit(loaded.rgb, a.emotion, a.intensity, faces=a.faces, aus=a.aus, engine=a.engine, gate=gate,
                  detector=a.detector, embedder=a.embedder, classifier=a.classifier, seed=a.seed,
                  auto_strength=a.auto_strength, leave_rejected=a.leave_rejected, teeth=not a.no_teeth,
                  reference=a.reference, strength=a.strength)
    if a.reference:  # the printout and provenance name what was copied
        a.emotion, a.intensity = f"the expression of {a.reference}", a.strength
    save_image(a.out, result.image, loaded,
               provenance={"emotion": a.emotion, "intensity": a.intensity, **({"aus": a.aus} if a.aus else {})})
    if a.json:
        print(json.dumps({"input": a.input, "output": a.out, **result.summary()}, indent=2))
    else:
        n = len(result.faces)
        print(f"{a.out}: {a.emotion} at {a.intensity:g} on {n} of {result.faces_detected} face(s) "
              f"in {result.timings_ms.get('total', 0):.0f} ms")
        for f in result.faces:
            if f.verdict == "rejected":
                kept = " (left unchanged)" if f.left_unchanged else ""
                print(f"  face {f.index}: rejected{kept}: {f.reason} {f.advice or ''}".rstrip())
            elif f.strengthened:
                print(f"  face {f.index}: {f.advice}")
    return 0


def _cmd_sheet(a) -> int:
    from .sheet import make_sheet

    path = make_sheet(a.images, a.out, intensity=a.intensity, size=a.size, zoom=a.zoom)
    print(path)
    return 0


def _cmd_evaluate(a) -> int:
    from pathlib import Path

    from .evaluate import run

    gate = {"on": True, "off": False, "emotion": "emotion"}[a.gate]
    run(Path(a.images), Path(a.out), targets=a.targets, groups_csv=Path(a.groups) if a.groups else None,
        glob=a.glob, intensity=a.intensity, gate=gate, no_edit=a.no_edit, limit=a.limit,
        judges=not a.no_judges, split=a.split)
    return 0


def _backend_args(p: argparse.ArgumentParser) -> None:
    """--engine and the backend choices (default: the environment's, see pipeline.config)."""
    from .engines import ENGINES
    from .registry import BACKENDS

    p.add_argument("--engine", default=None, choices=list(ENGINES), help="renderer (default geometric)")
    for kind in ("detector", "embedder", "classifier"):
        p.add_argument(f"--{kind}", default=None, choices=list(BACKENDS[kind]),
                       help=f"{kind} backend (default: MIEN_{kind.upper()} or the built-in one)")


def _cmd_measure(a) -> int:
    from .measure import measure

    for i, m in enumerate(measure(a.input)):
        top = max(m.probs, key=m.probs.get)
        aus = ", ".join(f"{k}={v:.2f}" for k, v in m.aus.items()) or "none beyond the neutral range"
        print(f"face {i}: {top} ({m.probs[top]:.0%}); action units: {aus}")
    return 0


def _cmd_animate(a) -> int:
    from .animate import animate

    path = animate(a.input, a.out, a.emotion, a.intensity, a.frames, a.fps, faces=a.faces, aus=a.aus,
                   reference=a.reference, strength=a.strength, max_side=a.max_side)
    print(path)
    return 0


def _cmd_augment(a) -> int:
    from .augment import augment

    try:
        intensities = [float(v) for v in a.intensities.split(",")]
    except ValueError:
        raise MienError(f"Intensities are numbers like 0.5,1.0 (got '{a.intensities}').") from None
    r = augment(a.in_dir, a.out_dir, a.emotions.split(","), intensities, workers=a.workers, balance=a.balance,
                engine=a.engine_, gate=a.gate, ext=a.format, ray_address=a.ray_address)
    print(json.dumps(r))
    return 0


def _add_beyond_commands(sub) -> None:
    """measure, animate, augment (issue 14: pipeline.measure, pipeline.animate, pipeline.augment)."""
    m = sub.add_parser("measure", help="print each face's action-unit intensities and emotion")
    m.add_argument("input")
    m.set_defaults(func=_cmd_measure)
    n = sub.add_parser("animate", help="eased GIF/MP4 from the current expression to a target")
    n.add_argument("input")
    n.add_argument("--emotion", default="happy")
    n.add_argument("--intensity", type=float, default=1.0)
    n.add_argument("--out", required=True, help="output .gif or .mp4")
    n.add_argument("--frames", type=int, default=16)
    n.add_argument("--fps", type=float, default=12.0)
    n.add_argument("--max-side", type=int, default=720, help="longest side of the frames, pixels")
    n.add_argument("--faces", default="all")
    n.add_argument("--aus", default=None)
    n.add_argument("--reference", default=None, help="animate towards this photo's expression instead")
    n.add_argument("--strength", type=float, default=1.0)
    n.set_defaults(func=_cmd_animate)
    g = sub.add_parser("augment", help="edited copies of every face photo in a folder, with labels.csv")
    g.add_argument("in_dir")
    g.add_argument("out_dir")
    g.add_argument("--emotions", default="happy,sad,angry,fearful,disgusted,surprised")
    g.add_argument("--intensities", default="1.0", help="comma-separated, e.g. 0.5,1.0")
    g.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    g.add_argument("--balance", default=None, help="labels CSV of an existing folder: make only what it lacks")
    g.add_argument("--engine", dest="engine_", choices=["local", "ray"], default="local",
                   help="run on this machine's cores, or on Ray (local, or the cluster at RAY_ADDRESS)")
    g.add_argument("--ray-address", default=None, help="Ray cluster to join, e.g. ray://head:10001")
    g.add_argument("--gate", choices=["on", "off", "emotion"], default="on")
    g.add_argument("--format", default="jpg", help="jpg, png or webp")
    g.set_defaults(func=_cmd_augment)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mien", description="Mien: change facial expressions in photos.")
    sub = p.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("edit", help="edit one photo")
    e.add_argument("input")
    e.add_argument("--emotion", default="happy",
                   help="neutral, happy, sad, angry, fearful, disgusted, surprised or contempt")
    e.add_argument("--intensity", type=float, default=1.0, help="0..1.5 (1 = clear, natural)")
    e.add_argument("--out", required=True, help="output file (.png, .jpg, .webp)")
    e.add_argument("--faces", default="all", help="'all' or indices numbered left to right, e.g. 0,2")
    e.add_argument("--aus", default=None, help="extra action units, e.g. AU12=0.5,AU6=0.3")
    e.add_argument("--json", action="store_true", help="print a JSON summary")
    e.add_argument("--gate", choices=["on", "off", "emotion"], default="on",
                   help="check the edit (emotion + identity), the emotion only, or not at all")
    e.add_argument("--auto-strength", action="store_true",
                   help="let the gate change the intensity until the edit reads (it says so)")
    e.add_argument("--leave-rejected", action="store_true", help="leave faces the gate rejects unchanged")
    e.add_argument("--no-teeth", action="store_true", help="keep the lips closed (a closed-mouth smile)")
    e.add_argument("--seed", type=int, default=None, help="for engines with randomness (diffusion)")
    e.add_argument("--diffusion-model", default=None, help="diffusion engine: hub id or folder (MIEN_DIFFUSION_MODEL)")
    e.add_argument("--adapter", default=None, help="diffusion engine: emotion adapter folder (MIEN_DIFFUSION_ADAPTER)")
    _backend_args(e)
    e.add_argument("--reference", default=None, help="copy the expression of the face in this photo (ungated)")
    e.add_argument("--strength", type=float, default=1.0, help="how much of the reference's expression, 0..1.5")
    e.set_defaults(func=_cmd_edit)
    _add_beyond_commands(sub)
    s = sub.add_parser("sheet", help="before/after sheet of all emotions on a few photos")
    s.add_argument("images", nargs="*", help="photos (default: the test photos and t1.jpg)")
    s.add_argument("--out", default="out/sheet.png")
    s.add_argument("--intensity", type=float, default=1.0)
    s.add_argument("--size", type=int, default=256, help="tile size in pixels")
    s.add_argument("--zoom", choices=["mouth", "eyes", "brows"],
                   help="close-ups of one feature, a row per face, ungated (default photos: 6 London faces + t1.jpg)")
    s.set_defaults(func=_cmd_sheet)
    v = sub.add_parser("evaluate", help="edit every face to every target and report accuracy, identity, quality, time")
    v.add_argument("--images", required=True, help="folder of photos")
    v.add_argument("--out", required=True, help="report folder (report.md, confusion.png, hit_rate.png)")
    v.add_argument("--targets", default="all", help="'all' or a list, e.g. happy,sad")
    v.add_argument("--groups", default=None, help="CSV with a face id column and attributes (e.g. London info.csv)")
    v.add_argument("--glob", default="*", help="which files, e.g. '*_neutral.jpg'")
    v.add_argument("--intensity", type=float, default=1.0)
    v.add_argument("--gate", choices=["on", "off", "emotion"], default="on")
    v.add_argument("--no-edit", action="store_true", help="score the real photos as they are")
    v.add_argument("--limit", type=int, default=None, help="first N photos only")
    v.add_argument("--no-judges", action="store_true", help="skip the held-out judge models (faster)")
    v.add_argument("--split", choices=["tune", "report", "all"], default="all",
                   help="London people: the tune half, the held-out report half, or all photos")
    v.set_defaults(func=_cmd_evaluate)
    from .engines.diffusion.train import add_arguments  # no torch until it runs

    add_arguments(sub.add_parser("train", help="fine-tune the diffusion engine's emotion adapter (LoRA)"))
    return p


def main(argv=None) -> int:
    parser = build_parser()
    a = parser.parse_args(argv)
    try:
        return a.func(a)
    except MienError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_INPUT
    except OSError as err:  # e.g. an output folder that does not exist
        print(f"error: {err.strerror or err}: {getattr(err, 'filename', '') or ''}".rstrip(": "), file=sys.stderr)
        return EXIT_INPUT


if __name__ == "__main__":
    sys.exit(main())
