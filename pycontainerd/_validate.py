"""Client-side checks that reject bad input before any RPC or filesystem work.

Terminal sizes are ``uint32`` on the wire and truncated by the shim, and paths, labels
and runtime names are refused late and obscurely by containerd or runc, so they are
checked here first. The rules themselves (and the identifier and signal checks) live in
:mod:`pycontainerd._rules`. Every check here raises ``ValueError`` or ``TypeError`` with a
message naming the offending value.
"""

from __future__ import annotations

import math
import os
import stat
from collections.abc import Mapping
from typing import Any

from pycontainerd._rules import MAX_LABEL_SIZE, MAX_TERMINAL_SIZE, NAME_MAX, PATH_MAX, RUNTIME_NAME
from pycontainerd.idmap import spec_user


def seconds(value: object, what: str = "timeout") -> float | None:
    """A duration in seconds: ``None`` (the caller's default), or a non-negative number.

    ``math.inf`` is allowed and means "no limit" (callers turn it into ``None`` where
    the API below them wants that: gRPC deadlines, ``Future.result``, timers).

    Raises:
        TypeError: Not a number (``bool`` included).
        ValueError: NaN or negative.
    """
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{what} must be a number of seconds or None, not {type(value).__name__}")
    result = float(value)
    if math.isnan(result):
        raise ValueError(f"{what} must be a number of seconds, not NaN")
    if result < 0:
        raise ValueError(f"{what} must not be negative, got {value!r}")
    return result


def limit(value: object, what: str = "timeout") -> float | None:
    """Like :func:`seconds`, with ``math.inf`` turned into ``None`` (no limit)."""
    result = seconds(value, what)
    return None if result is None or math.isinf(result) else result


def process_args(process_spec: object) -> list[str]:
    """The ``args`` of a raw OCI process mapping: a non-empty list of str, no NUL, a program named.

    Raises:
        ValueError: Not a mapping with a non-empty ``args`` list, an empty ``args[0]``,
            or an argument containing NUL.
        TypeError: An argument is not a str.
    """
    args = process_spec.get("args") if isinstance(process_spec, Mapping) else None
    if isinstance(args, (str, bytes)) or not isinstance(args, (list, tuple)) or not args:
        raise ValueError("process_spec must be an OCI process mapping with non-empty 'args' (a list of str)")
    for i, arg in enumerate(args):
        if not isinstance(arg, str):
            raise TypeError(f"process_spec['args'][{i}] must be a str, not {type(arg).__name__}")
        if "\0" in arg:
            raise ValueError(f"process_spec['args'][{i}] must not contain NUL: {arg!r}")
    if not args[0]:
        raise ValueError("process_spec['args'][0] (the program) must not be empty")
    return list(args)


def terminal_size(width: object, height: object) -> tuple[int, int]:
    """Check a terminal size for ResizePty.

    Args:
        width: Columns.
        height: Rows.

    Returns:
        ``(width, height)`` as ints.

    Raises:
        TypeError: If either is not an int.
        ValueError: If either is outside 0..65535 (the shim would truncate it to 16 bits).
    """
    out = []
    for name, value in (("width", width), ("height", height)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"terminal {name} must be an int, not {type(value).__name__}")
        if not 0 <= value <= MAX_TERMINAL_SIZE:
            raise ValueError(f"invalid terminal {name} {value}: must be 0..{MAX_TERMINAL_SIZE}")
        out.append(value)
    return out[0], out[1]


def absolute_path(path: object, what: str = "path") -> str:
    """Check that a path is absolute, already normalised and free of NUL.

    Args:
        path: The candidate path (str or os.PathLike).
        what: What it names, for the error message.

    Returns:
        The path as a str.

    Raises:
        TypeError: If it is not a str or os.PathLike of str.
        ValueError: If it is relative, has '.'/'..' components, NUL, or is too long.
    """
    text = os.fspath(path)  # type: ignore[call-overload]
    if not isinstance(text, str):
        raise TypeError(f"{what} must be a str path, not {type(text).__name__}")
    if "\0" in text:
        raise ValueError(f"{what} {text!r} contains NUL")
    if not text.startswith("/"):
        raise ValueError(f"{what} {text!r} must be absolute")
    parts = text.split("/")
    if any(p in (".", "..") for p in parts):
        raise ValueError(f"{what} {text!r} must not contain '.' or '..' components")
    if len(text) >= PATH_MAX or any(len(p.encode()) > NAME_MAX for p in parts):
        raise ValueError(f"{what} {text[:40]!r}... is too long")
    normal = os.path.normpath(text)
    return normal


