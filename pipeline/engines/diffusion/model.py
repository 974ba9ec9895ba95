"""The torch side of the diffusion engine: load a Stable-Diffusion-family checkpoint and an emotion
adapter, and run the denoising loop on one face crop. Imported only when the engine is chosen
(importing `pipeline` never imports torch).

Which checkpoints fit is decided by the UNet's input channels, as in diffusers' own pipelines:
- 8: InstructPix2Pix (`timbrooks/instruct-pix2pix`): the crop's latents are concatenated to the
  noisy latents; emotion as an instruction, two-way classifier-free guidance (text and image).
- 9: SD inpainting (`stable-diffusion-v1-5/stable-diffusion-inpainting` and its family): mask and
  masked-crop latents concatenated; the face is repainted, the rest of the crop conditions it.
- 4: any plain SD 1.x/2.x text-to-image checkpoint, run as img2img (SDEdit) from the warped crop.
The emotion adapter (trained by `mien train`) is a LoRA on the UNet's attention plus a learned
emotion x intensity vector added to every text token.
"""
from __future__ import annotations

import inspect
import json
from dataclasses import dataclass
from pathlib import Path

try:  # ZeroGPU Spaces: `spaces` must be imported before torch touches CUDA
    import spaces

    GPU = spaces.GPU
except ImportError:  # anywhere else the decorator is a no-op
    def GPU(fn):
        return fn

import numpy as np
import torch

from ...emotions import EMOTIONS

ADAPTER_CONFIG = "mien_adapter.json"
EMBEDDING_FILE = "emotion_embedding.safetensors"
LORA_FILE = "pytorch_lora_weights.safetensors"  # diffusers' name: `load_lora_weights` reads it too
LORA_TARGETS = ["to_q", "to_k", "to_v", "to_out.0"]

# How each emotion is asked for; InstructPix2Pix was trained on instructions of this form.
WORDS = {"neutral": "a neutral, relaxed", "happy": "a happy, smiling", "sad": "a sad",
         "angry": "an angry", "fearful": "a frightened", "disgusted": "a disgusted",
         "surprised": "a surprised", "contempt": "a contemptuous"}


def prompt_for(emotion: str, intensity: float) -> str:
    degree = "slightly " if intensity < 0.5 else "very " if intensity > 1.1 else ""
    return f"give the person {degree}{WORDS[emotion]} expression, same person, photo"


def pick_device(name: str | None = None) -> str:
    """`name` if given, else cuda, then Apple's mps, then cpu."""
    if name:
        return name
    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


class EmotionEmbedding(torch.nn.Module):
    """One learned vector per emotion, scaled by the intensity and added to every text token.
    Starts at zero, so an untrained adapter leaves the base model's output as it was."""

    def __init__(self, dim: int):
        super().__init__()
        self.table = torch.nn.Parameter(torch.zeros(len(EMOTIONS), dim))

    def forward(self, emotion: str | list[str], intensity) -> torch.Tensor:
        names = [emotion] if isinstance(emotion, str) else list(emotion)
        idx = torch.tensor([EMOTIONS.index(e) for e in names], device=self.table.device)
        k = torch.as_tensor(intensity, dtype=self.table.dtype, device=self.table.device).reshape(-1, 1)
        return (self.table[idx] * k)[:, None, :]  # (B, 1, dim): broadcast over the tokens


@dataclass
class Components:
    unet: object
    vae: object
    text_encoder: object
    tokenizer: object
    scheduler: object
    embedding: EmotionEmbedding
    device: str
    dtype: torch.dtype
    adapter: str | None = None

    @property
    def kind(self) -> str:
        return {8: "instruct-pix2pix", 9: "inpainting", 4: "img2img"}.get(self.unet.config.in_channels, "unknown")

    @property
    def vae_scale(self) -> int:
        return 2 ** (len(self.vae.config.block_out_channels) - 1)

    @property
    def size(self) -> int:
        """The crop side in pixels the model was trained at (512 for SD 1.x)."""
        return int(self.unet.config.sample_size) * self.vae_scale

    def encode_text(self, prompts: list[str]) -> torch.Tensor:
        tok = self.tokenizer(prompts, padding="max_length", max_length=self.tokenizer.model_max_length,
                             truncation=True, return_tensors="pt")
        return self.text_encoder(tok.input_ids.to(self.device))[0]

    def encode_image(self, rgb: np.ndarray | torch.Tensor, scaled: bool) -> torch.Tensor:
        """Latents of (B, H, W, 3) uint8 crops: the distribution's mode; `scaled` = times the VAE's
        scaling factor (denoised latents are; InstructPix2Pix's conditioning latents are not)."""
        return self._encode(to_tensor(rgb), scaled)

    def _encode(self, x: torch.Tensor, scaled: bool) -> torch.Tensor:
        z = self.vae.encode(x.to(self.device, self.vae.dtype)).latent_dist.mode()
        return z * self.vae.config.scaling_factor if scaled else z

    def inpaint_condition(self, rgb, masks) -> torch.Tensor:
        """SD inpainting's extra UNet inputs for (B, H, W, 3) crops and (B, H, W) masks (1 = repaint):
        the mask at latent size and the latents of the crop with that part blanked to grey."""
        m = torch.as_tensor(np.asarray(masks), dtype=torch.float32)[:, None]
        masked = self._encode(to_tensor(rgb) * (m < 0.5), scaled=True)
        return torch.cat([torch.nn.functional.interpolate(m, size=masked.shape[-2:]).to(masked), masked], 1)

    def decode(self, latents: torch.Tensor) -> np.ndarray:
        x = self.vae.decode(latents / self.vae.config.scaling_factor).sample
        return ((x.float().clamp(-1, 1) + 1) * 127.5 + 0.5).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


