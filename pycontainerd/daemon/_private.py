"""A private containerd: its own process, root, state, sockets and config.

:class:`PrivateContainerd` runs a ``containerd`` binary (the system's, or one
of the matrix's cached versions: :mod:`pycontainerd.daemon._binaries`) with
everything under one base directory (default ``/run/pcd-XXXXXXXX`` for root,
``/tmp/pcd-XXXXXXXX`` otherwise; :mod:`pycontainerd.daemon._config`)::

    base/containerd.sock          gRPC (the address clients use)
    base/containerd.sock.ttrpc    ttrpc (shims publish events here)
    base/config.toml              version 2 (3 for containerd 2.x), CRI and NRI disabled
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
therefore identifies *its* shims by process (:mod:`pycontainerd.daemon._procs`).
Only the sockets those shims listened on are removed, and only directories
that were created after the daemon first started and are empty.

Readiness is the client's own health check (``_grpc.serving``); removing
tasks and containers goes through the client's API
(:mod:`pycontainerd.daemon._purge`).
"""

from __future__ import annotations

import contextlib
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
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import TracebackType

from pycontainerd import _rules
from pycontainerd._grpc import serving
from pycontainerd.client import Client
from pycontainerd.daemon._binaries import binary_version, cached_binary, standard_path
from pycontainerd.daemon._config import (
    DEFAULT_RUNC_ROOT,
    OWNED_MARKER,
    SHARED_DIRS,
    SHARED_STATE,
    TASK_STATE,
    Layout,
    render_config,
)
from pycontainerd.daemon._errors import DaemonError
from pycontainerd.daemon._mounts import mounts_under, top_cgroups, umount
from pycontainerd.daemon._procs import (
    Proc,
    cmdline,
    descendants,
    find_shims,
    kill_all,
    listening_socket_paths,
    wait_gone,
)
from pycontainerd.daemon._purge import purge_all_tasks, remove_namespace_dirs

__all__ = ["PrivateContainerd"]

_log = logging.getLogger(__name__)
_LOG_TAIL_LINES = 40


def _log_tail(path: str, offset: int = 0, lines: int = _LOG_TAIL_LINES) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(max(offset, os.path.getsize(path) - 64 * 1024))
            data = f.read().decode(errors="replace")
    except OSError as exc:
        return f"(no log: {exc})"
    return "\n".join(data.splitlines()[-lines:])


def _default_parent() -> str:
    return "/run" if os.geteuid() == 0 and os.access("/run", os.W_OK) else "/tmp"




@dataclass
class _State:
    """Everything the daemon's lifecycle needs; shared by the object and its safety net."""

    layout: Layout
    binary: str
    ctr: str
    log_level: str
    config_extra: str
    created_base: bool
    lock: threading.RLock = field(default_factory=threading.RLock)
    popen: subprocess.Popen[bytes] | None = None
    proc: Proc | None = None
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
        return not wait_gone([self.proc], timeout)

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
        proc = Proc.of(pid)
        if proc is not None and proc.alive() and self.layout.config_path in cmdline(pid):
            self.proc = proc

    def _note_shared_dirs(self) -> None:
        if self.shared_checked:
            return
        self.shared_checked = True
        for path in (*(os.path.join(SHARED_STATE, d) for d in SHARED_DIRS), SHARED_STATE):
            if not os.path.lexists(path):
                self.shared_created.append(path)
        self.cgroups_before = top_cgroups()

    def start(self, timeout: float) -> None:
        with self.lock:
            if self.removed:
                raise DaemonError(f"the private containerd at {self.layout.base} was closed")
            if self.running():
                assert self.proc is not None
                raise DaemonError(f"containerd is already running (pid {self.proc.pid})")
            search = standard_path(os.environ.get("PATH"))
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
                f.write(render_config(layout, self.log_level, self.config_extra, self._major(binary)))
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
            self.proc = Proc.of(self.popen.pid)
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
            if serving(self.layout.address, max(0.1, min(1.0, remaining))):
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
        client = Client(self.layout.address, timeout=60)
        try:
            namespaces, problems = purge_all_tasks(client)
        finally:
            client.close()
        self.namespaces_seen.update(namespaces)
        return problems

    def _end_shims(self, shim_timeout: float) -> list[str]:
        shims = [p for p in map(Proc.of, find_shims(self.layout.address)) if p is not None]
        if not shims:
            self._remove_orphan_bundles()
            return []
        sockets = {shim: listening_socket_paths(shim.pid) for shim in shims}
        # A shim exits by itself once its last task is deleted; give it that chance.
        left = wait_gone(shims, shim_timeout)
        errors: list[str] = []
        if left:
            tree = descendants(left)
            kill_all(tree)
            kill_all(left)
            still = wait_gone([*tree, *left], 30)
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
        tasks_dir = os.path.join(self.layout.state, TASK_STATE)
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
            runc_root = DEFAULT_RUNC_ROOT
            with contextlib.suppress(OSError, ValueError), open(os.path.join(bundle, "options.json")) as f:
                runc_root = json.load(f).get("root") or runc_root
            # The shim runs runc with --root <options root>/<namespace>.
            runc_root = os.path.join(runc_root, namespace)
            runc = shutil.which("runc", path=standard_path(os.environ.get("PATH")))
            if runc is not None:
                # Removes runc's state dir and the container's cgroups.
                subprocess.run(
                    [runc, "--root", runc_root, "delete", "--force", task_id],
                    stdin=subprocess.DEVNULL,
                    capture_output=True,
                    timeout=30,
                    check=False,
                )
            for point in mounts_under(bundle):
                with contextlib.suppress(OSError):
                    umount(point)

    # -- removal --------------------------------------------------------------------------------

    def remove(self) -> None:
        with self.lock:
            if self.removed:
                return
            if self.running():
                raise DaemonError("stop the private containerd before removing its directory")
            base = self.layout.base
            for point in mounts_under(base):
                umount(point)
            left = mounts_under(base)
            if left:
                # Never delete through a mount point: it would delete the mounted files.
                raise DaemonError(f"still mounted under {base}: {left}")
            owned = self.created_base or os.path.exists(os.path.join(base, OWNED_MARKER))
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
            # Cgroups only when we know which existed before this daemon first started.
            remove_namespace_dirs(namespace, keep=frozenset(self.cgroups_before), cgroups=self.shared_checked)
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
        ctr: The ``ctr`` binary that matches ``binary``, for callers that drive this daemon
            with ctr too (interop tests, benchmarks); default: the one beside ``binary``,
            else ``ctr`` on ``PATH``. Cleanup itself uses pycontainerd's own client.
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
        layout = Layout(base)
        if not _rules.socket_path_fits(layout.ttrpc_address):
            if created and base_dir is None:
                os.rmdir(base)
            raise ValueError(
                f"socket path {layout.ttrpc_address!r} is longer than {_rules.MAX_SOCKET_PATH} bytes; "
                "use a shorter base_dir"
            )
        if created:
            os.makedirs(base, mode=0o711, exist_ok=True)
            with open(os.path.join(base, OWNED_MARKER), "w"):
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
        return self._state.running() and serving(self.address, timeout)

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
