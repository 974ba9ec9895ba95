"""What the app draws and writes for the user: display copies, numbered faces, intensity-strip
tiles, the check table, the banner of a rejected edit and the status line. Pure functions of the
library's `FaceEdit` objects; no Gradio here."""
from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ..gate import pct
from ..types import FaceEdit

DISPLAY_MAX = 1280  # longest side of the pictures shown in the page (the download is full size)
STRIP_STEPS = (0, 25, 50, 75, 100, 125, 150)  # percent
TILE = 240  # px of one intensity-strip tile


def display(rgb: np.ndarray) -> np.ndarray:
    h, w = rgb.shape[:2]
    if max(h, w) <= DISPLAY_MAX:
        return rgb
    k = DISPLAY_MAX / max(h, w)
    return np.asarray(Image.fromarray(rgb).resize((round(w * k), round(h * k)), Image.BILINEAR))


def _font(size: int):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1
        return ImageFont.load_default()


def numbered(small: np.ndarray, faces: list, full_shape) -> np.ndarray:
    """Face boxes with their numbers (the numbers the face picker and the API use)."""
    im = Image.fromarray(small).copy()
    k = small.shape[1] / full_shape[1]
    draw = ImageDraw.Draw(im)
    lw = max(2, round(max(im.size) / 300))
    font = _font(max(14, round(max(im.size) / 30)))
    for i, f in enumerate(faces):
        x0, y0, x1, y1 = (v * k for v in f.box)
        draw.rectangle((x0, y0, x1, y1), outline=(255, 214, 0), width=lw)
        tx0, ty0, tx1, ty1 = draw.textbbox((x0, y0), str(i), font=font)
        pad = lw + 2
        ly = max(0, y0 - (ty1 - ty0) - 2 * pad)
        draw.rectangle((x0, ly, x0 + (tx1 - tx0) + 2 * pad, ly + (ty1 - ty0) + 2 * pad), fill=(255, 214, 0))
        draw.text((x0 + pad - (tx0 - x0), ly + pad - (ty0 - y0)), str(i), fill=(0, 0, 0), font=font)
    return np.asarray(im)


def face_square(shape, box, margin: float = 0.8) -> tuple[int, int, int, int]:
    h, w = shape[:2]
    x0, y0, x1, y1 = box
    cx, cy, r = (x0 + x1) / 2, (y0 + y1) / 2, max(x1 - x0, y1 - y0) * margin
    r = max(8.0, min(r, w / 2, h / 2))
    cx, cy = min(max(cx, r), w - r), min(max(cy, r), h - r)  # slide the square inside the photo
    return int(cx - r), int(cy - r), int(cx + r), int(cy + r)


def tile(rgb: np.ndarray, square) -> np.ndarray:
    x0, y0, x1, y1 = square
    return np.asarray(Image.fromarray(rgb[y0:y1, x0:x1]).resize((TILE, TILE), Image.LANCZOS))


# ------------------------------------------------------------------------------- check texts

def rejected(f: FaceEdit) -> bool:
    return f.verdict == "rejected"


def same_person(f: FaceEdit) -> str:
    if f.identity is None:
        return "not checked"
    word = "yes" if f.identity_threshold is None or f.identity >= f.identity_threshold else "no"
    need = "" if f.identity_threshold is None else f", needs {f.identity_threshold:.2f}"
    return f"{word} ({f.identity:.2f}{need})"


def check_word(f: FaceEdit) -> str:
    if f.verdict is None:
        return "not checked"
    if f.left_unchanged:
        return "rejected, left unchanged"
    return f.verdict


def change_text(f: FaceEdit, extra: tuple = ()) -> str:
    text = f"{f.emotion} {pct(f.intensity)}"
    asked = f.requested_intensity
    if asked is not None and abs(asked - f.intensity) > 1e-3:  # auto strength changed it
        text += f" (asked {pct(asked)})"
    if extra:
        text += " + " + ", ".join(f"{a} {pct(v)}" for a, v in extra)
    return text