def to_tensor(rgb) -> torch.Tensor:
    """(B, H, W, 3) uint8 -> (B, 3, H, W) float in -1..1."""
    x = torch.as_tensor(np.asarray(rgb)) if not torch.is_tensor(rgb) else rgb
    if x.ndim == 3:
        x = x[None]
    return x.permute(0, 3, 1, 2).float() / 127.5 - 1


def offline() -> bool:
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


def source(name: str, marker: str = "unet/config.json") -> tuple[str, bool]:
    """(what `from_pretrained` gets, local_files_only): a folder as it is; a hub id from the cache
    when offline or cached, else after one quick request that the hub is reachable and has it
    (the hub client's own retries would wait ~25 s on a machine without a network)."""
    p = Path(name).expanduser()
    if p.is_dir():
        return str(p), True
    import httpx
    from huggingface_hub import model_info, try_to_load_from_cache
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError

    # `marker`: a file that loading fetches (by subfolder, model_index.json never is).
    if offline() or isinstance(try_to_load_from_cache(name, marker), str):
        return name, True
    try:
        model_info(name, timeout=10)
    except GatedRepoError:
        raise OSError(f"{name} is gated: accept its licence on the hub and log in (HF_TOKEN)") from None
    except RepositoryNotFoundError:
        raise OSError(f"there is no {name} on the Hugging Face hub (or it is private)") from None
    except (httpx.HTTPError, OSError) as e:  # httpx's connection errors are not OSErrors
        raise OSError(f"the Hugging Face hub cannot be reached ({e}); set HF_HUB_OFFLINE=1 and use a local folder "
                      "or a cached model") from None
    return name, False


def _snapshot(name: str) -> Path:
    """An adapter folder: local, or the hub snapshot (downloaded when `source` allows)."""
    where, local_only = source(name, LORA_FILE)
    if Path(where).is_dir():
        return Path(where)
    from huggingface_hub import snapshot_download

    return Path(snapshot_download(where, local_files_only=local_only))


def load(model: str, adapter: str | None = None, device: str | None = None, dtype=None) -> Components:
    """Load a diffusers-format checkpoint (hub id or folder with unet/, vae/, text_encoder/,
    tokenizer/, scheduler/) and, optionally, an adapter folder written by `mien train`."""
    import diffusers
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTokenizer

    device = pick_device(device)
    dtype = dtype or (torch.float16 if device in ("cuda", "mps") else torch.float32)
    model, local_only = source(model)
    kw = {"local_files_only": local_only}
    unet = UNet2DConditionModel.from_pretrained(model, subfolder="unet", torch_dtype=dtype, **kw)
    vae = AutoencoderKL.from_pretrained(model, subfolder="vae", torch_dtype=dtype, **kw)
    text_encoder = CLIPTextModel.from_pretrained(model, subfolder="text_encoder", torch_dtype=dtype, **kw)
    tokenizer = CLIPTokenizer.from_pretrained(model, subfolder="tokenizer", **kw)
    sched_cfg = diffusers.DDIMScheduler.load_config(model, subfolder="scheduler", **kw)
    scheduler = getattr(diffusers, sched_cfg["_class_name"]).from_config(sched_cfg)
    for m in (unet, vae, text_encoder):
        m.requires_grad_(False).eval().to(device)
    emb = EmotionEmbedding(text_encoder.config.hidden_size).to(device, dtype)
    c = Components(unet, vae, text_encoder, tokenizer, scheduler, emb, device, dtype)
    if adapter:
        load_adapter(c, _snapshot(adapter))
        c.adapter = adapter
    return c


