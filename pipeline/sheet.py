"""A before/after contact sheet: each photo, then the same photo edited to every emotion.

    python -m pipeline sheet                       # test photos + insightface's t1.jpg
    python -m pipeline sheet a.jpg b.jpg --out out/sheet.png --intensity 1.2
"""
from __future__ import annotations

from importlib.util import find_spec
from pathlib import Path

import cv2
import numpy as np

from .datasets import TEST_DATA
from .emotions import EMOTIONS
from .errors import MienError


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


def make_sheet(images, out, intensity: float = 1.0, size: int = 256) -> Path:
    from .editor import detect, edit

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
            rows.extend(np.concatenate(tiles[i:i + 3], 1) for i in range(0, len(tiles), 3))
            continue
        rows.append(np.concatenate(tiles, 1))
    width = max(r.shape[1] for r in rows)
    sheet = np.concatenate([np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows])
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(out), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
    return out
