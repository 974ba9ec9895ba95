"""The diffusion engine, end to end on real London photos, with TINY RANDOM STAND-INS for the
model: nothing can be downloaded here, so each test builds a UNet, a VAE, a CLIP text encoder, a
CLIP tokenizer (from a vocabulary and merges written below) and a scheduler in code, saves them
with `save_pretrained` and loads them back through the engine's own `from_pretrained` path
(local_files_only). Random weights make a face of coloured noise: these tests prove the plumbing
(conditioning, crop, mask, paste, seed, gate, training, adapter loading, errors), not the quality
that real weights would give (docs/diffusion.md)."""
import json
import math
import os
import shutil
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest

from pipeline.engines import EngineUnavailable, RenderRequest, get_engine

from .conftest import LONDON, london

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")


# accelerate fixes the mixed precision once per process, so every training run here uses the same.
PRECISION = "bf16"


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """One intra-op thread: the suite shares 2 cores with other processes, and torch's spinning
    worker threads made this file about 6x slower under that load (247 s against 39 s)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def build_tiny_model(folder, in_channels: int = 8):
    """A diffusers-format checkpoint (model_index.json, unet/, vae/, text_encoder/, tokenizer/,
    scheduler/) of a few hundred thousand random parameters; 8 input channels = InstructPix2Pix,
    9 = inpainting, 4 = plain SD. Crops are 32 px (latents 16 px)."""
    from diffusers import (
        AutoencoderKL,
        EulerAncestralDiscreteScheduler,
        StableDiffusionInstructPix2PixPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    torch.manual_seed(0)
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for ch in "abcdefghijklmnopqrstuvwxyz,.":
        vocab[ch], vocab[ch + "</w>"] = len(vocab), len(vocab) + 1
    vocab["th"], vocab["the</w>"] = len(vocab), len(vocab) + 1
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\nt h\nth e</w>\n")
    tokenizer = CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"), model_max_length=77)
    text_encoder = CLIPTextModel(CLIPTextConfig(hidden_size=32, intermediate_size=37, num_hidden_layers=2,
                                                num_attention_heads=4, vocab_size=len(vocab), bos_token_id=0,
                                                eos_token_id=1, pad_token_id=1))
    unet = UNet2DConditionModel(sample_size=16, in_channels=in_channels, out_channels=4, layers_per_block=1,
                                block_out_channels=(32, 64), down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                                up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), cross_attention_dim=32,
                                attention_head_dim=8)
    vae = AutoencoderKL(block_out_channels=(32, 64), down_block_types=("DownEncoderBlock2D",) * 2,
                        up_block_types=("UpDecoderBlock2D",) * 2, latent_channels=4, sample_size=32)
    scheduler = EulerAncestralDiscreteScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear")
    # Saved as diffusers' own pipeline saves it: the same layout a hub checkpoint has.
    StableDiffusionInstructPix2PixPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
                                           scheduler=scheduler, safety_checker=None, feature_extractor=None,
                                           requires_safety_checker=False).save_pretrained(folder / "model")
    return folder / "model"


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    """A tiny random stand-in for timbrooks/instruct-pix2pix (no real weights can be downloaded here)."""
    return build_tiny_model(tmp_path_factory.mktemp("tiny"))


@pytest.fixture
def diffusion(tiny_model):
    """The shared engine, configured as the CLI's --diffusion-model does; reset afterwards."""
    from pipeline.engines import diffusion as d

    d.configure(model=str(tiny_model))
    yield get_engine("diffusion")
    d._options.clear()
    d.configure()


@pytest.fixture(scope="module")
def photo():
    from pipeline.editor import detect

    return detect(london("001"))


def test_tiny_checkpoint_reloads_from_disk_as_an_instruct_pix2pix_model(diffusion, tiny_model):
    c = diffusion.components
    assert (tiny_model / "model_index.json").is_file()
    assert c.kind == "instruct-pix2pix" and c.unet.config.in_channels == 8 and c.size == 32
    assert c.device == "cpu" and c.dtype == torch.float32
    assert "diffusion:" in diffusion.describe() and "instruct-pix2pix" in diffusion.describe()