def load_adapter(c: Components, folder: Path) -> None:
    """LoRA (diffusers format) into the UNet and the emotion vectors into the embedding."""
    from diffusers.loaders import StableDiffusionLoraLoaderMixin
    from safetensors.torch import load_file

    if not (folder / LORA_FILE).is_file():
        raise FileNotFoundError(f"no {LORA_FILE} in {folder}")
    state, alphas = StableDiffusionLoraLoaderMixin.lora_state_dict(str(folder), weight_name=LORA_FILE)
    c.unet.load_lora_adapter(state, network_alphas=alphas, prefix="unet", adapter_name="mien")
    for name, p in c.unet.named_parameters():  # the new LoRA layers only (a whole-UNet .to() warns)
        if "lora_" in name:
            p.data = p.data.to(c.device, c.dtype)
    if (folder / EMBEDDING_FILE).is_file():
        table = load_file(str(folder / EMBEDDING_FILE))["table"]
        c.embedding.table.data.copy_(table.to(c.embedding.table))


def save_adapter(folder: Path, unet, embedding: EmotionEmbedding, info: dict) -> None:
    """Write the LoRA (diffusers' `pytorch_lora_weights.safetensors`), the emotion vectors and a
    small JSON of how it was trained."""
    from diffusers.loaders import StableDiffusionLoraLoaderMixin
    from diffusers.utils import convert_state_dict_to_diffusers
    from peft.utils import get_peft_model_state_dict
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    lora = convert_state_dict_to_diffusers(get_peft_model_state_dict(unet))
    StableDiffusionLoraLoaderMixin.save_lora_weights(str(folder), unet_lora_layers=lora, weight_name=LORA_FILE)
    save_file({"table": embedding.table.detach().float().cpu().contiguous()}, str(folder / EMBEDDING_FILE))
    (folder / ADAPTER_CONFIG).write_text(json.dumps({"emotions": list(EMOTIONS), **info}, indent=2))


def conditioning(c: Components, emotion: str, intensity: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(text embeddings with the emotion vector added, unconditional embeddings)."""
    text = c.encode_text([prompt_for(emotion, intensity), ""])
    cond = text[:1] + c.embedding(emotion, intensity).to(text.dtype)
    return cond, text[1:]


def _step_kwargs(scheduler, generator) -> dict:
    # Ancestral/SDE schedulers draw noise in step(): give them the seeded generator.
    return {"generator": generator} if "generator" in inspect.signature(scheduler.step).parameters else {}


@GPU
@torch.no_grad()
def generate(c: Components, crop: np.ndarray, mask: np.ndarray, emotion: str, intensity: float, seed: int,
             steps: int = 20, strength: float = 0.75, guidance: float = 7.5,
             image_guidance: float = 1.5) -> np.ndarray:
    """Refine one (S, S, 3) uint8 crop (the geometric engine's result) towards `emotion`; `mask`
    (S, S) float 0..1 = where the inpainting family may repaint. Same seed, same pixels."""
    g = torch.Generator(device="cpu").manual_seed(int(seed))
    cond, uncond = conditioning(c, emotion, intensity)
    sched = c.scheduler
    sched.set_timesteps(steps, device=c.device)
    # SDEdit: start part-way down the schedule from the noised crop, so the geometry survives.
    start = min(round(steps * (1 - strength)), steps - 1)
    timesteps = sched.timesteps[start * sched.order:]
    if hasattr(sched, "set_begin_index"):
        sched.set_begin_index(start * sched.order)
    init = c.encode_image(crop, scaled=True)
    noise = torch.randn(init.shape, generator=g, dtype=torch.float32).to(c.device, init.dtype)
    latents = sched.add_noise(init, noise, timesteps[:1]) if strength < 1 else noise * sched.init_noise_sigma
    kind = c.kind
    if kind == "instruct-pix2pix":
        img = c.encode_image(crop, scaled=False)
        extra = torch.cat([img, img, torch.zeros_like(img)])
        text = torch.cat([cond, uncond, uncond])
    else:
        text = torch.cat([cond, uncond])
        extra = c.inpaint_condition(crop[None], mask[None]).repeat(2, 1, 1, 1) if kind == "inpainting" else None
    n = text.shape[0]
    for t in timesteps:
        x = sched.scale_model_input(torch.cat([latents] * n), t)
        if extra is not None:
            x = torch.cat([x, extra], 1)
        eps = c.unet(x, t, encoder_hidden_states=text).sample
        if n == 3:  # InstructPix2Pix's guidance: text against image-only, image against nothing
            e_text, e_img, e_none = eps.chunk(3)
            eps = e_none + guidance * (e_text - e_img) + image_guidance * (e_img - e_none)
        else:
            e_text, e_none = eps.chunk(2)
            eps = e_none + guidance * (e_text - e_none)
        latents = sched.step(eps, t, latents, **_step_kwargs(sched, g)).prev_sample
    return c.decode(latents)[0]
