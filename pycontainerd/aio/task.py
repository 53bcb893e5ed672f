"""``Task`` and ``Process`` for asyncio: the sync client's object model, awaited.

The semantics are :mod:`pycontainerd.task`'s, and so are the rules and checks
(``check_exec``, ``check_deletable``, the drain-timeout error): ``await
process.wait()`` returns only after the process exited **and** its
stdout/stderr reached their sinks; ``close_stdin()`` closes the client's end,
then sends CloseIO; ``delete()`` refuses a running process (Tasks/Get first).

The create-process sequence is the sync one with its waits awaited: hold the
bundle's lock (``flock``, polled without blocking the loop), refuse a live
process, open the IO, send Create/Exec; on any failure, cancellation included,
the IO is closed again. Clean-ups that must finish even when the caller is
cancelled (a failed start's kill/wait/delete) run shielded with their own
deadline (:data:`~pycontainerd.task.EXEC_CLEANUP_TIMEOUT`).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import signal as _signal
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pycontainerd import _rules, _validate, errors
from pycontainerd.aio._stdio import LoopIO, loaded_io, open_io, reattach_io
from pycontainerd.aio._util import shielded, wait_for
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
from pycontainerd.bundle import lock_dir_fd
from pycontainerd.stdio.process_io import IOConfig
from pycontainerd.stdio.strategy import Stdio
from pycontainerd.task import (
    DELETE_DRAIN_TIMEOUT,
    EXEC_CLEANUP_TIMEOUT,
    EXEC_DRAIN_TIMEOUT,
    check_deletable,
    check_exec,
    drain_timeout_error,
)

if TYPE_CHECKING:
    from pycontainerd.aio.client import Client

__all__ = ["Process", "Task", "attach_task", "load_task", "new_task"]

_log = logging.getLogger(__name__)

# How often a contended bundle lock is tried again (a create or delete of the same bundle holds it).
_LOCK_POLL = 0.005


@contextlib.asynccontextmanager
async def process_lock(path: str, *, missing_ok: bool = False) -> AsyncIterator[None]:
    """:func:`pycontainerd.bundle.process_lock` for the loop: the same ``flock``, never blocking.

    Raises:
        OSError: The directory cannot be opened.
    """
    fd = lock_dir_fd(path, missing_ok=missing_ok)
    if fd < 0:
        yield
        return
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                await asyncio.sleep(_LOCK_POLL)
        yield
    finally:
        os.close(fd)  # releases the lock


class Process:
    """A process exec'd into a task (and the base of :class:`Task`); see :meth:`Task.exec`."""

    def __init__(self, client: Client, container_id: str, exec_id: str, io: LoopIO, *, pid: int = 0,
                 drain_timeout: float | None = EXEC_DRAIN_TIMEOUT, bundle_dir: str = "") -> None:
        self._client = client
        self._bundle_dir = bundle_dir
        self._container_id = container_id
        self._exec_id = exec_id
        self._io = io
        self._pid = pid
        self._drain_timeout = drain_timeout

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
    def io(self) -> LoopIO:
        """The live stdio (captured output is on ``io.stdout_data``/``io.stderr_data``)."""
        return self._io

    def __repr__(self) -> str:
        return f"{type(self).__name__}(container_id={self._container_id!r}, id={self.id!r}, pid={self._pid})"

    @property
    def _kind(self) -> str:
        return "process"

    # -- lifecycle -----------------------------------------------------------
    async def start(self, *, timeout: float | None = None) -> int:
        """Start the process; on failure (or cancellation) it is deleted and its IO closed.

        Returns:
            The pid.

        Raises:
            ContainerdError: The mapped refusal (e.g. the binary does not exist).
        """
        tasks = self._client.api.tasks
        try:
            self._pid = await tasks.start(self._container_id, self._exec_id, timeout=timeout)
        except BaseException:
            # Cancelled mid-call, the shim may have started it all the same.
            await shielded(self._cleanup_failed_start())
            raise
        try:
            # The shim opens an exec's IO at Start, not at Exec.
            await self._io.process_created()
        except BaseException:
            await shielded(self._cleanup_failed_start())
            raise
        self._io.set_stdin_closer(self._close_io)
        return self._pid

    async def _cleanup_failed_start(self) -> None:
        # libcontainerd: kill, wait and DeleteProcess with their own deadline, whatever the
        # caller's; NotFound means there is nothing left, other failures are only logged.
        self._io.cancel()
        tasks = self._client.api.tasks
        try:
            info = await tasks.get(self._container_id, self._exec_id, timeout=EXEC_CLEANUP_TIMEOUT)
            if info.pid and info.status is not Status.STOPPED:
                waiting = asyncio.ensure_future(
                    tasks.wait(self._container_id, self._exec_id, timeout=EXEC_CLEANUP_TIMEOUT))
                with contextlib.suppress(errors.NotFoundError, errors.FailedPreconditionError):
                    await tasks.kill(self._container_id, _signal.SIGKILL, exec_id=self._exec_id,
                                     timeout=EXEC_CLEANUP_TIMEOUT)
                with contextlib.suppress(errors.ContainerdError):
                    await waiting
            await tasks.delete_process(self._container_id, self._exec_id, timeout=EXEC_CLEANUP_TIMEOUT)
        except errors.NotFoundError:
            pass
        except errors.ContainerdError as err:
            _log.warning("cleanup of failed exec %s/%s: %s", self._container_id, self._exec_id, err)
        finally:
            await self._io.aclose()

    async def wait(self, *, drain_timeout: float | object | None = ..., timeout: float | None = None
                   ) -> ExitStatus:
        """Wait for the process's exit and for its output to reach the sinks.

        The shim keeps the exit status until the process is deleted, so waiting after
        :meth:`start` misses nothing; to wait concurrently, start it as a task first
        (``asyncio.ensure_future(proc.wait())``).

        Cancelling this wait leaves the process running: only the wait stops.

        Args:
            drain_timeout: Seconds to wait for EOF after the exit; ``None``: no limit.
                Default: no limit for a task's init process, 5 s for an exec.
            timeout: Deadline of the Wait RPC itself (default: none).

        Returns:
            The exit status.

        Raises:
            ConnectionLostError: The daemon went away (retriable).
            NotFoundError: The process was deleted.
            DrainTimeoutError: The output was still held open ``drain_timeout`` s after the exit.
            SinkError: A stdout/stderr sink failed (``status`` is set).
            TypeError: ``drain_timeout`` is not a number or None.
            ValueError: ``drain_timeout`` is negative or NaN.
        """
        chosen = self._drain_timeout if drain_timeout is ... else drain_timeout
        limit = _validate.limit(chosen, "drain_timeout")
        status = await self._client.api.tasks.wait(self._container_id, self._exec_id, timeout=timeout)
        io = self._io
        io.process_exited()  # IO that sees no EOF at exit (handoff) drains now
        try:
            await wait_for(asyncio.shield(io.done), limit)
        except TimeoutError:
            io.cancel()
            # The pool stops a cancelled job promptly: let it hand over what it copied.
            with contextlib.suppress(Exception):
                await io.done
            raise drain_timeout_error(self.id, status, float(limit or 0)) from None
        except errors.SinkError as failure:
            # Output was lost: never report the exit as if it were complete.
            failure.status = status
            raise
        return status

    async def kill(self, signal: int | str = _signal.SIGTERM, *, timeout: float | None = None) -> None:
        """Send a signal to the process.

        Raises:
            ValueError: An invalid signal (checked before any RPC).
            NotFoundError: The process is gone.
        """
        await self._client.api.tasks.kill(self._container_id, _rules.signal_number(signal),
                                          exec_id=self._exec_id, timeout=timeout)

    async def resize(self, width: int, height: int, *, timeout: float | None = None) -> None:
        """Resize the process's terminal.

        Raises:
            ValueError: A size outside 0..65535 (checked before any RPC).
        """
        width, height = _validate.terminal_size(width, height)
        await self._client.api.tasks.resize_pty(self._container_id, width, height, exec_id=self._exec_id,
                                                timeout=timeout)

    async def close_stdin(self) -> None:
        """Give the process EOF on stdin: close the client's end, then CloseIO. Idempotent.

        With a terminal, the shim hangs the console up instead (see the sync ``close_stdin``).

        Raises:
            ContainerdError: CloseIO failed (not for a process that already exited).
        """
        await self._io.close_stdin()

    async def _close_io(self) -> None:
        with contextlib.suppress(errors.NotFoundError):  # already exited: nothing left to close
            await self._client.api.tasks.close_io(self._container_id, exec_id=self._exec_id)

    async def status(self, *, timeout: float | None = None) -> TaskInfo:
        """The process's current state (Tasks/Get)."""
        return await self._client.api.tasks.get(self._container_id, self._exec_id, timeout=timeout)

    async def delete(self, *, timeout: float | None = None) -> ExitStatus:
        """Delete the exited process, closing its IO and removing its FIFOs.

        Raises:
            FailedPreconditionError: It is still running (checked with Tasks/Get first).
        """
        info = await self.status(timeout=timeout)
        check_deletable(info, self._kind)
        return await self._delete(info, timeout)

    async def _delete_rpc(self, timeout: float | None) -> DeleteResult:
        return await self._client.api.tasks.delete_process(self._container_id, self._exec_id, timeout=timeout)

    async def _delete(self, info: TaskInfo, timeout: float | None) -> ExitStatus:
        # Let what the process wrote reach the sink before the FIFOs go away.
        self._io.process_exited()
        with contextlib.suppress(Exception):
            await wait_for(asyncio.shield(self._io.done), DELETE_DRAIN_TIMEOUT)
        self._io.cancel()
        try:
            async with process_lock(self._bundle_dir, missing_ok=True) if self._bundle_dir else _nothing():
                try:
                    result = await self._delete_rpc(timeout)
                except errors.NotFoundError as gone:
                    raise errors.NotFoundError(f"{self._kind} {self.id!r} was already deleted") from gone
                except errors.ContainerdError:
                    try:
                        await self.status(timeout=timeout)
                    except errors.NotFoundError:
                        # containerd 1.6: the shim exits as it answers our Delete.
                        return ExitStatus(info.exit_status, info.exited_at)
                    raise
            return result.exit
        finally:
            # Whoever deleted the process, these FIFOs are ours to remove (containerd#2421).
            await shielded(self._io.aclose())

    async def detach(self) -> None:
        """Stop copying and close this client's ends, leaving the process and its FIFOs."""
        await self._io.detach()


