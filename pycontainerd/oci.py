"""OCI runtime spec builder with containerd's Linux defaults.

:func:`build` returns the JSON-ready ``dict`` of a Linux runtime spec that
matches what containerd 1.6/1.7 generate before any option is applied
(``oci/spec.go`` ``populateDefaultUnixSpec``, ``oci/mounts.go``): user 0:0 in
``/``, ``PATH`` set, containerd's 14 default capabilities, ``RLIMIT_NOFILE``
1024, ``noNewPrivileges``, the pid/ipc/uts/mount/network namespaces, the
standard ``/proc``, ``/dev``, ``/dev/pts``, ``/dev/shm``, ``/dev/mqueue``,
``/sys`` (read-only) and ``/run`` mounts, the masked and read-only ``/proc``
and ``/sys`` paths, and a deny-all device cgroup rule (runc adds its default
allowed devices on top). Keyword options change it the way containerd's
``oci.With*`` options do::

    spec = oci.build(
        args=["/bin/sh", "-c", "echo $GREETING"],
        rootfs="/srv/busybox",
        env={"GREETING": "hello"},
        hostname="box",
        resources=oci.Resources(memory=64 << 20, cpus=0.5, pids=64),
        namespace="default",
        container_id="box",
    )

:func:`process` builds only the ``process`` object, which is what an exec
takes (``types.containerd.io/opencontainers/runtime-spec/1/Process``).
:class:`Resources` builds a ``LinuxResources`` object, also usable for a task
update.

Every function validates its input up front and raises ``TypeError`` for a
wrong type and ``ValueError`` for a wrong value, naming the option.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeAlias

from pycontainerd import _rules
from pycontainerd.idmap import IDMapping, validate_mappings

__all__ = [
    "BUNDLE_ROOTFS",
    "DEFAULT_CAPABILITIES",
    "DEFAULT_MASKED_PATHS",
    "DEFAULT_PATH_ENV",
    "DEFAULT_READONLY_PATHS",
    "OCI_VERSION",
    "Resources",
    "build",
    "default_mounts",
    "process",
]

#: The runtime-spec version containerd 1.6 stamps into generated specs.
OCI_VERSION = "1.0.2-dev"

#: ``root.path`` meaning "the rootfs mounted by containerd in the bundle"
#: (the task's rootfs mounts, e.g. an image snapshot).
BUNDLE_ROOTFS = "rootfs"

#: containerd's default ``PATH`` (``defaultUnixEnv``).
DEFAULT_PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

#: containerd's default capability set (bounding, permitted and effective).
DEFAULT_CAPABILITIES: tuple[str, ...] = (
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
)

#: Paths runc masks (bind-mounts /dev/null or an empty tmpfs over).
DEFAULT_MASKED_PATHS: tuple[str, ...] = (
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/sys/firmware",
    "/proc/scsi",
)

#: Paths runc remounts read-only.
DEFAULT_READONLY_PATHS: tuple[str, ...] = (
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
)

_DEFAULT_NAMESPACES = ("pid", "ipc", "uts", "mount", "network")
_RLIMIT_NOFILE = 1024
_CPU_PERIOD = 100_000


class _IDMappingLike(Protocol):
    """Anything with ``container_id``, ``host_id`` and ``size`` (e.g. ``pycontainerd.idmap.IDMapping``)."""

    @property
    def container_id(self) -> int: ...

    @property
    def host_id(self) -> int: ...

    @property
    def size(self) -> int: ...


#: One id-mapping extent: ``(container_id, host_id, size)``, a mapping with the
#: OCI keys ``containerID``/``hostID``/``size``, or an object with those attributes.
IDMap: TypeAlias = "tuple[int, int, int] | Mapping[str, int] | _IDMappingLike"
#: ``"uid"``, ``"uid:gid"``, a uid, or ``(uid, gid)``.
User: TypeAlias = "str | int | tuple[int, int]"
#: A mapping of variables, or ``"KEY=VALUE"`` strings.
Env: TypeAlias = "Mapping[str, str] | Sequence[str]"


@dataclass(frozen=True)
class Resources:
    """Linux resource limits, as an OCI ``LinuxResources`` object.

    Attributes:
        memory: Memory limit in bytes (``memory.limit``).
        cpus: CPUs as a fraction (``1.5`` = one and a half CPUs), turned into a
            CFS quota over a 100 ms period like ``docker --cpus``.
        pids: Maximum number of processes (``pids.limit``).
    """

    memory: int | None = None
    cpus: float | None = None
    pids: int | None = None

    def __post_init__(self) -> None:
        for name in ("memory", "pids"):
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"Resources.{name} must be an int, not {type(value).__name__}")
            if value <= 0:
                raise ValueError(f"Resources.{name} must be positive, got {value}")
        if self.cpus is not None:
            if isinstance(self.cpus, bool) or not isinstance(self.cpus, (int, float)):
                raise TypeError(f"Resources.cpus must be a number, not {type(self.cpus).__name__}")
            # A quota below 1 ms is refused by the kernel (EINVAL on cpu.cfs_quota_us).
            if not self.cpus * _CPU_PERIOD >= 1000:
                raise ValueError(f"Resources.cpus must be at least 0.01, got {self.cpus}")

    def to_spec(self) -> dict[str, Any]:
        """Return the OCI ``LinuxResources`` JSON object for the limits that are set.

        Returns:
            A dict such as ``{"memory": {"limit": 67108864}, "cpu": {"quota": 50000,
            "period": 100000}, "pids": {"limit": 64}}``.
        """
        out: dict[str, Any] = {}
        if self.memory is not None:
            out["memory"] = {"limit": self.memory}
        if self.cpus is not None:
            out["cpu"] = {"quota": int(self.cpus * _CPU_PERIOD), "period": _CPU_PERIOD}
        if self.pids is not None:
            out["pids"] = {"limit": self.pids}
        return out


def default_mounts() -> list[dict[str, Any]]:
    """Return containerd's default Linux mounts (a fresh list each call).

    Returns:
        The OCI ``mounts`` list: ``/proc``, ``/dev``, ``/dev/pts``, ``/dev/shm``,
        ``/dev/mqueue``, ``/sys`` (read-only) and ``/run``.
    """
    return [
        {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]},
        {
            "destination": "/dev",
            "type": "tmpfs",
            "source": "tmpfs",
            "options": ["nosuid", "strictatime", "mode=755", "size=65536k"],
        },
        {
            "destination": "/dev/pts",
            "type": "devpts",
            "source": "devpts",
            "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"],
        },
        {
            "destination": "/dev/shm",
            "type": "tmpfs",
            "source": "shm",
            "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
        },
        {
            "destination": "/dev/mqueue",
            "type": "mqueue",
            "source": "mqueue",
            "options": ["nosuid", "noexec", "nodev"],
        },
        {
            "destination": "/sys",
            "type": "sysfs",
            "source": "sysfs",
            "options": ["nosuid", "noexec", "nodev", "ro"],
        },
        {
            "destination": "/run",
            "type": "tmpfs",
            "source": "tmpfs",
            "options": ["nosuid", "strictatime", "mode=755", "size=65536k"],
        },
    ]


def process(
    args: Sequence[str],
    *,
    env: Env | None = None,
    cwd: str = "/",
    user: User | None = None,
    tty: bool = False,
    capabilities: Iterable[str] | None = None,
    no_new_privileges: bool = True,
) -> dict[str, Any]:
    """Build an OCI ``process`` object with containerd's defaults.

    This is the spec of an exec'd process, and the ``process`` part of :func:`build`.

    Args:
        args: The command line; ``args[0]`` is looked up in the container's ``PATH``
            by runc if it is not absolute.
        env: Extra environment, a mapping or ``"KEY=VALUE"`` strings; merged over
            the default ``PATH`` (a key given again replaces the earlier value).
        cwd: Absolute working directory inside the container.
        user: ``"uid"``, ``"uid:gid"``, an int uid or a ``(uid, gid)`` tuple. Names
            are not resolved, and a missing gid is 0 (containerd would look it up
            in the image's ``/etc/passwd``).
        tty: Give the process a terminal (``terminal: true``); like containerd's
            ``WithTTY`` this also sets ``TERM=xterm`` unless ``env`` sets ``TERM``.
        capabilities: Capability names (``"CAP_..."``) for the bounding, permitted
            and effective sets; containerd's defaults when ``None``.
        no_new_privileges: Set ``noNewPrivileges``.

    Returns:
        The ``process`` dict.

    Raises:
        TypeError: An option has the wrong type (e.g. ``args`` is a str).
        ValueError: An option has a bad value (empty ``args``, relative ``cwd``,
            a non-numeric or out-of-range ``user``, a malformed env entry).
    """
    uid, gid = _parse_user(user)
    env_list = _merge_env([DEFAULT_PATH_ENV], env)
    if not isinstance(tty, bool):
        raise TypeError(f"tty must be a bool, not {type(tty).__name__}")
    if tty and not any(item.startswith("TERM=") for item in env_list):
        env_list.append("TERM=xterm")
    caps = _check_capabilities(capabilities)
    return {
        "terminal": tty,
        "user": {"uid": uid, "gid": gid},
        "args": _check_args(args),
        "env": env_list,
        "cwd": _check_abs_path(cwd, "cwd"),
        "capabilities": {"bounding": list(caps), "effective": list(caps), "permitted": list(caps)},
        "rlimits": [{"type": "RLIMIT_NOFILE", "hard": _RLIMIT_NOFILE, "soft": _RLIMIT_NOFILE}],
        "noNewPrivileges": bool(no_new_privileges),
    }


def build(
    *,
    args: Sequence[str],
    rootfs: str | os.PathLike[str],
    env: Env | None = None,
    cwd: str = "/",
    user: User | None = None,
    tty: bool = False,
    readonly_rootfs: bool = False,
    hostname: str | None = None,
    host_network: bool = False,
    uid_mappings: Sequence[IDMap] | None = None,
    gid_mappings: Sequence[IDMap] | None = None,
    resources: Resources | Mapping[str, Any] | None = None,
    annotations: Mapping[str, str] | None = None,
    namespace: str | None = None,
    container_id: str | None = None,
    cgroups_path: str | None = None,
    mounts: Sequence[Mapping[str, Any]] = (),
    capabilities: Iterable[str] | None = None,
    no_new_privileges: bool = True,
) -> dict[str, Any]:
    """Build a Linux OCI runtime spec: containerd's defaults plus the given options.

    Args:
        args: The command line of the container's init process.
        rootfs: Absolute path of the root filesystem directory, or
            :data:`BUNDLE_ROOTFS` (``"rootfs"``) when containerd mounts the rootfs
            into the bundle from the task's rootfs mounts (an image snapshot).
        env: Extra environment (mapping or ``"KEY=VALUE"`` list), merged over ``PATH``.
        cwd: Absolute working directory.
        user: ``"uid[:gid]"``, an int uid or ``(uid, gid)``; see :func:`process`.
        tty: Allocate a terminal for the init process.
        readonly_rootfs: Mount the root filesystem read-only.
        hostname: The container's hostname (in its own UTS namespace).
        host_network: Share the host's network namespace instead of a new one.
        uid_mappings: Run in a new user namespace with these uid extents
            (``(container_id, host_id, size)``, OCI-style mappings or ``IDMapping``
            objects). No files are chowned: the rootfs must already be owned by
            the host id that container uid 0 maps to (and be reachable by it).
        gid_mappings: The gid extents; the uid extents are reused when ``None``.
        resources: A :class:`Resources` or a raw OCI ``LinuxResources`` mapping,
            merged over the default deny-all device rule.
        annotations: OCI annotations (string to string).
        namespace: With ``container_id``, sets ``cgroupsPath`` to
            ``/<namespace>/<container_id>`` as containerd does.
        container_id: See ``namespace``.
        cgroups_path: An explicit ``cgroupsPath`` (wins over namespace/container_id).
        mounts: Extra OCI mounts appended after the defaults (a mount on an
            existing destination replaces the default one).
        capabilities: Capability names; containerd's defaults when ``None``.
        no_new_privileges: Set ``noNewPrivileges``.

    Returns:
        The runtime spec as a JSON-ready dict (serialise with ``json.dumps``).

    Raises:
        TypeError: An option has the wrong type.
        ValueError: An option has a bad value: empty ``args``, a relative
            ``rootfs`` or ``cwd``, a bad ``user``, invalid id mappings, a user
            not covered by the mappings, an over-long hostname.
    """
    proc = process(
        args,
        env=env,
        cwd=cwd,
        user=user,
        tty=tty,
        capabilities=capabilities,
        no_new_privileges=no_new_privileges,
    )
    linux: dict[str, Any] = {
        "resources": {"devices": [{"allow": False, "access": "rwm"}]},
        "namespaces": [{"type": ns} for ns in _DEFAULT_NAMESPACES],
        "maskedPaths": list(DEFAULT_MASKED_PATHS),
        "readonlyPaths": list(DEFAULT_READONLY_PATHS),
    }
    spec: dict[str, Any] = {
        "ociVersion": OCI_VERSION,
        "process": proc,
        "root": {"path": _check_rootfs(rootfs), "readonly": _check_bool(readonly_rootfs, "readonly_rootfs")},
        "mounts": default_mounts(),
        "linux": linux,
    }
    if hostname is not None:
        spec["hostname"] = _check_hostname(hostname)
    if _check_bool(host_network, "host_network"):
        linux["namespaces"] = [ns for ns in linux["namespaces"] if ns["type"] != "network"]
    if uid_mappings is not None or gid_mappings is not None:
        _apply_user_namespace(spec, uid_mappings, gid_mappings)
    if resources is not None:
        linux["resources"].update(_resources_spec(resources))
    path = _cgroups_path(namespace, container_id, cgroups_path)
    if path is not None:
        linux["cgroupsPath"] = path
    if annotations is not None:
        spec["annotations"] = _check_annotations(annotations)
    for mount in mounts:
        _add_mount(spec["mounts"], mount)
    return spec


def _check_bool(value: object, what: str) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{what} must be a bool, not {type(value).__name__}")
    return value


def _check_text(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a str, not {type(value).__name__}")
    if "\0" in value:
        raise ValueError(f"{what} must not contain NUL: {value!r}")
    return value


def _check_args(args: object) -> list[str]:
    if isinstance(args, (str, bytes)) or not isinstance(args, Sequence):
        raise TypeError(f"args must be a sequence of str (['/bin/sh', '-c', ...]), not {type(args).__name__}")
    items = [_check_text(arg, f"args[{i}]") for i, arg in enumerate(args)]
    if not items:
        raise ValueError("args must not be empty: the container needs a command")
    if not items[0]:
        raise ValueError("args[0] (the program) must not be empty")
    return items


def _check_abs_path(path: object, what: str) -> str:
    if isinstance(path, os.PathLike):
        path = os.fspath(path)
    text = _check_text(path, what)
    if not text.startswith("/"):
        raise ValueError(f"{what} must be an absolute path, got {text!r}")
    if ".." in text.split("/"):
        raise ValueError(f"{what} must not contain '..' components, got {text!r}")
    return text


def _check_rootfs(rootfs: object) -> str:
    if isinstance(rootfs, os.PathLike):
        rootfs = os.fspath(rootfs)
    if rootfs == BUNDLE_ROOTFS:
        return BUNDLE_ROOTFS
    if isinstance(rootfs, str) and rootfs and not rootfs.startswith("/"):
        raise ValueError(
            f"rootfs must be an absolute path (or {BUNDLE_ROOTFS!r} for the bundle's rootfs mount), "
            f"got {rootfs!r}"
        )
    path = _check_abs_path(rootfs, "rootfs")
    # runc refuses a rootfs of "/" (pivot_root onto itself), and so do we.
    if path.rstrip("/") == "":
        raise ValueError("rootfs must not be the host's root directory")
    return path.rstrip("/")


def _parse_id(text: str, what: str, user: object) -> int:
    if not text.isdigit():
        raise ValueError(f"user must be numeric 'uid[:gid]' (names are not resolved), got {user!r}")
    return _check_user_id(int(text), what)


def _check_user_id(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what} must be an int, not {type(value).__name__}")
    if not 0 <= value <= _rules.MAX_USER_ID:
        raise ValueError(f"{what} must be in 0..{_rules.MAX_USER_ID}, got {value}")
    return value


def _parse_user(user: object) -> tuple[int, int]:
    if user is None:
        return 0, 0
    if isinstance(user, str):
        uid_text, sep, gid_text = user.partition(":")
        uid = _parse_id(uid_text, "uid", user)
        gid = _parse_id(gid_text, "gid", user) if sep else 0
        return uid, gid
    if isinstance(user, tuple):
        if len(user) != 2:
            raise ValueError(f"user tuple must be (uid, gid), got {user!r}")
        return _check_user_id(user[0], "uid"), _check_user_id(user[1], "gid")
    if isinstance(user, int) and not isinstance(user, bool):
        return _check_user_id(user, "uid"), 0
    raise TypeError(f"user must be 'uid[:gid]', an int or a (uid, gid) tuple, not {type(user).__name__}")


def _merge_env(base: list[str], env: object) -> list[str]:
    items: list[str]
    if env is None:
        return list(base)
    if isinstance(env, Mapping):
        items = []
        for key, value in env.items():
            _check_text(key, "env key")
            if not key or "=" in key:
                # "A=B": "x" would reach the process as A=B=x, i.e. A set to "B=x".
                raise ValueError(f"env key must be non-empty and contain no '=', got {key!r}")
            _check_text(value, f"env[{key!r}]")
            items.append(f"{key}={value}")
    elif isinstance(env, Sequence) and not isinstance(env, (str, bytes)):
        items = [_check_text(item, "env entry") for item in env]
    else:
        raise TypeError(f"env must be a mapping or a list of 'KEY=VALUE' strings, not {type(env).__name__}")
    merged = list(base)
    for item in items:
        key, sep, _ = item.partition("=")
        if not sep or not key:
            raise ValueError(f"env entry must be 'KEY=VALUE' with a non-empty key, got {item!r}")
        # Later values replace earlier ones in place (containerd's replaceOrAppendEnvValues).
        for i, existing in enumerate(merged):
            if existing.partition("=")[0] == key:
                merged[i] = item
                break
        else:
            merged.append(item)
    return merged


def _check_capabilities(capabilities: Iterable[str] | None) -> tuple[str, ...]:
    if capabilities is None:
        return DEFAULT_CAPABILITIES
    if isinstance(capabilities, (str, bytes)):
        raise TypeError("capabilities must be an iterable of names, not a single str")
    caps = tuple(_check_text(cap, "capability") for cap in capabilities)
    for cap in caps:
        if not cap.startswith("CAP_") or not cap[4:].replace("_", "").isalnum() or cap != cap.upper():
            raise ValueError(f"capability names look like 'CAP_NET_ADMIN', got {cap!r}")
    return caps


def _check_hostname(hostname: object) -> str:
    text = _check_text(hostname, "hostname")
    if not text or len(text.encode()) > _rules.HOST_NAME_MAX:
        raise ValueError(f"hostname must be 1..{_rules.HOST_NAME_MAX} bytes, got {text!r}")
    return text


def _check_annotations(annotations: object) -> dict[str, str]:
    if not isinstance(annotations, Mapping):
        raise TypeError(f"annotations must be a mapping of str to str, not {type(annotations).__name__}")
    out: dict[str, str] = {}
    for key, value in annotations.items():
        if not _check_text(key, "annotation key"):
            raise ValueError("annotation keys must not be empty")
        out[key] = _check_text(value, f"annotation {key!r}")
    return out


def _cgroups_path(namespace: str | None, container_id: str | None, explicit: str | None) -> str | None:
    if explicit is not None:
        return _check_abs_path(explicit, "cgroups_path")
    if namespace is None and container_id is None:
        return None
    if namespace is None or container_id is None:
        raise ValueError("namespace and container_id go together (cgroupsPath is /<namespace>/<id>)")
    for value, what in ((namespace, "namespace"), (container_id, "container_id")):
        text = _check_text(value, what)
        if not text or "/" in text or text in (".", ".."):
            raise ValueError(f"{what} must be a single non-empty path component, got {text!r}")
    return f"/{namespace}/{container_id}"


def _resources_spec(resources: object) -> dict[str, Any]:
    if isinstance(resources, Resources):
        return resources.to_spec()
    if isinstance(resources, Mapping):
        return copy.deepcopy(dict(resources))
    raise TypeError(f"resources must be a Resources or a LinuxResources dict, not {type(resources).__name__}")


def _add_mount(mounts: list[dict[str, Any]], mount: object) -> None:
    if not isinstance(mount, Mapping):
        raise TypeError(f"each mount must be a mapping (an OCI mount object), not {type(mount).__name__}")
    entry = copy.deepcopy(dict(mount))
    destination = _check_abs_path(entry.get("destination"), "mount destination")
    mounts[:] = [m for m in mounts if m["destination"] != destination]
    mounts.append(entry)


def _to_mapping(item: object, what: str) -> IDMapping | Mapping[str, Any]:
    if isinstance(item, tuple):
        if len(item) != 3:
            raise ValueError(f"{what} must be (container_id, host_id, size), got {item!r}")
        return IDMapping(*item)
    if isinstance(item, (IDMapping, Mapping)):
        return item
    if all(hasattr(item, name) for name in ("container_id", "host_id", "size")):
        return IDMapping(item.container_id, item.host_id, item.size)  # type: ignore[attr-defined]
    raise TypeError(f"{what} must be a (container_id, host_id, size) tuple, not {type(item).__name__}")


def _check_mappings(mappings: Sequence[IDMap], what: str) -> list[tuple[int, int, int]]:
    if isinstance(mappings, (str, bytes)) or not isinstance(mappings, Sequence):
        raise TypeError(f"{what} must be a sequence of extents, not {type(mappings).__name__}")
    if not mappings:
        raise ValueError(f"{what} must not be empty")
    try:
        # The kernel's rules (size, 2**32, overlaps, 340 extents) live in one place: idmap.
        extents = validate_mappings(_to_mapping(item, f"{what}[{i}]") for i, item in enumerate(mappings))
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"{what}: {exc}") from None
    if not any(m.container_id <= 0 < m.container_id + m.size for m in extents):
        raise ValueError(f"{what} must map container id 0 (the container's root)")
    return [(m.container_id, m.host_id, m.size) for m in extents]


def _apply_user_namespace(
    spec: dict[str, Any], uid_mappings: Sequence[IDMap] | None, gid_mappings: Sequence[IDMap] | None
) -> None:
    if uid_mappings is None:
        raise ValueError("gid_mappings given without uid_mappings")
    uids = _check_mappings(uid_mappings, "uid_mappings")
    gids = _check_mappings(gid_mappings if gid_mappings is not None else uid_mappings, "gid_mappings")
    user = spec["process"]["user"]
    for value, extents, label in ((user["uid"], uids, "uid"), (user["gid"], gids, "gid")):
        if not any(c <= value < c + s for c, _, s in extents):
            raise ValueError(f"the process {label} {value} is not mapped by the {label} mappings")
    linux = spec["linux"]
    linux["namespaces"].append({"type": "user"})
    linux["uidMappings"] = [{"containerID": c, "hostID": h, "size": s} for c, h, s in uids]
    linux["gidMappings"] = [{"containerID": c, "hostID": h, "size": s} for c, h, s in gids]
    if not any(ns["type"] == "network" for ns in linux["namespaces"]):
        # sysfs can only be mounted by the owner of the network namespace; with the
        # host's network a user namespace must bind the host's /sys instead.
        for mount in spec["mounts"]:
            if mount["destination"] == "/sys":
                mount.update(type="bind", source="/sys", options=["rbind", "nosuid", "noexec", "nodev", "ro"])
