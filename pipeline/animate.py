"""Smooth transitions: a short eased animation from the face's current expression to a target.

Frame k is the ungated edit at intensity I * ease(k / (N - 1)) (cosine ease-in-out), with the faces
detected once (`edit(detections=...)`), so every frame warps the same landmarks by a smoothly
growing displacement: no re-detection jitter, and pixels outside the faces' regions keep their
exact values in every frame. Frame 0 is the photo as it is. The photo is scaled down first so its
longest side is at most `MAX_SIDE` (animations are for screens, and each frame is a full edit).

Writes a GIF (Pillow; one palette for all frames and no dithering, so the background does not
shimmer) or an MP4 (OpenCV's mp4v encoder, part of opencv-python's wheel; no download).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .emotions import check_intensity, normalize_emotion
from .errors import InvalidRequest, MienError

MAX_SIDE = 720
HOLD = 4  # the last frame stays this many frame times (the eye needs a moment at the target)


def ease(t: np.ndarray) -> np.ndarray:
    """Cosine ease-in-out: 0 -> 1 with zero speed at both ends."""
    return (1 - np.cos(np.pi * np.clip(t, 0, 1))) / 2


def fit_size(rgb: np.ndarray, max_side: int = MAX_SIDE) -> np.ndarray:
    import cv2

    h, w = rgb.shape[:2]
    k = max_side / max(h, w)
    if k >= 1:
        return rgb
    return cv2.resize(rgb, (max(1, round(w * k)), max(1, round(h * k))), interpolation=cv2.INTER_AREA)


def frames(image, emotion: str = "happy", intensity: float = 1.0, n_frames: int = 16, faces="all", aus=None,
           reference=None, strength: float = 1.0, max_side: int = MAX_SIDE) -> list[np.ndarray]:
    """RGB frames (uint8) from the current expression to `emotion` at `intensity` (or to the
    expression of the face in `reference`, at `strength`)."""
    from .editor import edit, select_faces
    from .emotions import parse_aus
    from .imageio import load_image
    from .measure import faces_of

    if not 2 <= int(n_frames) <= 120:
        raise InvalidRequest(f"An animation has 2 to 120 frames (got {n_frames}).")
    if reference is not None:
        from .transfer import reference_request

        emotion, intensity, aus, _ = reference_request(reference, strength, aus)
    emotion, intensity, aus = normalize_emotion(emotion), check_intensity(intensity), parse_aus(aus)
    rgb, detections = faces_of(fit_size(load_image(image).rgb, max_side))
    chosen = [detections[i] for i in select_faces(faces, len(detections))]
    reach = intensity * _reach(chosen, emotion, intensity, aus)  # the last frame's intensity
    out = []
    for e in ease(np.linspace(0, 1, int(n_frames))):
        if e == 0:
            out.append(rgb.copy())
            continue
        r = edit(rgb, emotion, reach * e, faces=faces, aus={k: v * e for k, v in aus.items()},
                 detections=detections, gate=False)
        out.append(r.image)
    return out


def _reach(faces, emotion: str, intensity: float, aus: dict[str, float]) -> float:
    """Fraction of `intensity` at which the edit stops growing: the geometric engine caps a
    request at the strongest fold-free intensity (`expression.plan`), and frames past that cap
    would all be the same (the animation would stall, then stop). The largest over the faces."""
    from .engines.geometric import expression

    recipe = expression.RECIPES[emotion]
    if not recipe or intensity <= 0:
        return 1.0
    au = max(recipe, key=recipe.get)
    got = [expression.plan(f.landmarks, emotion, intensity, aus).applied.get(au, 0.0) - aus.get(au, 0.0)
           for f in faces]
    return float(np.clip(max(got) / (recipe[au] * intensity), 0.05, 1.0))


def save(frames_: list[np.ndarray], path, fps: float = 12.0) -> Path:
    """Write `frames_` as .gif or .mp4 (by the suffix)."""
    path = Path(path)
    if not 1 <= fps <= 60:
        raise InvalidRequest(f"fps must be between 1 and 60 (got {fps}).")
    suffix = path.suffix.lower()
    if suffix == ".gif":
        _save_gif(frames_, path, fps)
    elif suffix == ".mp4":
        _save_mp4(frames_, path, fps)
    else:
        raise InvalidRequest(f"An animation is saved as .gif or .mp4 (got '{path.name}').")
    return path


def _save_gif(frames_: list[np.ndarray], path: Path, fps: float) -> None:
    from PIL import Image

    # One adaptive palette from the first and last frames (the extremes of the change), applied
    # to every frame without dithering: error diffusion would spread the face's changes into the
    # background and make it flicker.
    ends = Image.fromarray(np.concatenate([frames_[0], frames_[-1]], axis=0))
    pal = ends.quantize(colors=256, method=Image.Quantize.MEDIANCUT)
    ims = [Image.fromarray(f).quantize(palette=pal, dither=Image.Dither.NONE) for f in frames_]
    ms = round(1000 / fps)
    ims[0].save(path, save_all=True, append_images=ims[1:], duration=[ms] * (len(ims) - 1) + [ms * HOLD],
                loop=0, optimize=False, disposal=1)


def _save_mp4(frames_: list[np.ndarray], path: Path, fps: float) -> None:
    import cv2

    h, w = frames_[0].shape[:2]
    # mp4v wants even sizes on some players; crop one pixel rather than scale (no resampling blur).
    h2, w2 = h - h % 2, w - w % 2
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), float(fps), (w2, h2))
    if not writer.isOpened():
        raise MienError("No MP4 encoder is available here (OpenCV's mp4v): save a .gif instead.")
    try:
        for f in list(frames_) + [frames_[-1]] * (HOLD - 1):
            writer.write(np.ascontiguousarray(f[:h2, :w2, ::-1]))
    finally:
        writer.release()


def animate(image, out, emotion: str = "happy", intensity: float = 1.0, n_frames: int = 16, fps: float = 12.0,
            **kwargs) -> Path:
    """`frames` written to `out` (.gif or .mp4). kwargs: faces, aus, reference, strength, max_side."""
    return save(frames(image, emotion, intensity, n_frames, **kwargs), out, fps)
