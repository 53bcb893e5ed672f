"""The embedded daemon: a private containerd that outlives the command that started it.

``pycontainerd daemon start`` runs the installed ``containerd`` with
:class:`~pycontainerd.daemon.PrivateContainerd`'s layout (own root, state,
sockets and config under one directory) in its own session, so it is not tied
to the CLI's process group or terminal: when the command exits, the daemon is
re-parented to init and keeps serving. ``stop`` adopts it again (a
``PrivateContainerd`` on the same directory finds the running daemon from its
pid file), removes every task and container, ends every shim it started and
stops it. Everything it writes is under :func:`base_dir`:

* ``$PYCONTAINERD_EMBEDDED_DIR`` when set;
* root: ``/run/pycontainerd/.embedded`` (the leading dot keeps it apart from the
  per-namespace bundle directories under ``/run/pycontainerd``: no namespace
  name can start with a dot);
* other users: ``$XDG_RUNTIME_DIR/pycontainerd/embedded``, else
  ``/tmp/pycontainerd-<uid>/embedded`` (containerd itself needs root, though).

``embedded.json`` there records the pid, the socket and the start time;
containers created by the CLI on this daemon keep their bundles (FIFOs) in
``bundles/`` and their runc state in ``runc/``, so nothing lands in the
host-wide ``/run/containerd/runc``.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import fcntl
import json
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from pycontainerd import _address

if TYPE_CHECKING:
    from pycontainerd.daemon import PrivateContainerd

__all__ = [
    "ENV_DIR",
    "ENV_ON_DEMAND",
    "EmbeddedStatus",
    "base_dir",
    "bundles_dir",
    "ensure_running",
    "is_embedded_address",
    "runc_root",
    "start",
    "status",
    "stop",
]

#: Overrides the embedded daemon's directory (tests use a temporary one).
ENV_DIR = _address.ENV_EMBEDDED_DIR
#: ``1``: start the embedded daemon on demand when no containerd is reachable.
ENV_ON_DEMAND = "PYCONTAINERD_EMBEDDED"
_STATE_FILE = "embedded.json"
_START_TIMEOUT = 30.0


@dataclass(frozen=True)
class EmbeddedStatus:
    """What ``daemon status`` reports.

    Attributes:
        running: The daemon process is alive.
        serving: Its health service answers SERVING.
        pid: Its pid (``None`` when not running).
        address: The gRPC socket path.
        base_dir: The directory holding everything.
        log: The daemon's log file.
        shims: Pids of the live shims it started.
        started_at: When ``daemon start`` started it (RFC 3339), if recorded.
    """

    running: bool
    serving: bool
    pid: int | None
    address: str
    base_dir: str
    log: str
    shims: tuple[int, ...]
    started_at: str | None

    def as_dict(self) -> dict[str, Any]:
        """The status as a JSON-ready dict."""
        out = asdict(self)
        out["shims"] = list(self.shims)
        return out


def base_dir() -> str:
    """The embedded daemon's directory (:func:`pycontainerd._address.embedded_dir`)."""
    return _address.embedded_dir()


def address() -> str:
    """The embedded daemon's gRPC socket path (whether or not it runs)."""
    return _address.embedded_address()


def bundles_dir() -> str:
    """Where the CLI puts bundle directories of containers on the embedded daemon."""
    return os.path.join(base_dir(), "bundles")


def runc_root() -> str:
    """The runc state root private to the embedded daemon."""
    return os.path.join(base_dir(), "runc")


def is_embedded_address(path: str) -> bool:
    """Whether ``path`` is the embedded daemon's socket."""
    return os.path.abspath(path) == address()


@contextlib.contextmanager
def _locked(*, remove: bool = False) -> Iterator[None]:
    """Serialise start/stop between concurrent commands (a lock file beside the directory).

    Args:
        remove: Unlink the lock file before releasing it (``stop --purge`` leaves nothing).
    """
    base = base_dir()
    parent = os.path.dirname(base)
    os.makedirs(parent, mode=0o711, exist_ok=True)
    path = base.rstrip("/") + ".lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        if remove:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        os.close(fd)


def _daemon() -> PrivateContainerd:
    from pycontainerd.daemon import PrivateContainerd

    # safety_net=False: this object only drives a daemon meant to outlive the command.
    return PrivateContainerd(base_dir(), safety_net=False)


def _read_state(base: str) -> dict[str, Any]:
    try:
        with open(os.path.join(base, _STATE_FILE)) as f:
            data = json.load(f)
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_state(base: str, pid: int, sock: str) -> None:
    state = {
        "pid": pid,
        "address": sock,
        "base_dir": base,
        "started_at": _dt.datetime.now(_dt.timezone.utc).isoformat().replace("+00:00", "Z"),
    }
    tmp = os.path.join(base, _STATE_FILE + ".tmp")
    with open(tmp, "w") as f:
        json.dump(state, f)
        f.write("\n")
    os.replace(tmp, os.path.join(base, _STATE_FILE))


def _remove_state(base: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(os.path.join(base, _STATE_FILE))


def status() -> EmbeddedStatus:
    """Report on the embedded daemon without changing anything (no directory is created)."""
    base = base_dir()
    sock = os.path.join(base, "containerd.sock")
    log = os.path.join(base, "containerd.log")
    if not os.path.isdir(base):
        return EmbeddedStatus(False, False, None, sock, base, log, (), None)
    from pycontainerd.daemon import find_shims

    daemon = _daemon()
    pid = daemon.pid
    serving = pid is not None and daemon.is_serving()
    started = _read_state(base).get("started_at") if pid is not None else None
    return EmbeddedStatus(
        pid is not None,
        serving,
        pid,
        sock,
        base,
        log,
        tuple(find_shims(sock)),
        started if isinstance(started, str) else None,
    )


def start(timeout: float = _START_TIMEOUT) -> tuple[EmbeddedStatus, bool]:
    """Start the embedded daemon unless it already runs.

    Returns:
        ``(status, started)``: ``started`` is False when it was already serving.

    Raises:
        DaemonError: containerd failed to start (the message has its log's tail).
        FileNotFoundError: containerd is not installed.
    """
    with _locked():
        daemon = _daemon()
        if daemon.pid is not None and daemon.is_serving(timeout=2.0):
            return status(), False
        if daemon.pid is not None:
            # Alive but not serving (stuck, or still starting elsewhere): replace it.
            daemon.stop(timeout=10)
        daemon.start(timeout=timeout)
        for path in (bundles_dir(), runc_root()):
            os.makedirs(path, mode=0o700, exist_ok=True)
        assert daemon.pid is not None
        _write_state(daemon.base_dir, daemon.pid, daemon.address)
        return status(), True


def ensure_running() -> str:
    """Start the embedded daemon if needed; return its socket path."""
    current = status()
    if current.serving:
        return current.address
    return start()[0].address


def stop(*, purge: bool = False) -> bool:
    """Remove every task and container, end every shim, stop the daemon.

    Args:
        purge: Also delete the directory (content, metadata, log).

    Returns:
        Whether there was anything to stop (a running daemon or live shims).

    Raises:
        DaemonError: Something survived (everything else was removed).
    """
    base = base_dir()
    if not os.path.isdir(base):
        if purge:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(base.rstrip("/") + ".lock")
        return False
    from pycontainerd.daemon import find_shims

    with _locked(remove=purge):
        daemon = _daemon()
        was_running = daemon.pid is not None or bool(find_shims(daemon.address))
        try:
            if purge:
                daemon.close()
            elif was_running:
                try:
                    daemon.cleanup()
                finally:
                    daemon.stop()
        finally:
            _remove_state(base)
        return was_running
