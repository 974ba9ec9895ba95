"""Typed errors. Every failure a user can cause is a `MienError` with a one-line message that the
CLI prints and the app shows as-is; anything else is a bug."""


class MienError(Exception):
    """Base class: a problem with the input or the request, explained in one line."""


class ImageLoadError(MienError):
    """The file is not an image we can read (corrupt, unsupported format, too large, ...)."""


class NoFaceError(MienError):
    """No usable face was found in the image."""


class InvalidRequest(MienError):
    """A parameter is out of range or unknown (emotion name, intensity, AU name, face index)."""
