"""The diffusion engine on a CUDA GPU: the checks that CI's CPU-only machine cannot make.

    python scripts/gpu_check.py prepare DIR            # here: detect the faces once (CPU)
    python scripts/gpu_check.py run DIR --out REPORT   # on the GPU machine

Nothing can be downloaded, so the models are RANDOM: tiny checkpoints (`tests/test_diffusion`'s
builder, one per family) for the plumbing, and one with Stable Diffusion 1.5's layer shapes
(InstructPix2Pix's 8-channel UNet, SD's VAE and CLIP ViT-L text encoder) for time and memory.
Random weights paint coloured noise: nothing here says anything about how a face looks.

`prepare` stores the London test photos with their detected faces, so the GPU machine needs no
face detector (its Python lacks ai-edge-litert); the gate there is the emotion classifier only.

Checked on the GPU, in fp16 (the engine's default there):
1. each family loads on CUDA, renders, and the same seed gives the same pixels; the difference
   from the same model in fp32 on the CPU (same seed, same noise);
2. `edit(engine="diffusion")` end to end with the emotion gate;
3. `mien train` under each mixed precision (fp16, bf16, none), --resume, and the adapter loaded
   back on the GPU changes the output;
4. SD-1.5-sized: load, one render at 512 px (20 steps x strength 0.75), edit() of a 1024 px photo,
   a training step at batch 4 with gradient checkpointing: median times, peak GPU memory.
"""
from __future__ import annotations

import argparse
import json
import pickle
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PEOPLE = ("001", "005", "021")  # training pairs: neutral -> happy
RUNS = 5
DEVICE = "cuda"  # --dry-run: "cpu", with a narrow stand-in for the SD-1.5-sized model (debugs this script)


def prepare(folder: Path) -> None:
    from pipeline.datasets import TEST_DATA
    from pipeline.editor import detect

    folder.mkdir(parents=True, exist_ok=True)
    photos = {}
    for fid in PEOPLE:
        for kind in ("neutral", "happy"):
            shutil.copy(TEST_DATA / "london" / f"{fid}_{kind}.jpg", folder)
    rgb, faces = detect(TEST_DATA / "london" / "001_neutral.jpg")
    photos["001"] = (rgb, faces[:1])
    big = cv2.resize(rgb, (1024, 1024), interpolation=cv2.INTER_CUBIC)
    photos["001@1024"] = detect(big)[0], detect(big)[1][:1]
    (folder / "faces.pkl").write_bytes(pickle.dumps(photos))
    pairs = {p.name: detect(p)[1] for p in sorted(folder.glob("*.jpg"))}
    (folder / "pairs.pkl").write_bytes(pickle.dumps(pairs))
    print(f"{folder}: {', '.join(f'{k} {v[0].shape[1]}x{v[0].shape[0]}' for k, v in photos.items())}")


def cached_detect(folder: Path) -> None:
    """Training crops its pairs with `pipeline.editor.detect`: answer from `prepare`'s detections."""
    import pipeline.editor
    from pipeline.imageio import load_image

    cache = pickle.loads((folder / "pairs.pkl").read_bytes())
    pipeline.editor.detect = lambda image, *a, **k: (load_image(image).rgb, cache[Path(str(image)).name])


