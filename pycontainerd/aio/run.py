r"""``await pycontainerd.aio.run(...)`` and ``create_subprocess_exec``: containers as asyncio subprocesses.

:func:`run` is :func:`pycontainerd.run` awaited: the same argument checks
(:func:`~pycontainerd._run.check_run_args`), spec (:func:`~pycontainerd._run.run_spec`),
stdio strategy (:func:`~pycontainerd._run.run_stdio`: the handoff where it applies),
owner label and result type (:class:`~pycontainerd._run.CompletedContainer`).

:func:`create_subprocess_exec` is :func:`asyncio.create_subprocess_exec` for a
container: ``PIPE`` gives ``proc.stdin`` (an :class:`asyncio.StreamWriter`) and
``proc.stdout``/``proc.stderr`` (:class:`asyncio.StreamReader`\ s); ``await
proc.wait()`` resolves once the process exited and its last byte is in the
readers, then removes the container; ``communicate()`` feeds and reads at once.

Cancellation. Cancelling :func:`run` or :meth:`ContainerProcess.wait` (or
leaving an ``asyncio.timeout()`` block around them) at any await point kills the
container's processes, deletes its task and the container, closes its IO and
removes its FIFOs and bundle dir, then lets :class:`asyncio.CancelledError`
propagate. That clean-up is shielded from further cancellation but bounded: after
:data:`CANCEL_CLEANUP_TIMEOUT` seconds it is abandoned (logged), and whatever is
left carries the run's owner label for :func:`pycontainerd.cleanup_runs`.

Example:
    >>> result = await pycontainerd.aio.run(["sh", "-c", "echo hi"], rootfs="/srv/busybox",
    ...                                     capture_output=True)
    >>> result.stdout
    b'hi\n'
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import signal
from collections.abc import Callable, Mapping, Sequence
from typing import IO, Any

from pycontainerd import errors
from pycontainerd._run import (
    CLEANUP_TIMEOUT,
    RECONNECT_TIMEOUT,
    RUN_OWNER_LABEL,
    CompletedContainer,
    check_run_args,
    new_run_id,
    owner_token,
    run_spec,
    run_stdio,
)
from pycontainerd.aio._util import wait_for
from pycontainerd.aio.client import Client
from pycontainerd.aio.container import Container, new_container
from pycontainerd.aio.task import Task
from pycontainerd.api.types import ExitStatus
from pycontainerd.stdio.strategy import Stdio

__all__ = [
    "CANCEL_CLEANUP_TIMEOUT",
    "DEVNULL",
    "PIPE",
    "STDOUT",
    "ContainerProcess",
    "create_subprocess_exec",
    "run",
    "run_container",
]

_log = logging.getLogger(__name__)

#: A stream of :func:`create_subprocess_exec` that becomes an asyncio stream (as :data:`subprocess.PIPE`).
PIPE = -1
#: Discard a stream (``stdout``/``stderr``) of :func:`create_subprocess_exec`.
DEVNULL = -3
#: ``stderr=STDOUT``: stderr goes where stdout goes.
STDOUT = -2
#: At most this long (seconds) is spent removing a cancelled run's container, whatever the caller does.
CANCEL_CLEANUP_TIMEOUT = 60.0
_RECONNECT_POLL = 0.1


async def run(args: Sequence[str], *, rootfs: str | os.PathLike[str] | None = None, image: Any = None,
              stdin: bytes | int | Any | None = None, stdout: int | Any | None = None,
              stderr: int | Any | None = None, capture_output: bool = False, check: bool = False,
              tty: bool = False, env: Mapping[str, str] | Sequence[str] | None = None, cwd: str | None = None,
              user: str | int | tuple[int, int] | None = None, hostname: str | None = None,
              timeout: float | None = None, client: Client | None = None,
              spec_options: Mapping[str, Any] | None = None,
              handoff: bool | None = None, pull: str = "missing",
              pull_options: Mapping[str, Any] | None = None) -> CompletedContainer:
    """Run ``args`` in a new container on ``rootfs``, wait, delete it: :func:`pycontainerd.run`, awaited.

    Args:
        args: The command line.
        rootfs: The root filesystem directory (absolute); exactly one of ``rootfs`` and ``image``.
        image: An image or image name (unpacked if needed); its config gives the defaults
            of the command, environment, working dir and user. Prepared by the sync
            client's image code in one worker thread; the snapshot goes with the container.
        stdin: Bytes, or an fd/file/socket read to EOF; ``None``: no stdin.
        stdout: An fd, a file object or an :class:`asyncio.StreamWriter` for stdout
            (``None``: discarded unless captured).
        stderr: The same for stderr.
        capture_output: Capture stdout and stderr into the result.
        check: Raise :class:`~pycontainerd.errors.ContainerError` on a non-zero exit.
        tty: Give the process a terminal.
        env: Extra environment.
        cwd: Working directory (default ``/``).
        user: ``"uid[:gid]"``, an int uid or ``(uid, gid)``.
        hostname: The container's hostname.
        timeout: Seconds before the container is killed (``TimeoutError`` is then raised).
        client: The client to use; default: one from the environment, closed at the end.
        spec_options: Further keyword options for :func:`pycontainerd.oci.build`.
        handoff: The zero-copy handoff: ``None`` where it applies, ``True`` required, ``False`` never.
        pull: With an image name: ``"missing"`` (default) pulls it when there is no such
            image (as written, or normalised), ``"always"`` pulls it first, ``"never"`` does
            not pull (the sync ``run``'s policy, applied by its code in the same worker thread).
        pull_options: Keyword arguments of the sync ``Client.pull`` for that pull
            (``plain_http``, ``auth``, ``ca_file``, ``platform``, ...).

    Returns:
        The completed container.

    Raises:
        ContainerError: ``check`` is set and the exit status is non-zero.
        SinkError: ``stdout``/``stderr`` could not take every byte (the container is removed).
        TimeoutError: The timeout expired (the container was killed and removed).
        asyncio.CancelledError: The run was cancelled (the container was killed and removed).
        TypeError: ``args`` is a string, or an argument has the wrong type.
        ValueError: Conflicting or invalid arguments.
        NotFoundError: No such image.
    """
    checked = check_run_args(args, rootfs=rootfs, image=image, capture_output=capture_output, stdout=stdout,
                             stderr=stderr, timeout=timeout)
    async with contextlib.AsyncExitStack() as stack:
        sinks = [await stack.enter_async_context(_StreamSink.for_(value, name))
                 for value, name in ((stdout, "stdout"), (stderr, "stderr"))]
        stdio = run_stdio(stdin, sinks[0], sinks[1], capture_output=capture_output, tty=tty, handoff=handoff)
        async with _client(client) as active:
            container_id = new_run_id()
            if rootfs is not None:
                spec: Mapping[str, Any] | None = run_spec(
                    args, rootfs, namespace=active.namespace, container_id=container_id, env=env, cwd=cwd,
                    user=user, tty=tty, hostname=hostname, spec_options=spec_options)
                options = None
            else:
                spec = None
                options = dict(spec_options or {}, args=list(args) or None, env=env, cwd=cwd, user=user,
                               tty=tty, hostname=hostname)
            result = await run_container(active, container_id, spec, stdio, timeout=checked, image=image,
                                         spec_options=options,
                                         pull=(pull, pull_options) if image is not None else None)
        for sink in sinks:
            if isinstance(sink, _StreamSink):
                await sink.finish(result)
    if check:
        result.check_returncode()
    return result


class _StreamSink:
    """An :class:`asyncio.StreamWriter` as a run's stdout/stderr: a pipe the pool fills, copied on the loop.

    The pool writes into the pipe (its write end is the sink the IO claims); a
    coroutine copies the read end into the writer with its flow control. If the
    writer fails, the rest of the stream is read and dropped (the container never
    blocks) and :meth:`finish` raises :class:`~pycontainerd.errors.SinkError`, as for
    any failing sink.
    """

    def __init__(self, writer: asyncio.StreamWriter, name: str) -> None:
        self._writer = writer
        self._name = name
        self._read, self.fd = os.pipe2(os.O_CLOEXEC)
        self._copier: asyncio.Task[None] | None = None
        self.delivered = 0
        self.dropped = 0
        self.error: OSError | None = None

    def fileno(self) -> int:
        """The pipe's write end, which the run's IO claims (duplicates) as its sink."""
        return self.fd

    @classmethod
    @contextlib.asynccontextmanager
    async def for_(cls, value: Any, name: str) -> Any:
        """``value`` itself, or a started :class:`_StreamSink` when it is a StreamWriter (closed on exit)."""
        if not isinstance(value, asyncio.StreamWriter):
            yield value
            return
        sink = cls(value, name)
        try:
            await sink._start()
            yield sink
        finally:
            sink._close_write_end()
            if sink._copier is not None and not sink._copier.done():
                sink._copier.cancel()
                with contextlib.suppress(BaseException):
                    await sink._copier

    async def _start(self) -> None:
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(loop=loop)
        fd, self._read = self._read, -1
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(fd, "rb", 0))
        self._copier = asyncio.ensure_future(self._copy(reader))

    async def _copy(self, reader: asyncio.StreamReader) -> None:
        while chunk := await reader.read(1 << 16):
            if self.error is not None:
                self.dropped += len(chunk)
                continue
            try:
                self._writer.write(chunk)
                await self._writer.drain()
            except OSError as exc:  # ConnectionResetError, BrokenPipeError, ...
                self.error = exc
                self.dropped += len(chunk)
                continue
            self.delivered += len(chunk)

    def _close_write_end(self) -> None:
        if self.fd >= 0:
            fd, self.fd = self.fd, -1
            os.close(fd)

    async def finish(self, result: CompletedContainer) -> None:
        """Wait for the last byte to reach the writer (the run's IO closed its end).

        Raises:
            SinkError: The writer failed; ``status`` is the run's exit.
        """
        self._close_write_end()  # the IO's own duplicate is closed already: EOF
        if self._copier is not None:
            await self._copier
        if self.error is not None:
            raise errors.SinkError(self.error.errno or errno.EPIPE, self._name, delivered=self.delivered,
                                   dropped=self.dropped, status=ExitStatus(result.returncode))


@contextlib.asynccontextmanager
async def _client(client: Client | None) -> Any:
    if client is not None:
        yield client
        return
    own = Client()
    try:
        yield own
    finally:
        await asyncio.shield(own.close())


async def run_container(client: Client, container_id: str, spec: Mapping[str, Any] | None, stdio: Stdio, *,
                        timeout: float | None = None, owned: bool = True, image: Any = None,
                        spec_options: Mapping[str, Any] | None = None,
                        pull: tuple[str, Mapping[str, Any] | None] | None = None) -> CompletedContainer:
    """Create a container and its task, run it to its end and remove both (the core of :func:`run`).

    ``spec`` for a rootfs run, or ``image`` (with ``spec_options`` over its config, pulled
    first under ``pull``: ``(policy, pull_options)`` as :func:`run` takes them).

    On any failure or cancellation the task and the container are removed (shielded,
    bounded by :data:`CANCEL_CLEANUP_TIMEOUT`) and the original error is raised.

    Raises:
        SinkError: A stdout/stderr sink failed (the process ran to its end).
        TimeoutError: ``timeout`` expired (the container was killed and removed).
        ContainerdError: containerd refused a step.
    """
    labels = {RUN_OWNER_LABEL: owner_token()} if owned else None
    container: Container | None = None
    task: Task | None = None
    try:
        container = await new_container(client, container_id, spec, labels=labels, image=image,
                                        spec_options=spec_options, pull=pull)
        # The container is new and the exit is seen, so the three Tasks/Get checks of the
        # public calls (no task before the create, STOPPED before the delete, no task
        # before the container's delete) are known to pass and skipped: 6 RPCs, not 9.
        task = await container._new_task(stdio=stdio, fresh=True)
        status = await _run_task(client, task, timeout)
        await task._force_delete(CLEANUP_TIMEOUT, stopped=True)
        args = list(container.spec.get("process", {}).get("args", []))
        result = CompletedContainer(args, status.code, task.io.stdout_data, task.io.stderr_data, container_id)
        await container._delete(timeout=CLEANUP_TIMEOUT, task_gone=True)
    except BaseException:
        await remove_run(client, container_id, task)
        raise
    return result


async def _run_task(client: Client, task: Task, timeout: float | None) -> ExitStatus:
    # Armed before the start: the shim keeps the status anyway, but a started wait also
    # begins the drain as soon as the exit is known.
    exited = asyncio.ensure_future(task.wait())
    try:
        await task.start()
        try:
            return await wait_for(_await_exit(client, task, exited), timeout)
        except TimeoutError:
            with contextlib.suppress(errors.ContainerdError):
                await task.kill(signal.SIGKILL, all=True)
            raise TimeoutError(f"container {task.container_id!r} did not exit within {timeout} s") from None
    finally:
        if not exited.done():
            exited.cancel()
            with contextlib.suppress(BaseException):
                await exited


async def _await_exit(client: Client, task: Task, exited: asyncio.Future[ExitStatus]) -> ExitStatus:
    """The exit status, waiting out a containerd restart (see the sync ``_await_exit``)."""
    reconnected = False
    while True:
        try:
            return await asyncio.shield(exited)
        except errors.UnavailableError as exc:
            await _reconnect(client, task.container_id, exc)
            reconnected = True
            exited = asyncio.ensure_future(task.wait())
        except errors.NotFoundError as exc:
            if not reconnected:
                raise
            raise errors.ConnectionLostError(
                f"container {task.container_id!r} exited while containerd at {client.address} was down; "
                "containerd removed the task when it restarted and its exit status with it",
                code=exc.code,
            ) from exc


async def _reconnect(client: Client, container_id: str, cause: errors.ContainerdError) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + RECONNECT_TIMEOUT
    while True:
        try:
            await client.connect(timeout=min(1.0, max(0.01, deadline - loop.time())))
            return
        except errors.UnavailableError:
            if loop.time() >= deadline:
                break
            await asyncio.sleep(_RECONNECT_POLL)
    raise errors.ConnectionLostError(
        f"containerd at {client.address} went away while container {container_id!r} was running and did "
        f"not serve again within {RECONNECT_TIMEOUT:g} s; the container is left behind "
        "(pycontainerd.cleanup_runs() removes it once containerd is back)",
        code=cause.code,
    ) from cause


async def remove_run(client: Client, container_id: str, task: Task | None = None) -> None:
    """Remove a run's task and container whatever state they are in; shielded and bounded.

    Works from whatever the run got hold of: a task handle (its IO is closed too), or
    only the id (a Create whose answer a cancel cut off may still have made the task or
    the record). Missing pieces are fine. Re-raises a cancellation that arrives meanwhile
    only after the clean-up (or its time bound) ended.
    """
    async def work() -> None:
        if task is not None:
            with contextlib.suppress(errors.ContainerdError, OSError):
                await task.force_delete(timeout=CLEANUP_TIMEOUT)
        try:
            container = await client.load_container(container_id, timeout=CLEANUP_TIMEOUT)
        except errors.NotFoundError:
            return
        with contextlib.suppress(errors.NotFoundError):
            loaded = await container.task(timeout=CLEANUP_TIMEOUT)
            await loaded.force_delete(timeout=CLEANUP_TIMEOUT)
        with contextlib.suppress(errors.NotFoundError):
            await container.delete(timeout=CLEANUP_TIMEOUT)

    cleanup = asyncio.ensure_future(wait_for(work(), CANCEL_CLEANUP_TIMEOUT))
    try:
        await asyncio.shield(cleanup)
    except asyncio.CancelledError:
        # Cancelled again while cleaning up: finish the clean-up (bounded), then go.
        with contextlib.suppress(BaseException):
            await cleanup
        raise
    except Exception as exc:
        _log.warning("removing container %s of a failed run: %s", container_id, exc)


class _ReaderProtocol(asyncio.StreamReaderProtocol):
    """A StreamReader's protocol that also tells when the pipe reached EOF (its last byte is in)."""

    def __init__(self, reader: asyncio.StreamReader) -> None:
        super().__init__(reader)
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        if not self.closed.done():
            self.closed.set_result(None)


class ContainerProcess:
    """A running container made by :func:`create_subprocess_exec`: ``asyncio.subprocess.Process``'s shape.

    Attributes:
        stdin: The writer of the process's stdin (with ``stdin=PIPE``), else ``None``.
        stdout: The reader of its stdout (with ``stdout=PIPE``), else ``None``.
        stderr: The reader of its stderr (with ``stderr=PIPE``), else ``None``.
        container_id: The container (removed once :meth:`wait` returned).
        returncode: The exit status, once waited (``None`` before).
    """

    def __init__(self, client: Client, own_client: bool, container: Container, task: Task,
                 exited: asyncio.Future[ExitStatus], stdin: asyncio.StreamWriter | None,
                 stdout: asyncio.StreamReader | None, stderr: asyncio.StreamReader | None,
                 readers_closed: list[asyncio.Future[None]]) -> None:
        self._client = client
        self._own_client = own_client
        self._container = container
        self._task = task
        self._exited = exited
        self.stdin = stdin
        self.stdout = stdout
        self.stderr = stderr
        self._readers_closed = readers_closed
        self.container_id = container.id
        self.returncode: int | None = None
        self._removed = False

    @property
    def pid(self) -> int:
        """The container's init process pid (on the host)."""
        return self._task.pid

    @property
    def task(self) -> Task:
        """The container's task (for exec, pause, stats, ...)."""
        return self._task

    async def wait(self) -> int:
        """Wait for the exit and the last output byte, remove the container, return the exit status.

        As with :mod:`asyncio.subprocess`, reading ``stdout``/``stderr`` is the caller's
        job: a full pipe nobody reads stalls the process (use :meth:`communicate`).
        Cancelling the wait kills and removes the container (then re-raises). A
        containerd restart meanwhile is waited out, as :func:`run` does.

        Raises:
            SinkError: A stdout/stderr sink failed (the container is removed).
        """
        if self.returncode is not None:
            return self.returncode
        try:
            status = await _await_exit(self._client, self._task, self._exited)
            for closed in self._readers_closed:
                await closed
        except BaseException:
            await self._remove()
            raise
        await self._remove()
        self.returncode = status.code
        return status.code

    async def communicate(self, input: bytes | None = None) -> tuple[bytes | None, bytes | None]:
        """Send ``input`` (then EOF), read stdout and stderr to the end, wait (``asyncio.subprocess``'s).

        Returns:
            ``(stdout, stderr)``: the bytes of each piped stream, ``None`` for the others.
        """
        async def feed() -> None:
            if self.stdin is None:
                return
            try:
                if input:
                    self.stdin.write(input)
                    await self.stdin.drain()
            except (BrokenPipeError, ConnectionResetError):
                pass  # the process stopped reading
            finally:
                self.stdin.close()

        async def read(reader: asyncio.StreamReader | None) -> bytes | None:
            return None if reader is None else await reader.read()

        _, out, err = await asyncio.gather(feed(), read(self.stdout), read(self.stderr))
        await self.wait()
        return out, err

    async def send_signal(self, sig: int | str) -> None:
        """Send a signal to the init process (an RPC, hence a coroutine unlike asyncio's)."""
        await self._task.kill(sig)

    async def terminate(self) -> None:
        """SIGTERM the init process."""
        await self._task.kill(signal.SIGTERM)

    async def kill(self) -> None:
        """SIGKILL every process of the container."""
        await self._task.kill(signal.SIGKILL, all=True)

    async def _remove(self) -> None:
        if self._removed:
            return
        self._removed = True
        if not self._exited.done():
            self._exited.cancel()
        if self.stdin is not None:
            self.stdin.close()
        try:
            await remove_run(self._client, self.container_id, self._task)
        finally:
            if self._own_client:
                await asyncio.shield(self._client.close())

    async def __aenter__(self) -> ContainerProcess:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._remove()


def _factory(protocol: _ReaderProtocol) -> Callable[[], _ReaderProtocol]:
    return lambda: protocol


def _stream_arg(value: Any, name: str) -> None:
    if value in (PIPE, DEVNULL) or value is None:
        return
    if value == STDOUT and name != "stderr":
        raise ValueError("STDOUT is only valid for stderr")


async def create_subprocess_exec(
    *args: str, rootfs: str | os.PathLike[str], stdin: int | IO[Any] | None = None,
    stdout: int | IO[Any] | None = None, stderr: int | IO[Any] | None = None, tty: bool = False,
    env: Mapping[str, str] | Sequence[str] | None = None, cwd: str | None = None,
    user: str | int | tuple[int, int] | None = None, hostname: str | None = None,
    client: Client | None = None, spec_options: Mapping[str, Any] | None = None, handoff: bool | None = None,
) -> ContainerProcess:
    """Start ``args`` in a new container with asyncio streams, like :func:`asyncio.create_subprocess_exec`.

    Args:
        *args: The command line.
        rootfs: The root filesystem directory (absolute).
        stdin: ``PIPE`` (``proc.stdin`` is a StreamWriter), bytes are not accepted here
            (use ``communicate(input)``), an fd/file, or ``None`` (no stdin).
        stdout: ``PIPE`` (``proc.stdout`` is a StreamReader), ``DEVNULL``/``None`` (discarded),
            or an fd/file.
        stderr: As ``stdout``, or ``STDOUT`` (into stdout's sink).
        tty: Give the process a terminal (then there is no separate stderr).
        env: Extra environment.
        cwd: Working directory (default ``/``).
        user: ``"uid[:gid]"``, an int uid or ``(uid, gid)``.
        hostname: The container's hostname.
        client: The client to use; default: one from the environment (closed by ``wait()``).
        spec_options: Further keyword options for :func:`pycontainerd.oci.build`.
        handoff: The zero-copy handoff for stdout/stderr (see :func:`run`).

    Returns:
        The started process; ``await proc.wait()`` (or ``async with proc``) removes its container.

    Raises:
        ValueError: Invalid arguments (before anything is created).
        ContainerdError: containerd refused a step (nothing is left).
    """
    for value, name in ((stdin, "stdin"), (stdout, "stdout"), (stderr, "stderr")):
        _stream_arg(value, name)
    if stdin in (STDOUT, DEVNULL):
        stdin = None
    loop = asyncio.get_running_loop()
    mine: list[int] = []  # our own pipe ends, closed once the IO claimed its duplicates
    readers: list[asyncio.StreamReader | None] = [None, None]
    read_ends: list[int] = [-1, -1]
    writer_end = -1
    try:
        source: Any = stdin
        if stdin == PIPE:
            r, writer_end = os.pipe2(os.O_CLOEXEC)
            mine.append(r)
            source = r
        sinks: list[Any] = []
        for i, value in enumerate((stdout, stderr)):
            if value == PIPE:
                r, w = os.pipe2(os.O_CLOEXEC)
                read_ends[i] = r
                mine.append(w)
                sinks.append(w)
            elif value == DEVNULL:
                sinks.append(None)
            else:
                sinks.append(value)
        if stderr == STDOUT:
            sinks[1] = sinks[0]
        stdio = run_stdio(source, sinks[0], sinks[1], tty=tty, handoff=handoff)
    except BaseException:
        for fd in [*mine, *[fd for fd in read_ends if fd >= 0], writer_end]:
            if fd >= 0:
                os.close(fd)
        raise
    own_client = client is None
    active = client if client is not None else Client()
    container_id = new_run_id()
    task: Task | None = None
    try:
        spec = run_spec(list(args), rootfs, namespace=active.namespace, container_id=container_id, env=env,
                        cwd=cwd, user=user, tty=tty, hostname=hostname, spec_options=spec_options)
        container = await new_container(active, container_id, spec, labels={RUN_OWNER_LABEL: owner_token()})
        task = await container.new_task(stdio=stdio)
        # The IO holds duplicates now: our copies of its ends would keep the pipes open.
        for fd in mine:
            os.close(fd)
        mine = []
        exited = asyncio.ensure_future(task.wait())
        await task.start()
        closed: list[asyncio.Future[None]] = []
        for i, fd in enumerate(read_ends):
            if fd < 0:
                continue
            reader = asyncio.StreamReader(loop=loop)
            protocol = _ReaderProtocol(reader)
            read_ends[i] = -1
            await loop.connect_read_pipe(_factory(protocol), os.fdopen(fd, "rb", buffering=0))
            readers[i] = reader
            closed.append(protocol.closed)
        stdin_writer = None
        if writer_end >= 0:
            fd, writer_end = writer_end, -1
            transport, wprotocol = await loop.connect_write_pipe(asyncio.streams.FlowControlMixin,
                                                                 os.fdopen(fd, "wb", buffering=0))
            stdin_writer = asyncio.StreamWriter(transport, wprotocol, None, loop)
    except BaseException:
        for fd in [*mine, *[fd for fd in read_ends if fd >= 0], writer_end]:
            if fd >= 0:
                os.close(fd)
        await remove_run(active, container_id, task)
        if own_client:
            await asyncio.shield(active.close())
        raise
    return ContainerProcess(active, own_client, container, task, exited, stdin_writer, readers[0], readers[1],
                            closed)
