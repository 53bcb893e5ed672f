r"""``pycontainerd.run``: run a command in a fresh container, like ``subprocess.run``.

:func:`run_container` is the lifecycle itself (create, start, wait out a
containerd restart, clean up), shared by :func:`run` and the ``pycontainerd
run`` command, which add only how the container and its stdio are described
(and, for the command, the terminal and the exit status).

Example:
    >>> result = pycontainerd.run(["sh", "-c", "echo hi; exit 3"], rootfs="/srv/busybox",
    ...                           capture_output=True)
    >>> result.returncode, result.stdout
    (3, b'hi\n')
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pycontainerd import _validate, errors, oci
from pycontainerd.container import Container, new_container
from pycontainerd.stdio import strategy
from pycontainerd.stdio.opener import transport_for

if TYPE_CHECKING:
    from concurrent.futures import Future
    from contextlib import AbstractContextManager

    from pycontainerd.api.types import ExitStatus
    from pycontainerd.client import Client
    from pycontainerd.stdio.strategy import Stdio
    from pycontainerd.task import Task

__all__ = [
    "CLEANUP_TIMEOUT",
    "RECONNECT_TIMEOUT",
    "RUN_OWNER_LABEL",
    "Attach",
    "CompletedContainer",
    "check_run_args",
    "cleanup_runs",
    "new_run_id",
    "owner_token",
    "run",
    "run_container",
    "run_spec",
    "run_stdio",
    "start_container",
]

#: How long :func:`run` waits for a containerd that went away mid-run (restart, crash) to serve again.
RECONNECT_TIMEOUT = 60.0
#: Label on every container :func:`run` creates: which process owns it (``<boot id>/<pid>/<start time>``).
RUN_OWNER_LABEL = "io.pycontainerd.run.owner"
#: Deadline of each RPC that deletes a run's task or container.
CLEANUP_TIMEOUT = 30.0
_RECONNECT_POLL = 0.1
_WAIT_SLICE = 1.0

#: What :func:`run_container` enters around a task's start and wait (see its ``attach``).
Attach = Callable[["Task"], "AbstractContextManager[object]"]


@dataclass(frozen=True)
class CompletedContainer:
    """What :func:`run` returns, shaped like ``subprocess.CompletedProcess``.

    Attributes:
        args: The command.
        returncode: The exit status (128 + N when killed by signal N, as containerd reports it).
        stdout: Captured stdout, or ``None`` when not captured.
        stderr: Captured stderr, or ``None`` when not captured (always ``None`` with a tty).
        container_id: The (already deleted) container's id.
    """

    args: Sequence[str]
    returncode: int
    stdout: bytes | None = None
    stderr: bytes | None = None
    container_id: str = ""

    def check_returncode(self) -> None:
        """Raise :class:`~pycontainerd.errors.ContainerError` if the exit status is non-zero."""
        if self.returncode:
            raise errors.ContainerError(self.container_id, self.returncode, self.stderr)


def run(
    args: Sequence[str],
    *,
    rootfs: str | os.PathLike[str] | None = None,
    image: Any = None,
    stdin: bytes | int | Any | None = None,
    stdout: int | Any | None = None,
    stderr: int | Any | None = None,
    capture_output: bool = False,
    check: bool = False,
    tty: bool = False,
    env: Mapping[str, str] | Sequence[str] | None = None,
    cwd: str | None = None,
    user: str | int | tuple[int, int] | None = None,
    hostname: str | None = None,
    timeout: float | None = None,
    client: Client | None = None,
    spec_options: Mapping[str, Any] | None = None,
    handoff: bool | None = None,
    pull: str = "missing",
    pull_options: Mapping[str, Any] | None = None,
) -> CompletedContainer:
    """Run ``args`` in a new container on ``rootfs`` or from ``image``, wait for it, delete the container.

    Args:
        args: The command line. With ``image`` it replaces the image's ``Cmd`` (after its
            ``Entrypoint``); empty runs the image's own command.
        rootfs: The root filesystem directory (absolute); exactly one of ``rootfs`` and ``image``.
        image: An image or image name (unpacked if needed); its config gives the
            defaults of the command, environment, working dir and user. The container's
            snapshot is removed with it.
        stdin: Bytes, or an fd/file/socket read to EOF; ``None``: no stdin.
        stdout: An fd or file object for stdout (``None``: discarded unless captured).
        stderr: An fd or file object for stderr.
        capture_output: Capture stdout and stderr into the result.
        check: Raise :class:`~pycontainerd.errors.ContainerError` on a non-zero exit.
        tty: Give the process a terminal (stdout and stderr are then one stream).
        env: Extra environment.
        cwd: Working directory (default: the image's, else ``/``).
        user: ``"uid[:gid]"``, an int uid or ``(uid, gid)``; with ``image`` also names
            from its ``/etc/passwd`` (default: the image's user).
        hostname: The container's hostname.
        timeout: Seconds before the container is killed (``TimeoutError`` is then raised).
        client: The client to use; default: one from ``CONTAINERD_ADDRESS``/``CONTAINERD_NAMESPACE``.
        spec_options: Further keyword options for :func:`pycontainerd.oci.build`.
        handoff: Zero-copy stdout/stderr (:func:`pycontainerd.stdio.handoff`): ``None``
            (default) uses it when it applies (no ``stdin``, no ``tty``, helper built), else
            FIFOs; ``True`` requires it; ``False`` always uses FIFOs. The bytes are the same.
        pull: With an image name: ``"missing"`` (default) pulls it when there is no
            such image (as written, or normalised: ``alpine`` is
            ``docker.io/library/alpine:latest``), ``"always"`` pulls it first,
            ``"never"`` does not pull.
        pull_options: Keyword arguments of ``Client.pull`` for that pull (``plain_http``,
            ``auth``, ``ca_file``, ``platform``, ...).

    Returns:
        The completed container.

    If containerd goes away while the container runs (a crash, a restart), ``run``
    waits up to :data:`RECONNECT_TIMEOUT` seconds for it to serve again and carries
    on: the shim keeps the process and its output going meanwhile.

    Raises:
        ContainerError: ``check`` is set and the exit status is non-zero.
        SinkError: ``stdout``/``stderr`` could not take every byte (a full disk, a
            closed pipe...): the process ran to its end, the container is removed,
            and the error carries the exit ``status``.
        ConnectionLostError: containerd did not return within :data:`RECONNECT_TIMEOUT`
            (the container is left; :func:`cleanup_runs` removes it later), or, on
            containerd 1.7/2.x, the process ended while containerd was down and its
            exit status was lost.
        TimeoutError: The timeout expired (the container was killed and removed).
        TypeError: ``args`` is a string, or an argument has the wrong type.
        ValueError: Conflicting or invalid arguments (NaN or negative ``timeout``;
            ``math.inf`` means no limit).
        HandoffUnavailableError: ``handoff=True`` with ``stdin`` or ``tty`` (or no
            helper), before anything is created.
    """
    timeout = check_run_args(args, rootfs=rootfs, image=image, capture_output=capture_output, stdout=stdout,
                             stderr=stderr, timeout=timeout)
    stdio = run_stdio(stdin, stdout, stderr, capture_output=capture_output, tty=tty, handoff=handoff)
    own_client = client is None
    if client is None:
        from pycontainerd.client import Client

        client = Client()
    try:
        container_id = new_run_id()
        if rootfs is not None:
            spec = run_spec(args, rootfs, namespace=client.namespace, container_id=container_id, env=env,
                            cwd=cwd, user=user, tty=tty, hostname=hostname, spec_options=spec_options)
            result = run_container(client, container_id, spec, stdio, timeout=timeout)
        else:
            from pycontainerd.registry.pull import ensure_image

            image = ensure_image(client, image, pull, pull_options)
            options = dict(spec_options or {}, args=list(args) or None, env=env, cwd=cwd, user=user, tty=tty,
                           hostname=hostname)
            result = run_container(client, container_id, None, stdio, timeout=timeout, image=image,
                                   spec_options=options)
    finally:
        if own_client:
            client.close()
    if check:
        result.check_returncode()
    return result


def check_run_args(args: Sequence[str], *, rootfs: object, image: object, capture_output: bool,
                   stdout: object, stderr: object, timeout: float | None) -> float | None:
    """Refuse a run's bad arguments before anything exists (shared with ``pycontainerd.aio.run``).

    Returns:
        The checked timeout (``None``: no limit).

    Raises:
        TypeError: ``args`` is a string.
        ValueError: Not exactly one of ``rootfs`` and ``image``, outputs with ``capture_output``,
            a NaN or negative ``timeout``.
    """
    if isinstance(args, (str, bytes)):
        # list("echo hi") would run the program "e" with arguments "c", "h", ...
        raise TypeError(f"args must be a sequence of str (['sh', '-c', ...]), not {type(args).__name__}")
    if (rootfs is None) == (image is None):
        raise ValueError("run() needs exactly one of rootfs= and image=")
    if capture_output and (stdout is not None or stderr is not None):
        raise ValueError("stdout and stderr arguments may not be used with capture_output")
    try:
        return _validate.limit(timeout, "timeout")  # inf: no limit
    except TypeError as exc:
        raise ValueError(str(exc)) from None


def new_run_id() -> str:
    """A fresh container id for a run: ``pcd-run-`` and 64 random bits."""
    # 64 random bits, like the 16 hex digits of a uuid4 without importing uuid.
    return f"pcd-run-{os.urandom(8).hex()}"


def run_spec(args: Sequence[str], rootfs: str | os.PathLike[str], *, namespace: str, container_id: str,
             env: Mapping[str, str] | Sequence[str] | None = None, cwd: str | None = None,
             user: str | int | tuple[int, int] | None = None, tty: bool = False, hostname: str | None = None,
             spec_options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The OCI spec of a run on a rootfs directory (see :func:`run`)."""
    return oci.build(args=list(args), rootfs=rootfs, env=env, cwd=cwd or "/", user=user, tty=tty,
                     hostname=hostname, namespace=namespace, container_id=container_id,
                     **dict(spec_options or {}))


def run_stdio(stdin: bytes | int | Any | None, stdout: int | Any | None, stderr: int | Any | None, *,
              capture_output: bool = False, tty: bool = False, handoff: bool | None = None) -> Stdio:
    """The stdio strategy of a run: the caller's streams (or a capture), over the handoff where it applies.

    Args:
        stdin: Bytes, or an fd/file/socket read to EOF; ``None``: no stdin.
        stdout: An fd or file object for stdout (``None``: discarded unless captured).
        stderr: An fd or file object for stderr.
        capture_output: Capture stdout and stderr (``stdout``/``stderr`` must be ``None``).
        tty: Whether the process gets a terminal (the handoff then does not apply).
        handoff: ``None``: the handoff where it applies, else FIFOs; ``True``: the
            handoff or :class:`~pycontainerd.stdio.HandoffUnavailableError`; ``False``: FIFOs.

    Returns:
        The strategy for :func:`run_container`.

    Raises:
        HandoffUnavailableError: ``handoff=True`` where it does not apply.
    """
    stdio = strategy.capture(stdin) if capture_output else strategy.streams(stdin, stdout, stderr)
    if handoff is False:
        return stdio
    stdio = strategy.handoff(stdio, fallback=handoff is None)
    # Refused before anything exists (new_task would only find out with a container made).
    transport_for(stdio, terminal=tty)
    return stdio


def run_container(
    client: Client,
    container_id: str,
    spec: Mapping[str, Any] | None,
    stdio: Stdio,
    *,
    timeout: float | None = None,
    remove: bool = True,
    owned: bool = True,
    attach: Attach | None = None,
    state_dir: str | None = None,
    runtime_options: Any = None,
    image: Any = None,
    spec_options: Mapping[str, Any] | None = None,
) -> CompletedContainer:
    """Create a container and its task, run it to its end and clean up: the core of :func:`run`.

    The one owner of the sequence that :func:`run` and the ``pycontainerd run``
    command share: create the container (labelled with its owner when ``owned``)
    and its task, arm the wait, start, wait out a containerd restart (up to
    :data:`RECONNECT_TIMEOUT`), delete the task, then the container (when
    ``remove``). On any failure the task and the container are removed as far as
    the daemon lets, and the original error is raised.

    Args:
        client: The client (namespace) to run in.
        container_id: The container id.
        spec: The OCI runtime spec (see :func:`pycontainerd.oci.build`); ``None`` with ``image``.
        stdio: How stdio is wired (see :func:`run_stdio`).
        timeout: Seconds before the container is killed and ``TimeoutError`` raised
            (``None``: no limit).
        remove: Delete the container after its task; ``False`` keeps it (the task
            is deleted either way; a failure removes the container too).
        owned: Label the container with this process as its owner
            (:data:`RUN_OWNER_LABEL`), so that :func:`cleanup_runs` removes it if
            this process dies first. Only for containers removed at the end.
        attach: Entered with the task after the wait is armed and before the start,
            left once the exit is known (a terminal's raw mode, signal forwarding);
            what it yields, if callable, is called once the process started.
        state_dir: Root of the bundle directory (see ``Client.new_container``).
        runtime_options: The runtime's options (see ``Client.new_container``).
        image: Run from this image instead of a spec's rootfs (see ``Client.new_container``).
        spec_options: With ``image``: ``oci.build`` options over the image's config.

    Returns:
        The completed container.

    Raises:
        SinkError: A stdout/stderr sink failed (the process ran to its end).
        ConnectionLostError: containerd did not return in time, or lost the exit status.
        TimeoutError: ``timeout`` expired (the container was killed and removed).
        ContainerdError: containerd refused a step (e.g. the binary does not exist).
    """
    labels = {RUN_OWNER_LABEL: owner_token()} if owned else None
    container = new_container(client, container_id, spec, labels=labels, state_dir=state_dir,
                              runtime_options=runtime_options, image=image, spec_options=spec_options)
    try:
        task = container.new_task(stdio=stdio)
        try:
            status = _run_task(client, task, timeout, attach, owned)
        except BaseException:
            with contextlib.suppress(Exception):
                task.force_delete(timeout=CLEANUP_TIMEOUT)
            raise
        task.force_delete(timeout=CLEANUP_TIMEOUT)
        args = list(container.spec.get("process", {}).get("args", []))
        result = CompletedContainer(args, status.code, task.io.stdout_data, task.io.stderr_data, container_id)
    except BaseException:
        # Clean up as far as the daemon lets us, without hiding the original error.
        with contextlib.suppress(Exception):
            _remove(container)
        raise
    if remove:
        container.delete(timeout=CLEANUP_TIMEOUT)
    return result


def _remove(container: Container) -> None:
    try:
        container.delete(timeout=CLEANUP_TIMEOUT)
    except errors.FailedPreconditionError:
        # It has a task this run never got hold of: interrupted (Ctrl-C) inside
        # new_task after the Create RPC had answered.
        container.task(timeout=CLEANUP_TIMEOUT).force_delete()
        container.delete(timeout=CLEANUP_TIMEOUT)


def start_container(client: Client, container_id: str, spec: Mapping[str, Any] | None, stdio: Stdio, *,
                    state_dir: str | None = None, runtime_options: Any = None, image: Any = None,
                    spec_options: Mapping[str, Any] | None = None) -> Task:
    """Create a container and its task and start it, without waiting (``pycontainerd run -d``).

    On failure nothing is left: the task (if created) and the container are removed.

    Args:
        client: The client (namespace) to run in.
        container_id: The container id.
        spec: The OCI runtime spec; ``None`` with ``image``.
        stdio: How stdio is wired (typically :func:`pycontainerd.stdio.null`).
        state_dir: Root of the bundle directory (see ``Client.new_container``).
        runtime_options: The runtime's options (see ``Client.new_container``).
        image: Run from this image instead of a spec's rootfs (see ``Client.new_container``).
        spec_options: With ``image``: ``oci.build`` options over the image's config.

    Returns:
        The started task.
    """
    container = new_container(client, container_id, spec, state_dir=state_dir,
                              runtime_options=runtime_options, image=image, spec_options=spec_options)
    try:
        task = container.new_task(stdio=stdio)
        task.start()  # a failed start removes its task itself
    except BaseException:
        with contextlib.suppress(Exception):
            container.delete(timeout=CLEANUP_TIMEOUT)
        raise
    return task


def _run_task(client: Client, task: Task, timeout: float | None, attach: Attach | None,
              owned: bool) -> ExitStatus:
    exited = task.wait()
    with attach(task) if attach is not None else contextlib.nullcontext() as started:
        task.start()
        deadline = None if timeout is None else time.monotonic() + timeout
        if callable(started):
            started()
        try:
            return _await_exit(client, task, exited, deadline, owned)
        except FutureTimeout:
            with contextlib.suppress(errors.ContainerdError):
                task.kill(signal.SIGKILL, all=True)
            raise TimeoutError(
                f"container {task.container_id!r} did not exit within {timeout} s"
            ) from None


def _await_exit(client: Client, task: Task, exited: Future[ExitStatus], deadline: float | None,
                owned: bool) -> ExitStatus:
    """The exit status, waiting out a containerd restart: the shim and the output carry on meanwhile.

    A Wait RPC cut by the daemon's death fails with ``ConnectionLostError``; the
    process, its shim and (FIFO or handoff) its output are unaffected. Once the
    daemon serves again (it reconnects to running shims at start) a new Wait
    returns the status, also of a process that exited while it was down.
    """
    container_id = task.container_id
    reconnected = False
    while True:
        # Bounded waits: a signal delivered to another thread (grpc's) only runs its
        # Python handler (the CLI forwards it) once the main thread wakes up.
        wait = _WAIT_SLICE if deadline is None else max(0.0, min(_WAIT_SLICE, deadline - time.monotonic()))
        try:
            return exited.result(wait)
        except FutureTimeout:
            if deadline is not None and time.monotonic() >= deadline:
                raise
        except errors.UnavailableError as exc:
            _reconnect(client, container_id, exc, owned)
            reconnected = True
            exited = task.wait()
        except errors.NotFoundError as exc:
            if not reconnected:
                raise
            # containerd 1.7 and 2.x, restarting, find the task's process gone, clean its
            # shim up as leaked and delete the task: the exit status is gone with it
            # (1.6 reloads the shim and keeps it). The output was delivered.
            raise errors.ConnectionLostError(
                f"container {container_id!r} exited while containerd at {client.address} was down; "
                "containerd removed the task when it restarted and its exit status with it",
                code=exc.code,
            ) from exc


def _reconnect(client: Client, container_id: str, cause: errors.ContainerdError, owned: bool) -> None:
    deadline = time.monotonic() + RECONNECT_TIMEOUT
    while True:
        try:
            client.connection.connect(timeout=min(1.0, max(0.01, deadline - time.monotonic())))
            return
        except errors.UnavailableError:
            if time.monotonic() >= deadline:
                break
            time.sleep(_RECONNECT_POLL)
    remedy = ("pycontainerd.cleanup_runs() removes it once containerd is back" if owned
              else "remove it once containerd is back")
    raise errors.ConnectionLostError(
        f"containerd at {client.address} went away while container {container_id!r} was running and did "
        f"not serve again within {RECONNECT_TIMEOUT:g} s; the container is left behind ({remedy})",
        code=cause.code,
    ) from cause


def _boot_id() -> str:
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            return f.read().strip()
    except OSError:
        return "unknown"


def _start_time(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


#: This process's own token, made once per pid (a forked child makes its own): every run labels
#: its container with it, and neither the boot id nor a live process's start time changes.
_own_token: tuple[int, str] | None = None


def owner_token(pid: int | None = None) -> str:
    """The :data:`RUN_OWNER_LABEL` value naming a process: ``<boot id>/<pid>/<start time>``."""
    global _own_token
    if pid is None:
        own = os.getpid()
        if _own_token is None or _own_token[0] != own:
            _own_token = (own, f"{_boot_id()}/{own}/{_start_time(own)}")
        return _own_token[1]
    return f"{_boot_id()}/{pid}/{_start_time(pid)}"


def _owner_alive(token: str) -> bool:
    boot, _, rest = token.partition("/")
    pid_text, _, start = rest.partition("/")
    if boot != _boot_id() or not pid_text.isdigit():
        return False
    return _start_time(int(pid_text)) == start


def cleanup_runs(client: Client | None = None, *, timeout: float | None = None) -> list[str]:
    """Remove what :func:`run` calls left behind because their process died or containerd did not return.

    Every container :func:`run` creates carries the :data:`RUN_OWNER_LABEL` of
    the process that ran it. Containers in the client's namespace whose owner
    is gone (another boot, or no process with that pid and start time) are
    killed and deleted with their tasks and bundle directories; containers of
    live processes are left alone.

    Args:
        client: The client (namespace) to clean; default: one from the environment.
        timeout: Deadline of each RPC.

    Returns:
        The ids of the containers removed.
    """
    own_client = client is None
    if client is None:
        from pycontainerd.client import Client

        client = Client()
    removed: list[str] = []
    try:
        for container in client.containers(f"labels.{_quote_label(RUN_OWNER_LABEL)}", timeout=timeout):
            token = container.info.labels.get(RUN_OWNER_LABEL, "")
            if _owner_alive(token):
                continue
            with contextlib.suppress(errors.NotFoundError):
                container.task(timeout=timeout).force_delete()
            with contextlib.suppress(errors.NotFoundError):
                container.delete(timeout=timeout)
                removed.append(container.id)
    finally:
        if own_client:
            client.close()
    return removed


def _quote_label(key: str) -> str:
    # containerd's filter syntax needs quoting for a key with dots beyond the field path.
    return '"' + key + '"'