@contextlib.asynccontextmanager
async def _nothing() -> AsyncIterator[None]:
    yield


class Task(Process):
    """A container's task: its init process, plus the operations on the whole container."""

    def __init__(self, client: Client, container_id: str, io: LoopIO, *, pid: int = 0, bundle_dir: str = "",
                 io_ids: tuple[int, int] = (0, 0)) -> None:
        super().__init__(client, container_id, "", io, pid=pid, drain_timeout=None, bundle_dir=bundle_dir)
        self._io_ids = io_ids

    @property
    def _kind(self) -> str:
        return "task"

    async def _created(self) -> None:
        # The shim sets up a task's IO at Create (an exec's at Start).
        try:
            await self._io.process_created()
        except BaseException:
            await shielded(self._cleanup_failed_start())
            raise
        if not self._io.terminal:
            self._io.set_stdin_closer(self._close_io)

    async def start(self, *, timeout: float | None = None) -> int:
        """Start the init process; on failure (or cancellation) the task is killed and deleted.

        Returns:
            The pid.
        """
        try:
            self._pid = await self._client.api.tasks.start(self._container_id, timeout=timeout)
        except BaseException:
            await shielded(self._cleanup_failed_start())
            raise
        if self._io.terminal:
            self._io.set_stdin_closer(self._close_io)
        return self._pid

    async def _cleanup_failed_start(self) -> None:
        self._io.cancel()
        try:
            await self._force_delete_rpc(EXEC_CLEANUP_TIMEOUT)
        except errors.NotFoundError:
            pass
        except errors.ContainerdError as err:
            _log.warning("cleanup of failed task start %s: %s", self._container_id, err)
        finally:
            await self._io.aclose()

    async def _delete_rpc(self, timeout: float | None) -> DeleteResult:
        return await self._client.api.tasks.delete(self._container_id, timeout=timeout)

    async def kill(self, signal: int | str = _signal.SIGTERM, *, all: bool = False,
                   timeout: float | None = None) -> None:
        """Send a signal to the init process, or with ``all=True`` to every process of the task.

        Raises:
            ValueError: An invalid signal (checked before any RPC).
            NotFoundError: The task is gone or not running.
        """
        await self._client.api.tasks.kill(self._container_id, _rules.signal_number(signal), all=all,
                                          timeout=timeout)

    async def force_delete(self, *, timeout: float = 30.0) -> ExitStatus:
        """Kill every process of the task (SIGKILL), wait for the exit, delete the task.

        Runs to its end even if the caller is cancelled (the cancel is re-raised after).

        Returns:
            How the init process ended.
        """
        return await self._force_delete(timeout)

    async def _force_delete(self, timeout: float, *, stopped: bool = False) -> ExitStatus:
        # ``stopped``: the caller saw the exit (its Wait returned), so the Tasks/Get that
        # would only find STOPPED (and then kill nothing) is skipped (aio.run's path).
        outcome: list[DeleteResult] = []

        async def work() -> None:
            try:
                outcome.append(await self._force_delete_rpc(timeout, stopped=stopped))
            finally:
                await self._io.aclose()

        await shielded(work())
        return outcome[0].exit

    async def _force_delete_rpc(self, timeout: float, *, stopped: bool = False) -> DeleteResult:
        tasks = self._client.api.tasks
        info = None if stopped else await tasks.get(self._container_id, timeout=timeout)
        # Nothing to kill or wait for without a live pid (a failed restore has none).
        if info is not None and info.pid and info.status is not Status.STOPPED:
            waiting = asyncio.ensure_future(tasks.wait(self._container_id, timeout=timeout))
            try:
                with contextlib.suppress(errors.NotFoundError, errors.FailedPreconditionError):
                    await tasks.kill(self._container_id, _signal.SIGKILL, all=True, timeout=timeout)
                with contextlib.suppress(errors.ContainerdError):
                    await waiting
            finally:
                waiting.cancel()
        self._io.process_exited()
        with contextlib.suppress(Exception):
            await wait_for(asyncio.shield(self._io.done), DELETE_DRAIN_TIMEOUT)
        self._io.cancel()
        return await tasks.delete(self._container_id, timeout=timeout)

    async def pause(self, *, timeout: float | None = None) -> None:
        """Freeze every process of the task."""
        await self._client.api.tasks.pause(self._container_id, timeout=timeout)

    async def resume(self, *, timeout: float | None = None) -> None:
        """Thaw a paused task."""
        await self._client.api.tasks.resume(self._container_id, timeout=timeout)

    async def pids(self, *, timeout: float | None = None) -> list[int]:
        """Every pid in the task's cgroup."""
        return [p.pid for p in await self._client.api.tasks.list_pids(self._container_id, timeout=timeout)]

    async def summary(self, *, timeout: float | None = None) -> list[ProcessInfo]:
        """Every process of the task with its decoded details (exec id for runc)."""
        return await self._client.api.tasks.list_pids(self._container_id, timeout=timeout)

    async def stats(self, *, timeout: float | None = None) -> Metric:
        """The task's cgroup metrics.

        Raises:
            NotFoundError: The task is gone.
            ContainerdError: The daemon returned no metrics for a live task.
        """
        metrics = await self._client.api.tasks.metrics([f"id=={self._container_id}"], timeout=timeout)
        if metrics:
            return metrics[0]
        await self.status(timeout=timeout)  # NotFound if the task is gone
        raise errors.UnknownError(f"no metrics received for task {self._container_id!r}")

    async def update_resources(self, resources: Mapping[str, Any], *, timeout: float | None = None) -> None:
        """Change the task's resources (an OCI ``LinuxResources`` dict)."""
        if not isinstance(resources, Mapping):
            raise TypeError("resources must be an OCI LinuxResources mapping")
        await self._client.api.tasks.update(self._container_id, resources=resources, timeout=timeout)

    async def checkpoint(self, directory: str, *, exit: bool = False, timeout: float | None = None) -> None:
        """Checkpoint the task with CRIU into ``directory`` (paused around it, resumed unless ``exit``).

        Raises:
            ContainerdError: CRIU failed or is unavailable.
        """
        path = _validate.absolute_path(directory, "checkpoint directory")
        info = await self.status(timeout=timeout)
        paused_here = False
        if info.status is Status.RUNNING:
            await self.pause(timeout=timeout)
            paused_here = True
        try:
            options = RuncCheckpointOptions(exit=exit, image_path=path)
            await self._client.api.tasks.checkpoint(self._container_id, options=options, timeout=timeout)
        finally:
            if paused_here and not exit:
                with contextlib.suppress(errors.NotFoundError):
                    await self.resume(timeout=timeout)

    async def exec(self, exec_id: str, process_spec: Mapping[str, Any], *, stdio: Stdio,
                   drain_timeout: float | None = EXEC_DRAIN_TIMEOUT, timeout: float | None = None) -> Process:
        """Add a process to the running task (created, not started: ``await proc.start()``).

        Raises:
            ValueError: A bad exec id or spec (before any RPC or FIFO).
            ConflictError: The exec id is in use.
        """
        terminal = check_exec(exec_id, process_spec, drain_timeout)

        async def rpc(config: IOConfig) -> int:
            await self._client.api.tasks.exec(self._container_id, exec_id, process_spec, stdin=config.stdin,
                                              stdout=config.stdout, stderr=config.stderr, terminal=terminal,
                                              timeout=timeout)
            return 0

        io, _ = await _create_process(
            self._client, self._container_id, exec_id, directory=self._bundle_dir, name=exec_id, stdio=stdio,
            terminal=terminal, rpc=rpc, conflict=f"id already in use: exec {exec_id!r}", timeout=timeout,
        )
        return Process(self._client, self._container_id, exec_id, io, drain_timeout=drain_timeout,
                       bundle_dir=self._bundle_dir)


