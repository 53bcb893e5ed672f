"""``Task`` and ``Process``: a container's init process and the processes exec'd into it.

The object model is containerd's Go client (``client/task.go``,
``client/process.go``) with libcontainerd's semantics:

* ``wait()`` can and should be armed before ``start()``; its future resolves
  only after the process exited **and** its stdout/stderr reached EOF, so the
  last byte is in the caller's sink before the exit is reported.
* ``close_stdin()`` closes the client's FIFO end and then sends ``CloseIO``
  (the shim keeps its own writer, so only CloseIO gives the process EOF); if
  the process does not exist yet, CloseIO is sent as soon as it does.
* ``delete()`` refuses a running process locally (``Tasks/Get`` first), drains
  and closes the IO, and removes the FIFOs.
"""

from __future__ import annotations

import contextlib
import logging
import signal as _signal
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, InvalidStateError
from typing import TYPE_CHECKING, Any

from pycontainerd import _rules, _validate, errors
from pycontainerd.api.types import (
    DeleteResult,
    Descriptor,
    ExitStatus,
    Metric,
    Mount,
    ProcessInfo,
    RuncCheckpointOptions,
    Status,
    TaskInfo,
)
from pycontainerd.bundle import process_lock
from pycontainerd.stdio.opener import loaded_io, open_io, reattach_io
from pycontainerd.stdio.process_io import IOConfig, ProcessIO
from pycontainerd.stdio.strategy import Stdio

if TYPE_CHECKING:
    from pycontainerd.client import Client

__all__ = [
    "ExitStatus",
    "Process",
    "Task",
    "attach_task",
    "check_deletable",
    "check_exec",
    "drain_timeout_error",
    "load_task",
    "new_task",
]

_log = logging.getLogger(__name__)

#: How long a failed exec start's cleanup may take (libcontainerd: 45 s, independent of the caller).
EXEC_CLEANUP_TIMEOUT = 45.0
#: How long ``delete()`` lets the output of an exited process drain before cutting it off.
DELETE_DRAIN_TIMEOUT = 2.0
#: Default drain timeout of an exec'd process's ``wait()``: a background child may hold its stdout.
EXEC_DRAIN_TIMEOUT = 5.0
# How long a cancelled pump may take to hand over what it copied (it stops promptly).
_CANCEL_GRACE = 10.0
_STOPPED_OR_GONE = (Status.STOPPED, Status.UNKNOWN)


def _settle(future: Future[ExitStatus], *, result: ExitStatus | None = None,
            exception: BaseException | None = None) -> None:
    # Whichever of "drained" and "drain timeout" comes second loses quietly.
    with contextlib.suppress(InvalidStateError):
        if exception is not None:
            future.set_exception(exception)
        elif result is not None:
            future.set_result(result)


