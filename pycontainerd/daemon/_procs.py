"""/proc scanning: process identities that survive pid reuse, shims, their descendants and sockets.

Cleanup identifies what a private containerd started by process, never by a
shared path: a shim is a ``containerd-shim*`` process whose command line has
``-address <our socket>``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = [
    "Proc",
    "cmdline",
    "descendants",
    "find_shims",
    "kill_all",
    "listening_socket_paths",
    "wait_gone",
]

# The __SO_ACCEPTCON flag of /proc/net/unix: a listening socket.
_SO_ACCEPTCON = 0x10000



@dataclass(frozen=True)
class Proc:
    """A process identity that survives pid reuse: pid plus start time (clock ticks since boot)."""

    pid: int
    start_time: int

    @classmethod
    def of(cls, pid: int) -> Proc | None:
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


def cmdline(pid: int) -> list[str]:
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
        argv = cmdline(pid)
        if not argv or not os.path.basename(argv[0]).startswith("containerd-shim"):
            continue
        if _flag_value(argv, "address") not in wanted:
            continue
        if namespace is not None and _flag_value(argv, "namespace") != namespace:
            continue
        proc = Proc.of(pid)
        if proc is not None and proc.alive():
            found.append(pid)
    return sorted(found)


def descendants(roots: Iterable[Proc]) -> list[Proc]:
    """All live descendants of ``roots`` (not the roots), children before grandchildren."""
    children: dict[int, list[int]] = {}
    for pid in _pids():
        info = _stat(pid)
        if info is not None:
            children.setdefault(info[1], []).append(pid)
    out: list[Proc] = []
    queue = [root.pid for root in roots]
    seen = set(queue)
    while queue:
        for child in children.get(queue.pop(0), []):
            proc = Proc.of(child)
            if child not in seen and proc is not None:
                seen.add(child)
                out.append(proc)
                queue.append(child)
    return out


def listening_socket_paths(pid: int) -> list[str]:
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


def kill_all(procs: Sequence[Proc]) -> None:
    for proc in procs:
        if proc.alive():
            _thaw(proc.pid)
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGKILL)


def wait_gone(procs: Sequence[Proc], timeout: float) -> list[Proc]:
    """Wait until every process has exited; return those still alive at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        left = [p for p in procs if p.alive()]
        if not left or time.monotonic() >= deadline:
            return left
        time.sleep(0.02)

