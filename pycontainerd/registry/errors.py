"""The errors of talking to a registry: refusals, bad answers, unreachable hosts.

All are :class:`~pycontainerd.images.errors.ImageError` subclasses (so
:class:`~pycontainerd.errors.ContainerdError` catches them too). Where a registry's
answer means what one of containerd's error classes means, the class mixes that one
in: a missing tag or repository is a :class:`~pycontainerd.errors.NotFoundError`,
refused credentials an :class:`~pycontainerd.errors.UnauthenticatedError`, an
unreachable or failing registry an :class:`~pycontainerd.errors.UnavailableError`.

Messages name the method, the host and path, the status and the registry's own
error codes; never a header, a token or a password.
"""

from __future__ import annotations

from pycontainerd import errors
from pycontainerd.images.errors import ImageError, MalformedContentError, UnknownMediaTypeError

__all__ = [
    "ManifestTooLargeError",
    "RegistryAuthError",
    "RegistryDeniedError",
    "RegistryError",
    "RegistryNotFoundError",
    "RegistryProtocolError",
    "RegistryUnavailableError",
    "UnsupportedManifestError",
]


class RegistryError(ImageError):
    """Root of the registry errors: the registry answered with an error status.

    Attributes:
        status: The HTTP status, or ``None`` when there was no answer.
        error_codes: The codes of the registry's error body (``MANIFEST_UNKNOWN``, ...).
    """

    def __init__(self, details: str, *, status: int | None = None, error_codes: tuple[str, ...] = ()) -> None:
        # Not super(): a mixed-in sibling's __init__ (UnknownMediaTypeError's) wants other arguments.
        errors.ContainerdError.__init__(self, details)
        self.status = status
        self.error_codes = error_codes


class RegistryNotFoundError(RegistryError, errors.NotFoundError):
    """The registry has no such repository, tag, manifest or blob (404)."""


class RegistryAuthError(RegistryError, errors.UnauthenticatedError):
    """The registry wants credentials that were not given, or refused the ones given (401)."""


class RegistryDeniedError(RegistryError, errors.PermissionDeniedError):
    """The credentials were accepted but do not allow this (403, or a token without the scope)."""


class RegistryUnavailableError(RegistryError, errors.UnavailableError):
    """The registry could not be reached, timed out, or kept failing (5xx, 429) after the retries."""


class RegistryProtocolError(RegistryError):
    """An answer that breaks the distribution API (an HTML page, a redirect loop, a bad header)."""


class ManifestTooLargeError(RegistryError, MalformedContentError):
    """A manifest or index larger than the cap (4 MiB, containerd's limit)."""


class UnsupportedManifestError(RegistryError, UnknownMediaTypeError):
    """A manifest of a kind this client does not pull (docker schema 1, or not an image)."""

    def __init__(self, details: str, *, media_type: str) -> None:
        RegistryError.__init__(self, details)
        self.media_type = media_type
