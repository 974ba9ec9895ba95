"""Fuzzing `load_image`: whatever bytes arrive, it returns a valid `LoadedImage` or raises
`ImageLoadError`, never anything else, and quickly.

CI runs a small budget (MIEN_FUZZ_EXAMPLES, default 200 examples per test). A longer run:

    MIEN_FUZZ_EXAMPLES=20000 python -m pytest tests/test_fuzz_imageio.py -q

Failing inputs are printed by hypothesis (`Falsifying example: ...`); turn one into a regular
test in tests/test_imageio.py. No example database is written (database=None), so runs leave no
files in the repository.
"""
from __future__ import annotations

import io
import os
import time

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from PIL import Image  # noqa: E402

from pipeline.errors import ImageLoadError  # noqa: E402
from pipeline.imageio import LoadedImage, load_image  # noqa: E402

# Pillow warns about many malformed details it works around; here only exceptions matter.
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning",
                                        "ignore::PIL.Image.DecompressionBombWarning")

EXAMPLES = int(os.environ.get("MIEN_FUZZ_EXAMPLES", "200"))
SECONDS_PER_INPUT = 5.0  # generous for slow CI; real inputs here decode in milliseconds

fuzz = settings(max_examples=EXAMPLES, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _seed(fmt: str, mode: str = "RGB", animated: bool = False, **kw) -> bytes:
    """A small valid image (just over MIN_SIDE, so mutations can land on both sides of it)."""
    rng = np.random.default_rng(len(fmt))
    rgb = rng.integers(0, 255, (36, 40, 3), dtype=np.uint8)
    rgb[:, :20] = (200, 120, 40)  # some flat area, so the compressed streams are not all noise
    im = Image.fromarray(rgb)
    if mode == "I;16":
        im = Image.fromarray(rgb[..., 0].astype(np.uint16) * 257)
    elif mode != "RGB":
        im = im.convert(mode)
    if animated:
        kw.update(save_all=True, append_images=[im.transpose(Image.Transpose.FLIP_LEFT_RIGHT)])
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


def _exif() -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate
    exif.get_ifd(0x8825)[2] = (52.0, 31.0, 12.0)  # GPS latitude
    return exif.tobytes()


SEEDS = {
    "png": _seed("PNG"),
    "png-rgba": _seed("PNG", mode="RGBA"),
    "png-16bit": _seed("PNG", mode="I;16"),
    "png-palette": _seed("PNG", mode="P", transparency=3),
    "png-la": _seed("PNG", mode="LA"),
    "apng": _seed("PNG", animated=True),
    "jpeg": _seed("JPEG", quality=80),
    "jpeg-progressive": _seed("JPEG", progressive=True),
    "jpeg-exif": _seed("JPEG", exif=_exif()),
    "jpeg-cmyk": _seed("JPEG", mode="CMYK"),
    "gif": _seed("GIF", animated=True),
    "webp": _seed("WEBP", quality=80),
    "webp-anim": _seed("WEBP", animated=True, lossless=True),
    "bmp": _seed("BMP"),
    "tiff": _seed("TIFF", compression="tiff_deflate"),
}


def check(data: bytes) -> None:
    start = time.perf_counter()
    try:
        img = load_image(data)
    except ImageLoadError as e:
        msg = str(e)
        assert msg and "\n" not in msg, repr(msg)
    else:
        assert isinstance(img, LoadedImage)
        h, w = img.rgb.shape[:2]
        assert img.rgb.shape == (h, w, 3) and img.rgb.dtype == np.uint8
        assert img.rgb.flags.c_contiguous
        assert img.alpha is None or (img.alpha.shape == (h, w) and img.alpha.dtype == np.uint8)
    assert time.perf_counter() - start < SECONDS_PER_INPUT


@st.composite
def mutated(draw) -> bytes:
    """A seed image with a few bit flips, byte overwrites, cut or duplicated spans, or a cut."""
    data = bytearray(SEEDS[draw(st.sampled_from(sorted(SEEDS)))])
    for _ in range(draw(st.integers(1, 8))):
        if not data:
            break
        op = draw(st.sampled_from(["flip", "byte", "delete", "duplicate", "truncate"]))
        i = draw(st.integers(0, len(data) - 1))
        if op == "flip":
            data[i] ^= 1 << draw(st.integers(0, 7))
        elif op == "byte":
            data[i] = draw(st.sampled_from([0x00, 0xFF, 0x7F, 0x80, draw(st.integers(0, 255))]))
        elif op == "delete":
            del data[i:i + draw(st.integers(1, 64))]
        elif op == "duplicate":
            data[i:i] = data[i:i + draw(st.integers(1, 64))]
        else:
            del data[i:]
    return bytes(data)


@fuzz
@given(st.binary(max_size=4096))
def test_random_bytes(data):
    check(data)


@fuzz
@given(st.sampled_from(sorted(SEEDS)), st.binary(min_size=1, max_size=512))
def test_valid_header_then_garbage(name, tail):
    """The header of a real file followed by junk: gets past format detection."""
    seed = SEEDS[name]
    check(seed[: min(len(seed) // 4, 64)] + tail)


@fuzz
@given(mutated())
def test_mutated_images(data):
    check(data)


def test_seeds_are_valid():
    for name, data in SEEDS.items():
        assert sorted(load_image(data).size) == [36, 40], name  # jpeg-exif is turned 90°