def test_from_pure_noise_the_loop_equals_diffusers_instruct_pix2pix_pipeline(diffusion, tiny_model, photo):
    from diffusers import StableDiffusionInstructPix2PixPipeline
    from PIL import Image

    from pipeline.engines.diffusion import model as m

    c = diffusion.components  # the engine's own loop, run from pure noise as the pipeline always is
    crop = cv2.resize(photo[0], (c.size, c.size), interpolation=cv2.INTER_AREA)
    ours = m.generate(c, crop, np.ones(crop.shape[:2], np.float32), "happy", 1.0, seed=5, steps=4, strength=1.0)
    pipe = StableDiffusionInstructPix2PixPipeline.from_pretrained(
        tiny_model, local_files_only=True, safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    cond, uncond = m.conditioning(c, "happy", 1.0)
    ref = pipe(prompt_embeds=cond, negative_prompt_embeds=uncond, image=Image.fromarray(crop), num_inference_steps=4,
               guidance_scale=7.5, image_guidance_scale=1.5, generator=torch.Generator().manual_seed(5),
               output_type="np").images[0]
    assert ours.std() > 10 and np.abs((ref * 255).round().astype(int) - ours).max() <= 1


def test_edit_changes_only_the_face_oval_and_is_reproducible(diffusion, photo):
    from pipeline import edit

    rgb, faces = photo
    r = diffusion.render(rgb, rgb, faces[0], RenderRequest("happy", 1.0, seed=0))
    assert r.engine == "diffusion" and r.mask.dtype == np.float32 and r.pixels.shape[:2] == r.mask.shape
    assert 0 <= r.mask.min() and r.mask.max() == 1.0 and 0 < (r.mask > 0).mean() < 0.9  # feathered oval

    out = edit(rgb, "happy", engine="diffusion", detections=faces, gate=False, seed=0)
    assert out.image.shape == rgb.shape and out.faces[0].engine == "diffusion"
    x0, y0, x1, y1 = r.region
    changed = np.any(out.image != rgb, axis=2)
    inside = np.zeros_like(changed)
    inside[y0:y1, x0:x1] = r.mask > 0
    assert changed.sum() > 1000 and not (changed & ~inside).any()  # nothing outside the alpha moved
    assert np.array_equal(out.image, edit(rgb, "happy", engine="diffusion", detections=faces, gate=False, seed=0).image)
    assert not np.array_equal(out.image, edit(rgb, "happy", engine="diffusion", detections=faces, gate=False, seed=1).image)


def test_the_gate_judges_diffusion_results_unchanged(diffusion, photo):
    from pipeline import edit
    from pipeline.gate import Check

    rgb, faces = photo
    f = edit(rgb, "happy", engine="diffusion", detections=faces, seed=0).faces[0]
    # A face of random-weight noise: the gate runs as for any engine and (rightly) rejects it.
    assert f.engine == "diffusion" and f.verdict == "rejected" and f.reason
    # Retries ask the engine for its next request: the geometric policy, on the next seed.
    g = edit(rgb, "happy", engine="diffusion", detections=faces, seed=0, auto_strength=True).faces[0]
    assert g.engine == "diffusion" and g.attempts >= 2
    missed = Check(False, "the smile is not clear enough", {"neutral": 0.9, "happy": 0.1}, 0.1, 0.9, True)
    nxt = diffusion.next_request(RenderRequest("happy", 0.6, seed=7), missed)
    assert (nxt.seed, nxt.attempt, nxt.intensity) == (8, 2, 0.85)  # the geometric policy: 0.6 x 1.25 + 0.1
    assert diffusion.next_request(RenderRequest("happy", 1.5, seed=7), missed).seed == 8  # at the top: a new seed


@pytest.mark.parametrize("channels, kind", [(9, "inpainting"), (4, "img2img")])
def test_the_other_sd_families_render_and_train_too(tmp_path, photo, channels, kind):
    from pipeline.engines.diffusion import DiffusionEngine
    from pipeline.engines.diffusion.train import train

    rgb, faces = photo
    model = build_tiny_model(tmp_path, channels)
    eng = DiffusionEngine(model=str(model))
    a, b = (eng.render(rgb, rgb, faces[0], RenderRequest("sad", 0.8, seed=3)) for _ in range(2))
    assert eng.components.kind == kind and np.array_equal(a.pixels, b.pixels)
    assert np.any(a.pixels != rgb[a.region[1]:a.region[3], a.region[0]:a.region[2]])
    data = tmp_path / "pairs"
    data.mkdir()
    for kind_ in ("neutral", "happy"):
        shutil.copy(london("021", kind_), data)
    r = train(data, str(model), tmp_path / "adapter", steps=1, batch_size=1, checkpoint_every=0,
              mixed_precision=PRECISION, progress=False)
    assert r["pairs"] == 1 and math.isfinite(r["loss"])


def test_missing_weights_give_one_line_and_the_geometric_engine_keeps_working(tmp_path, capsys, monkeypatch):
    from huggingface_hub import constants

    from pipeline import edit
    from pipeline.__main__ import main
    from pipeline.engines import diffusion as d

    d._options.clear()
    d.configure()
    with pytest.raises(EngineUnavailable, match="needs a model: set MIEN_DIFFUSION_MODEL") as e:
        get_engine("diffusion")
    assert "\n" not in str(e.value)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)  # offline: a hub id must fail fast, not download
    for name, words in ((str(tmp_path / "nope"), "does not exist"), ("mien-tests/no-such-model", "could not be loaded")):
        with pytest.raises(EngineUnavailable, match=words) as e:
            d.DiffusionEngine(model=name)
        assert "\n" not in str(e.value)
    # Online but no network: one quick probe, not the hub client's ~25 s of retries per file.
    import httpx
    import huggingface_hub

    def unreachable(*a, **k):
        raise httpx.ConnectError("Name or service not known")

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(huggingface_hub, "model_info", unreachable)
    t = time.perf_counter()
    with pytest.raises(EngineUnavailable, match="hub cannot be reached") as e:
        d.DiffusionEngine(model="mien-tests/no-such-model")
    assert "\n" not in str(e.value) and time.perf_counter() - t < 10
    rc = main(["edit", str(london("005")), "--engine", "diffusion", "--diffusion-model", str(tmp_path / "nope"),
               "--out", str(tmp_path / "x.png")])
    err = capsys.readouterr().err
    assert rc == 1 and err.count("\n") == 1 and "does not exist" in err and not (tmp_path / "x.png").exists()
    rc = main(["train", str(LONDON), "--model", "mien-tests/no-such-model", "--out", str(tmp_path / "a"),
               "--mixed-precision", PRECISION])
    err = capsys.readouterr().err
    assert rc == 1 and err.count("\n") == 1 and "could not be loaded" in err
    d._options.clear()
    d.configure()
    assert edit(london("005"), "happy", engine="geometric", gate=False).faces[0].engine == "geometric"


