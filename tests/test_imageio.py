"""Image loading/saving: a bad-input corpus generated here (no binary fixtures), the colour-mode
conversions, EXIF orientation, and what the outputs do and do not carry."""
from __future__ import annotations

import hashlib
import io
import struct
import zlib

import numpy as np
import pytest
from PIL import ExifTags, Image, ImageCms

from pipeline.errors import ImageLoadError, InvalidRequest
from pipeline.imageio import (MAX_BYTES, MAX_PIXELS, MIN_SIDE, LoadedImage, encode_png,
                              load_image, save_image, to_pil)

SRGB_ICC = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
W, H = 64, 48  # not square, so 90° turns show up in the shape


def pattern(w: int = W, h: int = H) -> np.ndarray:
    """Smooth (JPEG-friendly) and different under each of the 8 flips/rotations."""
    x = np.linspace(0, 255, w)[None, :].repeat(h, 0)
    y = np.linspace(0, 255, h)[:, None].repeat(w, 1)
    return np.stack([x, y, np.full_like(x, 90)], axis=2).astype(np.uint8)


def encode(im: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


def png_bytes(w: int = W, h: int = H, mode: str = "RGB", **kw) -> bytes:
    return encode(Image.new(mode, (w, h), "gray" if mode != "1" else 1), "PNG", **kw)


def patch_png_size(data: bytes, w: int, h: int) -> bytes:
    """Rewrite IHDR width/height (and its CRC): the header lies, the pixel data does not."""
    assert data[12:16] == b"IHDR"
    ihdr = b"IHDR" + struct.pack(">II", w, h) + data[24:29]
    return data[:12] + ihdr + struct.pack(">I", zlib.crc32(ihdr)) + data[33:]


def noise_jpeg() -> bytes:
    rng = np.random.default_rng(0)
    return encode(Image.fromarray(rng.integers(0, 255, (H, W, 3), dtype=np.uint8)), "JPEG")


def refused(src, *words: str, **kw) -> str:
    with pytest.raises(ImageLoadError) as info:
        load_image(src, **kw)
    msg = str(info.value)
    assert msg and "\n" not in msg and msg.endswith("."), msg
    for word in words:
        assert word.lower() in msg.lower(), (word, msg)
    return msg


def mean_diff(a: np.ndarray, b: np.ndarray) -> float:
    assert a.shape == b.shape
    return float(np.abs(a.astype(int) - b.astype(int)).mean())


# ------------------------------------------------------------------------------ bad inputs

BAD_BYTES = {
    "text": (b"hello, this is not a picture\n" * 10, ["not an image", "text/plain"]),
    "html": (b"<!DOCTYPE html><html><body>hi</body></html>", ["not an image", "text/html"]),
    "svg": (b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"></svg>',
            ["not an image", "image/svg+xml"]),
    "eps": (b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 64 64\n", ["text/plain"]),
    "pdf": (b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n", ["application/pdf"]),
    "zip": (b"PK\x03\x04" + bytes(100), ["application/zip"]),
    "mp4": (b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2" + bytes(200), ["video/mp4"]),
    "binary junk": (bytes(range(256)) * 4, ["not an image", "unrecognised"]),
    "heic": (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(500),
             ["HEIC/HEIF", "convert to JPEG or PNG"]),
    "heif mif1": (b"\x00\x00\x00\x18ftypmif1\x00\x00\x00\x00mif1heic" + bytes(500), ["HEIC"]),
    "truncated png": (png_bytes()[:60], ["PNG", "truncated or corrupt"]),
    "truncated jpeg": (noise_jpeg()[:400], ["JPEG", "truncated or corrupt"]),
    "png magic only": (b"\x89PNG\r\n\x1a\n", ["PNG", "truncated or corrupt"]),
    "bomb 30000x30000": (patch_png_size(png_bytes(), 30000, 30000),
                         ["about 900 megapixels", "limit is 60 megapixels"]),
    "1x1": (png_bytes(1, 1), ["1×1 pixels", f"at least {MIN_SIDE} px"]),
    "31x500": (png_bytes(31, 500), ["31×500 pixels"]),
}


@pytest.mark.parametrize("name", list(BAD_BYTES))
def test_bad_bytes_refused_with_one_clear_line(name, tmp_path):
    data, words = BAD_BYTES[name]
    refused(data, *words)
    path = tmp_path / "upload.bin"
    path.write_bytes(data)
    refused(path, *words)
    refused(io.BytesIO(data), *words)


def test_truncated_files_keep_their_header_but_fail_to_decode():
    full = png_bytes(200, 200, "RGB")
    rng = np.random.default_rng(1)  # noise, so the data is long enough to cut in the middle
    full = encode(Image.fromarray(rng.integers(0, 255, (200, 200, 3), dtype=np.uint8)), "PNG")
    refused(full[: len(full) // 2], "PNG file is truncated or corrupt")
    jpeg = noise_jpeg()
    refused(jpeg[: len(jpeg) // 2], "JPEG file is truncated or corrupt")


def test_empty_and_missing_files(tmp_path):
    (tmp_path / "empty.png").write_bytes(b"")
    refused(tmp_path / "empty.png", "empty")
    refused(b"", "empty")
    refused(str(tmp_path / "nope.png"), "not found", "nope.png")
    refused(tmp_path, "folder")
    refused("bad\x00name.png", "cannot read")


def test_wrong_source_types(tmp_path):
    refused(42, "int")
    refused([[0, 0, 0]], "list")
    path = tmp_path / "a.png"
    path.write_bytes(png_bytes())
    with open(path, encoding="latin-1") as text_file:
        refused(text_file, "binary mode")


def test_decompression_bomb_refused_from_header_before_decoding():
    # The pixel data is the original 64×48 image: decoding would fail, so refusing with the size
    # message proves only the header was looked at.
    fake = patch_png_size(png_bytes(), 9000, 9000)  # 81 MP: over ours, under Pillow's warning
    refused(fake, "9000×9000 pixels", "limit is 60 megapixels")


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_pixel_limit_both_sides():
    refused(patch_png_size(png_bytes(), 12000, 9000), "12000×9000 pixels", "60 megapixels")
    # 8160×6144 (a 50 MP phone photo) is under the limit; a solid PNG keeps this cheap.
    big = encode(Image.new("L", (8160, 6144), 200), "PNG", compress_level=1)
    img = load_image(big)
    assert img.rgb.shape == (6144, 8160, 3) and img.rgb[0, 0, 0] == 200
    del img
    # Exactly at / one over a custom limit.
    small = png_bytes(100, 100)
    assert load_image(small, max_pixels=10_000).size == (100, 100)
    refused(small, "100×100", max_pixels=9_999)


def test_byte_limit(tmp_path):
    data = png_bytes()
    path = tmp_path / "a.png"
    path.write_bytes(data)
    refused(path, "limit is 0.0001 MB", max_bytes=100)
    refused(data, "limit is 0.0001 MB", max_bytes=100)
    refused(io.BytesIO(data), "larger than the 0.0001 MB limit", max_bytes=100)
    assert MAX_BYTES == 50_000_000 and MAX_PIXELS == 60_000_000
    assert load_image(path, max_bytes=len(data)).size == (W, H)


def test_jpeg_scan_bomb_refused_before_decoding():
    """Repeating one small progressive scan makes libjpeg re-walk the image each time."""
    data = encode(Image.fromarray(pattern()), "JPEG", progressive=True)
    assert load_image(data).size == (W, H)  # a normal progressive JPEG is fine
    sos = b"\xff\xda"
    starts = [i for i in range(len(data) - 1) if data[i:i + 2] == sos] + [len(data) - 2]
    a, b = starts[-2:]
    bomb = data[:a] + data[a:b] * 500 + data[b:]
    refused(bomb, "JPEG", f"{bomb.count(sos)} scans", "at most 100")


@pytest.mark.filterwarnings("ignore:Corrupt EXIF data")
def test_corrupt_exif_does_not_block_the_photo():
    data = encode(Image.fromarray(pattern()), "JPEG", quality=95, exif=b"Exif\x00\x00MM\x00*junk")
    img = load_image(data)
    assert mean_diff(img.rgb, pattern()) < 3


def test_lazy_pil_image_with_truncated_data():
    rng = np.random.default_rng(2)
    data = encode(Image.fromarray(rng.integers(0, 255, (200, 200, 3), dtype=np.uint8)), "PNG")
    lazy = Image.open(io.BytesIO(data[: len(data) // 2]))
    refused(lazy, "PNG file is truncated or corrupt")


# ------------------------------------------------------------------------------ numpy inputs

def test_numpy_uint8_inputs():
    rgb = pattern()
    img = load_image(rgb)
    assert img.mode == "RGB" and img.format is None and img.alpha is None
    assert np.array_equal(img.rgb, rgb) and img.rgb.flags.c_contiguous
    assert not np.shares_memory(img.rgb, rgb)  # editing the result never touches the caller's
    gray = rgb[..., 0]
    img = load_image(gray)
    assert img.mode == "L" and np.array_equal(img.rgb, np.repeat(gray[..., None], 3, 2))
    assert load_image(gray[..., None]).mode == "L"
    rgba = np.dstack([rgb, np.full((H, W), 7, np.uint8)])
    img = load_image(rgba)
    assert img.mode == "RGBA" and np.array_equal(img.rgb, rgb) and (img.alpha == 7).all()
    img = load_image(rgb[:, ::-1])  # non-contiguous view
    assert img.rgb.flags.c_contiguous and np.array_equal(img.rgb, rgb[:, ::-1])


def test_numpy_uint16_and_float_are_scaled():
    u16 = (pattern().astype(np.uint16) * 257)
    assert np.array_equal(load_image(u16).rgb, pattern())
    assert load_image(u16[..., 0]).mode == "I;16"
    assert np.array_equal(load_image(u16.astype(">u2")).rgb, pattern())
    f = pattern().astype(np.float32) / 255
    assert np.array_equal(load_image(f).rgb, pattern())
    assert np.array_equal(load_image(f.astype(np.float64) + 1e-4).rgb[..., 2],
                          pattern()[..., 2])  # tiny rounding outside [0, 1] is tolerated
    assert load_image(np.ones((H, W), np.float16)).rgb.max() == 255


@pytest.mark.parametrize("arr, words", [
    (np.full((H, W, 3), np.nan, np.float32), ["NaN or infinite"]),
    (np.where(np.eye(H, W)[..., None] > 0, np.inf, 0.5).repeat(3, 2), ["NaN or infinite"]),
    (np.full((H, W, 3), 255.0), ["[0, 1]", "255", "uint8"]),
    (np.full((H, W, 3), -0.5), ["[0, 1]"]),
    (np.zeros((H, W, 2), np.uint8), ["shape (48, 64, 2)"]),
    (np.zeros((H, W, 5), np.uint8), ["shape (48, 64, 5)"]),
    (np.zeros(W, np.uint8), ["shape (64,)"]),
    (np.zeros((2, H, W, 3), np.uint8), ["shape (2, 48, 64, 3)"]),
    (np.zeros((H, W, 3), np.int64), ["int64"]),
    (np.zeros((H, W, 3), bool), ["bool"]),
    (np.zeros((H, W, 3), complex), ["complex128"]),
    (np.zeros((H, W, 3), object), ["object"]),
    (np.zeros((0, 0, 3), np.uint8), ["0×0 pixels"]),
    (np.zeros((10, 1000, 3), np.uint8), ["1000×10 pixels", "at least 32"]),
    (np.broadcast_to(np.uint8(0), (9000, 12000, 3)), ["12000×9000", "60 megapixels"]),
], ids=lambda v: "" if isinstance(v, list) else f"{v.dtype}{v.shape}")
def test_numpy_bad_arrays(arr, words):
    refused(arr, *words)


# ------------------------------------------------------------------------------ modes

def test_rgba_png_keeps_alpha():
    rgba = np.dstack([pattern(), np.tile(np.arange(W, dtype=np.uint8) * 4, (H, 1))])
    img = load_image(encode(Image.fromarray(rgba), "PNG"))
    assert img.mode == "RGBA" and img.format == "PNG"
    assert np.array_equal(img.rgb, pattern()) and np.array_equal(img.alpha, rgba[..., 3])


def test_palette_png_with_transparency():
    pal = Image.new("P", (W, H), 1)
    pal.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    pal.paste(0, (0, 0, 10, 10))
    img = load_image(encode(pal, "PNG", transparency=0))
    assert img.mode == "P" and img.rgb.dtype == np.uint8 and img.rgb.shape == (H, W, 3)
    assert (img.alpha[:10, :10] == 0).all() and (img.alpha[10:, 10:] == 255).all()
    assert tuple(img.rgb[20, 20]) == (0, 0, 255)
    opaque = load_image(encode(pal, "PNG"))
    assert opaque.alpha is None and tuple(opaque.rgb[0, 0]) == (255, 0, 0)


def test_gray_la_and_bilevel():
    gray = pattern()[..., 0]
    img = load_image(encode(Image.fromarray(gray), "PNG"))
    assert img.mode == "L" and np.array_equal(img.rgb, np.repeat(gray[..., None], 3, 2))
    la = Image.fromarray(np.dstack([gray, 255 - gray]))
    assert la.mode == "LA"
    img = load_image(encode(la, "PNG"))
    assert img.mode == "LA" and np.array_equal(img.alpha, 255 - gray)
    img = load_image(png_bytes(mode="1"))
    assert img.mode == "1" and (img.rgb == 255).all()


def test_16bit_png_is_scaled_not_clipped():
    u16 = (pattern()[..., 1].astype(np.uint16) * 257)
    data = encode(Image.fromarray(u16), "PNG")
    img = load_image(data)
    assert img.mode.startswith("I")
    assert np.array_equal(img.rgb[..., 0], pattern()[..., 1])


def test_cmyk_jpeg_converted_to_rgb():
    cmyk = Image.new("CMYK", (W, H), (255, 0, 0, 0))  # cyan
    cmyk.paste((0, 0, 0, 0), (0, 0, W // 2, H))  # white left half
    for extra in ({}, {"icc_profile": SRGB_ICC}, {"icc_profile": b"not a profile" * 20}):
        img = load_image(encode(cmyk, "JPEG", quality=95, **extra))
        assert img.mode == "CMYK" and img.icc is None  # pixels are sRGB now
        assert mean_diff(img.rgb[:, :W // 2 - 4], np.full((H, W // 2 - 4, 3), 255)) < 3
        assert mean_diff(img.rgb[:, W // 2 + 4:], np.full((H, W // 2 - 4, 3), (0, 255, 255))) < 4


@pytest.mark.parametrize("fmt", ["BMP", "TIFF", "WEBP"])
def test_other_formats(fmt):
    kw = {"lossless": True} if fmt == "WEBP" else {}
    img = load_image(encode(Image.fromarray(pattern()), fmt, **kw))
    assert img.format == fmt and np.array_equal(img.rgb, pattern())


def test_pil_image_input_is_not_modified():
    src = Image.fromarray(np.dstack([pattern(), np.full((H, W), 9, np.uint8)]))
    img = load_image(src)
    assert img.mode == "RGBA" and img.format is None and (img.alpha == 9).all()
    assert src.mode == "RGBA" and src.size == (W, H)


# ------------------------------------------------------------------------------ orientation

def stored_for(orientation: int, upright: np.ndarray) -> np.ndarray:
    """Pixels a camera writes so that viewers applying `orientation` show `upright`
    (EXIF 2.3 semantics, written independently of Pillow's table)."""
    return {
        1: upright,
        2: upright[:, ::-1],
        3: upright[::-1, ::-1],
        4: upright[::-1],
        5: upright.transpose(1, 0, 2),
        6: np.rot90(upright, 1),  # viewer turns it 90° clockwise
        7: upright[::-1, ::-1].transpose(1, 0, 2),
        8: np.rot90(upright, -1),
    }[orientation]


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_applied(orientation):
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = orientation
    stored = np.ascontiguousarray(stored_for(orientation, pattern()))
    data = encode(Image.fromarray(stored), "JPEG", quality=95, exif=exif.tobytes(),
                  icc_profile=SRGB_ICC)
    img = load_image(data)
    assert img.rgb.shape == (H, W, 3) and img.icc == SRGB_ICC
    assert mean_diff(img.rgb, pattern()) < 3
    # Same for a PNG eXIf chunk.
    img = load_image(encode(Image.fromarray(stored), "PNG", exif=exif.tobytes()))
    assert np.array_equal(img.rgb, pattern())


# ------------------------------------------------------------------------------ animation

FRAMES = [(255, 0, 0), (0, 255, 0), (0, 0, 255)]


@pytest.mark.parametrize("fmt, kw", [("GIF", {}), ("WEBP", {"lossless": True}), ("PNG", {})],
                         ids=["gif", "webp", "apng"])
def test_animated_first_frame(fmt, kw):
    frames = [Image.new("RGB", (W, H), c) for c in FRAMES]
    data = encode(frames[0], fmt, save_all=True, append_images=frames[1:], duration=100, **kw)
    assert getattr(Image.open(io.BytesIO(data)), "n_frames", 1) == 3
    img = load_image(data)
    assert img.rgb.shape == (H, W, 3) and (img.rgb == FRAMES[0]).all()


# ------------------------------------------------------------------------------ outputs

def gps_jpeg() -> bytes:
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "PhoneCo"
    exif[ExifTags.Base.Orientation] = 1
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = (52.0, 31.0, 12.0)
    data = encode(Image.fromarray(pattern()), "JPEG", quality=95, exif=exif.tobytes(),
                  icc_profile=SRGB_ICC)
    assert Image.open(io.BytesIO(data)).getexif().get_ifd(ExifTags.IFD.GPSInfo)  # sanity
    return data


def save_as(fmt: str, rgb, loaded=None, **kw) -> Image.Image:
    buf = io.BytesIO()
    save_image(buf, rgb, loaded, format=fmt, **kw)
    data = buf.getvalue()
    assert b"Exif" not in data and b"GPS" not in data and b"PhoneCo" not in data
    out = Image.open(io.BytesIO(data))
    assert out.format == {"JPG": "JPEG"}.get(fmt.upper(), fmt.upper())
    return out


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
def test_outputs_strip_exif_and_keep_icc(fmt):
    img = load_image(gps_jpeg())
    assert img.icc == SRGB_ICC
    out = save_as(fmt, img.rgb, img, provenance={"emotion": "happy", "intensity": 0.8})
    assert "exif" not in out.info and not out.getexif() and "xmp" not in out.info
    assert out.info.get("icc_profile") == SRGB_ICC


def test_provenance_notes():
    rgb = pattern()
    prov = {"emotion": "happy", "intensity": 0.8}
    png = Image.open(io.BytesIO(encode_png(rgb, provenance=prov)))
    assert png.text["Software"] == "Mien"
    assert png.text["Description"] == "expression edited with Mien: emotion=happy intensity=0.8"
    jpeg = save_as("jpg", rgb, provenance=prov)
    assert jpeg.info["comment"] == b"expression edited with Mien: emotion=happy intensity=0.8"
    bare = Image.open(io.BytesIO(encode_png(rgb)))
    assert bare.text["Description"] == "expression edited with Mien"
    odd = Image.open(io.BytesIO(encode_png(rgb, provenance={"emotion": "sad\nface\x00", "é": 1})))
    assert odd.text["Description"] == "expression edited with Mien: emotion=sad_face é=1"
    aus = Image.open(io.BytesIO(encode_png(rgb, provenance={"aus": {"AU12": 0.5, "AU6": 0.25}})))
    assert aus.text["Description"] == "expression edited with Mien: aus=AU12:0.5,AU6:0.25"
    pil = to_pil(rgb, provenance=prov)
    assert pil.info["Software"] == "Mien" and "emotion=happy" in pil.info["Description"]


def rgba_loaded() -> LoadedImage:
    alpha = np.tile(np.arange(W, dtype=np.uint8), (H, 1))
    return load_image(encode(Image.fromarray(np.dstack([pattern(), alpha])), "PNG",
                             icc_profile=SRGB_ICC))


@pytest.mark.parametrize("source, out_mode", [
    (lambda: load_image(pattern()), "RGB"),
    (rgba_loaded, "RGBA"),
    (lambda: load_image(encode(Image.fromarray(pattern()[..., 0]), "PNG")), "L"),
    (lambda: load_image(encode(Image.fromarray(np.dstack([pattern()[..., :1]] * 2)), "PNG")),
     "LA"),
    (lambda: load_image(png_bytes(mode="1")), "L"),
    (lambda: load_image(encode(Image.fromarray(pattern()[..., 0].astype(np.uint16) * 257),
                               "PNG")), "L"),
    (lambda: load_image(encode(Image.new("CMYK", (W, H), (0, 99, 0, 0)), "JPEG")), "RGB"),
    (lambda: load_image(encode(Image.new("P", (W, H), 0), "PNG", transparency=0)), "RGBA"),
    (lambda: load_image(encode(Image.new("P", (W, H), 0), "PNG")), "RGB"),
], ids=["rgb", "rgba", "l", "la", "1", "i16", "cmyk", "p-trns", "p"])
def test_mode_round_trip(source, out_mode):
    img = source()
    out = Image.open(io.BytesIO(encode_png(img.rgb, img)))
    assert out.mode == out_mode
    if img.alpha is not None:
        assert np.array_equal(np.asarray(out.getchannel("A")), img.alpha)
    if out_mode.startswith("L"):
        assert np.array_equal(np.asarray(out.getchannel("L")), img.rgb[..., 0])
    else:
        assert np.array_equal(np.asarray(out.convert("RGB")), img.rgb)


def test_icc_only_where_it_fits_the_output():
    gray_with_rgb_profile = load_image(encode(Image.fromarray(pattern()[..., 0]), "PNG",
                                              icc_profile=SRGB_ICC))
    out = Image.open(io.BytesIO(encode_png(gray_with_rgb_profile.rgb, gray_with_rgb_profile)))
    assert out.mode == "L" and "icc_profile" not in out.info


def test_jpeg_output_of_transparent_input_is_flattened():
    img = rgba_loaded()
    out = save_as("JPEG", img.rgb, img)
    assert out.mode == "RGB"
    assert mean_diff(np.asarray(out)[:, :2], np.full((H, 2, 3), 255)) < 4  # alpha≈0 -> white


def format_of(path) -> str:
    with Image.open(path) as im:
        return im.format


def test_save_image_paths_and_formats(tmp_path):
    img = rgba_loaded()
    for name, fmt in [("a.png", "PNG"), ("b.JPG", "JPEG"), ("c.jpeg", "JPEG"), ("d.webp", "WEBP")]:
        save_image(tmp_path / name, img.rgb, img)
        assert format_of(tmp_path / name) == fmt
    save_image(str(tmp_path / "noext"), img.rgb, load_image(gps_jpeg()))
    assert format_of(tmp_path / "noext") == "JPEG"  # follows the input
    save_image(tmp_path / "e.png", img.rgb, format="webp")
    assert format_of(tmp_path / "e.png") == "WEBP"  # explicit format wins
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "b.JPG", "c.jpeg", "d.webp",
                                                          "e.png", "noext"]  # no temp files
    with pytest.raises(InvalidRequest, match=r"\.gif"):
        save_image(tmp_path / "x.gif", img.rgb)
    with pytest.raises(InvalidRequest, match="TIFF"):
        save_image(tmp_path / "x.png", img.rgb, format="TIFF")
    assert not (tmp_path / "x.gif").exists() and not (tmp_path / "x.png").exists()
    with pytest.raises(InvalidRequest, match="Cannot write"):
        save_image(tmp_path / "missing-folder" / "x.png", img.rgb)


def test_to_pil_rejects_bad_arrays():
    with pytest.raises(InvalidRequest, match="H×W×3 uint8"):
        to_pil(pattern().astype(np.float32))
    with pytest.raises(InvalidRequest, match="H×W×3 uint8"):
        to_pil(pattern()[..., 0])
    with pytest.raises(InvalidRequest, match="alpha"):
        to_pil(pattern(32, 32), rgba_loaded())


def test_source_file_is_never_modified(tmp_path):
    path = tmp_path / "photo.jpg"
    path.write_bytes(gps_jpeg())
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    mtime = path.stat().st_mtime_ns
    img = load_image(path)
    assert img.name == "photo.jpg" and img.format == "JPEG"
    with open(path, "rb") as f:
        load_image(f)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before
    assert path.stat().st_mtime_ns == mtime
