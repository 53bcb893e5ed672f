"""The errors of image handling: bad archives, bad content, no matching platform, bad unpacks.

All are :class:`~pycontainerd.errors.ContainerdError` subclasses raised on the client
side (``code`` is ``None``), so ``except ContainerdError`` still catches everything.
"""

from __future__ import annotations

from collections.abc import Sequence

from pycontainerd.errors import ContainerdError

__all__ = [
    "ArchiveError",
    "BlobMismatchError",
    "DiffIDMismatchError",
    "ImageError",
    "MalformedContentError",
    "MissingBlobError",
    "NoMatchingPlatformError",
    "SnapshotterError",
    "TruncatedArchiveError",
    "UnknownMediaTypeError",
    "UnsafePathError",
]


class ImageError(ContainerdError):
    """Root of the image errors."""


class ArchiveError(ImageError, ValueError):
    """The archive is not a usable OCI layout or ``docker save`` tar."""


class TruncatedArchiveError(ArchiveError):
    """The archive ends inside a header or a file (or is not a tar at all)."""


class UnsafePathError(ArchiveError):
    """A name in the archive is absolute or climbs out of it with ``..``.

    Attributes:
        path: The offending name.
    """

    def __init__(self, path: str) -> None:
        super().__init__(f"unsafe path in archive: {path!r} (absolute or with '..')")
        self.path = path


class MalformedContentError(ImageError, ValueError):
    """An index, manifest or config is not valid JSON of the expected shape (or too large)."""


class BlobMismatchError(ImageError, ValueError):
    """A blob's bytes do not match its name or descriptor (digest or size).

    Attributes:
        digest: The digest the blob was expected to have.
    """

    def __init__(self, details: str, *, digest: str) -> None:
        super().__init__(details)
        self.digest = digest


class MissingBlobError(ImageError, LookupError):
    """A descriptor points at a blob that is neither in the archive nor in the content store.

    Attributes:
        digest: The missing blob's digest.
    """

    def __init__(self, details: str, *, digest: str) -> None:
        super().__init__(details)
        self.digest = digest


class UnknownMediaTypeError(ImageError, ValueError):
    """A descriptor has a media type this client cannot handle in that position.

    Attributes:
        media_type: The media type.
    """

    def __init__(self, details: str, *, media_type: str) -> None:
        super().__init__(details)
        self.media_type = media_type


class NoMatchingPlatformError(ImageError, LookupError):
    """No manifest of the image is for the requested platform.

    Attributes:
        wanted: The requested platform (``os/arch[/variant]``).
        available: The platforms the image offers.
    """

    def __init__(self, name: str, wanted: str, available: Sequence[str]) -> None:
        offered = ", ".join(available) if available else "none"
        super().__init__(f"image {name!r} has no manifest for platform {wanted} (it offers: {offered})")
        self.wanted = wanted
        self.available = list(available)


class DiffIDMismatchError(ImageError):
    """Applying a layer gave another uncompressed digest than the config's diff ID.

    Attributes:
        expected: The config's diff ID.
        actual: The digest the daemon computed while applying.
    """

    def __init__(self, layer: str, expected: str, actual: str) -> None:
        super().__init__(f"layer {layer}: applied content has digest {actual}, the config says {expected}")
        self.expected = expected
        self.actual = actual


class SnapshotterError(ImageError):
    """The daemon has no such snapshotter (or it failed to load)."""