def test_read_pairs_from_person_folders_and_labels_csv(tmp_path):
    from pipeline.engines.diffusion.train import read_pairs
    from pipeline.errors import InvalidRequest

    for person in ("a", "b"):
        (tmp_path / "rafd" / person).mkdir(parents=True)
        for e in ("neutral", "happiness", "surprised"):
            shutil.copy(london("001"), tmp_path / "rafd" / person / f"{e}.jpg")
    pairs = read_pairs(tmp_path / "rafd")
    assert sorted((p.source.parent.name, p.emotion) for p in pairs) == [
        ("a", "happy"), ("a", "surprised"), ("b", "happy"), ("b", "surprised")]
    assert all(p.source.name == "neutral.jpg" and p.intensity == 1.0 for p in pairs)

    aug = tmp_path / "aug"
    aug.mkdir()
    (aug / "labels.csv").write_text("source,face,emotion,intensity,verdict,path\n"
                                    "src/1.jpg,0,happy,0.8,accepted,out/1_happy.png\n"
                                    "src/1.jpg,1,sad,1.2,rejected,out/1_sad.png\n")
    [p] = read_pairs(aug)
    assert (p.source, p.target, p.emotion, p.intensity, p.face) == (aug / "src/1.jpg", aug / "out/1_happy.png",
                                                                    "happy", 0.8, 0)
    (tmp_path / "empty").mkdir()
    with pytest.raises(InvalidRequest, match="No training pairs"):
        read_pairs(tmp_path / "empty")


