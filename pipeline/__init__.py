"""Mien: change the facial expression in a photo, keeping who the person is and the rest of the photo.

    from pipeline import edit
    result = edit("photo.jpg", "happy", intensity=0.8)
    result.image  # RGB numpy array, same size as the input

Heavy modules load on first use, so importing this package is fast.
"""
from .errors import ImageLoadError, InvalidRequest, MienError, NoFaceError
from .emotions import AU_NAMES, EMOTIONS
from .types import EditResult, Face, FaceEdit


def edit(*args, **kwargs) -> EditResult:
    from .editor import edit as _edit

    return _edit(*args, **kwargs)


edit.__doc__ = "See pipeline.editor.edit."


def detect(image):
    from .editor import detect as _detect

    return _detect(image)


__all__ = ["edit", "detect", "EditResult", "Face", "FaceEdit", "EMOTIONS", "AU_NAMES", "MienError",
           "ImageLoadError", "NoFaceError", "InvalidRequest"]
