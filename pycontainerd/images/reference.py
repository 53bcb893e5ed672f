"""Image references, parsed and normalised exactly as docker and containerd do.

The grammar is distribution's (``github.com/distribution/reference``)::

    reference := name [ ":" tag ] [ "@" digest ]
    name      := [ domain "/" ] path-component [ "/" path-component ]*
    domain    := host [ ":" port ]          (host: DNS labels, or an IPv6 address in [])
    path-component := [a-z0-9]+ ( ( "." | "_" | "__" | "-"+ ) [a-z0-9]+ )*
    tag       := [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}
    digest    := algorithm ":" hex          (sha256: 64 lowercase hex digits)

Normalisation is ``ParseDockerRef``'s: a first component that is not a domain (no
``.``, no ``:``, not ``localhost``, no uppercase) means Docker Hub, so ``alpine`` is
``docker.io/library/alpine:latest``, ``user/app`` is ``docker.io/user/app:latest``;
``index.docker.io`` is written ``docker.io``; a reference with neither tag nor digest
gets ``:latest``. Docker Hub's API is served by ``registry-1.docker.io``.

Every rule broken is a :class:`InvalidReferenceError` (a :class:`ValueError`) whose
message names the rule, as distribution's errors do.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = [
    "DEFAULT_TAG",
    "DOCKER_HUB",
    "DOCKER_HUB_API",
    "InvalidReferenceError",
    "Reference",
    "parse",
]

#: The registry a reference without a domain names.
DOCKER_HUB = "docker.io"
#: The host that serves Docker Hub's registry API.
DOCKER_HUB_API = "registry-1.docker.io"
#: The tag of a reference that names neither a tag nor a digest.
DEFAULT_TAG = "latest"
# distribution's NameTotalLengthMax: the whole name, domain included.
_NAME_MAX = 255

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN_LABEL = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"(?:{_DOMAIN_LABEL}(?:\.{_DOMAIN_LABEL})*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?"
_TAG = re.compile(r"[\w][\w.-]{0,127}")
_DIGEST = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}")
_HEX_LENGTH = {"sha256": 64, "sha384": 96, "sha512": 128}
_PATH = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*")
_DOMAIN_RE = re.compile(_DOMAIN)
# The path grammar with uppercase allowed: matching it tells "uppercase" from other errors.
_ANY_CASE_PATH = re.compile(_PATH.pattern.replace("a-z0-9", "a-zA-Z0-9"))
_IMAGE_ID = re.compile(r"[a-f0-9]{64}")


class InvalidReferenceError(ValueError):
    """A string that is not an image reference.

    Attributes:
        reference: The string.
        rule: The rule it breaks (distribution's wording: ``invalid reference format``,
            ``repository name must be lowercase``, ...).
    """

    def __init__(self, reference: str, rule: str) -> None:
        super().__init__(f"invalid image reference {reference!r}: {rule}")
        self.reference = reference
        self.rule = rule


@dataclass(frozen=True)
class Reference:
    """A normalised image reference.

    Attributes:
        domain: The registry, ``docker.io`` or ``host[:port]``.
        path: The repository within it, ``library/alpine``.
        tag: The tag, or ``""`` when only a digest is given.
        digest: ``sha256:<hex>``, or ``""``.
    """

    domain: str
    path: str
    tag: str = ""
    digest: str = ""

    @property
    def name(self) -> str:
        """``domain/path``, without tag or digest."""
        return f"{self.domain}/{self.path}"

    @property
    def object(self) -> str:
        """What to ask the registry's manifest endpoint for: the digest if given, else the tag."""
        return self.digest or self.tag

    @property
    def api_host(self) -> str:
        """The ``host[:port]`` that serves this registry's API."""
        return DOCKER_HUB_API if self.domain == DOCKER_HUB else self.domain

    def with_digest(self, digest: str) -> Reference:
        """This reference pinned to ``digest`` (the tag kept)."""
        return Reference(self.domain, self.path, self.tag, digest)

    def __str__(self) -> str:
        out = self.name
        if self.tag:
            out += ":" + self.tag
        if self.digest:
            out += "@" + self.digest
        return out


def _split_domain(name: str) -> tuple[str, str]:
    # splitDockerDomain: the first component is a domain only if it looks like one.
    first, slash, rest = name.partition("/")
    looks_like_domain = "." in first or ":" in first or first == "localhost" or first != first.lower()
    if not slash or not looks_like_domain:
        domain, rest = DOCKER_HUB, name
    else:
        domain = first
    if domain == "index.docker.io":
        domain = DOCKER_HUB
    if domain == DOCKER_HUB and "/" not in rest:
        rest = "library/" + rest
    return domain, rest


def _check_digest(ref: str, digest: str) -> None:
    if not _DIGEST.fullmatch(digest):
        raise InvalidReferenceError(ref, "invalid digest format")
    algorithm, hexpart = digest.split(":", 1)
    want = _HEX_LENGTH.get(algorithm)
    if want is None:
        raise InvalidReferenceError(ref, f"unsupported digest algorithm {algorithm!r}")
    if len(hexpart) != want or hexpart != hexpart.lower():
        raise InvalidReferenceError(ref, f"invalid checksum digest length or format for {algorithm}")


def parse(ref: str) -> Reference:
    """Parse and normalise a reference, as ``docker pull`` and ``ctr``'s ``ParseDockerRef`` do.

    Args:
        ref: ``alpine``, ``alpine:3.20``, ``localhost:5000/a/b@sha256:...``, ...

    Returns:
        The normalised reference; ``:latest`` added when neither tag nor digest is given.

    Raises:
        InvalidReferenceError: ``ref`` breaks a rule of the grammar (named in the message).
    """
    if not isinstance(ref, str):
        raise TypeError(f"an image reference is a str, not {type(ref).__name__}")
    if not ref:
        raise InvalidReferenceError(ref, "repository name must have at least one component")
    if _IMAGE_ID.fullmatch(ref):
        raise InvalidReferenceError(ref, "cannot specify 64-byte hexadecimal strings")
    rest, at, digest = ref.partition("@")
    if at:
        _check_digest(ref, digest)
    # A ':' after the last '/' starts the tag (one before it is the domain's port).
    slash = rest.rfind("/")
    colon = rest.rfind(":")
    tag = ""
    if colon > slash:
        rest, tag = rest[:colon], rest[colon + 1 :]
        if not _TAG.fullmatch(tag):
            raise InvalidReferenceError(ref, "invalid tag format")
    if not rest:
        raise InvalidReferenceError(ref, "repository name must have at least one component")
    domain, path = _split_domain(rest)
    if not _DOMAIN_RE.fullmatch(domain):
        raise InvalidReferenceError(ref, "invalid reference format")
    if not _PATH.fullmatch(path):
        if _ANY_CASE_PATH.fullmatch(path):
            raise InvalidReferenceError(ref, "repository name must be lowercase")
        raise InvalidReferenceError(ref, "invalid reference format")
    if len(f"{domain}/{path}") > _NAME_MAX:
        raise InvalidReferenceError(ref, f"repository name must not be more than {_NAME_MAX} characters")
    if not tag and not digest:
        tag = DEFAULT_TAG
    return Reference(domain, path, tag, digest)
