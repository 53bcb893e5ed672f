"""A private containerd: its own process, root, state, sockets and config.

:class:`PrivateContainerd` runs the installed ``containerd`` binary with
everything under one base directory (default ``/run/pcd-XXXXXXXX`` for root,
``/tmp/pcd-XXXXXXXX`` otherwise)::

    base/containerd.sock          gRPC (the address clients use)
    base/containerd.sock.ttrpc    ttrpc (shims publish events here)
    base/config.toml              version 2, CRI and NRI disabled
    base/containerd.log           the daemon's log (appended across restarts)
    base/root  base/state  base/tmp  base/opt

It is the test harness for pycontainerd's integration tests (start, stop,
``kill -9`` and restart it for fault tests) and the engine of the embedded
daemon. Example::

    with PrivateContainerd() as daemon:
        client = pycontainerd.Client(daemon.address, namespace="demo")
        ...
    # every task, container and shim it held is gone, and so is its directory

What lives outside the base directory, and why: containerd 1.6/1.7 put shim
sockets in ``/run/containerd/s/`` and (unless the task's runc options say
otherwise) runc state in ``/run/containerd/runc/<namespace>/``, both fixed
paths shared with a system containerd. :meth:`PrivateContainerd.cleanup`
therefore identifies *its* shims by process: a ``containerd-shim*`` process
whose command line has ``-address <our socket>``. Only the sockets those shims
listened on are removed, and only directories that were created after the
daemon first started and are empty.

Readiness uses a raw ``grpc.health.v1.Health/Check`` call. Removing tasks and
containers goes through :func:`_controller`: pycontainerd's own client when it
imports, else containerd's ``ctr`` binary; neither is imported at module load.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import logging
import os
import shutil
import signal
import stat
import subprocess
import tempfile
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Protocol, TypeVar

import grpc

from pycontainerd import _rules

__all__ = [
    "DaemonError",
    "PrivateContainerd",
    "binary_version",
    "cached_binary",
    "find_shims",
    "purge_namespace",
]

_log = logging.getLogger(__name__)
_T = TypeVar("_T")

_HEALTH_CHECK = "/grpc.health.v1.Health/Check"
# HealthCheckResponse{status: SERVING}: field 1, varint 1.
_SERVING = b"\x08\x01"
_TTRPC_SUFFIX = ".ttrpc"
# CRI needs networking (CNI) and its own config; NRI (1.7) would listen on the
# shared /var/run/nri/nri.sock. The 2.x CRI plugin names are listed too:
# unknown names in disabled_plugins are ignored.
_DISABLED_PLUGINS = (
    "io.containerd.grpc.v1.cri",
    "io.containerd.nri.v1.nri",
    "io.containerd.cri.v1.images",
    "io.containerd.cri.v1.runtime",
    "io.containerd.podsandbox.controller.v1.podsandbox",
    "io.containerd.grpc.v1.sandbox-controllers",
    "io.containerd.tracing.processor.v1.otlp",
)
# Fixed, shared paths of containerd 1.6/1.7 (shim sockets, default runc root, ctr FIFOs).
_SHARED_STATE = "/run/containerd"
_SHARED_DIRS = ("s", "runc", "fifo")
_DEFAULT_RUNC_ROOT = "/run/containerd/runc"
_TASK_STATE = "io.containerd.runtime.v2.task"
_STANDARD_PATH = ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin")
_MNT_DETACH = 2
_SO_ACCEPTCON = 0x10000
_LOG_TAIL_LINES = 40
# Marks a base dir this module created, so whoever closes the daemon (perhaps an
# adopting object in another process) removes the directory itself too.
_OWNED_MARKER = ".pycontainerd-owned"


class DaemonError(RuntimeError):
    """containerd failed to start or died, or a cleanup left something behind.

    Attributes:
        log_tail: The last lines of the daemon's log, when relevant ("" otherwise);
            they are also part of the message.
    """

    def __init__(self, message: str, log_tail: str = "") -> None:
        super().__init__(f"{message}\n--- containerd log (tail) ---\n{log_tail}" if log_tail else message)
        self.log_tail = log_tail


# --------------------------------------------------------------------------------------------------
# /proc: processes, shims, sockets, mounts


@dataclass(frozen=True)
class _Proc:
    """A process identity that survives pid reuse: pid plus start time (clock ticks since boot)."""

    pid: int
    start_time: int

    @classmethod
    def of(cls, pid: int) -> _Proc | None:
        info = _stat(pid)
        return None if info is None else cls(pid, info[2])

    def alive(self) -> bool:
        info = _stat(self.pid)
        # A zombie is dead for our purposes: it holds no resources but a pid and
        # its reaper (often init, for daemonised shims) collects it in its own time.
        return info is not None and info[2] == self.start_time and info[0] not in ("Z", "X")


def _stat(pid: int) -> tuple[str, int, int] | None:
    """Return (state, ppid, start time) from /proc/<pid>/stat, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read().decode(errors="replace")
    except OSError:
        return None
    # comm may contain spaces and parentheses: the fields start after the last ')'.
    fields = data[data.rindex(")") + 2 :].split()
    return fields[0], int(fields[1]), int(fields[19])


