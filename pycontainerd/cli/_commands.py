"""The ``pycontainerd`` commands: one function per command, called with a :class:`Context`.

Each command imports what it needs when it runs (``run --rm`` latency is
mostly imports). Errors a user can cause are raised as :class:`CLIError` (or
left as the library's ``ContainerdError``/``OSError``, which the entry point
turns into one line on stderr).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from pycontainerd import _address
from pycontainerd.cli import _output, _registry
from pycontainerd.cli._app import EXIT_USAGE

if TYPE_CHECKING:
    from concurrent.futures import Future

    from pycontainerd.api.types import ExitStatus
    from pycontainerd.client import Client
    from pycontainerd.container import Container
    from pycontainerd.stdio import Stdio
    from pycontainerd.task import Process

__all__ = ["COMMANDS", "EXIT_FAILED", "EXIT_RUN_FAILED", "CLIError", "Context"]

#: A command failed (not run/exec).
EXIT_FAILED = 1
#: run/exec failed before the container's own exit status was known (docker's convention).
EXIT_RUN_FAILED = 125
#: ``daemon status`` when the embedded daemon is not running (LSB "program is not running").
EXIT_NOT_RUNNING = 3
_DELETE_TIMEOUT = 30.0


class CLIError(Exception):
    """A failure to report as one line on stderr, with an exit status.

    Args:
        message: The line (without the ``pycontainerd: error:`` prefix).
        status: The exit status (default: the command's failure status).
    """

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class Context:
    """What every command needs: the parsed arguments and a lazily made client.

    Args:
        args: The parsed command line.
    """

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self._client: Client | None = None
        self._address: str | None = None
        self.embedded = False

    @property
    def json(self) -> bool:
        """Whether ``--json`` was given."""
        return bool(getattr(self.args, "json", False))

    @property
    def address(self) -> str:
        """The socket to use: --address, $CONTAINERD_ADDRESS, then the default or embedded daemon."""
        if self._address is None:
            self._address = self._resolve_address()
        return self._address

    def _resolve_address(self) -> str:
        from pycontainerd.cli import _embedded

        explicit = getattr(self.args, "address", None) or os.environ.get("CONTAINERD_ADDRESS")
        if getattr(self.args, "embedded", False):
            if getattr(self.args, "address", None):
                raise CLIError("--embedded and --address cannot be combined", EXIT_USAGE)
            self.embedded = True
            return _embedded.ensure_running()
        if explicit:
            path = explicit[len("unix://") :] if explicit.startswith("unix://") else explicit
            self.embedded = os.path.isabs(path) and _embedded.is_embedded_address(path)
            return explicit
        # The library's order (pycontainerd._address), plus starting the embedded daemon on demand.
        system = _address.system_address()
        if _address.accepts(system):
            return system
        embedded = _address.embedded_address()
        if _address.accepts(embedded):
            self.embedded = True
            return embedded
        if os.environ.get(_embedded.ENV_ON_DEMAND) == "1":
            self.embedded = True
            return _embedded.ensure_running()
        return system

    @property
    def explicit_address(self) -> bool:
        """Whether the address came from --address or $CONTAINERD_ADDRESS."""
        return bool(getattr(self.args, "address", None) or os.environ.get("CONTAINERD_ADDRESS"))

    def socket_path(self) -> str | None:
        """The socket path of the resolved address (``None`` if none was resolved or it is invalid)."""
        if self._address is None:
            return None
        path = self._address
        for prefix in ("unix://", "unix:"):
            if path.startswith(prefix):
                path = path[len(prefix) :]
                break
        return path if os.path.isabs(path) else None

    @property
    def namespace(self) -> str:
        """The containerd namespace."""
        return getattr(self.args, "namespace", None) or os.environ.get("CONTAINERD_NAMESPACE") or "default"

    def client(self) -> Client:
        """The client (created on first use, closed by :meth:`close`)."""
        if self._client is None:
            from pycontainerd.cli import _startup
            from pycontainerd.client import Client

            timeout = getattr(self.args, "timeout", None)
            self._client = Client(self.address, namespace=self.namespace, timeout=timeout)
            # Start-up is over: most of what the command imports is loaded by now.
            _startup.resume_collection()
        return self._client

    def close(self) -> None:
        """Close the client, if one was made."""
        if self._client is not None:
            self._client.close()
            self._client = None

    def failed_status(self) -> int:
        """The exit status of a failure of this command."""
        return EXIT_RUN_FAILED if self.args.command in ("run", "exec") else EXIT_FAILED


# -- run / exec ----------------------------------------------------------------------------------


def _stdio(args: argparse.Namespace) -> Stdio:
    from pycontainerd import stdio

    if args.detach:
        return stdio.null()
    # The native pump copies straight between the FIFOs and our fds 0, 1 and 2.
    return stdio.streams(stdin=0 if args.interactive else None, stdout=1, stderr=2)


def _exit_code(code: int) -> int:
    return code if 0 <= code <= 255 else 255


def _wait(future: Future[ExitStatus]) -> ExitStatus:
    # A bounded wait in a loop keeps the main thread responsive to signals.
    while True:
        with contextlib.suppress(TimeoutError):
            return future.result(timeout=1.0)


@contextlib.contextmanager
def _attached_terminal(args: argparse.Namespace, process: Process) -> Iterator[Callable[[], None]]:
    """Raw mode (with -t -i), window size forwarding (with -t), signal forwarding (always).

    Yields a function that sends the window size again (call it once the process started).
    """
    from pycontainerd.cli import _terminal

    resend: Callable[[], None] = lambda: None  # noqa: E731
    with contextlib.ExitStack() as stack:
        if args.tty:
            fd = _terminal.terminal_fd()
            if fd is not None:
                resend = stack.enter_context(_terminal.watch_resize(fd, process.resize))
                if args.interactive and os.isatty(0):
                    stack.enter_context(_terminal.raw_mode(0))
        stack.enter_context(_terminal.forward_signals(
            process.kill, kill=lambda: process.kill(signal.SIGKILL), grace=args.stop_timeout))
        yield resend


def _run_process(args: argparse.Namespace, process: Process, start: Callable[[], object]) -> int:
    """Arm the wait, start, forward terminal and signals, and return the exit code."""
    exited = process.wait()
    with _attached_terminal(args, process) as resend:
        start()
        if args.tty:
            resend()  # an exec'd process's terminal exists only from its start on
        status = _wait(exited)
    return _exit_code(status.code)


def _with_console_size(process_spec: dict[str, Any], tty: bool) -> None:
    """Size the container's terminal like ours from the start (OCI ``consoleSize``)."""
    if not tty:
        return
    from pycontainerd.cli import _terminal

    size = _terminal.console_size(_terminal.terminal_fd())
    if size is not None:
        process_spec["consoleSize"] = size


def cmd_run(ctx: Context) -> int:
    """``run``: create a container from an image or on a rootfs directory, run it, return its exit status.

    The lifecycle is :func:`pycontainerd._run.run_container`'s, the one behind
    ``pycontainerd.run()`` (a containerd restart is waited out, a failing sink is
    reported, the container is removed on failure); this adds the spec from the
    flags, the terminal, and the exit status. From an image the spec is built from
    the image config and the flags (containerd's ``WithImageConfig``) when the
    container is created; its snapshot goes with the container.
    """
    args = ctx.args
    if args.image is None and not os.path.isdir(args.rootfs):
        raise CLIError(f"--rootfs {args.rootfs}: not a directory", EXIT_USAGE)
    from pycontainerd import _run

    if args.image is None:
        spec, image, options = _run_spec(ctx), None, None  # a bad flag fails before any connection
        client = ctx.client()
    else:
        client = ctx.client()
        spec, image, options = None, _run_image(client, args), _run_options(ctx)
    placement = _placement(ctx)
    if args.detach:
        from pycontainerd import stdio

        task = _run.start_container(client, args.id, spec, stdio.null(), image=image, spec_options=options,
                                    **placement)
        if ctx.json:
            _output.print_json({"id": args.id, "pid": task.pid})
        return 0
    # Without -i and -t the container's own pipes are spliced to our fds (zero-copy handoff);
    # with -i or -t (or --no-handoff) the native pump copies between the FIFOs and fds 0, 1, 2.
    wired = _run.run_stdio(0 if args.interactive else None, 1, 2, tty=args.tty,
                           handoff=False if args.no_handoff else None)
    result = _run.run_container(
        client, args.id, spec, wired, remove=args.rm, owned=args.rm,
        attach=lambda task: _attached_terminal(args, task), image=image, spec_options=options, **placement,
    )  # fmt: skip
    return _exit_code(result.returncode)


def _run_image(client: Client, args: argparse.Namespace) -> Any:
    """``run``'s image under ``--pull`` (as ``pycontainerd.run(pull=...)``), pull progress on stderr."""
    if args.pull == "never":
        from pycontainerd.cli._images import find_image

        return find_image(client, args.image)
    from pycontainerd.cli._registry import progress_lines
    from pycontainerd.registry.pull import ensure_image

    options = {"plain_http": args.plain_http, "ca_file": args.ca_file, "progress": progress_lines(sys.stderr)}
    return ensure_image(client, args.image, args.pull, options)


def _run_options(ctx: Context) -> dict[str, Any]:
    """``run``'s flags as options over an image's config (``Client.new_container(image=...)``).

    The command replaces the image's ``Cmd`` (none given: the image's runs); env goes over
    the image's; cwd and user default to the image's (user names from its /etc/passwd).
    A terminal gets its size when the process starts (the resize on attach), not from
    ``consoleSize``, which only a ready-made spec can carry.
    """
    args = ctx.args
    options = _common_spec_options(ctx)
    options.update(args=args.cmd or None, cwd=args.cwd, user=args.user)
    return options


def _common_spec_options(ctx: Context) -> dict[str, Any]:
    """The spec options of ``run``'s flags that apply alike to a rootfs and an image."""
    args = ctx.args
    from pycontainerd import oci

    resources = None
    if args.memory is not None or args.cpus is not None:
        resources = oci.Resources(memory=args.memory, cpus=args.cpus)
    uid_maps = gid_maps = None
    if args.userns is not None:
        uid, gid, size = args.userns
        uid_maps, gid_maps = [(0, uid, size)], [(0, gid, size)]
    return {
        "tty": args.tty,
        "env": args.env,
        "hostname": args.hostname,
        "uid_mappings": uid_maps,
        "gid_mappings": gid_maps,
        "resources": resources,
    }


def _run_spec(ctx: Context) -> dict[str, Any]:
    """The OCI spec of ``run``'s flags on ``--rootfs``, its terminal sized like ours."""
    args = ctx.args
    from pycontainerd import oci

    try:
        spec = oci.build(
            args=args.cmd,
            rootfs=args.rootfs,
            cwd=args.cwd or "/",
            user=args.user,
            namespace=ctx.namespace,
            container_id=args.id,
            **_common_spec_options(ctx),
        )
    except (TypeError, ValueError) as exc:
        raise CLIError(str(exc), EXIT_USAGE) from exc
    _with_console_size(spec["process"], args.tty)
    return spec


def _placement(ctx: Context) -> dict[str, Any]:
    """Where containers on the embedded daemon keep their bundles and runc state."""
    if not ctx.embedded:
        return {}
    from pycontainerd.api.types import RuncOptions
    from pycontainerd.cli import _embedded

    return {
        "state_dir": _embedded.bundles_dir(),
        "runtime_options": RuncOptions(root=_embedded.runc_root()),
    }


def cmd_exec(ctx: Context) -> int:
    """``exec``: run another process in a running container, return its exit status."""
    args = ctx.args
    from pycontainerd import errors, oci

    client = ctx.client()
    container = _load(client, args.id)
    try:
        task = container.task()
    except errors.NotFoundError:
        raise CLIError(f"container {args.id} is not running (it has no task)") from None
    base = container.spec.get("process") or {}
    env = [*(base.get("env") or []), *args.env]
    base_user = base.get("user") or {}
    user = (
        args.user if args.user is not None else (int(base_user.get("uid", 0)), int(base_user.get("gid", 0)))
    )
    try:
        spec = oci.process(args.cmd, env=env, cwd=args.cwd or base.get("cwd") or "/", user=user, tty=args.tty)
    except (TypeError, ValueError) as exc:
        raise CLIError(str(exc), EXIT_USAGE) from exc
    _with_console_size(spec, args.tty)
    process = task.exec(args.exec_id, spec, stdio=_stdio(args))
    if args.detach:
        try:
            process.start()
        except BaseException:
            with contextlib.suppress(Exception):
                process.delete()
            raise
        return 0
    finished = False
    try:
        code = _run_process(args, process, process.start)
        finished = True
    finally:
        with contextlib.suppress(errors.NotFoundError):
            if finished:
                process.delete(timeout=_DELETE_TIMEOUT)
            else:
                with contextlib.suppress(Exception):
                    process.kill(9)
                with contextlib.suppress(Exception):
                    process.delete(timeout=_DELETE_TIMEOUT)
    return code


def _load(client: Client, container_id: str) -> Container:
    from pycontainerd import errors

    try:
        return client.load_container(container_id)
    except errors.NotFoundError:
        raise CLIError(f"no such container: {container_id}") from None


# -- listing and control -------------------------------------------------------------------------


def cmd_ps(ctx: Context) -> int:
    """``ps``/``tasks``: every task in the namespace, or one container's processes."""
    from pycontainerd import errors

    api = ctx.client().api
    if ctx.args.id is not None:
        try:
            procs = api.tasks.list_pids(ctx.args.id)
        except errors.NotFoundError:
            raise CLIError(
                f"no task for container {ctx.args.id} (no such container, or not started)"
            ) from None
        if ctx.json:
            _output.print_json([{"pid": p.pid, "exec_id": p.exec_id} for p in procs])
        else:
            _output.print_table(["PID", "EXEC_ID"], [(p.pid, p.exec_id or "-") for p in procs])
        return 0
    tasks = sorted(api.tasks.list(), key=lambda t: t.container_id or t.id)
    if ctx.json:
        _output.print_json(
            [
                {
                    "id": t.container_id or t.id,
                    "pid": t.pid,
                    "status": t.status.value,
                    "exit_status": t.exit_status if t.status.value == "stopped" else None,
                    "exited_at": t.exited_at,
                    "terminal": t.terminal,
                }
                for t in tasks
            ]
        )
        return 0
    rows = [
        (
            t.container_id or t.id,
            t.pid,
            t.status.value.upper(),
            t.exit_status if t.status.value == "stopped" else None,
        )
        for t in tasks
    ]
    _output.print_table(["CONTAINER", "PID", "STATUS", "EXIT"], rows)
    return 0


def cmd_containers(ctx: Context) -> int:
    """``containers``/``ls``: every container in the namespace."""
    from pycontainerd.container import BUNDLE_LABEL

    infos = sorted(ctx.client().api.containers.list(), key=lambda c: c.id)
    if ctx.json:
        _output.print_json(
            [
                {
                    "id": c.id,
                    "image": c.image,
                    "runtime": c.runtime.name,
                    "labels": dict(c.labels),
                    "created_at": c.created_at,
                    "bundle": c.labels.get(BUNDLE_LABEL, ""),
                }
                for c in infos
            ]
        )
        return 0
    rows = [
        (
            c.id,
            c.image or "-",
            c.runtime.name,
            c.created_at.strftime("%Y-%m-%d %H:%M:%S") if c.created_at else None,
        )
        for c in infos
    ]
    _output.print_table(["CONTAINER", "IMAGE", "RUNTIME", "CREATED"], rows)
    return 0


def _each(ctx: Context, ids: list[str], action: Callable[[str], None]) -> int:
    """Apply ``action`` to every id; report each failure on its own line; 1 if any failed."""
    from pycontainerd import errors

    failed = False
    for container_id in ids:
        try:
            action(container_id)
        except errors.NotFoundError:
            _output.error_line(f"no such container or task: {container_id}")
            failed = True
        except CLIError as exc:
            _output.error_line(str(exc))
            failed = True
        except errors.ContainerdError as exc:
            _output.error_line(f"{container_id}: {exc}")
            failed = True
    return EXIT_FAILED if failed else 0


def cmd_kill(ctx: Context) -> int:
    """``kill``: send a signal to tasks (or one exec'd process)."""
    tasks = ctx.client().api.tasks
    args = ctx.args
    return _each(
        ctx, args.ids, lambda cid: tasks.kill(cid, args.signal, all=args.all, exec_id=args.exec_id or "")
    )


def cmd_pause(ctx: Context) -> int:
    """``pause``: freeze tasks."""
    tasks = ctx.client().api.tasks
    return _each(ctx, ctx.args.ids, lambda cid: tasks.pause(cid))


def cmd_resume(ctx: Context) -> int:
    """``resume``: thaw tasks."""
    tasks = ctx.client().api.tasks
    return _each(ctx, ctx.args.ids, lambda cid: tasks.resume(cid))


def cmd_rm(ctx: Context) -> int:
    """``rm``: delete containers; a stopped task goes with them, a running one only with ``-f``."""
    from pycontainerd import errors
    from pycontainerd.api.types import Status

    client = ctx.client()

    def remove(container_id: str) -> None:
        container = _load(client, container_id)
        try:
            task = container.task()
        except errors.NotFoundError:
            task = None
        if task is not None:
            state = task.status().status
            if state in (Status.STOPPED, Status.UNKNOWN) or (state is Status.CREATED and not task.pid):
                task.delete(timeout=_DELETE_TIMEOUT)
            elif not ctx.args.force:
                raise CLIError(f"container {container_id} is {state.value}: stop it first, or use rm -f")
            else:
                if state in (Status.PAUSED, Status.PAUSING):
                    task.resume()  # a frozen task cannot receive the SIGKILL
                task.force_delete()
        container.delete(timeout=_DELETE_TIMEOUT)

    return _each(ctx, ctx.args.ids, remove)


def _metric_row(metric: Any) -> dict[str, Any]:
    """CPU seconds, memory usage/limit and pids from cgroup v1 or v2 metrics."""
    data = metric.data
    row: dict[str, Any] = {
        "id": metric.id,
        "cpu_seconds": None,
        "memory": None,
        "memory_limit": None,
        "pids": None,
        "pids_limit": None,
    }
    if data is None or not hasattr(data, "memory"):
        return row
    if metric.type_url.endswith("cgroups.v1.Metrics"):
        row["cpu_seconds"] = data.cpu.usage.total / 1e9
        row["memory"], row["memory_limit"] = data.memory.usage.usage, data.memory.usage.limit
    else:
        row["cpu_seconds"] = data.cpu.usage_usec / 1e6
        row["memory"], row["memory_limit"] = data.memory.usage, data.memory.usage_limit
    row["pids"], row["pids_limit"] = data.pids.current, data.pids.limit
    return row


def cmd_stats(ctx: Context) -> int:
    """``stats``: each container's cgroup metrics."""
    from pycontainerd import errors

    tasks = ctx.client().api.tasks
    rows: list[dict[str, Any]] = []
    raw: list[Any] = []

    def collect(container_id: str) -> None:
        metrics = tasks.metrics([f"id=={container_id}"])
        if not metrics:
            tasks.get(container_id)  # NotFound when there is no task
            raise errors.UnknownError("no metrics received")
        rows.append(_metric_row(metrics[0]))
        raw.append(metrics[0])

    status = _each(ctx, ctx.args.ids, collect)
    if ctx.json:
        _output.print_json(
            [
                dict(r, type_url=m.type_url, timestamp=m.timestamp, metrics=m.data)
                for r, m in zip(rows, raw, strict=False)
            ]
        )
    elif rows:
        _output.print_table(
            ["CONTAINER", "CPU", "MEMORY", "LIMIT", "PIDS"],
            [
                (
                    r["id"],
                    f"{r['cpu_seconds']:.3f}s" if r["cpu_seconds"] is not None else None,
                    _output.human_size(r["memory"]),
                    _output.human_size(r["memory_limit"]),
                    r["pids"] if r["pids"] is not None else None,
                )
                for r in rows
            ],
        )
    return status


def cmd_events(ctx: Context) -> int:
    """``events``: one line per task event until interrupted."""
    import datetime as _dt
    import signal

    from pycontainerd.events import EventInfo, EventMonitor, EventType

    lock = threading.Lock()
    stop = threading.Event()
    broken = threading.Event()

    def backend(container_id: str, kind: EventType, info: EventInfo) -> None:
        now = _dt.datetime.now(_dt.timezone.utc)
        record: dict[str, Any] = {
            "time": now,
            "type": kind.value,
            "container_id": container_id,
            "process_id": info.process_id,
            "pid": info.pid or None,
        }
        if kind is EventType.EXIT:
            record.update(exit_code=info.exit_code, exited_at=info.exited_at, reconciled=info.reconciled)
        with lock:
            try:
                if ctx.json:
                    _output.print_json(record, compact=True)
                else:
                    stamp = now.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
                    extra = "".join(
                        f" {k}={v}"
                        for k, v in (
                            ("process", info.process_id),
                            ("pid", info.pid or None),
                            ("exit_code", record.get("exit_code")),
                        )
                        if v not in (None, "")
                    )
                    sys.stdout.write(f"{stamp} {kind.value} container={container_id}{extra}\n")
                sys.stdout.flush()
            except (BrokenPipeError, ValueError):
                broken.set()
                stop.set()

    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    monitor = EventMonitor(ctx.client(), backend)
    try:
        monitor.start()
        while not stop.wait(1.0):
            pass
    finally:
        monitor.stop(timeout=5.0)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return EXIT_FAILED if broken.is_set() else 0


def cmd_version(ctx: Context) -> int:
    """``version``: client version, then the daemon's."""
    from pycontainerd import __version__

    info: dict[str, Any] = {"client": {"version": __version__, "python": sys.version.split()[0]}}
    if not ctx.json:
        _output.print_table(["", "VERSION"], [("client", __version__)])
        sys.stdout.flush()
    server = ctx.client().version()
    info["server"] = {"version": server.version, "revision": server.revision, "address": ctx.address}
    if ctx.json:
        _output.print_json(info)
    else:
        sys.stdout.write(f"server  {server.version} (revision {server.revision}, {ctx.address})\n")
    return 0


# -- daemon, rootfs, bench -------------------------------------------------------------------------


def cmd_daemon(ctx: Context) -> int:
    """``daemon start|stop|status``: the embedded private containerd."""
    from pycontainerd.cli import _embedded

    action = ctx.args.action
    if action == "start":
        current, started = _embedded.start()
        if ctx.json:
            _output.print_json(dict(current.as_dict(), started=started))
        else:
            verb = "started" if started else "already running"
            print(f"embedded containerd {verb}: pid {current.pid}, address {current.address}")
            print(f"use it with: pycontainerd --address {current.address} ...  (or --embedded)")
        return 0
    if action == "stop":
        stopped = _embedded.stop(purge=ctx.args.purge)
        if ctx.json:
            _output.print_json({"stopped": stopped, "purged": bool(ctx.args.purge)})
        else:
            print("embedded containerd stopped" if stopped else "embedded containerd was not running")
        return 0
    current = _embedded.status()
    if ctx.json:
        _output.print_json(current.as_dict())
    else:
        state = "serving" if current.serving else ("running (not serving)" if current.running else "stopped")
        _output.print_table(
            ["STATE", "PID", "SHIMS", "ADDRESS"],
            [(state, current.pid, len(current.shims), current.address)],
        )
    return 0 if current.running else EXIT_NOT_RUNNING


def cmd_rootfs(ctx: Context) -> int:
    """``rootfs busybox DIR``: build a busybox root filesystem."""
    from pycontainerd import testing

    try:
        path = testing.busybox_rootfs(ctx.args.dir)
    except FileNotFoundError as exc:
        raise CLIError(f"busybox is not installed ({exc.filename}): apt-get install busybox-static") from exc
    except RuntimeError as exc:
        raise CLIError(str(exc)) from exc
    if ctx.json:
        _output.print_json({"rootfs": path})
    else:
        print(path)
    return 0


def _bench_script() -> str:
    here = os.path.dirname(os.path.abspath(__file__))
    return os.path.join(os.path.dirname(os.path.dirname(here)), "benchmarks", "e2e.py")


def cmd_bench(ctx: Context) -> int:
    """``bench``: run benchmarks/e2e.py from the source checkout."""
    import subprocess

    script = _bench_script()
    if not os.path.isfile(script):
        raise CLIError(f"pycontainerd bench needs a source checkout ({script} not found)")
    argv = [sys.executable, script, *(["--quick"] if ctx.args.quick else []), *ctx.args.bench_args]
    return subprocess.call(argv)


def cmd_images(ctx: Context) -> int:
    """``images ACTION``: image records and archives (see :mod:`pycontainerd.cli._images`)."""
    from pycontainerd.cli import _images

    return _images.run(ctx)


COMMANDS: dict[str, Callable[[Context], int]] = {
    "run": cmd_run,
    "exec": cmd_exec,
    "ps": cmd_ps,
    "containers": cmd_containers,
    "kill": cmd_kill,
    "pause": cmd_pause,
    "resume": cmd_resume,
    "rm": cmd_rm,
    "stats": cmd_stats,
    "events": cmd_events,
    "version": cmd_version,
    "daemon": cmd_daemon,
    "rootfs": cmd_rootfs,
    "bench": cmd_bench,
    "images": cmd_images,
    "pull": _registry.cmd_pull,
    "push": _registry.cmd_push,
    "login": _registry.cmd_login,
    "logout": _registry.cmd_logout,
}
