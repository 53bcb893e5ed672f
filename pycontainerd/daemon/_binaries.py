"""Which containerd: the system's, or a version fetched into the cache (the 1.6/1.7/2.x matrix)."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import subprocess

from pycontainerd.daemon._errors import DaemonError

__all__ = ["binary_version", "cached_binary", "standard_path"]

_STANDARD_PATH = ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin")


def standard_path(path: str | None) -> str:
    """``path`` with the standard system directories appended (sudo and cron often drop the sbin ones).

    runc and the shims are found through containerd's PATH, and Debian installs runc in /usr/sbin.
    """
    parts = [p for p in (path or "").split(":") if p]
    return ":".join(parts + [p for p in _STANDARD_PATH if p not in parts])


def _cache_root() -> str:
    base = os.environ.get("PYCONTAINERD_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "pycontainerd"
    )
    return os.path.join(base, "containerd")


def cached_binary(version: str) -> str:
    """The containerd binary of a version: the system's if it matches, else a fetched one.

    Args:
        version: A version prefix: ``"1.6"``, ``"1.7"``, ``"2"``, ``"2.1"``, ``"1.7.24"``.
            ``"system"`` means the ``containerd`` on ``PATH``.

    Returns:
        ``"containerd"`` when the system's containerd has that version (or for
        ``"system"``), else the path of the newest cached match.

    Raises:
        FileNotFoundError: No such version in the cache.
    """
    if version == "system":
        return "containerd"
    if shutil.which("containerd", path=standard_path(os.environ.get("PATH"))):
        with contextlib.suppress(DaemonError):
            have = ".".join(map(str, binary_version("containerd", timeout=10)))
            if have == version or have.startswith(version + "."):
                return "containerd"
    root = _cache_root()
    try:
        names = os.listdir(root)
    except FileNotFoundError:
        names = []
    matches = []
    for name in names:
        if name == version or name.startswith(tuple(version + sep for sep in ".~+")):
            binary = os.path.join(root, name, "usr", "bin", "containerd")
            if os.access(binary, os.X_OK):
                matches.append((_version_key(name), binary))
    if not matches:
        raise FileNotFoundError(
            errno.ENOENT,
            f"containerd {version} is not in the cache; fetch it with scripts/fetch-containerd {version}",
            os.path.join(root, version + "*"),
        )
    return max(matches)[1]


def _version_key(text: str) -> tuple[int, ...]:
    numbers = []
    for part in text.replace("~", ".").replace("+", ".").replace("-", ".").split("."):
        if not part.isdigit():
            break
        numbers.append(int(part))
    return tuple(numbers)


def binary_version(binary: str = "containerd", *, timeout: float = 30) -> tuple[int, ...]:
    """The version a containerd binary reports (``containerd --version``), e.g. ``(1, 7, 24)``.

    Raises:
        DaemonError: The binary cannot be run, does not answer within ``timeout``
            seconds, or prints no version.
    """
    path = shutil.which(binary, path=standard_path(os.environ.get("PATH"))) or binary
    try:
        out = subprocess.run(
            [path, "--version"], capture_output=True, text=True, timeout=timeout, check=False
        ).stdout
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise DaemonError(f"cannot run {binary} --version: {exc}") from exc
    # "containerd github.com/containerd/containerd/v2 2.1.9+ds1 2.1.9+ds1-5"
    for word in out.split()[2:]:
        key = _version_key(word.lstrip("v"))
        if len(key) >= 2:
            return key
    raise DaemonError(f"{binary} --version printed no version: {out.strip()!r}")