async def _create_process(client: Client, container_id: str, exec_id: str, *, directory: str, name: str,
                          stdio: Stdio, terminal: bool, rpc: Callable[[IOConfig], Awaitable[int]],
                          conflict: str, timeout: float | None, fresh: bool = False) -> tuple[LoopIO, int]:
    """The create-process sequence of :mod:`pycontainerd.task`, awaited (see the module docstring).

    ``fresh``: the container was made by the caller a moment ago (``aio.run``), so it has
    no task whose FIFOs could be clobbered and the Tasks/Get conflict check is skipped
    (an AlreadyExists from the Create still becomes the ConflictError).
    """
    async with process_lock(directory):
        if not fresh:
            try:
                await client.api.tasks.get(container_id, exec_id, timeout=timeout)
            except errors.NotFoundError:
                pass
            else:
                raise errors.ConflictError(conflict)
        io = open_io(stdio, directory, name, terminal=terminal)
        try:
            pid = await rpc(io.config)
        except errors.AlreadyExistsError as err:
            io.cancel()
            await shielded(io.aclose())
            raise errors.ConflictError(conflict) from err
        except BaseException:
            io.cancel()
            await shielded(io.aclose())
            raise
    return io, pid


async def new_task(client: Client, container_id: str, *, bundle_dir: str, io_ids: tuple[int, int],
                   stdio: Stdio,
                   terminal: bool, fifo_name: str, options: Any, timeout: float | None,
                   rootfs: Sequence[Mount] = (), checkpoint: Descriptor | None = None,
                   fresh: bool = False) -> Task:
    """Create a container's task (``Container.new_task`` checks and prepares the arguments).

    Raises:
        ConflictError: The container already has a task (before any FIFO is touched).
    """
    async def rpc(config: IOConfig) -> int:
        return await client.api.tasks.create(container_id, stdin=config.stdin, stdout=config.stdout,
                                             stderr=config.stderr, terminal=terminal, checkpoint=checkpoint,
                                             options=options, timeout=timeout, rootfs=rootfs)

    io, pid = await _create_process(
        client, container_id, "", directory=bundle_dir, name=fifo_name, stdio=stdio, terminal=terminal,
        rpc=rpc, conflict=f"container {container_id!r} already has a task", timeout=timeout, fresh=fresh,
    )
    task = Task(client, container_id, io, pid=pid, bundle_dir=bundle_dir, io_ids=io_ids)
    await task._created()
    return task


async def attach_task(client: Client, container_id: str, *, bundle_dir: str, io_ids: tuple[int, int],
                      stdio: Stdio, timeout: float | None) -> Task:
    """The running task of a container, with its IO reattached (see ``Container.attach_task``).

    Raises:
        NotFoundError: The container has no task.
    """
    info = await client.api.tasks.get(container_id, timeout=timeout)
    io = await reattach_io(stdio, info)
    task = Task(client, container_id, io, pid=info.pid, bundle_dir=bundle_dir, io_ids=io_ids)
    io.set_stdin_closer(task._close_io)
    return task


async def load_task(client: Client, container_id: str, *, bundle_dir: str, io_ids: tuple[int, int],
                    timeout: float | None) -> Task:
    """The task of a container without its IO; deleting it still removes its FIFOs.

    Raises:
        NotFoundError: The container has no task.
    """
    info = await client.api.tasks.get(container_id, timeout=timeout)
    return Task(client, container_id, loaded_io(info), pid=info.pid, bundle_dir=bundle_dir, io_ids=io_ids)