class Process:
    """A process exec'd into a task (and the base of :class:`Task`).

    Not created directly: see :meth:`Task.exec`.
    """

    def __init__(self, client: Client, container_id: str, exec_id: str, io: ProcessIO, *,
                 pid: int = 0, drain_timeout: float | None = EXEC_DRAIN_TIMEOUT,
                 bundle_dir: str = "") -> None:
        self._client = client
        self._bundle_dir = bundle_dir
        self._container_id = container_id
        self._exec_id = exec_id
        self._io = io
        self._pid = pid
        self._drain_timeout = drain_timeout
        self._lock = threading.Lock()

    # -- identity ------------------------------------------------------------
    @property
    def container_id(self) -> str:
        """The container this process runs in."""
        return self._container_id

    @property
    def id(self) -> str:
        """The process id: the exec id, or the container id for the init process."""
        return self._exec_id or self._container_id

    @property
    def exec_id(self) -> str:
        """The exec id (``""`` for the init process)."""
        return self._exec_id

    @property
    def pid(self) -> int:
        """The host pid (0 before the process was created/started)."""
        return self._pid

    @property
    def io(self) -> ProcessIO:
        """The live stdio (captured output is on ``io.stdout_data``/``io.stderr_data``)."""
        return self._io

    def __repr__(self) -> str:
        return f"{type(self).__name__}(container_id={self._container_id!r}, id={self.id!r}, pid={self._pid})"

    # -- lifecycle -----------------------------------------------------------
    def start(self, *, timeout: float | None = None) -> int:
        """Start the process.

        Arm :meth:`wait` first, so a fast exit is never missed. If starting
        fails, the process is deleted (with its own 45 s deadline, whatever the
        caller's) and its FIFOs removed before the error is raised.

        Returns:
            The pid.

        Raises:
            ContainerdError: The mapped refusal (e.g. the binary does not exist).
        """
        try:
            self._pid = self._client.api.tasks.start(self._container_id, self._exec_id, timeout=timeout)
        except BaseException:
            self._cleanup_failed_start(started=False)
            raise
        try:
            # The shim opens an exec's IO at Start, not at Exec.
            self._io.process_created()
        except BaseException:
            self._cleanup_failed_start(started=True)
            raise
        self._io.set_stdin_closer(self._close_io)
        return self._pid

    def _cleanup_failed_start(self, *, started: bool) -> None:
        # libcontainerd: DeleteProcess with its own 45 s deadline whatever the caller's
        # state; NotFound means there is nothing left, other failures are only logged.
        self._io.cancel()
        tasks = self._client.api.tasks
        try:
            if started:
                exited = tasks.wait_future(self._container_id, self._exec_id, timeout=EXEC_CLEANUP_TIMEOUT)
                with contextlib.suppress(errors.NotFoundError):
                    tasks.kill(self._container_id, _signal.SIGKILL, exec_id=self._exec_id,
                               timeout=EXEC_CLEANUP_TIMEOUT)
                with contextlib.suppress(errors.ContainerdError, TimeoutError):
                    exited.result(EXEC_CLEANUP_TIMEOUT)
            tasks.delete_process(self._container_id, self._exec_id, timeout=EXEC_CLEANUP_TIMEOUT)
        except errors.NotFoundError:
            pass
        except errors.ContainerdError as err:
            _log.warning("cleanup of failed exec %s/%s: %s", self._container_id, self._exec_id, err)
        finally:
            self._io.close()

    def wait(self, *, drain_timeout: float | object | None = ..., timeout: float | None = None
             ) -> Future[ExitStatus]:
        """Arm a wait for the process's exit (call it before :meth:`start`).

        The future resolves with the :class:`ExitStatus` once the process has
        exited **and** its stdout/stderr have been drained to EOF, so every byte
        it wrote is in the sink (or ``io.stdout_data``) when the status is seen.

        If the output is still held open ``drain_timeout`` seconds after the exit
        (a background child inherited it: ``sh -c 'sleep 30 & echo ok'``), the
        copying is cancelled and the future raises
        :class:`~pycontainerd.errors.DrainTimeoutError`, whose ``status`` is the
        real exit status; what was copied until then is in the sink. This is an
        exception rather than a status with a flag so that cut-off output can
        never be mistaken for complete output.

        Args:
            drain_timeout: Seconds to wait for EOF after the exit; ``None``: no limit.
                Default: no limit for a task's init process (its exit ends every
                process of the container), 5 s for an exec.
            timeout: Deadline of the Wait RPC itself (default: none).

        Returns:
            A future of the exit status. ``result()`` raises
            :class:`~pycontainerd.errors.ConnectionLostError` if the daemon went
            away (retriable: wait again once it serves; the process keeps running
            and its output keeps flowing), ``NotFoundError`` if the process was
            deleted, ``DrainTimeoutError`` as above, and
            :class:`~pycontainerd.errors.SinkError` (an ``OSError`` with ``status``
            set) when a stdout/stderr sink failed: that stream was read and
            discarded from then on so the process never blocked, and its exit
            is reported with the loss, never as plain success.

        Raises:
            TypeError: ``drain_timeout`` is not a number or None.
            ValueError: ``drain_timeout`` is negative or NaN (``math.inf``: no limit).
        """
        chosen = self._drain_timeout if drain_timeout is ... else drain_timeout
        limit = _validate.limit(chosen, "drain_timeout")
        rpc = self._client.api.tasks.wait_future(self._container_id, self._exec_id, timeout=timeout)
        result: Future[ExitStatus] = Future()
        result.set_running_or_notify_cancel()
        io = self._io

        def on_exit(done: Future[ExitStatus]) -> None:
            try:
                status = done.result()
            except BaseException as exc:
                _settle(result, exception=exc)
                return
            io.process_exited()  # IO that sees no EOF at exit (handoff) drains now
            drained = io.done
            lock = threading.Lock()
            expired = False
            timer: threading.Timer | None = None

            def on_drained(_: Future[None]) -> None:
                with lock:
                    if expired:
                        return
                if timer is not None:
                    timer.cancel()
                failure = io.error
                if isinstance(failure, errors.SinkError):
                    # Output was lost: never report the exit as if it were complete.
                    failure.status = status
                    _settle(result, exception=failure)
                    return
                _settle(result, result=status)

            if not drained.done() and limit is not None:
                def expire() -> None:
                    nonlocal expired
                    with lock:
                        if drained.done():
                            return
                        expired = True
                    io.cancel()
                    # The pump stops promptly once cancelled: let it hand over what it copied.
                    io.wait(_CANCEL_GRACE)
                    _settle(result, exception=drain_timeout_error(self.id, status, float(limit)))

                timer = threading.Timer(float(limit), expire)
                timer.daemon = True
                timer.name = f"pcd-drain-{self.id}"
                timer.start()
            drained.add_done_callback(on_drained)

        rpc.add_done_callback(on_exit)
        return result

    def kill(self, signal: int | str = _signal.SIGTERM, *, timeout: float | None = None) -> None:
        """Send a signal to the process.

        Args:
            signal: A number (1..64), a ``signal.Signals`` or a name (``"KILL"``, ``"SIGTERM"``).
            timeout: Deadline in seconds.

        Raises:
            ValueError: An invalid signal (checked before any RPC).
            NotFoundError: The process is gone.
        """
        self._client.api.tasks.kill(self._container_id, _rules.signal_number(signal),
                                    exec_id=self._exec_id, timeout=timeout)

    def resize(self, width: int, height: int, *, timeout: float | None = None) -> None:
        """Resize the process's terminal (a no-op in the shim without one).

        Raises:
            ValueError: A size outside 0..65535 (checked before any RPC).
        """
        width, height = _validate.terminal_size(width, height)
        self._client.api.tasks.resize_pty(self._container_id, width, height, exec_id=self._exec_id,
                                          timeout=timeout)

    def close_stdin(self) -> None:
        """Give the process EOF on stdin: close the client's end, then CloseIO. Idempotent.

        Closing only the client's FIFO end would not do: the shim holds its own
        writer until CloseIO. A stdin source (bytes, a file) reaching its end
        does the same automatically. With a **terminal**, the shim then shuts the
        console down: the process sees a hang-up (SIGHUP, exit status 129), not an
        end of input; keep stdin open until it is done, or write Ctrl-D (0x04) to it.

        Raises:
            ContainerdError: CloseIO failed (not for a process that already exited).
        """
        self._io.close_stdin()

    def _close_io(self) -> None:
        try:
            self._client.api.tasks.close_io(self._container_id, exec_id=self._exec_id)
        except errors.NotFoundError:
            pass  # already exited: nothing left to close
        except errors.ContainerdError as err:
            if "transport is closing" not in err.details:
                raise

    def status(self, *, timeout: float | None = None) -> TaskInfo:
        """The process's current state (Tasks/Get)."""
        return self._client.api.tasks.get(self._container_id, self._exec_id, timeout=timeout)

    def delete(self, *, timeout: float | None = None) -> ExitStatus:
        """Delete the exited process, closing its IO and removing its FIFOs.

        Raises:
            FailedPreconditionError: It is still running (checked with Tasks/Get first).
        """
        info = self.status(timeout=timeout)
        check_deletable(info, self._kind)
        return self._delete(info, timeout)

    @property
    def _kind(self) -> str:
        return "process"

    def _delete_rpc(self, timeout: float | None) -> DeleteResult:
        return self._client.api.tasks.delete_process(self._container_id, self._exec_id, timeout=timeout)

    def _delete(self, info: TaskInfo, timeout: float | None) -> ExitStatus:
        # Let what the process wrote reach the sink before the FIFOs go away.
        self._io.process_exited()  # delete() checked it is stopped
        self._io.wait(DELETE_DRAIN_TIMEOUT)
        self._io.cancel()
        try:
            with self._delete_lock():
                try:
                    result = self._delete_rpc(timeout)
                except errors.NotFoundError as gone:
                    raise errors.NotFoundError(f"{self._kind} {self.id!r} was already deleted") from gone
                except errors.ContainerdError:
                    try:
                        self.status(timeout=timeout)
                    except errors.NotFoundError:
                        # containerd 1.6: the shim exits as it answers our Delete
                        # ("ttrpc: closed"); under the lock no other pycontainerd
                        # Delete was in flight, so ours removed it.
                        return ExitStatus(info.exit_status, info.exited_at)
                    raise
            return result.exit
        finally:
            # Whoever deleted the process, these FIFOs are ours to remove (containerd#2421).
            with contextlib.suppress(errors.ContainerdError):
                self._io.close()

    def _delete_lock(self) -> contextlib.AbstractContextManager[None]:
        """The bundle's lock (see ``bundle.process_lock``), unless there is no bundle dir (any more)."""
        if not self._bundle_dir:
            return contextlib.nullcontext()
        return process_lock(self._bundle_dir, missing_ok=True)

    def detach(self) -> None:
        """Stop copying and close this client's FIFO ends, leaving the process and its FIFOs.

        Another client (or this one, after a restart) can attach again.
        """
        self._io.detach()


