"""`mien train`: fine-tune the diffusion engine's emotion adapter (a LoRA on the UNet's attention
plus the learned emotion x intensity vectors) on pairs (source face, target face, emotion,
intensity), with accelerate (mixed precision, devices) and peft.

Data layouts (`read_pairs`), tried in this order:
1. `labels.csv` in the folder, as a dataset-augmentation command writes it: columns
   `source,face,emotion,intensity,verdict,path` (source photo, face index in it, target emotion and
   intensity, the gate's verdict, the edited photo); rows whose verdict is not "accepted" (or
   empty) are skipped; paths are relative to the CSV's folder.
2. One folder per person with one photo per emotion, RaFD/CK+ style: `<person>/neutral.jpg`,
   `<person>/happy.jpg`, ... (file stems are emotion names or aliases).
3. A flat folder named London-style: `<person>_<emotion>.jpg` (e.g. `001_neutral.jpg`, `001_happy.jpg`).
In 2 and 3 the neutral photo is the source of every other emotion of that person, at intensity 1.
Faces are cropped as the engine crops them (`face_crop`) and resized to the model's size.

Output folder: the adapter (`pytorch_lora_weights.safetensors`, `emotion_embedding.safetensors`,
`mien_adapter.json`) that MIEN_DIFFUSION_ADAPTER / `--adapter` loads, and `checkpoint-<step>/`
every `--checkpoint-every` steps (adapter + optimiser state) that `--resume` continues from.
"""
from __future__ import annotations

import csv
import random
import re
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ...emotions import EMOTION_ALIASES, EMOTIONS
from ...errors import InvalidRequest

IMAGE_EXT = {".jpg", ".jpeg", ".png", ".webp", ".bmp"}
STATE_FILE = "training_state.pt"


@dataclass(frozen=True)
class Pair:
    source: Path
    target: Path
    emotion: str
    intensity: float = 1.0
    face: int = 0  # which face of the source (and of the target) photo


def _emotion_of(stem: str) -> str | None:
    s = stem.strip().lower()
    s = EMOTION_ALIASES.get(s, s)
    return s if s in EMOTIONS else None


def _person_pairs(photos: dict[str, Path]) -> list[Pair]:
    """emotion -> photo of one person: the neutral one is the source of all the others."""
    src = photos.get("neutral")
    return [Pair(src, p, e) for e, p in sorted(photos.items()) if src and e != "neutral"]


def read_pairs(root: Path) -> list[Pair]:
    root = Path(root)
    if not root.is_dir():
        raise InvalidRequest(f"Training data folder {root} does not exist.")
    labels = root / "labels.csv"
    if labels.is_file():
        with labels.open(newline="") as f:
            rows = list(csv.DictReader(f))
        need = {"source", "face", "emotion", "intensity", "verdict", "path"}
        if rows and not need <= set(rows[0]):
            raise InvalidRequest(f"{labels} needs the columns {','.join(sorted(need))}.")
        pairs = [Pair(root / r["source"], root / r["path"], _emotion_of(r["emotion"]) or "", float(r["intensity"]),
                      int(r["face"] or 0))
                 for r in rows if r["verdict"].strip().lower() in ("accepted", "")]
        pairs = [p for p in pairs if p.emotion]
    else:
        people: dict[str, dict[str, Path]] = {}
        for p in sorted(root.rglob("*")):
            if p.suffix.lower() not in IMAGE_EXT:
                continue
            if p.parent != root and (e := _emotion_of(p.stem)):  # <person>/<emotion>.jpg
                people.setdefault(str(p.parent.relative_to(root)), {})[e] = p
            elif (m := re.fullmatch(r"(.+)_([a-z]+)", p.stem.lower())) and (e := _emotion_of(m.group(2))):
                people.setdefault(str(p.parent / m.group(1)), {})[e] = p
        pairs = [x for photos in people.values() for x in _person_pairs(photos)]
    if not pairs:
        raise InvalidRequest(f"No training pairs in {root}: see `mien train --help` for the folder layouts.")
    return pairs