def _cmdline(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            data = f.read()
    except OSError:
        return []
    return [arg.decode(errors="surrogateescape") for arg in data.split(b"\0")[:-1]]


def _pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def _flag_value(argv: Sequence[str], flag: str) -> str | None:
    """The value of a Go-style flag (``-flag v``, ``--flag v``, ``-flag=v``) in argv."""
    for i, arg in enumerate(argv):
        name, sep, value = arg.lstrip("-").partition("=")
        if not arg.startswith("-") or name != flag:
            continue
        if sep:
            return value
        if i + 1 < len(argv):
            return argv[i + 1]
    return None


def find_shims(address: str, namespace: str | None = None) -> list[int]:
    """Return the pids of the live shims serving the containerd at ``address``.

    A shim is a ``containerd-shim*`` process; the long-running one is started as
    ``containerd-shim-runc-v2 -namespace NS -id ID -address ADDRESS``.

    Args:
        address: The daemon's gRPC socket path.
        namespace: Only shims of this containerd namespace.

    Returns:
        The pids, sorted.
    """
    wanted = {address, "unix://" + address}
    found = []
    for pid in _pids():
        argv = _cmdline(pid)
        if not argv or not os.path.basename(argv[0]).startswith("containerd-shim"):
            continue
        if _flag_value(argv, "address") not in wanted:
            continue
        if namespace is not None and _flag_value(argv, "namespace") != namespace:
            continue
        proc = _Proc.of(pid)
        if proc is not None and proc.alive():
            found.append(pid)
    return sorted(found)


def _descendants(roots: Iterable[_Proc]) -> list[_Proc]:
    """All live descendants of ``roots`` (not the roots), children before grandchildren."""
    children: dict[int, list[int]] = {}
    for pid in _pids():
        info = _stat(pid)
        if info is not None:
            children.setdefault(info[1], []).append(pid)
    out: list[_Proc] = []
    queue = [root.pid for root in roots]
    seen = set(queue)
    while queue:
        for child in children.get(queue.pop(0), []):
            proc = _Proc.of(child)
            if child not in seen and proc is not None:
                seen.add(child)
                out.append(proc)
                queue.append(child)
    return out


def _listening_socket_paths(pid: int) -> list[str]:
    """Filesystem paths of the unix sockets process ``pid`` listens on (a shim's socket)."""
    inodes = set()
    with contextlib.suppress(OSError):
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
    paths = []
    with contextlib.suppress(OSError), open(f"/proc/{pid}/net/unix") as f:
        next(f)
        for line in f:
            parts = line.split()
            # Num RefCount Protocol Flags Type St Inode [Path]; '@' marks abstract sockets.
            # Flags 0x10000 (__SO_ACCEPTCON) marks a listening socket: connections
            # accepted on it show the same path but are not its to remove.
            if len(parts) < 8 or parts[6] not in inodes or not parts[7].startswith("/"):
                continue
            if int(parts[3], 16) & _SO_ACCEPTCON:
                paths.append(parts[7])
    return paths


def _thaw(pid: int) -> None:
    """Thaw the cgroup freezer holding ``pid`` (a frozen process ignores SIGKILL until thawed)."""
    with contextlib.suppress(OSError), open(f"/proc/{pid}/cgroup") as f:
        for line in f:
            _, controllers, path = line.rstrip("\n").split(":", 2)
            with contextlib.suppress(OSError):
                if controllers == "freezer":
                    with open(f"/sys/fs/cgroup/freezer{path}/freezer.state", "w") as state:
                        state.write("THAWED")
                elif controllers == "" and os.path.exists(f"/sys/fs/cgroup{path}/cgroup.freeze"):
                    with open(f"/sys/fs/cgroup{path}/cgroup.freeze", "w") as state:
                        state.write("0")


def _kill_all(procs: Sequence[_Proc]) -> None:
    for proc in procs:
        if proc.alive():
            _thaw(proc.pid)
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGKILL)