class Task(Process):
    """A container's task: its init process, plus the operations on the whole container.

    Created by ``Container.new_task()`` (not started), or found with
    ``Container.task()``/``Container.attach_task()``.
    """

    def __init__(self, client: Client, container_id: str, io: ProcessIO, *, pid: int = 0,
                 bundle_dir: str = "", io_ids: tuple[int, int] = (0, 0)) -> None:
        super().__init__(client, container_id, "", io, pid=pid, drain_timeout=None, bundle_dir=bundle_dir)
        self._io_ids = io_ids

    @property
    def _kind(self) -> str:
        return "task"

    def _created(self) -> None:
        # The shim sets up a task's IO at Create (an exec's at Start).
        try:
            self._io.process_created()
        except BaseException:
            self._cleanup_failed_start(started=False)  # kill, wait, delete; removes the FIFOs
            raise
        # The process exists from Create on: CloseIO may be sent from now (libcontainerd's
        # stdinCloseSync). Not for a terminal: CloseIO hangs up the console, and before Start
        # that makes Start fail ("cannot start a container that has stopped"); start() does it.
        if not self._io.terminal:
            self._io.set_stdin_closer(self._close_io)

    def start(self, *, timeout: float | None = None) -> int:
        """Start the init process (arm :meth:`wait` first).

        On failure the created task is killed and deleted and its FIFOs removed.

        Returns:
            The pid.
        """
        try:
            self._pid = self._client.api.tasks.start(self._container_id, timeout=timeout)
        except BaseException:
            self._cleanup_failed_start(started=False)
            raise
        if self._io.terminal:
            # Deferred from Create for a terminal (see Container.new_task); a no-op otherwise.
            self._io.set_stdin_closer(self._close_io)
        return self._pid

    def _cleanup_failed_start(self, *, started: bool) -> None:
        # A created task cannot simply be deleted (the Go client refuses a CREATED
        # task with a pid): kill everything, wait, then delete (moby's WithProcessKill).
        self._io.cancel()
        try:
            self._force_delete_rpc(EXEC_CLEANUP_TIMEOUT)
        except errors.NotFoundError:
            pass
        except errors.ContainerdError as err:
            _log.warning("cleanup of failed task start %s: %s", self._container_id, err)
        finally:
            self._io.close()

    def _delete_rpc(self, timeout: float | None) -> DeleteResult:
        return self._client.api.tasks.delete(self._container_id, timeout=timeout)

    def kill(self, signal: int | str = _signal.SIGTERM, *, all: bool = False,
             timeout: float | None = None) -> None:
        """Send a signal to the init process, or with ``all=True`` to every process of the task.

        Raises:
            ValueError: An invalid signal (checked before any RPC).
            NotFoundError: The task is gone or not running.
        """
        self._client.api.tasks.kill(self._container_id, _rules.signal_number(signal), all=all,
                                    timeout=timeout)

    def force_delete(self, *, timeout: float = 30.0) -> ExitStatus:
        """Kill every process of the task (SIGKILL), wait for the exit, delete the task.

        Returns:
            How the init process ended.
        """
        result = self._force_delete_rpc(timeout)
        self._io.close()
        return result.exit

    def _force_delete_rpc(self, timeout: float) -> DeleteResult:
        tasks = self._client.api.tasks
        info = tasks.get(self._container_id, timeout=timeout)
        # Like the Go client's WithProcessKill: nothing to kill or wait for without a live
        # pid (a task whose restore failed has none and would never report an exit).
        if info.pid and info.status is not Status.STOPPED:
            exited = tasks.wait_future(self._container_id, timeout=timeout)
            with contextlib.suppress(errors.NotFoundError, errors.FailedPreconditionError):
                # NotFound: already exited; FailedPrecondition: never started
                tasks.kill(self._container_id, _signal.SIGKILL, all=True, timeout=timeout)
            with contextlib.suppress(errors.ContainerdError, TimeoutError):
                exited.result(timeout)
        self._io.process_exited()
        self._io.wait(DELETE_DRAIN_TIMEOUT)
        self._io.cancel()
        return tasks.delete(self._container_id, timeout=timeout)

    def pause(self, *, timeout: float | None = None) -> None:
        """Freeze every process of the task."""
        self._client.api.tasks.pause(self._container_id, timeout=timeout)

    def resume(self, *, timeout: float | None = None) -> None:
        """Thaw a paused task."""
        self._client.api.tasks.resume(self._container_id, timeout=timeout)

    def pids(self, *, timeout: float | None = None) -> list[int]:
        """Every pid in the task's cgroup."""
        return [p.pid for p in self._client.api.tasks.list_pids(self._container_id, timeout=timeout)]

    def summary(self, *, timeout: float | None = None) -> list[ProcessInfo]:
        """Every process of the task with its decoded details (exec id for runc)."""
        return self._client.api.tasks.list_pids(self._container_id, timeout=timeout)

    def stats(self, *, timeout: float | None = None) -> Metric:
        """The task's cgroup metrics (``io.containerd.cgroups.v1`` or ``.v2`` decoded).

        Raises:
            NotFoundError: The task is gone.
            ContainerdError: The daemon returned no metrics for a live task.
        """
        metrics = self._client.api.tasks.metrics([f"id=={self._container_id}"], timeout=timeout)
        if metrics:
            return metrics[0]
        self.status(timeout=timeout)  # NotFound if the task is gone
        raise errors.UnknownError(f"no metrics received for task {self._container_id!r}")

    def update_resources(self, resources: Mapping[str, Any], *, timeout: float | None = None) -> None:
        """Change the task's resources (an OCI ``LinuxResources`` dict, e.g. ``{"memory": {"limit": N}}``)."""
        if not isinstance(resources, Mapping):
            raise TypeError("resources must be an OCI LinuxResources mapping")
        self._client.api.tasks.update(self._container_id, resources=resources, timeout=timeout)

    def checkpoint(self, directory: str, *, exit: bool = False, timeout: float | None = None) -> None:
        """Checkpoint the task with CRIU, writing the images into ``directory``.

        The task is paused around the checkpoint (and resumed unless ``exit``).

        Raises:
            ContainerdError: CRIU failed or is unavailable (mapped from the shim's error).
        """
        path = _validate.absolute_path(directory, "checkpoint directory")
        info = self.status(timeout=timeout)
        paused_here = False
        if info.status is Status.RUNNING:
            self.pause(timeout=timeout)
            paused_here = True
        try:
            options = RuncCheckpointOptions(exit=exit, image_path=path)
            self._client.api.tasks.checkpoint(self._container_id, options=options, timeout=timeout)
        finally:
            if paused_here and not exit:
                with contextlib.suppress(errors.NotFoundError):
                    self.resume(timeout=timeout)

    def exec(self, exec_id: str, process_spec: Mapping[str, Any], *, stdio: Stdio,
             drain_timeout: float | None = EXEC_DRAIN_TIMEOUT, timeout: float | None = None) -> Process:
        """Add a process to the running task (created, not started: call ``start()``).

        Args:
            exec_id: A new id, unique in the task (containerd's identifier rules).
            process_spec: An OCI process dict (see :func:`pycontainerd.oci.process`).
            stdio: How its stdio is wired; FIFOs ``<bundle>/<exec_id>-std*``.
            drain_timeout: Default drain timeout of the process's ``wait()``.
            timeout: Deadline of the Exec RPC.

        Returns:
            The process.

        Raises:
            ValueError: A bad exec id or spec (before any RPC or FIFO).
            ConflictError: The exec id is in use.
        """
        terminal = check_exec(exec_id, process_spec, drain_timeout)

        def rpc(config: IOConfig) -> int:
            self._client.api.tasks.exec(
                self._container_id, exec_id, process_spec,
                stdin=config.stdin, stdout=config.stdout, stderr=config.stderr,
                terminal=terminal, timeout=timeout,
            )
            return 0

        io, _ = _create_process(
            self._client, self._container_id, exec_id, directory=self._bundle_dir, name=exec_id, stdio=stdio,
            terminal=terminal, rpc=rpc, conflict=f"id already in use: exec {exec_id!r}", timeout=timeout,
        )
        return Process(self._client, self._container_id, exec_id, io, drain_timeout=drain_timeout,
                       bundle_dir=self._bundle_dir)


