"""A before/after contact sheet: each photo, then the same photo edited to every emotion.

    python -m pipeline sheet                       # test photos + insightface's t1.jpg
    python -m pipeline sheet a.jpg b.jpg --out out/sheet.png --intensity 1.2
    python -m pipeline sheet --zoom mouth          # close-ups: 6 London faces + every face of t1.jpg

`--zoom mouth|eyes|brows` crops every face (one row each, group photos too) to that feature, the
same box for the input and all targets, and edits ungated, so what shows is the renderer at the
intensity asked for.
"""
from __future__ import annotations

from importlib.util import find_spec
from pathlib import Path

import cv2
import numpy as np

from .datasets import SHARED_FACES, TEST_DATA
from .emotions import EMOTIONS
from .errors import InvalidRequest, MienError
from .mesh import EYE_L, EYE_R, LIPS_OUTER

ZOOM_IMAGES = ("001_neutral", "002_happy", "005_neutral", "021_neutral", "025_neutral", "064_happy")
# Feature -> (landmarks whose box is cropped, padding in IOD: left/right, top, bottom). The mouth's
# box reaches down for a dropped jaw; the brows' up over the forehead lines.
BROWS = [70, 63, 105, 66, 107, 336, 296, 334, 293, 300, 46, 276, 55, 285]
ZOOM = {"mouth": (LIPS_OUTER, 0.25, 0.2, 0.45), "eyes": (EYE_L + EYE_R, 0.15, 0.15, 0.12),
        "brows": (BROWS + [9, 151], 0.12, 0.35, 0.2)}


def insightface_sample(name: str = "t1.jpg") -> Path | None:
    """A sample photo shipped in the `insightface` package (found without importing it)."""
    spec = find_spec("insightface")
    if spec is None or not spec.submodule_search_locations:
        return None
    p = Path(list(spec.submodule_search_locations)[0]) / "data" / "images" / name
    return p if p.exists() else None


def default_images() -> list[Path]:
    imgs = sorted((TEST_DATA / "london").glob("*_neutral.jpg"))[:3]
    t1 = insightface_sample()
    return imgs + ([t1] if t1 else [])


def _tile(rgb: np.ndarray, box, size: int, label: str) -> np.ndarray:
    x0, y0, x1, y1 = box
    crop = rgb[y0:y1, x0:x1]
    h, w = crop.shape[:2]
    k = size / max(h, w)
    crop = cv2.resize(crop, (max(1, round(w * k)), max(1, round(h * k))), interpolation=cv2.INTER_AREA)
    tile = np.full((crop.shape[0] + 22, size, 3), 255, np.uint8)  # tiles keep the crop's aspect
    tile[22:22 + crop.shape[0], :crop.shape[1]] = crop
    cv2.putText(tile, label, (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (20, 20, 20), 1, cv2.LINE_AA)
    return tile


def zoom_images() -> list[Path]:
    """The zoom sheet's photos: 6 London faces (two smiles with teeth) and t1.jpg."""
    out = []
    for name in ZOOM_IMAGES:
        p = TEST_DATA / "london" / f"{name}.jpg"
        p = p if p.exists() else SHARED_FACES / "london" / f"{name}.jpg"
        if p.exists():
            out.append(p)
    t1 = insightface_sample()
    return out + ([t1] if t1 else [])


def zoom_box(lm: np.ndarray, feature: str, shape) -> tuple[int, int, int, int]:
    idx, side, top, bottom = ZOOM[feature]
    pts = lm[idx, :2]
    iod = float(np.hypot(*(lm[263, :2] - lm[33, :2])))
    (x0, y0), (x1, y1) = pts.min(0), pts.max(0)
    h, w = shape[:2]
    return (max(int(x0 - side * iod), 0), max(int(y0 - top * iod), 0),
            min(int(x1 + side * iod) + 1, w), min(int(y1 + bottom * iod) + 1, h))


def _rows(tiles_per_row: list[list[np.ndarray]]) -> np.ndarray:
    rows = [np.concatenate(t, 1) for t in tiles_per_row]
    width = max(r.shape[1] for r in rows)
    return np.concatenate([np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows])


def make_zoom_sheet(images, out, feature: str, intensity: float = 1.0, size: int = 256) -> Path:
    """One row per face: the feature's close-up in the input, then every target (ungated)."""
    from .editor import detect, edit

    if feature not in ZOOM:
        raise InvalidRequest(f"--zoom is one of {', '.join(ZOOM)} (got '{feature}').")
    images = [Path(p) for p in images] or zoom_images()
    rows = []
    for path in images:
        rgb, faces = detect(path)
        if not faces:
            raise MienError(f"No face found in {path}.")
        results = {emo: edit(rgb, emo, intensity, detections=faces, gate=False).image for emo in EMOTIONS}
        for i, f in enumerate(faces):
            box = zoom_box(f.landmarks, feature, rgb.shape)
            name = path.stem if len(faces) == 1 else f"{path.stem} #{i}"
            rows.append([_tile(rgb, box, size, name)] + [_tile(img, box, size, emo) for emo, img in results.items()])
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(out), cv2.cvtColor(_rows(rows), cv2.COLOR_RGB2BGR))
    return out


def make_sheet(images, out, intensity: float = 1.0, size: int = 256, zoom: str | None = None) -> Path:
    from .editor import detect, edit

    if zoom:
        return make_zoom_sheet(images, out, zoom, intensity, size)
    images = [Path(p) for p in images] or default_images()
    rows = []
    for path in images:
        rgb, faces = detect(path)
        if not faces:
            raise MienError(f"No face found in {path}.")
        h, w = rgb.shape[:2]
        if len(faces) == 1:  # a portrait: crop around the face so the expression is visible
            x0, y0, x1, y1 = faces[0].box
            c, r = np.array([(x0 + x1) / 2, (y0 + y1) / 2]), max(x1 - x0, y1 - y0) * 0.7
            box = (max(int(c[0] - r), 0), max(int(c[1] - r), 0), min(int(c[0] + r), w), min(int(c[1] + r), h))
        else:  # a group photo: the whole frame
            box = (0, 0, w, h)
        tsize = size if len(faces) == 1 else size * 2  # group photos: bigger tiles, fewer per row
        tiles = [_tile(rgb, box, tsize, f"{path.stem} (input)")]
        for emo in EMOTIONS:
            res = edit(rgb, emo, intensity, detections=faces)
            tiles.append(_tile(res.image, box, tsize, emo))
        if len(faces) > 1:  # 3 tiles a row
            tiles += [np.full_like(tiles[0], 255)] * (-len(tiles) % 3)
            rows.extend(tiles[i:i + 3] for i in range(0, len(tiles), 3))
            continue
        rows.append(tiles)
    sheet = _rows(rows)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(out), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
    return out