def _wait_gone(procs: Sequence[_Proc], timeout: float) -> list[_Proc]:
    """Wait until every process has exited; return those still alive at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        left = [p for p in procs if p.alive()]
        if not left or time.monotonic() >= deadline:
            return left
        time.sleep(0.02)


def _unescape_mountinfo(field: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as \ooo.
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\" and field[i + 1 : i + 4].isdigit() and len(field[i + 1 : i + 4]) == 3:
            out.append(chr(int(field[i + 1 : i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def _mounts_under(path: str) -> list[str]:
    """Mount points at or below ``path`` in our mount namespace, innermost (latest) first."""
    prefix = path.rstrip("/") + "/"
    found = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            point = _unescape_mountinfo(line.split()[4])
            if point == path or point.startswith(prefix):
                found.append(point)
    return list(reversed(found))


def _cgroup_roots() -> list[str]:
    """Mount points of the cgroup hierarchies (v1 controllers and/or the v2 tree)."""
    roots = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            pre, _, post = line.partition(" - ")
            fields = pre.split()
            if post.split()[:1] in (["cgroup"], ["cgroup2"]) and fields[3] == "/":
                roots.append(_unescape_mountinfo(fields[4]))
    return roots


def _top_cgroups() -> set[str]:
    names: set[str] = set()
    for root in _cgroup_roots():
        with contextlib.suppress(OSError):
            names.update(
                os.path.join(root, e.name) for e in os.scandir(root) if e.is_dir(follow_symlinks=False)
            )
    return names


def _umount(path: str) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.umount2(os.fsencode(path), _MNT_DETACH) != 0:
        err = ctypes.get_errno()
        # EINVAL: no longer a mount point (a parent's detach took it); ENOENT: gone.
        if err not in (errno.EINVAL, errno.ENOENT):
            raise OSError(err, os.strerror(err), path)


# --------------------------------------------------------------------------------------------------
# Removing tasks and containers: one controller interface, one factory


@dataclass(frozen=True)
class _TaskEntry:
    id: str
    status: str


class _Controller(Protocol):
    """What cleanup needs from containerd. Every method raises ``RuntimeError`` on failure."""

    def namespaces(self) -> list[str]: ...

    def tasks(self, namespace: str) -> list[_TaskEntry]: ...

    def resume_task(self, namespace: str, task_id: str) -> None: ...

    def force_delete_task(self, namespace: str, task_id: str) -> None: ...

    def containers(self, namespace: str) -> list[str]: ...

    def delete_container(self, namespace: str, container_id: str) -> None: ...

    def images(self, namespace: str) -> list[str]: ...

    def delete_image(self, namespace: str, name: str) -> None: ...

    def leases(self, namespace: str) -> list[str]: ...

    def delete_lease(self, namespace: str, lease_id: str) -> None: ...

    def snapshots(self, namespace: str, snapshotter: str) -> list[tuple[str, str]]: ...

    def delete_snapshot(self, namespace: str, snapshotter: str, key: str) -> None: ...

    def blobs(self, namespace: str) -> list[str]: ...

    def delete_blob(self, namespace: str, digest: str) -> None: ...

    def delete_namespace(self, namespace: str) -> None: ...

    def close(self) -> None: ...


class _CtrController:
    """:class:`_Controller` over containerd's own ``ctr`` command.

    Subcommands are spelled ``ls``/``rm``: the aliases every ctr from 1.6 to 2.x accepts.
    """

    def __init__(self, address: str, ctr: str = "ctr", timeout: float = 60.0) -> None:
        self._address = address
        self._ctr = ctr
        self._timeout = timeout

    def _run(self, namespace: str | None, *args: str) -> list[str]:
        argv = [self._ctr, "--address", self._address]
        if namespace is not None:
            argv += ["--namespace", namespace]
        argv += args
        try:
            done = subprocess.run(
                argv,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=self._timeout,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise RuntimeError(f"{' '.join(argv)}: {exc}") from exc
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)}: {done.stderr.strip() or f'exit status {done.returncode}'}")
        return [line for line in done.stdout.splitlines() if line.strip()]

    def namespaces(self) -> list[str]:
        return self._run(None, "namespaces", "ls", "--quiet")

    def tasks(self, namespace: str) -> list[_TaskEntry]:
        # Columns: TASK PID STATUS (header first).
        rows = [line.split() for line in self._run(namespace, "tasks", "ls")[1:]]
        return [_TaskEntry(row[0], row[2] if len(row) > 2 else "UNKNOWN") for row in rows if row]

    def resume_task(self, namespace: str, task_id: str) -> None:
        self._run(namespace, "tasks", "resume", task_id)

    def force_delete_task(self, namespace: str, task_id: str) -> None:
        # --force kills with SIGKILL (all processes), waits for the exit, then deletes.
        self._run(namespace, "tasks", "rm", "--force", task_id)

    def containers(self, namespace: str) -> list[str]:
        return self._run(namespace, "containers", "ls", "--quiet")

    def delete_container(self, namespace: str, container_id: str) -> None:
        self._run(namespace, "containers", "rm", container_id)

    def images(self, namespace: str) -> list[str]:
        return self._run(namespace, "images", "ls", "--quiet")

    def delete_image(self, namespace: str, name: str) -> None:
        self._run(namespace, "images", "rm", "--sync", name)

    def leases(self, namespace: str) -> list[str]:
        return self._run(namespace, "leases", "ls", "--quiet")

    def delete_lease(self, namespace: str, lease_id: str) -> None:
        self._run(namespace, "leases", "rm", "--sync", lease_id)

    def snapshots(self, namespace: str, snapshotter: str) -> list[tuple[str, str]]:
        # Columns: KEY PARENT KIND; PARENT may be empty.
        out = []
        for line in self._run(namespace, "snapshots", "--snapshotter", snapshotter, "ls")[1:]:
            parts = line.split()
            if len(parts) == 3:
                out.append((parts[0], parts[1]))
            elif len(parts) == 2:
                out.append((parts[0], ""))
        return out

    def delete_snapshot(self, namespace: str, snapshotter: str, key: str) -> None:
        self._run(namespace, "snapshots", "--snapshotter", snapshotter, "rm", key)

    def blobs(self, namespace: str) -> list[str]:
        return self._run(namespace, "content", "ls", "--quiet")

    def delete_blob(self, namespace: str, digest: str) -> None:
        self._run(namespace, "content", "rm", digest)

    def delete_namespace(self, namespace: str) -> None:
        # --cgroup also removes the namespace's parent cgroup (/<namespace>) that
        # containerd's default cgroupsPath (/<namespace>/<id>) created.
        self._run(None, "namespaces", "rm", "--cgroup", namespace)

    def close(self) -> None:
        pass


class _APIController(_CtrController):
    """Tasks, containers and namespaces through pycontainerd's own client.

    Images, leases, snapshots and content still go through ``ctr`` (inherited)
    until the client wraps those services. Imported lazily: the daemon module
    must work without the gRPC layer.
    """

    def __init__(self, address: str, ctr: str = "ctr", timeout: float = 60.0) -> None:
        super().__init__(address, ctr, timeout)
        from pycontainerd.client import Client
        from pycontainerd.errors import ContainerdError, NotFoundError

        self._client = Client(address, timeout=timeout)
        self._errors = (ContainerdError, ValueError)
        self._not_found = NotFoundError

    def _api(self, namespace: str) -> Any:
        return self._client.with_namespace(namespace).api

    def _call(self, what: str, action: Callable[[], _T]) -> _T:
        try:
            return action()
        except self._errors as exc:
            raise RuntimeError(f"{what}: {exc}") from exc

    def namespaces(self) -> list[str]:
        return self._call("list namespaces", lambda: [n.name for n in self._client.api.namespaces.list()])

    def tasks(self, namespace: str) -> list[_TaskEntry]:
        infos = self._call("list tasks", lambda: self._api(namespace).tasks.list())
        return [_TaskEntry(t.container_id or t.id, t.status.value.upper()) for t in infos]

    def resume_task(self, namespace: str, task_id: str) -> None:
        self._call(f"resume {task_id}", lambda: self._api(namespace).tasks.resume(task_id))

    def force_delete_task(self, namespace: str, task_id: str) -> None:
        tasks = self._api(namespace).tasks
        try:
            tasks.kill(task_id, signal.SIGKILL, all=True)
        except self._not_found:
            pass  # already exited: nothing to kill, still something to delete
        except self._errors as exc:
            raise RuntimeError(f"kill {task_id}: {exc}") from exc
        self._call(f"wait {task_id}", lambda: tasks.wait(task_id, timeout=self._timeout))
        self._call(f"delete {task_id}", lambda: tasks.delete(task_id))

    def containers(self, namespace: str) -> list[str]:
        return self._call("list containers", lambda: [c.id for c in self._api(namespace).containers.list()])

    def delete_container(self, namespace: str, container_id: str) -> None:
        # ctr's delete also removes the container's snapshot; so does this, through ctr.
        snapshot = self._call(
            f"get {container_id}", lambda: self._api(namespace).containers.get(container_id)
        )
        self._call(f"delete {container_id}", lambda: self._api(namespace).containers.delete(container_id))
        if snapshot.snapshotter and snapshot.snapshot_key:
            with contextlib.suppress(RuntimeError):
                self.delete_snapshot(namespace, snapshot.snapshotter, snapshot.snapshot_key)

    def close(self) -> None:
        self._client.close()


def _controller(address: str, *, ctr: str = "ctr") -> _Controller:
    """The one place that picks how cleanup talks to containerd: our client if present, else ctr."""
    try:
        return _APIController(address, ctr)
    except ImportError:
        return _CtrController(address, ctr)


def _try(errors: list[str], what: str, action: Callable[..., object], *args: str) -> bool:
    try:
        action(*args)
    except RuntimeError as exc:
        errors.append(f"{what}: {exc}")
        return False
    return True


def _purge_tasks_and_containers(ctl: _Controller, namespace: str) -> list[str]:
    errors: list[str] = []
    try:
        tasks = ctl.tasks(namespace)
    except RuntimeError as exc:
        return [f"list tasks in {namespace}: {exc}"]
    for task in tasks:
        if task.status in ("PAUSED", "PAUSING"):
            # A frozen task cannot die: the SIGKILL of a forced delete would wait forever.
            _try(errors, f"resume task {namespace}/{task.id}", ctl.resume_task, namespace, task.id)
        _try(errors, f"delete task {namespace}/{task.id}", ctl.force_delete_task, namespace, task.id)
    try:
        containers = ctl.containers(namespace)
    except RuntimeError as exc:
        return [*errors, f"list containers in {namespace}: {exc}"]
    for container_id in containers:
        _try(
            errors,
            f"delete container {namespace}/{container_id}",
            ctl.delete_container,
            namespace,
            container_id,
        )
    return errors


def _purge_snapshots(ctl: _Controller, namespace: str, snapshotter: str) -> list[str]:
    errors: list[str] = []
    try:
        snapshots = ctl.snapshots(namespace, snapshotter)
    except RuntimeError:
        return []  # that snapshotter is not loaded
    while snapshots:
        parents = {parent for _, parent in snapshots}
        leaves = [key for key, _ in snapshots if key not in parents]
        # Children go before their parents; stop when a pass removes nothing.
        removed = [
            key
            for key in leaves
            if _try(errors, f"delete snapshot {key}", ctl.delete_snapshot, namespace, snapshotter, key)
        ]
        if not removed:
            break
        snapshots = [(key, parent) for key, parent in snapshots if key not in removed]
    return errors


def purge_namespace(address: str, namespace: str, *, delete: bool = True, ctr: str = "ctr") -> list[str]:
    """Remove everything in one containerd namespace, and by default the namespace.

    Tasks are force-deleted (paused ones resumed first), then containers (with
    their snapshots), images, leases, remaining snapshots and content blobs;
    finally the namespace and its parent cgroup. Nothing raises: every failure
    is collected, so the caller decides whether a leftover matters.

    Args:
        address: The daemon's gRPC socket path.
        namespace: The namespace to empty.
        delete: Also delete the namespace itself.
        ctr: The ``ctr`` binary.

    Returns:
        One message per failed step (empty when everything went).
    """
    ctl = _controller(address, ctr=ctr)
    try:
        return _purge_namespace(ctl, namespace, delete=delete)
    finally:
        ctl.close()


def _purge_namespace(ctl: _Controller, namespace: str, *, delete: bool) -> list[str]:
    errors = _purge_tasks_and_containers(ctl, namespace)
    if not delete:
        return errors
    for listing, remover, what in (
        (ctl.images, ctl.delete_image, "image"),
        (ctl.leases, ctl.delete_lease, "lease"),
    ):
        try:
            for name in listing(namespace):
                _try(errors, f"delete {what} {namespace}/{name}", remover, namespace, name)
        except RuntimeError as exc:
            errors.append(f"list {what}s in {namespace}: {exc}")
    for snapshotter in ("overlayfs", "native"):
        errors += _purge_snapshots(ctl, namespace, snapshotter)
    try:
        for digest in ctl.blobs(namespace):
            _try(errors, f"delete blob {digest}", ctl.delete_blob, namespace, digest)
    except RuntimeError as exc:
        errors.append(f"list content in {namespace}: {exc}")
    if _try(errors, f"delete namespace {namespace}", ctl.delete_namespace, namespace):
        # runc leaves the (empty) per-namespace dir in the shared default root.
        with contextlib.suppress(OSError):
            os.rmdir(os.path.join(_DEFAULT_RUNC_ROOT, namespace))
    return errors


# --------------------------------------------------------------------------------------------------
# Which containerd


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
    if shutil.which("containerd", path=_standard_path(os.environ.get("PATH"))):
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
    path = shutil.which(binary, path=_standard_path(os.environ.get("PATH"))) or binary
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


# --------------------------------------------------------------------------------------------------
# The daemon


@dataclass(frozen=True)
class _Layout:
    base: str

    @property
    def address(self) -> str:
        return os.path.join(self.base, "containerd.sock")

    @property
    def ttrpc_address(self) -> str:
        return self.address + _TTRPC_SUFFIX

    @property
    def root(self) -> str:
        return os.path.join(self.base, "root")

    @property
    def state(self) -> str:
        return os.path.join(self.base, "state")

    @property
    def temp(self) -> str:
        return os.path.join(self.base, "tmp")

    @property
    def opt(self) -> str:
        return os.path.join(self.base, "opt")

    @property
    def runc_root(self) -> str:
        return os.path.join(self.base, "runc")

    @property
    def config_path(self) -> str:
        return os.path.join(self.base, "config.toml")

    @property
    def log_path(self) -> str:
        return os.path.join(self.base, "containerd.log")

    @property
    def pid_path(self) -> str:
        return os.path.join(self.base, "containerd.pid")

    def entries(self) -> tuple[str, ...]:
        return (
            self.address,
            self.ttrpc_address,
            self.root,
            self.state,
            self.temp,
            self.opt,
            self.runc_root,
            self.config_path,
            self.log_path,
            self.pid_path,
        )


def _toml_string(value: str) -> str:
    # A JSON string is a valid TOML basic string for everything a path can hold
    # except lone surrogates, which json.dumps escapes as \udXXX (also rejected by TOML).
    if any(0xD800 <= ord(ch) <= 0xDFFF for ch in value):
        raise ValueError(f"path is not valid UTF-8: {value!r}")
    return json.dumps(value)


def _render_config(layout: _Layout, log_level: str, extra: str, major: int = 1) -> str:
    disabled = ", ".join(_toml_string(name) for name in _DISABLED_PLUGINS)
    # containerd 2.x reads version 2 configs but migrates them at every start (and
    # logs a warning); the keys written here mean the same in both versions.
    config_version = 3 if major >= 2 else 2
    return f"""# Written by pycontainerd.daemon.PrivateContainerd; rewritten at every start.