def check_deletable(info: TaskInfo, kind: str) -> None:
    """Refuse to delete a process that still runs (Tasks/Get said so); shared with ``pycontainerd.aio``.

    Args:
        info: The process as Tasks/Get reports it.
        kind: ``"task"`` or ``"process"``, for the message.

    Raises:
        FailedPreconditionError: It is neither stopped, gone, nor created without a pid.
    """
    if info.status not in _STOPPED_OR_GONE and not (info.status is Status.CREATED and not info.pid):
        raise errors.FailedPreconditionError(f"{kind} must be stopped before deletion: {info.status.value}",
                                             code=None)


def check_exec(exec_id: str, process_spec: Mapping[str, Any], drain_timeout: float | None) -> bool:
    """Check an exec's arguments before any RPC or FIFO; returns whether it has a terminal.

    Raises:
        ValueError: A bad exec id, spec or drain timeout.
        TypeError: A spec or timeout of the wrong type.
    """
    _rules.identifier(exec_id, "exec id")
    _validate.process_args(process_spec)
    _validate.seconds(drain_timeout, "drain_timeout")
    return bool(process_spec.get("terminal", False))


def drain_timeout_error(process_id: str, status: ExitStatus, limit: float) -> errors.DrainTimeoutError:
    """The error of a process whose output was still held open ``limit`` seconds after its exit."""
    return errors.DrainTimeoutError(
        f"process {process_id!r} exited with status {status.code} but its output was still "
        f"held open {limit} s later (a background process inherited it?); copying stopped",
        status=status,
    )


