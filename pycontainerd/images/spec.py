"""An OCI runtime spec from an image config, with containerd's ``WithImageConfig`` semantics.

* Command: ``entrypoint + cmd``; ``args`` replace the image's ``Cmd``; an
  ``entrypoint`` given replaces the image's ``Entrypoint`` and, as docker and
  nerdctl do, drops the image's ``Cmd`` (only ``args`` follow it).
* Environment: the image's ``Env`` (containerd's default ``PATH`` when it has none),
  then the explicit ``env`` on top: a key given again replaces the image's value.
* Working dir: explicit ``cwd``, else the image's ``WorkingDir``, else ``/``.
* User: explicit ``user``, else the image's ``User``: ``uid``, ``uid:gid``,
  ``name``, ``name:group``, ``uid:group``... Names are looked up in the image's
  ``/etc/passwd`` and ``/etc/group``; a uid without a gid takes the gid from
  ``/etc/passwd`` when listed there, else 0. The user's supplementary groups from
  ``/etc/group`` become ``additionalGids`` (containerd's ``WithAdditionalGIDs``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pycontainerd import oci
from pycontainerd.images.image import ImageConfig

__all__ = ["ReadFile", "image_spec", "resolve_user"]

#: Reads a file of the image's root filesystem (``"/etc/passwd"``); ``None`` if absent.
ReadFile = Callable[[str], "bytes | None"]


def _entries(data: bytes | None, fields: int) -> list[list[str]]:
    if not data:
        return []
    out = []
    for line in data.decode("utf-8", "replace").splitlines():
        if not line or line.startswith("#"):
            continue
        parts = line.split(":")
        if len(parts) >= fields:
            out.append(parts)
    return out


def _number(text: str) -> int | None:
    return int(text) if text.isdigit() else None


def resolve_user(user: str, read_file: ReadFile | None) -> tuple[int, int, list[int]]:
    """``uid``, ``gid`` and supplementary gids for an image ``User`` string.

    Args:
        user: ``""`` (root), ``uid``, ``name``, with an optional ``:gid`` or ``:group``.
        read_file: Reads the image's files; ``None`` allows numeric users only.

    Raises:
        ValueError: A name not in the image's ``/etc/passwd`` or ``/etc/group``, or a
            name with no way to read the image.
    """
    user_part, sep, group_part = user.partition(":")
    user_part = user_part or "0"
    needs_files = _number(user_part) is None or (sep and _number(group_part) is None)
    if needs_files and read_file is None:
        raise ValueError(f"user {user!r}: names need the image's /etc/passwd, which cannot be read here")
    passwd = _entries(read_file("/etc/passwd"), 7) if read_file is not None else []
    groups = _entries(read_file("/etc/group"), 4) if read_file is not None else []
    uid = _number(user_part)
    name = ""
    gid: int | None = None
    for entry in passwd:
        if (uid is None and entry[0] == user_part) or (uid is not None and _number(entry[2]) == uid):
            uid, gid, name = _number(entry[2]), _number(entry[3]), entry[0]
            break
    if uid is None:
        raise ValueError(f"user {user_part!r} is not in the image's /etc/passwd")
    if sep:
        gid = _number(group_part)
        if gid is None:
            for entry in groups:
                if entry[0] == group_part:
                    gid = _number(entry[2])
                    break
            if gid is None:
                raise ValueError(f"group {group_part!r} is not in the image's /etc/group")
    if gid is None:
        gid = 0
    extra: list[int] = []
    if name:
        for entry in groups:
            members = entry[3].split(",") if entry[3] else []
            number = _number(entry[2])
            if name in members and number is not None and number != gid and number not in extra:
                extra.append(number)
    return uid, gid, extra


def _env_list(env: Mapping[str, str] | Sequence[str] | None) -> list[str]:
    if env is None:
        return []
    if isinstance(env, Mapping):
        return [f"{key}={value}" for key, value in env.items()]
    if isinstance(env, (str, bytes)):
        raise TypeError("env must be a mapping or a list of 'KEY=VALUE' strings, not a string")
    return list(env)


def image_spec(
    config: ImageConfig,
    *,
    args: Sequence[str] | None = None,
    entrypoint: Sequence[str] | None = None,
    env: Mapping[str, str] | Sequence[str] | None = None,
    cwd: str | None = None,
    user: str | int | tuple[int, int] | None = None,
    read_file: ReadFile | None = None,
    **build_options: Any,
) -> dict[str, Any]:
    """The runtime spec of a container of an image, rootfs from the task's mounts.

    Args:
        config: The image config.
        args: Replace the image's ``Cmd``.
        entrypoint: Replace the image's ``Entrypoint`` (and drop its ``Cmd``).
        env: Environment on top of the image's.
        cwd: Working directory (default: the image's, else ``/``).
        user: ``"uid[:gid]"``, names, an int uid or ``(uid, gid)`` (default: the image's).
        read_file: Reads files of the image (for user names); see :func:`resolve_user`.
        build_options: Further options of :func:`pycontainerd.oci.build` (``tty``, ...).

    Raises:
        ValueError: No command (the image has none and no ``args``), an unknown user.
    """
    if isinstance(args, (str, bytes)) or isinstance(entrypoint, (str, bytes)):
        raise TypeError("args and entrypoint must be sequences of str, not a string")
    if entrypoint is not None:
        command = [*entrypoint, *(args or ())]
    else:
        command = [*config.entrypoint, *(args if args else config.cmd)]
    if not command:
        raise ValueError("the image has no Entrypoint or Cmd: pass args")
    merged_env = list(config.env) if config.env else []
    merged_env += _env_list(env)
    additional: list[int] = []
    spec_user: str | int | tuple[int, int]
    if user is None or isinstance(user, str):
        uid, gid, additional = resolve_user(config.user if user is None else user, read_file)
        spec_user = (uid, gid)
    else:
        spec_user = user
    spec = oci.build(
        args=command,
        rootfs=oci.BUNDLE_ROOTFS,
        env=merged_env,
        cwd=cwd or config.working_dir or "/",
        user=spec_user,
        **build_options,
    )
    if additional:
        spec["process"]["user"]["additionalGids"] = additional
    return spec