def face_crops(pairs: list[Pair], size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(N, size, size, 3) uint8 source and target crops and the (N, size, size) float32 face-oval
    alphas of the sources (what the inpainting family repaints); a face not found is an error."""
    from ...editor import detect
    from . import face_alpha, face_crop

    def crop(path: Path, index: int) -> tuple[np.ndarray, np.ndarray]:
        rgb, faces = detect(path)
        if index >= len(faces) or faces[index].landmarks is None:
            raise InvalidRequest(f"No face {index} in {path}: remove the pair or fix the photo.")
        box = face_crop(faces[index].landmarks, rgb.shape[:2])
        x0, y0, x1, y1 = box
        alpha = cv2.resize(face_alpha(faces[index].landmarks, box), (size, size), interpolation=cv2.INTER_LINEAR)
        return cv2.resize(rgb[y0:y1, x0:x1], (size, size), interpolation=cv2.INTER_AREA), alpha

    src, masks = zip(*(crop(p.source, p.face) for p in pairs))
    dst = [crop(p.target, p.face)[0] for p in pairs]
    return np.stack(src), np.stack(dst), np.stack(masks)


def _latest_checkpoint(out: Path) -> Path | None:
    found = {int(p.name[11:]): p for p in out.glob("checkpoint-*") if p.name[11:].isdigit()}
    return found[max(found)] if found else None


def train(data: Path, model: str, out: Path, steps: int = 1000, batch_size: int = 4, lr: float = 1e-4,
          rank: int = 8, mixed_precision: str = "no", gradient_checkpointing: bool = False,
          checkpoint_every: int = 500, resume: bool = False, seed: int = 0, device: str | None = None,
          progress: bool = True) -> dict:
    """Train the adapter; returns {"steps", "start", "loss" (last), "losses", "pairs", "out"}.
    accelerate allows one `mixed_precision` per process: a second call must use the same."""
    import torch
    from accelerate import Accelerator
    from diffusers import DDPMScheduler
    from peft import LoraConfig
    from peft.utils import set_peft_model_state_dict
    from tqdm.auto import tqdm

    from . import load_components
    from . import model as m

    pairs = read_pairs(data)
    out = Path(out)
    cpu = (device or "").startswith("cpu") or m.pick_device(device) == "cpu"
    acc = Accelerator(mixed_precision=mixed_precision, cpu=cpu)
    c = load_components(model, device=str(acc.device), dtype=torch.float32)  # fp32 master weights; accelerate autocasts
    unet, emb = c.unet, c.embedding
    unet.add_adapter(LoraConfig(r=rank, lora_alpha=rank, init_lora_weights="gaussian", target_modules=m.LORA_TARGETS))
    if gradient_checkpointing:
        unet.enable_gradient_checkpointing()
    unet.train()
    params = [p for p in unet.parameters() if p.requires_grad] + list(emb.parameters())
    opt = torch.optim.AdamW(params, lr=lr)
    noise_sched = DDPMScheduler.from_config(c.scheduler.config)

    src_rgb, dst_rgb, masks = face_crops(pairs, c.size)
    with torch.no_grad():  # the frozen parts run once: latents and prompt embeddings per pair
        if c.kind == "inpainting":  # the source's surroundings, its face blanked for the target's
            src = torch.cat([c.inpaint_condition(x[None], a[None]) for x, a in zip(src_rgb, masks)])
        else:
            src = torch.cat([c.encode_image(x[None], scaled=c.kind != "instruct-pix2pix") for x in src_rgb])
        dst = torch.cat([c.encode_image(x[None], scaled=True) for x in dst_rgb])
        texts = torch.cat([c.encode_text([m.prompt_for(p.emotion, p.intensity)]) for p in pairs])
        empty = c.encode_text([""])
    emotions = [p.emotion for p in pairs]
    intensity = torch.tensor([p.intensity for p in pairs], device=acc.device)

    start = 0
    ck = _latest_checkpoint(out) if resume else None
    if ck is not None:
        from safetensors.torch import load_file

        state = torch.load(ck / STATE_FILE, map_location=acc.device, weights_only=False)
        set_peft_model_state_dict(unet, state["lora"])
        emb.table.data.copy_(load_file(str(ck / m.EMBEDDING_FILE))["table"].to(emb.table))
        opt.load_state_dict(state["optimizer"])
        start = int(state["step"])
        torch.set_rng_state(state["rng"])
    unet, emb, opt = acc.prepare(unet, emb, opt)

    gen = torch.Generator().manual_seed(seed + start)
    rng = random.Random(seed + start)
    losses = []
    bar = tqdm(range(start, steps), initial=start, total=steps, desc="train", disable=not progress)
    for step in bar:
        idx = [rng.randrange(len(pairs)) for _ in range(batch_size)]
        target = dst[idx]
        noise = torch.randn(target.shape, generator=gen).to(target)
        t = torch.randint(0, noise_sched.config.num_train_timesteps, (len(idx),), generator=gen).to(acc.device)
        noisy = noise_sched.add_noise(target, noise, t)
        # InstructPix2Pix's conditioning dropout (text and image each dropped 5% of the time)
        # keeps both classifier-free guidance scales meaningful after fine-tuning.
        keep_text, keep_img = (torch.rand(2, len(idx), generator=gen) >= 0.05).to(acc.device)
        vec = acc.unwrap_model(emb)([emotions[i] for i in idx], intensity[idx])
        text = torch.where(keep_text[:, None, None], texts[idx] + vec, empty)
        x = noisy
        if c.kind == "instruct-pix2pix":
            x = torch.cat([noisy, src[idx] * keep_img[:, None, None, None]], 1)
        elif c.kind == "inpainting":
            x = torch.cat([noisy, src[idx]], 1)
        with acc.autocast():
            pred = unet(x, t, encoder_hidden_states=text).sample
        goal = noise_sched.get_velocity(target, noise, t) if noise_sched.config.prediction_type == "v_prediction" else noise
        loss = torch.nn.functional.mse_loss(pred.float(), goal.float())
        acc.backward(loss)
        opt.step()
        opt.zero_grad()
        losses.append(loss.detach().item())
        bar.set_postfix(loss=f"{losses[-1]:.4f}")
        done = step + 1
        if checkpoint_every and (done % checkpoint_every == 0 or done == steps):  # the last too: --resume goes on
            _save(out / f"checkpoint-{done}", acc, unet, emb, opt, done, model, pairs, torch, with_state=True)
    _save(out, acc, unet, emb, opt, steps, model, pairs, torch, with_state=False)
    return {"steps": steps, "start": start, "loss": losses[-1] if losses else None, "losses": losses,
            "pairs": len(pairs), "out": str(out)}


def _save(folder: Path, acc, unet, emb, opt, step: int, model: str, pairs, torch, with_state: bool) -> None:
    from peft.utils import get_peft_model_state_dict

    from . import model as m

    u, e = acc.unwrap_model(unet), acc.unwrap_model(emb)
    m.save_adapter(folder, u, e, {"base_model": model, "steps": step, "pairs": len(pairs),
                                  "lora_rank": u.peft_config["default"].r, "lora_targets": m.LORA_TARGETS})
    if with_state:
        torch.save({"lora": get_peft_model_state_dict(u), "optimizer": opt.state_dict(), "step": step,
                    "rng": torch.get_rng_state()}, folder / STATE_FILE)


def add_arguments(p) -> None:
    """The `mien train` flags (the subparser is made in pipeline/__main__.py)."""
    import argparse

    p.description, p.formatter_class = __doc__, argparse.RawDescriptionHelpFormatter
    p.add_argument("data", help="training pairs: a folder in one of the layouts above")
    p.add_argument("--model", default=None, help="base model: hub id or folder (default MIEN_DIFFUSION_MODEL)")
    p.add_argument("--out", required=True, help="adapter folder to write (checkpoints go inside)")
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--rank", type=int, default=8, help="LoRA rank")
    p.add_argument("--mixed-precision", choices=["no", "fp16", "bf16"], default="no",
                   help="fp16 needs a GPU; bf16 runs on recent CPUs and GPUs")
    p.add_argument("--gradient-checkpointing", action="store_true", help="less memory, slower (activations are recomputed)")
    p.add_argument("--checkpoint-every", type=int, default=500, help="steps between checkpoints (0 = none)")
    p.add_argument("--resume", action="store_true", help="continue from the latest checkpoint in --out")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default=None,
                   help="cpu forces the CPU; otherwise accelerate takes the best there is (CUDA_VISIBLE_DEVICES picks a GPU)")
    p.set_defaults(func=run)


def run(a) -> int:
    from . import _setting

    model = a.model or _setting("model")
    if not model:
        raise InvalidRequest("mien train needs a base model: --model or MIEN_DIFFUSION_MODEL (a hub id or a folder).")
    r = train(Path(a.data), model, Path(a.out), steps=a.steps, batch_size=a.batch_size, lr=a.lr, rank=a.rank,
              mixed_precision=a.mixed_precision, gradient_checkpointing=a.gradient_checkpointing,
              checkpoint_every=a.checkpoint_every, resume=a.resume, seed=a.seed, device=a.device)
    print(f"{r['out']}: adapter after {r['steps']} steps on {r['pairs']} pairs, last loss {r['loss']:.4f}"
          if r["loss"] is not None else f"{r['out']}: already at {r['steps']} steps")
    return 0