def _create_process(client: Client, container_id: str, exec_id: str, *, directory: str, name: str,
                    stdio: Stdio, terminal: bool, rpc: Callable[[IOConfig], int], conflict: str,
                    timeout: float | None) -> tuple[ProcessIO, int]:
    """The one create-process sequence of tasks and execs: lock, refuse a live one, open the IO, RPC.

    Returns:
        The process's IO and the pid the RPC returned; on failure the IO is closed again.
    """
    # Held until the RPC has answered: a concurrent creator of the same process
    # (thread or program) then sees ours below instead of sharing, and removing, its FIFOs.
    with process_lock(directory):
        # A live process owns the FIFO paths a new one would use: refuse before touching
        # them (libcontainerd's "container already started" / "id already in use").
        try:
            client.api.tasks.get(container_id, exec_id, timeout=timeout)
        except errors.NotFoundError:
            pass
        else:
            raise errors.ConflictError(conflict)
        io = open_io(stdio, directory, name, terminal=terminal)
        try:
            pid = rpc(io.config)
        except errors.AlreadyExistsError as err:
            io.cancel()
            io.close()
            raise errors.ConflictError(conflict) from err
        except BaseException:
            io.cancel()
            io.close()
            raise
    return io, pid


def new_task(client: Client, container_id: str, *, bundle_dir: str, io_ids: tuple[int, int], stdio: Stdio,
             terminal: bool, fifo_name: str, checkpoint: Descriptor | None, options: Any,
             timeout: float | None, rootfs: Sequence[Mount] = ()) -> Task:
    """Create a container's task (``Container.new_task`` checks and prepares the arguments).

    Args:
        client: The client.
        container_id: The container.
        bundle_dir: Its bundle dir, which holds the FIFOs.
        io_ids: The host uid/gid of the container's root (the owner of its IO).
        stdio: How the init process's stdio is wired.
        terminal: Whether it has a terminal.
        fifo_name: The process's name in the FIFO paths.
        checkpoint: A checkpoint to restore from.
        options: The runtime's task options.
        timeout: Deadline of each RPC.
        rootfs: The rootfs mounts (a container's image snapshot); none when the spec names a path.

    Returns:
        The created task (not started).

    Raises:
        ConflictError: The container already has a task (before any FIFO is touched).
    """
    def rpc(config: IOConfig) -> int:
        return client.api.tasks.create(
            container_id, stdin=config.stdin, stdout=config.stdout, stderr=config.stderr,
            terminal=terminal, checkpoint=checkpoint, options=options, timeout=timeout, rootfs=rootfs,
        )

    io, pid = _create_process(
        client, container_id, "", directory=bundle_dir, name=fifo_name, stdio=stdio, terminal=terminal,
        rpc=rpc, conflict=f"container {container_id!r} already has a task", timeout=timeout,
    )
    task = Task(client, container_id, io, pid=pid, bundle_dir=bundle_dir, io_ids=io_ids)
    task._created()
    return task


def attach_task(client: Client, container_id: str, *, bundle_dir: str, io_ids: tuple[int, int], stdio: Stdio,
                timeout: float | None) -> Task:
    """The running task of a container, with its IO reattached (see ``Container.attach_task``).

    Raises:
        NotFoundError: The container has no task.
    """
    info = client.api.tasks.get(container_id, timeout=timeout)
    task = Task(client, container_id, reattach_io(stdio, info), pid=info.pid, bundle_dir=bundle_dir,
                io_ids=io_ids)
    task.io.set_stdin_closer(task._close_io)
    return task


def load_task(client: Client, container_id: str, *, bundle_dir: str, io_ids: tuple[int, int],
              timeout: float | None) -> Task:
    """The task of a container without its IO; deleting it still removes its FIFOs (see ``Container.task``).

    Raises:
        NotFoundError: The container has no task.
    """
    info = client.api.tasks.get(container_id, timeout=timeout)
    return Task(client, container_id, loaded_io(info), pid=info.pid, bundle_dir=bundle_dir, io_ids=io_ids)
