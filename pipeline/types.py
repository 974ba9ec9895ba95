"""Small records the stages exchange. Coordinates are full-resolution image pixels (x, y)."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Face:
    """One detected face. `landmarks` is the 468-point face mesh, shape (468, 3): x, y in image
    pixels, z in the same pixel scale (relative depth). `keypoints` are BlazeFace's 6 points
    (right eye, left eye, nose tip, mouth, right ear, left ear — subject's sides)."""
    box: tuple[float, float, float, float]  # x0, y0, x1, y1
    score: float
    keypoints: np.ndarray  # (6, 2)
    landmarks: np.ndarray | None = None  # (468, 3)
    embedding: np.ndarray | None = None  # identity embedding of the input face (filled by the gate)
    emotion_probs: dict[str, float] | None = None  # classifier's view of the input face (gate)
    keypoints5: np.ndarray | None = None  # (5, 2) eyes, nose, mouth corners, when the detector gives them (SCRFD)
    # Which backend made each cache (`registry` names): a cache is reused only by the same model.
    embedding_by: str | None = None
    emotion_probs_by: str | None = None

    @property
    def size(self) -> float:
        x0, y0, x1, y1 = self.box
        return float(max(x1 - x0, y1 - y0))


@dataclass
class FaceEdit:
    """What happened to one face."""
    index: int
    box: tuple[float, float, float, float]
    landmarks_before: np.ndarray  # (468, 3)
    landmarks_after: np.ndarray  # (468, 3)
    emotion: str
    intensity: float
    aus_applied: dict[str, float]  # AU name -> weight actually applied (after neutralising)
    aus_removed: dict[str, float]  # expression estimated in the input and relaxed
    region: tuple[int, int, int, int]  # x0, y0, x1, y1 of the pixels that may have changed
    timings_ms: dict[str, float] = field(default_factory=dict)
    # Filled by the gate (issue 3); None when the gate did not run.
    probs_before: dict[str, float] | None = None
    probs_after: dict[str, float] | None = None
    identity: float | None = None
    verdict: str | None = None  # "accepted" | "rejected" | None
    reason: str | None = None  # plain words ("The smile is not clear enough at 30%.")
    attempts: int = 1
    engine: str = "geometric"  # which engine rendered this face
    requested_intensity: float | None = None  # what the user asked for (= intensity unless strengthened)
    advice: str | None = None  # what to try instead, in plain words, when rejected or strengthened
    detail: str | None = None  # the gate's technical reason (scores and thresholds)
    identity_threshold: float | None = None  # the embedder's same-person threshold for `identity`
    contempt_score: float | None = None  # one-sided corner raise (IOD), the contempt check
    strengthened: bool = False  # auto_strength changed the intensity to pass the gate
    left_unchanged: bool = False  # rejected and, as asked, not pasted: the face is as it was


@dataclass
class EditResult:
    image: np.ndarray  # RGB uint8, same size as the input
    faces: list[FaceEdit]
    faces_detected: int
    timings_ms: dict[str, float] = field(default_factory=dict)

    @property
    def accepted(self) -> bool:
        return all(f.verdict != "rejected" for f in self.faces)

    def summary(self) -> dict:
        """JSON-friendly summary (no arrays)."""
        return {
            "size": [int(self.image.shape[1]), int(self.image.shape[0])],
            "faces_detected": self.faces_detected,
            "faces": [
                {
                    "index": f.index,
                    "box": [round(float(v), 1) for v in f.box],
                    "emotion": f.emotion,
                    "intensity": f.intensity,
                    "aus_applied": {k: round(v, 3) for k, v in f.aus_applied.items()},
                    "aus_removed": {k: round(v, 3) for k, v in f.aus_removed.items()},
                    "region": list(f.region),
                    "probs_before": f.probs_before,
                    "probs_after": f.probs_after,
                    "identity": f.identity,
                    "verdict": f.verdict,
                    "reason": f.reason,
                    "attempts": f.attempts,
                    "engine": f.engine,
                    "requested_intensity": f.requested_intensity,
                    "advice": f.advice,
                    "detail": f.detail,
                    "identity_threshold": f.identity_threshold,
                    "contempt_score": f.contempt_score,
                    "strengthened": f.strengthened,
                    "left_unchanged": f.left_unchanged,
                    "timings_ms": {k: round(v, 2) for k, v in f.timings_ms.items()},
                }
                for f in self.faces
            ],
            "timings_ms": {k: round(v, 2) for k, v in self.timings_ms.items()},
        }