def what_it_read(f: FaceEdit) -> str:
    """What the check saw after the edit, in words. Contempt has no classifier class: the
    geometric check (one lip corner up, the other not) is what decides it."""
    if f.verdict is None:
        return "not checked"
    if f.emotion == "contempt" and f.contempt_score is not None:
        from ..gate import CONTEMPT_MIN

        return f"smirk {f.contempt_score:.3f} (needs {CONTEMPT_MIN:.2f})"  # no hyphen: cells break there
    if not f.probs_after:
        return "not checked"
    top = max(f.probs_after, key=f.probs_after.get)
    return f"{top} {pct(f.probs_after[top])}"


IDENTITY_NOTE = ("*Same person*: how alike a face-recognition model finds the edited face and the original "
                 "(1.00 = identical). Below the number it needs, the edit counts as a different person and "
                 "is rejected.")


def check_table(edits: list[FaceEdit], n_faces: int, plan: dict) -> str:
    """Markdown table of the checks, one row per edited face, with a note on what the numbers mean."""
    if not edits:
        return "No face is changed yet: pick an emotion (and a face) to edit."
    rows = ["| Face | Change | Check | Reads as | Same person? |", "|---|---|---|---|---|"]
    for f in edits:
        extra = plan.get(f.index, (None, None, ()))[2]
        rows.append(f"| {f.index} | {change_text(f, extra)} | {check_word(f)} | {what_it_read(f)} "
                    f"| {same_person(f)} |")
    notes = []
    unchanged = n_faces - len(edits)
    if unchanged > 0:
        notes.append(f"{unchanged} other face(s) left unchanged.")
    if any(f.identity is not None for f in edits):
        notes.append(IDENTITY_NOTE)
    return "\n".join(rows) + "".join(f"\n\n{n}" for n in notes)


def banner(edits: list[FaceEdit]) -> str:
    """The mark over the result when an edit was rejected: the reason and what to try, in words."""
    lines = []
    for f in edits:
        if rejected(f):
            what = "left unchanged, as asked" if f.left_unchanged else "shown, but did not pass the check"
            lines.append(f"**Face {f.index}: REJECTED ({what}).** {f.reason or ''} {f.advice or ''}".strip())
        elif f.strengthened and f.advice:
            lines.append(f"Face {f.index}: {f.advice}")
    return "\n\n".join(lines)


def result_label(edits: list[FaceEdit]) -> str:
    bad = [f.index for f in edits if rejected(f)]
    if not bad:
        return "After" if edits else "Result"
    faces = ", ".join(str(i) for i in bad)
    return f"After: REJECTED edit (face {faces}), see the note below"


def download_suffix(edits: list[FaceEdit]) -> str:
    if any(rejected(f) and not f.left_unchanged for f in edits):
        return "_REJECTED"
    return ""


def status_line(n_faces: int, edits: list[FaceEdit], ms: float, checked: bool) -> str:
    found = f"{n_faces} face{'s' if n_faces != 1 else ''} found"
    engines = sorted({f.engine for f in edits})
    by = f" by the {', '.join(engines)} engine" if engines else ""
    if not checked:
        return f"{found} · preview{by} in {ms:.0f} ms · checking when you let go"
    return f"{found} · edited{by} and checked in {ms:.0f} ms"


def scores(f: FaceEdit | None, after: bool):
    """(value, label) of one score panel: the classifier's probabilities before/after the edit;
    for contempt, after the edit, the geometric check in words."""
    if f is None:
        return None, "Scores after" if after else "Scores before"
    name = f"face {f.index}"
    if not after:
        return f.probs_before or "not checked", f"Before ({name})"
    if f.emotion == "contempt" and f.contempt_score is not None:
        from ..gate import CONTEMPT_MIN

        word = "passed" if f.contempt_score >= CONTEMPT_MIN else "not passed"
        return f"{word}: {what_it_read(f)}", f"After ({name}): contempt check"
    return f.probs_after or "not checked", f"After ({name})"
