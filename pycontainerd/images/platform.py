"""OCI platforms: parsing ``os/arch[/variant]``, the host's platform, and matching.

Matching follows containerd's ``platforms.Only`` for the common cases: the OS and the
(normalised) architecture must be equal; a requested variant must be equal, and no
requested variant matches any; ``arm64`` treats ``v8`` and no variant as the same.
"""

from __future__ import annotations

import platform as _platform
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["Platform", "host", "parse"]

_ARCH_ALIASES = {
    "x86_64": "amd64",
    "x86-64": "amd64",
    "aarch64": "arm64",
    "armhf": "arm",
    "armel": "arm",
    "i386": "386",
    "i686": "386",
}


@dataclass(frozen=True, order=True)
class Platform:
    """An OCI platform.

    Attributes:
        os: ``linux``, ``windows``, ...
        architecture: GOARCH-style: ``amd64``, ``arm64``, ``arm``, ...
        variant: ``v7``, ``v8``, ... or ``""``.
    """

    os: str
    architecture: str
    variant: str = ""

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> Platform:
        """From an OCI ``platform`` object or an image config (``os``, ``architecture``, ``variant``)."""
        variant = str(value.get("variant", "") or "")
        return cls(str(value.get("os", "")), str(value.get("architecture", "")), variant)

    def normalized(self) -> Platform:
        """With architecture aliases resolved and ``arm64/v8`` written as plain ``arm64``."""
        arch = _ARCH_ALIASES.get(self.architecture.lower(), self.architecture.lower())
        variant = self.variant.lower()
        if arch == "arm64" and variant == "v8":
            variant = ""
        return Platform(self.os.lower(), arch, variant)

    def matches(self, other: Platform) -> bool:
        """Whether ``other`` (an image's platform) satisfies this (requested) platform."""
        want, have = self.normalized(), other.normalized()
        if (want.os, want.architecture) != (have.os, have.architecture):
            return False
        return not want.variant or want.variant == have.variant

    def __str__(self) -> str:
        return "/".join(part for part in (self.os, self.architecture, self.variant) if part)


def parse(value: str | Platform) -> Platform:
    """``"linux/arm64"``, ``"linux/arm/v7"`` or ``"arm64"`` (OS linux) as a :class:`Platform`.

    Raises:
        ValueError: Not one to three non-empty parts separated by ``/``.
    """
    if isinstance(value, Platform):
        return value
    parts = value.split("/")
    if not 1 <= len(parts) <= 3 or not all(parts):
        raise ValueError(f"invalid platform {value!r}: want os/arch[/variant]")
    if len(parts) == 1:
        return Platform("linux", parts[0]).normalized()
    return Platform(*parts).normalized()


def host() -> Platform:
    """The platform of this machine (Linux)."""
    machine = _platform.machine()
    variant = "v" + machine[4] if machine.startswith("armv") and len(machine) > 4 else ""
    arch = "arm" if machine.startswith("armv") else machine
    return Platform("linux", arch, variant).normalized()