def test_train_saves_an_adapter_that_resumes_reloads_and_changes_the_output(tmp_path, tiny_model, photo, capsys):
    from pipeline.__main__ import main
    from pipeline.engines.diffusion import DiffusionEngine
    from pipeline.engines.diffusion.train import train

    data = tmp_path / "pairs"
    data.mkdir()
    for i in ("001", "005", "021"):  # 3 London people, neutral -> happy
        for kind in ("neutral", "happy"):
            shutil.copy(LONDON / f"{i}_{kind}.jpg", data)
    out = tmp_path / "adapter"
    rc = main(["train", str(data), "--model", str(tiny_model), "--out", str(out), "--steps", "2", "--batch-size", "2",
               "--lr", "1e-2", "--checkpoint-every", "1", "--device", "cpu", "--mixed-precision", PRECISION,
               "--gradient-checkpointing"])
    assert rc == 0 and "adapter after 2 steps on 3 pairs" in capsys.readouterr().out
    assert {p.name for p in out.iterdir()} >= {"pytorch_lora_weights.safetensors", "emotion_embedding.safetensors",
                                              "mien_adapter.json", "checkpoint-1", "checkpoint-2"}
    r = train(data, str(tiny_model), out, steps=4, batch_size=2, lr=1e-2, checkpoint_every=2, resume=True,
              mixed_precision=PRECISION, progress=False)
    assert r["start"] == 2 and len(r["losses"]) == 2 and all(math.isfinite(v) for v in r["losses"])
    assert json.loads((out / "mien_adapter.json").read_text())["steps"] == 4

    rgb, faces = photo
    req = RenderRequest("happy", 1.0, seed=0)
    plain = DiffusionEngine(model=str(tiny_model)).render(rgb, rgb, faces[0], req)
    tuned = DiffusionEngine(model=str(tiny_model), adapter=str(out))
    assert tuned.components.embedding.table.abs().sum() > 0  # the emotion vectors were learned and loaded
    after = tuned.render(rgb, rgb, faces[0], req)
    assert plain.region == after.region and np.abs(plain.pixels.astype(int) - after.pixels).mean() > 0.5


def test_importing_mien_and_editing_geometrically_never_imports_torch():
    code = ("import sys; import pipeline, pipeline.engines.diffusion, pipeline.engines.diffusion.train;"
            "from pipeline.__main__ import build_parser; build_parser();"
            f"from pipeline import edit; edit({str(london('005'))!r}, 'happy', gate=False);"
            "heavy = [m for m in ('torch', 'diffusers', 'transformers', 'peft', 'accelerate') if m in sys.modules];"
            "print(heavy); sys.exit(1 if heavy else 0)")
    p = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr


def test_the_denoising_loop_runs_under_spaces_gpu_when_spaces_is_installed(tmp_path):
    # A stand-in `spaces` package (the real one only works on Hugging Face's machines) that marks
    # what its GPU decorator wrapped.
    (tmp_path / "spaces.py").write_text("def GPU(fn):\n    fn.on_zero_gpu = True\n    return fn\n")
    code = "import pipeline.engines.diffusion.model as m; print(getattr(m.generate, 'on_zero_gpu', False))"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    p = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=120, env=env)
    assert p.stdout.strip().splitlines()[-1] == "True", p.stderr