def build_sd15(folder: Path, torch) -> Path:
    """Random weights with SD 1.5's shapes (InstructPix2Pix: 8 input channels), saved in fp16
    (a narrow stand-in on a dry run)."""
    from diffusers import AutoencoderKL, EulerAncestralDiscreteScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    from tests.test_diffusion import build_tiny_model

    tiny = build_tiny_model(folder / "tokenizer-source")  # its tokenizer and scheduler layout
    model = folder / "sd15"
    shutil.copytree(tiny, model)
    w = 1 if DEVICE == "cuda" else 16  # width divisor of the dry run's stand-in
    with torch.device(DEVICE):  # random init on the GPU: seconds, not minutes
        torch.manual_seed(0)
        parts = {
            "unet": UNet2DConditionModel(sample_size=64, in_channels=8, cross_attention_dim=768 // w,
                                         block_out_channels=tuple(c // w for c in (320, 640, 1280, 1280)),
                                         attention_head_dim=8 // min(w, 8), norm_num_groups=32 // w),
            "vae": AutoencoderKL(block_out_channels=tuple(c // w for c in (128, 256, 512, 512)),
                                 down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
                                 layers_per_block=2, sample_size=512, norm_num_groups=32 // w),
            "text_encoder": CLIPTextModel(CLIPTextConfig(hidden_size=768 // w, intermediate_size=3072 // w,
                                                         num_hidden_layers=12, num_attention_heads=12 // min(w, 12),
                                                         vocab_size=49408, bos_token_id=0, eos_token_id=1,
                                                         pad_token_id=1)),
        }
    for name, m in parts.items():
        shutil.rmtree(model / name)
        m.half().save_pretrained(model / name)
    EulerAncestralDiscreteScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                    steps_offset=1).save_pretrained(model / "scheduler")
    n = sum(p.numel() for m in parts.values() for p in m.parameters())
    print(f"SD-1.5-shaped random checkpoint: {n / 1e6:.0f} M parameters")
    return model


def timed(fn, torch, runs: int = RUNS) -> tuple[float, object]:
    """Median ms of `runs` calls after one warm-up, synchronising the GPU around each."""
    out = fn()
    times = []
    sync = torch.cuda.synchronize if DEVICE == "cuda" else (lambda: None)
    for _ in range(runs):
        sync()
        t = time.perf_counter()
        out = fn()
        sync()
        times.append((time.perf_counter() - t) * 1e3)
    return statistics.median(times), out


def families(photos, tmp: Path, torch, report: list[str]) -> Path:
    from pipeline import edit
    from pipeline.engines import RenderRequest
    from pipeline.engines.diffusion import DiffusionEngine
    from tests.test_diffusion import build_tiny_model

    rgb, faces = photos["001"]
    report += ["## 1. Each family on CUDA (tiny random checkpoints)", "",
               "| family | device, dtype | same seed, same pixels | another seed differs | mean abs diff vs CPU fp32 (grey levels) | max |",
               "| --- | --- | --- | --- | --- | --- |"]
    ip2p = None
    for channels in (8, 9, 4):
        model = build_tiny_model(tmp / f"tiny{channels}", channels)
        ip2p = ip2p or model
        gpu, cpu = DiffusionEngine(model=str(model), device=DEVICE), DiffusionEngine(model=str(model), device="cpu")
        req = RenderRequest("sad", 0.8, seed=3)
        a, b = (gpu.render(rgb, rgb, faces[0], req) for _ in range(2))
        other = gpu.render(rgb, rgb, faces[0], RenderRequest("sad", 0.8, seed=4))
        ref = cpu.render(rgb, rgb, faces[0], req)
        d = np.abs(a.pixels.astype(int) - ref.pixels)[a.mask > 0]
        c = gpu.components
        report.append(f"| {c.kind} | {c.device}, {str(c.dtype).replace('torch.', '')} | {np.array_equal(a.pixels, b.pixels)} | "
                      f"{not np.array_equal(a.pixels, other.pixels)} | {d.mean():.2f} | {d.max()} |")
    from pipeline.engines import diffusion as dmod

    dmod.configure(model=str(ip2p), device=DEVICE)
    r = edit(rgb, "happy", engine="diffusion", detections=faces, gate="emotion", seed=0)
    f = r.faces[0]
    report += ["", f"## 2. edit(engine='diffusion') with the emotion gate, on CUDA", "",
               f"`{r.image.shape[1]}x{r.image.shape[0]}` photo: engine {f.engine}, verdict {f.verdict}, "
               f"attempts {f.attempts}, reason: {f.reason!r} (random weights).", ""]
    return ip2p


def training(data: Path, model: Path, tmp: Path, torch, report: list[str]) -> None:
    """Each precision in its own process (accelerate fixes one per process), as a user runs it."""
    from pipeline.engines import RenderRequest
    from pipeline.engines.diffusion import DiffusionEngine

    rgb, faces = pickle.loads((data / "faces.pkl").read_bytes())["001"]
    report += ["## 3. `mien train` on CUDA (tiny random checkpoint)", "",
               "| mixed precision | steps 4, then --resume to 6 | losses | adapter loads on CUDA and changes the output (mean abs diff) |",
               "| --- | --- | --- | --- |"]
    plain = DiffusionEngine(model=str(model), device=DEVICE).render(rgb, rgb, faces[0], RenderRequest("happy", 1.0, seed=0))
    for precision in ("fp16", "bf16", "no") if DEVICE == "cuda" else ("bf16", "no"):
        out = tmp / f"adapter-{precision}"
        logs = []
        for steps, extra in ((4, []), (6, ["--resume"])):
            p = subprocess.run([sys.executable, __file__, "cli", str(data), "train", str(data), "--model", str(model), "--out", str(out),
                                "--steps", str(steps), "--batch-size", "2", "--lr", "1e-2", "--checkpoint-every", "2",
                                "--mixed-precision", precision, "--gradient-checkpointing", *extra],
                               capture_output=True, text=True, cwd=ROOT, timeout=300)
            logs.append(p.stdout.strip().splitlines()[-1] if p.returncode == 0 else f"FAILED rc={p.returncode}: {p.stderr[-800:]}")
        ok = all("adapter after" in s for s in logs)
        diff = "-"
        if ok:
            tuned = DiffusionEngine(model=str(model), adapter=str(out), device=DEVICE)
            after = tuned.render(rgb, rgb, faces[0], RenderRequest("happy", 1.0, seed=0))
            diff = f"{np.abs(plain.pixels.astype(int) - after.pixels).mean():.2f}"
        info = json.loads((out / "mien_adapter.json").read_text()) if (out / "mien_adapter.json").is_file() else {}
        report.append(f"| {precision} | {'ok' if ok else 'FAILED'} (adapter at {info.get('steps')} steps) | "
                      f"{' / '.join(s.replace('|', '/') for s in logs)} | {diff} |")
    report.append("")


def full_size(photos, data: Path, tmp: Path, torch, report: list[str]) -> None:
    from pipeline import edit
    from pipeline.engines import RenderRequest
    from pipeline.engines.diffusion import DiffusionEngine

    t = time.perf_counter()
    model = build_sd15(tmp, torch)
    built = time.perf_counter() - t
    cuda = DEVICE == "cuda"
    if cuda:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    t = time.perf_counter()
    eng = DiffusionEngine(model=str(model), device=DEVICE)
    load_s = time.perf_counter() - t
    rgb, faces = photos["001@1024"]
    req = RenderRequest("happy", 1.0, seed=0)
    render_ms, r = timed(lambda: eng.render(rgb, rgb, faces[0], req), torch)
    finite = bool(np.isfinite(r.pixels).all()) and r.pixels.std() > 1
    from pipeline.engines import diffusion as dmod

    dmod.configure(model=str(model), device=DEVICE)
    edit(rgb, "happy", engine="diffusion", detections=faces, gate=False, seed=0)  # builds the shared engine
    edit_ms, _ = timed(lambda: edit(rgb, "happy", engine="diffusion", detections=faces, gate=False, seed=0), torch)
    gated_ms, g = timed(lambda: edit(rgb, "happy", engine="diffusion", detections=faces, gate="emotion", seed=0), torch, 3)
    peak = torch.cuda.max_memory_allocated() / 2**30 if cuda else float("nan")
    c = eng.components
    report += ["## 4. Stable Diffusion 1.5's shapes (random weights), fp16 on CUDA", "",
               f"- Built and saved in {built:.0f} s; loaded by the engine in {load_s:.1f} s "
               f"({c.kind}, {c.size} px crop, {c.device}, {str(c.dtype).replace('torch.', '')}); "
               f"{dmod._setting('steps', 20)} steps x strength {dmod._setting('strength', 0.75)}.",
               f"- One render (geometric warp + crop + denoising + paste-ready blend), 1024 px photo: "
               f"**{render_ms:.0f} ms** median of {RUNS}; pixels finite and varied: {finite}.",
               f"- `edit(engine='diffusion', gate=False)`, 1024 px, faces cached: **{edit_ms:.0f} ms**; "
               f"with the emotion gate: {gated_ms:.0f} ms (median of 3; attempts {g.faces[0].attempts}, "
               f"verdict {g.faces[0].verdict}).",
               f"- Peak GPU memory (inference): {peak:.2f} GiB.", ""]
    del eng
    dmod._options.clear()
    if cuda:
        torch.cuda.empty_cache()
    # One training run at full size: fp16 autocast, gradient checkpointing, batch 4, 512 px crops.
    out = tmp / "adapter-sd15"
    code = ("import json, sys, time, torch; from pathlib import Path; sys.path[:0] = ['.', 'scripts'];"
            "import gpu_check; gpu_check.cached_detect(Path(sys.argv[1]));"
            "from pipeline.engines.diffusion.train import train;"
            "t = time.perf_counter(); r = train(Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3]), steps=12, batch_size=4,"
            " mixed_precision=sys.argv[4], gradient_checkpointing=True, checkpoint_every=0, progress=False,"
            " device=sys.argv[5]);"
            "print(json.dumps({'s': time.perf_counter() - t, 'losses': r['losses'],"
            " 'peak': torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else 0}))")
    p = subprocess.run([sys.executable, "-c", code, str(data), str(model), str(out), "fp16" if cuda else "bf16", DEVICE], capture_output=True, text=True,
                       cwd=ROOT, timeout=400)
    if p.returncode:
        report += [f"- Training at full size FAILED: {p.stderr[-1500:]}", ""]
        return
    res = json.loads(p.stdout.strip().splitlines()[-1])
    report += [f"- `train`, 12 steps, batch 4, fp16 autocast over fp32 master weights, gradient checkpointing, LoRA rank 8: "
               f"{res['s']:.0f} s including loading and encoding the pairs; losses all finite: "
               f"{all(np.isfinite(res['losses']))} (first {res['losses'][0]:.3f}, last {res['losses'][-1]:.3f}); "
               f"peak GPU memory {res['peak']:.2f} GiB.", ""]


def run(data: Path, out: Path) -> int:
    import torch

    photos = pickle.loads((data / "faces.pkl").read_bytes())
    report = [f"# Diffusion engine on CUDA ({time.strftime('%Y-%m-%d')})", "",
              f"`python scripts/gpu_check.py run` on {torch.cuda.get_device_name(0) if DEVICE == 'cuda' else 'CPU (dry run)'}, torch {torch.__version__}, "
              f"Python {sys.version.split()[0]}. Random weights throughout (nothing can be downloaded): "
              "these numbers are plumbing, time and memory, never quality.", ""]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        ip2p = families(photos, tmp, torch, report)
        for name, fn in (("training", lambda: training(data, ip2p, tmp, torch, report)),
                         ("full size", lambda: full_size(photos, data, tmp, torch, report))):
            try:
                fn()
            except Exception as e:  # one failing part must not hide the others' results
                import traceback

                report += [f"## {name}: FAILED", "", "```", traceback.format_exc()[-3000:], "```", ""]
                print(f"{name} failed: {e!r}", file=sys.stderr)
            out.write_text("\n".join(report) + "\n")
    out.write_text("\n".join(report) + "\n")
    print("\n".join(report))
    return 0


def main() -> int:
    if sys.argv[1:2] == ["cli"]:  # `mien ...` with prepare's detections (the GPU machine has no detector)
        cached_detect(Path(sys.argv[2]))
        from pipeline.__main__ import main as mien

        return mien(sys.argv[3:])
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=["prepare", "run"])
    ap.add_argument("folder", type=Path)
    ap.add_argument("--out", type=Path, default=Path("gpu_check.md"))
    ap.add_argument("--dry-run", action="store_true", help="on the CPU, with a narrow stand-in model: debugs this script")
    a = ap.parse_args()
    global DEVICE
    DEVICE = "cpu" if a.dry_run else "cuda"
    if a.what == "prepare":
        prepare(a.folder)
        return 0
    return run(a.folder, a.out)


if __name__ == "__main__":
    sys.exit(main())