version = {config_version}
root = {_toml_string(layout.root)}
state = {_toml_string(layout.state)}
temp = {_toml_string(layout.temp)}
disabled_plugins = [{disabled}]

[grpc]
  address = {_toml_string(layout.address)}

[ttrpc]
  address = {_toml_string(layout.ttrpc_address)}

[debug]
  address = ""
  level = {_toml_string(log_level)}

[metrics]
  address = ""

[plugins]
  [plugins."io.containerd.internal.v1.opt"]
    path = {_toml_string(layout.opt)}
{extra}"""


def _health_check(address: str, timeout: float) -> bool:
    if not os.path.exists(address):
        return False
    # A fresh channel per probe: a channel that failed to connect backs off (1 s
    # and growing) before it tries again, which would slow start-up detection.
    with grpc.insecure_channel("unix://" + address) as channel:
        check = channel.unary_unary(_HEALTH_CHECK, request_serializer=None, response_deserializer=None)
        try:
            return bool(check(b"", timeout=timeout) == _SERVING)
        except grpc.RpcError:
            return False


def _log_tail(path: str, offset: int = 0, lines: int = _LOG_TAIL_LINES) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(max(offset, os.path.getsize(path) - 64 * 1024))
            data = f.read().decode(errors="replace")
    except OSError as exc:
        return f"(no log: {exc})"
    return "\n".join(data.splitlines()[-lines:])


def _standard_path(path: str | None) -> str:
    # runc and the shims are found through containerd's PATH; sudo and cron
    # often drop the sbin directories where Debian installs runc.
    parts = [p for p in (path or "").split(":") if p]
    return ":".join(parts + [p for p in _STANDARD_PATH if p not in parts])


def _default_parent() -> str:
    return "/run" if os.geteuid() == 0 and os.access("/run", os.W_OK) else "/tmp"


@dataclass
class _State:
    """Everything the daemon's lifecycle needs; shared by the object and its safety net."""

    layout: _Layout
    binary: str
    ctr: str
    log_level: str
    config_extra: str
    created_base: bool
    lock: threading.RLock = field(default_factory=threading.RLock)
    popen: subprocess.Popen[bytes] | None = None
    proc: _Proc | None = None
    start_offset: int = 0
    shared_created: list[str] = field(default_factory=list)
    cgroups_before: set[str] = field(default_factory=set)
    shared_checked: bool = False
    namespaces_seen: set[str] = field(default_factory=set)
    removed: bool = False
    owner_pid: int = field(default_factory=os.getpid)

    # -- process --------------------------------------------------------------------------------

    def running(self) -> bool:
        if self.proc is None:
            return False
        if self.popen is not None and self.popen.poll() is not None:
            return False
        return self.proc.alive()

    def _wait_exit(self, timeout: float) -> bool:
        if self.popen is not None:
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                return False
            return True
        assert self.proc is not None
        return not _wait_gone([self.proc], timeout)

    def _forget_process(self) -> None:
        self.popen = None
        self.proc = None
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.layout.pid_path)

    def _signal(self, sig: int) -> None:
        assert self.proc is not None
        if self.proc.alive():
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, sig)

    def adopt(self) -> None:
        """Take over a daemon a previous PrivateContainerd on this base dir left running."""
        try:
            with open(self.layout.pid_path) as f:
                pid = int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            return
        proc = _Proc.of(pid)
        if proc is not None and proc.alive() and self.layout.config_path in _cmdline(pid):
            self.proc = proc

    def _note_shared_dirs(self) -> None:
        if self.shared_checked:
            return
        self.shared_checked = True
        for path in (*(os.path.join(_SHARED_STATE, d) for d in _SHARED_DIRS), _SHARED_STATE):
            if not os.path.lexists(path):
                self.shared_created.append(path)
        self.cgroups_before = _top_cgroups()

    def start(self, timeout: float) -> None:
        with self.lock:
            if self.removed:
                raise DaemonError(f"the private containerd at {self.layout.base} was closed")
            if self.running():
                assert self.proc is not None
                raise DaemonError(f"containerd is already running (pid {self.proc.pid})")
            search = _standard_path(os.environ.get("PATH"))
            binary = shutil.which(self.binary, path=search)
            if binary is None:
                raise FileNotFoundError(errno.ENOENT, "containerd binary not found", self.binary)
            self._note_shared_dirs()
            layout = self.layout
            os.makedirs(layout.base, mode=0o711, exist_ok=True)
            for path in (layout.temp, layout.opt, layout.runc_root):
                os.makedirs(path, mode=0o700, exist_ok=True)
            tmp_config = layout.config_path + ".tmp"
            with open(tmp_config, "w") as f:
                f.write(_render_config(layout, self.log_level, self.config_extra, self._major(binary)))
            os.replace(tmp_config, layout.config_path)
            # The shims are found through the daemon's PATH: a containerd given by path
            # (another version than the system's) must find its own shim first.
            path = search if os.sep not in self.binary else os.path.dirname(binary) + os.pathsep + search
            env = dict(os.environ, PATH=path)
            with open(layout.log_path, "ab") as log:
                self.start_offset = log.tell()
                log.write(f"--- pycontainerd: starting {binary} --config {layout.config_path}\n".encode())
                log.flush()
                # A new session: a Ctrl-C aimed at the caller's process group must not
                # kill the daemon before the caller's orderly cleanup has used it.
                self.popen = subprocess.Popen(
                    [binary, "--config", layout.config_path],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=layout.base,
                    env=env,
                    close_fds=True,
                    start_new_session=True,
                )
            self.proc = _Proc.of(self.popen.pid)
            with open(layout.pid_path, "w") as f:
                f.write(f"{self.popen.pid}\n")
            self._wait_serving(timeout)

    def _major(self, binary: str) -> int:
        # Only picks the config version: a binary that cannot tell gets version 2,
        # which every supported containerd reads (2.x migrates it).
        try:
            return binary_version(binary, timeout=5)[0]
        except DaemonError:
            return 1

    def _wait_serving(self, timeout: float) -> None:
        assert self.popen is not None
        deadline = time.monotonic() + timeout
        delay = 0.01
        while True:
            status = self.popen.poll()
            if status is not None:
                self._forget_process()
                raise DaemonError(
                    f"containerd exited with status {status} while starting",
                    _log_tail(self.layout.log_path, self.start_offset),
                )
            remaining = deadline - time.monotonic()
            if _health_check(self.layout.address, timeout=max(0.1, min(1.0, remaining))):
                return
            if time.monotonic() >= deadline:
                self.popen.kill()
                self.popen.wait()
                self._forget_process()
                raise DaemonError(
                    f"containerd did not serve on {self.layout.address} within {timeout:g} s",
                    _log_tail(self.layout.log_path, self.start_offset),
                )
            time.sleep(delay)
            delay = min(delay * 2, 0.2)

    def stop(self, timeout: float) -> None:
        with self.lock:
            if self.proc is None:
                return
            if self.running():
                self._signal(signal.SIGTERM)
                if not self._wait_exit(timeout):
                    self._signal(signal.SIGKILL)
                    self._wait_exit(30)
            elif self.popen is not None:
                self.popen.wait()
            self._forget_process()

    def kill(self) -> None:
        with self.lock:
            if self.proc is None:
                return
            self._signal(signal.SIGKILL)
            self._wait_exit(30)
            self._forget_process()

    # -- cleanup --------------------------------------------------------------------------------

    def cleanup(self, shim_timeout: float) -> None:
        with self.lock:
            errors: list[str] = []
            started_here = False
            if not self.running() and not self.removed and os.path.exists(self._metadata_db()):
                # Tasks are removed through the daemon, so bring it back for the job
                # (a daemon that never ran has nothing to remove).
                try:
                    self.start(10)
                    started_here = True
                except (DaemonError, OSError) as exc:
                    errors.append(f"could not start containerd for cleanup: {exc}")
            if self.running():
                errors += self._purge_all()
            errors += self._end_shims(shim_timeout)
            if started_here:
                self.stop(10)
            if errors:
                raise DaemonError(
                    "cleanup of the private containerd was incomplete:\n  " + "\n  ".join(errors)
                )

    def _metadata_db(self) -> str:
        return os.path.join(self.layout.root, "io.containerd.metadata.v1.bolt", "meta.db")

    def _purge_all(self) -> list[str]:
        ctl = _controller(self.layout.address, ctr=self.ctr)
        try:
            namespaces = ctl.namespaces()
            self.namespaces_seen.update(namespaces)
            errors: list[str] = []
            for namespace in namespaces:
                errors += _purge_tasks_and_containers(ctl, namespace)
            return errors
        except RuntimeError as exc:
            return [f"list namespaces: {exc}"]
        finally:
            ctl.close()

    def _end_shims(self, shim_timeout: float) -> list[str]:
        shims = [p for p in map(_Proc.of, find_shims(self.layout.address)) if p is not None]
        if not shims:
            self._remove_orphan_bundles()
            return []
        sockets = {shim: _listening_socket_paths(shim.pid) for shim in shims}
        # A shim exits by itself once its last task is deleted; give it that chance.
        left = _wait_gone(shims, shim_timeout)
        errors: list[str] = []
        if left:
            tree = _descendants(left)
            _kill_all(tree)
            _kill_all(left)
            still = _wait_gone([*tree, *left], 30)
            if still:
                errors.append(f"processes survived SIGKILL: {sorted(p.pid for p in still)}")
            if self.running():
                # containerd notices the dead shims and cleans their tasks up; a
                # second pass deletes what it leaves behind.
                errors += self._purge_all()
        for shim, paths in sockets.items():
            if shim.alive():
                continue
            for path in paths:
                with contextlib.suppress(OSError):
                    if stat.S_ISSOCK(os.lstat(path).st_mode):
                        os.unlink(path)
        if not self.running():
            self._remove_orphan_bundles()
        return errors

    def _bundles(self) -> Iterator[tuple[str, str, str]]:
        tasks_dir = os.path.join(self.layout.state, _TASK_STATE)
        with contextlib.suppress(OSError):
            for namespace in sorted(os.listdir(tasks_dir)):
                self.namespaces_seen.add(namespace)
                with contextlib.suppress(OSError):
                    for task_id in sorted(os.listdir(os.path.join(tasks_dir, namespace))):
                        yield namespace, task_id, os.path.join(tasks_dir, namespace, task_id)

    def _remove_orphan_bundles(self) -> None:
        """With the daemon gone, do for left-over bundles what a task delete would have done."""
        if self.running():
            return
        for namespace, task_id, bundle in self._bundles():
            runc_root = _DEFAULT_RUNC_ROOT
            with contextlib.suppress(OSError, ValueError), open(os.path.join(bundle, "options.json")) as f:
                runc_root = json.load(f).get("root") or runc_root
            # The shim runs runc with --root <options root>/<namespace>.
            runc_root = os.path.join(runc_root, namespace)
            runc = shutil.which("runc", path=_standard_path(os.environ.get("PATH")))
            if runc is not None:
                # Removes runc's state dir and the container's cgroups.
                subprocess.run(
                    [runc, "--root", runc_root, "delete", "--force", task_id],
                    stdin=subprocess.DEVNULL,
                    capture_output=True,
                    timeout=30,
                    check=False,
                )
            for point in _mounts_under(bundle):
                with contextlib.suppress(OSError):
                    _umount(point)

    # -- removal --------------------------------------------------------------------------------

    def remove(self) -> None:
        with self.lock:
            if self.removed:
                return
            if self.running():
                raise DaemonError("stop the private containerd before removing its directory")
            base = self.layout.base
            for point in _mounts_under(base):
                _umount(point)
            left = _mounts_under(base)
            if left:
                # Never delete through a mount point: it would delete the mounted files.
                raise DaemonError(f"still mounted under {base}: {left}")
            owned = self.created_base or os.path.exists(os.path.join(base, _OWNED_MARKER))
            if owned:
                shutil.rmtree(base, ignore_errors=True)
            else:
                for path in self.layout.entries():
                    if os.path.isdir(path) and not os.path.islink(path):
                        shutil.rmtree(path, ignore_errors=True)
                    else:
                        with contextlib.suppress(FileNotFoundError):
                            os.unlink(path)
            self._tidy_shared_dirs()
            self.removed = True
            if owned and os.path.lexists(base):
                raise DaemonError(f"could not remove {base}")

    def _tidy_shared_dirs(self) -> None:
        # rmdir only removes empty directories (and cgroups without processes or
        # children), so another daemon's state is never touched.
        for namespace in sorted(self.namespaces_seen):
            with contextlib.suppress(OSError):
                os.rmdir(os.path.join(_DEFAULT_RUNC_ROOT, namespace))
            # containerd's default cgroupsPath /<namespace>/<id> leaves /<namespace>
            # behind in every hierarchy once the containers are gone.
            if self.shared_checked:
                for root in _cgroup_roots():
                    path = os.path.join(root, namespace)
                    if path not in self.cgroups_before:
                        with contextlib.suppress(OSError):
                            os.rmdir(path)
        for path in self.shared_created:
            with contextlib.suppress(OSError):
                os.rmdir(path)

    def close(self, stop_timeout: float, shim_timeout: float) -> None:
        with self.lock:
            if self.removed:
                return
            problems: list[str] = []
            try:
                self.cleanup(shim_timeout)
            except DaemonError as exc:
                problems.append(str(exc))
            self.stop(stop_timeout)
            try:
                self.remove()
            except (DaemonError, OSError) as exc:
                problems.append(str(exc))
            if problems:
                raise DaemonError("\n".join(problems))