def no_symlinks(path: str, what: str = "path") -> None:
    """Refuse a path whose existing components include a symlink.

    runc refuses a rootfs reached through a symlink, and the bundle walk refuses
    symlinked components (``ELOOP``) because following them would let anyone who
    can write to a walked directory redirect it. Checking up front turns that
    into a clear error before anything is created.

    Args:
        path: An absolute, normalised path (see :func:`absolute_path`).
        what: What it names, for the error message.

    Raises:
        ValueError: A component that exists is a symlink (resolve the path once
            with ``os.path.realpath`` and pass that), or is not a directory.
    """
    current = "/"
    for part in path.split("/"):
        if not part:
            continue
        current = os.path.join(current, part)
        try:
            st = os.lstat(current)
        except FileNotFoundError:
            return  # the rest will be created
        if stat.S_ISLNK(st.st_mode):
            raise ValueError(
                f"{what} {path!r} goes through the symlink {current!r}; pass the resolved path "
                f"({os.path.realpath(path)!r})"
            )
        if current != path and not stat.S_ISDIR(st.st_mode):
            raise ValueError(f"{what} {path!r}: {current!r} is not a directory")


def runtime_name(name: object) -> str:
    """Check a runtime (shim) name: ``io.containerd.<name>.v<N>`` or an absolute path.

    Raises:
        TypeError: If it is not a string.
        ValueError: If it has neither form.
    """
    if not isinstance(name, str):
        raise TypeError(f"runtime must be a str, not {type(name).__name__}")
    if RUNTIME_NAME.fullmatch(name) or (name.startswith("/") and "\0" not in name):
        return name
    raise ValueError(
        f"invalid runtime name {name!r}: use the form io.containerd.runc.v2 or an absolute path to a shim"
    )


def labels(values: object) -> dict[str, str]:
    """Check container labels: strings, non-empty keys, key + value at most 4096 bytes.

    Raises:
        TypeError: Not a mapping of strings.
        ValueError: An empty key or an over-long pair (containerd refuses it).
    """
    if not isinstance(values, Mapping):
        raise TypeError(f"labels must be a mapping, not {type(values).__name__}")
    out: dict[str, str] = {}
    for key, value in values.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise TypeError(f"label {key!r}: keys and values must be str")
        if not key:
            raise ValueError("label keys must not be empty")
        if len(key.encode()) + len(value.encode()) > MAX_LABEL_SIZE:
            raise ValueError(f"label {key[:40]!r}: key and value exceed {MAX_LABEL_SIZE} bytes")
        out[key] = value
    return out


def spec_root(spec: Mapping[str, Any]) -> tuple[int, int]:
    """The host ``(uid, gid)`` of a spec's container root, with its id maps checked.

    Like :func:`pycontainerd.idmap.spec_user`, but every problem is a ``ValueError``
    (an unmapped root included: it must never silently become host root), and id
    maps without a user namespace, which runc refuses, are refused too.

    Raises:
        TypeError: The spec has the wrong shape.
        ValueError: Invalid id maps, root not mapped, or maps without a user namespace.
    """
    linux = spec.get("linux") or {}
    if not isinstance(linux, Mapping):
        raise TypeError("spec['linux'] must be a mapping")
    namespaces = linux.get("namespaces") or []
    has_userns = any(isinstance(ns, Mapping) and ns.get("type") == "user" for ns in namespaces)
    if not has_userns and (linux.get("uidMappings") or linux.get("gidMappings")):
        raise ValueError("the spec has uid/gid mappings but no user namespace")
    try:
        return spec_user(spec)
    except LookupError as err:
        raise ValueError(f"invalid id mappings: {err} (the container's root must be mapped)") from err