def _safety_net(state: _State) -> None:
    """Finalizer: whatever the owner forgot, leave no daemon, shim or directory behind."""
    if os.getpid() != state.owner_pid:
        return  # a forked child exiting must not tear down its parent's daemon
    try:
        state.close(stop_timeout=10, shim_timeout=5)
    except Exception as exc:  # at exit or in GC there is nobody to raise to
        _log.warning("pycontainerd: cleaning up the private containerd at %s: %s", state.layout.base, exc)


class PrivateContainerd:
    """A private containerd process with its own root, state, sockets and config.

    Construction only picks the directory; :meth:`start` runs the daemon. If the
    base directory holds a daemon that a previous ``PrivateContainerd`` left
    running (``safety_net=False``), the new object adopts it: :attr:`pid` is
    set and :meth:`stop`/:meth:`close` end it.

    Args:
        base_dir: Directory for everything; created (mode 0711) if missing. A new
            ``pcd-XXXXXXXX`` directory under ``/run`` (root) or ``/tmp`` when ``None``.
            Keep it short: socket paths must fit in 107 bytes.
        binary: The containerd binary (name on ``PATH`` or path). Given as a path, its
            directory comes first on the daemon's ``PATH``, so that its own shim
            (``containerd-shim-runc-v2``) is the one started.
        ctr: The ``ctr`` binary used by :meth:`cleanup` (default: the one beside
            ``binary``, else ``ctr`` on ``PATH``).
        version: Instead of ``binary``: a containerd version fetched into the cache by
            ``scripts/fetch-containerd`` (``"1.7"``, ``"2"``, ``"2.1"``), or ``"system"``
            (see :func:`cached_binary`).
        log_level: containerd's log level (``"debug"``, ``"info"``, ...).
        config_extra: TOML appended to the generated config (e.g. plugin settings;
            it lands after the ``[plugins]`` table).
        safety_net: Close the daemon (cleanup, stop, remove) when this object is
            garbage-collected or the interpreter exits without :meth:`close`.
            Pass ``False`` for a daemon meant to outlive this process.

    Raises:
        ValueError: The socket path would be longer than 107 bytes.
    """

    def __init__(
        self,
        base_dir: str | os.PathLike[str] | None = None,
        *,
        binary: str = "containerd",
        ctr: str | None = None,
        log_level: str = "info",
        config_extra: str = "",
        safety_net: bool = True,
        version: str | None = None,
    ) -> None:
        if version is not None:
            binary = cached_binary(version)
        if ctr is None:
            beside = os.path.join(os.path.dirname(binary), "ctr")
            ctr = beside if os.sep in binary and os.access(beside, os.X_OK) else "ctr"
        self._version: tuple[int, ...] | None = None
        if base_dir is None:
            base = tempfile.mkdtemp(prefix="pcd-", dir=_default_parent())
            os.chmod(base, 0o711)
            created = True
        else:
            base = os.path.abspath(os.fspath(base_dir))
            created = not os.path.lexists(base)
        layout = _Layout(base)
        if not _rules.socket_path_fits(layout.ttrpc_address):
            if created and base_dir is None:
                os.rmdir(base)
            raise ValueError(
                f"socket path {layout.ttrpc_address!r} is longer than {_rules.MAX_SOCKET_PATH} bytes; "
                "use a shorter base_dir"
            )
        if created:
            os.makedirs(base, mode=0o711, exist_ok=True)
            with open(os.path.join(base, _OWNED_MARKER), "w"):
                pass
        self._state = _State(layout, binary, ctr, log_level, config_extra, created_base=created)
        self._state.adopt()
        self._finalizer = weakref.finalize(self, _safety_net, self._state) if safety_net else None

    # -- attributes ------------------------------------------------------------------------------

    @property
    def binary(self) -> str:
        """The containerd binary this daemon runs (as given: a name on ``PATH`` or a path)."""
        return self._state.binary

    @property
    def ctr(self) -> str:
        """The ``ctr`` binary that matches :attr:`binary`."""
        return self._state.ctr

    @property
    def version(self) -> tuple[int, ...]:
        """The version :attr:`binary` reports, e.g. ``(1, 7, 24)``."""
        if self._version is None:
            self._version = binary_version(self._state.binary)
        return self._version

    @property
    def base_dir(self) -> str:
        """The directory holding everything of this daemon."""
        return self._state.layout.base

    @property
    def address(self) -> str:
        """The gRPC socket path (what ``pycontainerd.Client`` and ``ctr --address`` take)."""
        return self._state.layout.address

    @property
    def ttrpc_address(self) -> str:
        """The ttrpc socket path."""
        return self._state.layout.ttrpc_address

    @property
    def root(self) -> str:
        """The daemon's persistent root directory (content, snapshots, metadata)."""
        return self._state.layout.root

    @property
    def state(self) -> str:
        """The daemon's state directory (bundles of running tasks)."""
        return self._state.layout.state

    @property
    def runc_root(self) -> str:
        """A runc state root private to this daemon (``base/runc``).

        containerd's shim defaults to ``/run/containerd/runc/<namespace>``, shared by
        every containerd on the host: two daemons running the same namespace and
        container id collide there. Pass this as the runc options' ``root``
        (``containerd.runc.v1.Options.root``, ``ctr run --runc-root``) to keep
        runc's state private. The directory is created at start. (The default
        cgroupsPath ``/<namespace>/<id>`` is host-global too: daemons sharing a
        host should not share namespace names.)
        """
        return self._state.layout.runc_root

    @property
    def config_path(self) -> str:
        """The generated ``config.toml``."""
        return self._state.layout.config_path

    @property
    def log_path(self) -> str:
        """The daemon's log file (appended to across restarts)."""
        return self._state.layout.log_path

    @property
    def pid(self) -> int | None:
        """The daemon's pid while it runs, else ``None``."""
        with self._state.lock:
            return self._state.proc.pid if self._state.running() and self._state.proc else None

    def __repr__(self) -> str:
        return f"PrivateContainerd(address={self.address!r}, pid={self.pid})"

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self, timeout: float = 30) -> None:
        """Start the daemon and wait until its health service reports SERVING.

        Args:
            timeout: Seconds to wait for readiness.

        Raises:
            DaemonError: It is already running, exited during start-up, or did not
                serve in time (then it is killed); the message has the log's tail.
            FileNotFoundError: The containerd binary is not installed.
        """
        self._state.start(timeout)

    def stop(self, timeout: float = 10) -> None:
        """Stop the daemon: SIGTERM, then SIGKILL after ``timeout`` seconds.

        Shims and their containers keep running (as with a real containerd);
        a later :meth:`start` reconnects to them. No-op when not running.

        Args:
            timeout: Seconds to wait after SIGTERM.
        """
        self._state.stop(timeout)

    def kill(self) -> None:
        """SIGKILL the daemon (a crash, for fault tests); shims and containers survive."""
        self._state.kill()

    def restart(self, *, kill: bool = False, timeout: float = 30, stop_timeout: float = 10) -> None:
        """Stop (or kill) the daemon, then start it again on the same root, state and sockets.

        Running tasks survive: the restarted daemon reconnects to their shims.

        Args:
            kill: SIGKILL instead of a graceful stop.
            timeout: Seconds to wait for readiness after starting.
            stop_timeout: Seconds to wait after SIGTERM.

        Raises:
            DaemonError: As for :meth:`start`.
        """
        with self._state.lock:
            if kill:
                self._state.kill()
            else:
                self._state.stop(stop_timeout)
            self._state.start(timeout)

    def is_serving(self, timeout: float = 1.0) -> bool:
        """Return whether the daemon runs and its health check reports SERVING.

        Args:
            timeout: Seconds for the health check.
        """
        return self._state.running() and _health_check(self.address, timeout)

    def shim_pids(self) -> list[int]:
        """Return the pids of the live shims started by this daemon."""
        return find_shims(self.address)

    def cleanup(self, *, shim_timeout: float = 5) -> None:
        """Remove every task and container in every namespace, then end every shim.

        Tasks are force-deleted (paused ones resumed first) and containers deleted
        with their snapshots. Shims of this daemon (found by pid, see
        :func:`find_shims`) normally exit when their last task goes; those still
        alive after ``shim_timeout`` are SIGKILLed with everything in their process
        trees, and the sockets they listened on are removed. If the daemon is not
        running it is started for the cleanup and stopped again. The daemon itself
        keeps running.

        Args:
            shim_timeout: Seconds to let shims exit by themselves.

        Raises:
            DaemonError: Something could not be removed (everything else was).
        """
        self._state.cleanup(shim_timeout)

    def remove(self) -> None:
        """Unmount anything under the base directory and delete it (the daemon must be stopped).

        Also removes empty directories this daemon caused under ``/run/containerd``.

        Raises:
            DaemonError: The daemon is running, or a mount under the directory
                could not be removed (then nothing is deleted).
        """
        self._state.remove()

    def close(self, *, stop_timeout: float = 10, shim_timeout: float = 5) -> None:
        """:meth:`cleanup`, :meth:`stop` and :meth:`remove`; idempotent.

        Args:
            stop_timeout: Seconds to wait after SIGTERM.
            shim_timeout: Seconds to let shims exit by themselves.

        Raises:
            DaemonError: Something was left behind; all steps still ran.
        """
        self._state.close(stop_timeout, shim_timeout)
        if self._finalizer is not None:
            self._finalizer.detach()

    def __enter__(self) -> PrivateContainerd:
        if not self._state.running():
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
