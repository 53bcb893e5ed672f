"""The ``pycontainerd`` command (also ``python -m pycontainerd``).

Run ``pycontainerd --help`` for the commands. :func:`main` is the entry point;
it never lets a traceback reach the user for a mistake they can fix: every
failure is one line on stderr (``pycontainerd: error: ...``) and a non-zero
exit status (set ``PYCONTAINERD_DEBUG=1`` to see the traceback of an
unexpected error). Modules:

* ``_app``: argument parsing and value checks (no client imports);
* ``_commands``: one function per command;
* ``_images``: the ``images`` actions (and finding an image by a short name);
* ``_output``: tables, ``--json``, the error line;
* ``_terminal``: raw mode and SIGWINCH for ``-t``;
* ``_embedded``: the embedded private containerd (``daemon start|stop|status``);
* ``_startup``: the garbage collector held off while the program starts.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Sequence

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run one ``pycontainerd`` command.

    Called without ``argv`` (as the ``pycontainerd`` program), it ends the
    process itself once the command is done: stdout and stderr are flushed and
    the process exits with ``os._exit``, skipping the interpreter's teardown
    (about 30 ms, a fifth of a ``run --rm``, and no chance for a library
    finalizer to stall the exit). Called with ``argv`` it returns.

    Args:
        argv: The arguments without the program name (default: ``sys.argv[1:]``).

    Returns:
        The exit status: the container's for ``run``/``exec``, 0 on success,
        1 on failure (125 for ``run``/``exec``), 2 for a usage error.
    """
    if argv is None:
        from pycontainerd.cli import _startup

        # Only as the program: in someone else's process the collector is theirs.
        _startup.hold_collection()
        _reserve_standard_fds()
    status = _main(sys.argv[1:] if argv is None else argv)
    if argv is None:
        _exit_now(status)
    return status


def _reserve_standard_fds() -> None:
    """Put a placeholder on each of fds 0, 1 and 2 that the caller left closed.

    Otherwise the next descriptor this process opens (an epoll fd, a socket)
    takes the number, and ``inherit()`` hands it to the container as its
    stdout. The placeholder is /dev/null opened the wrong way round (read-only
    for 1 and 2, write-only for 0), so the stream still behaves as closed:
    writing the container's output there fails with ``EBADF``, which is
    reported, instead of succeeding into nothing.
    """
    for fd, flags in ((0, os.O_WRONLY), (1, os.O_RDONLY), (2, os.O_RDONLY)):
        try:
            os.fstat(fd)
        except OSError:
            placeholder = os.open(os.devnull, flags)  # inheritable, like a real standard fd
            if placeholder != fd:
                os.dup2(placeholder, fd)
                os.close(placeholder)


def _exit_now(status: int) -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(status & 0xFF)


def _main(argv: Sequence[str]) -> int:
    from pycontainerd.cli import _app, _output

    try:
        args = _app.parse(argv)
    except _app.UsageError as exc:
        _output.error_line(str(exc))
        return _app.EXIT_USAGE
    except SystemExit as exc:  # --help
        return exc.code if isinstance(exc.code, int) else 0
    if args.version:
        from pycontainerd import __version__

        print(f"pycontainerd {__version__}")
        return 0
    if _app.print_help_if_no_command(args):
        return _app.EXIT_USAGE

    from pycontainerd.cli import _commands

    ctx = _commands.Context(args)
    try:
        return _commands.COMMANDS[args.command](ctx)
    except _commands.CLIError as exc:
        _output.error_line(str(exc))
        return exc.status if exc.status is not None else ctx.failed_status()
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        _silence_stdout()
        return ctx.failed_status()
    except Exception as exc:
        _output.error_line(_describe(exc, ctx))
        if os.environ.get("PYCONTAINERD_DEBUG") == "1":
            import traceback

            traceback.print_exc()
        return _usage_status(exc, ctx)
    finally:
        with contextlib.suppress(Exception):
            ctx.close()
        from pycontainerd.cli import _startup

        _startup.resume_collection()


def _usage_status(exc: BaseException, ctx: object) -> int:
    from pycontainerd.cli import _commands

    assert isinstance(ctx, _commands.Context)
    return ctx.failed_status()


def _describe(exc: BaseException, ctx: object) -> str:
    """One line for an exception the command did not turn into a CLIError."""
    from pycontainerd import errors
    from pycontainerd.cli import _commands

    assert isinstance(ctx, _commands.Context)
    if isinstance(exc, errors.ContainerdError):
        text = str(exc) or type(exc).__name__
        if isinstance(exc, errors.UnavailableError):
            path = ctx.socket_path()
            if path is not None and not os.path.exists(path):
                text = f"containerd socket {path} does not exist: is containerd running?"
                if not ctx.explicit_address and not ctx.embedded:
                    text += " (or start a private one: 'pycontainerd daemon start', or pass --embedded)"
        return text
    try:
        from pycontainerd.daemon import DaemonError
    except ImportError:  # pragma: no cover
        DaemonError = RuntimeError  # type: ignore[misc,assignment]
    if isinstance(exc, DaemonError):
        first = str(exc).splitlines()[0] if str(exc) else "containerd failed"
        return f"{first} (see the daemon's log for details)"
    if isinstance(exc, errors.SinkError):
        return str(exc)
    if isinstance(exc, OSError):
        where = f": {exc.filename}" if exc.filename else ""
        return f"{exc.strerror or exc}{where}"
    if isinstance(exc, (ValueError, TypeError, LookupError)):
        return str(exc)
    return f"internal error: {type(exc).__name__}: {exc} (PYCONTAINERD_DEBUG=1 shows the traceback)"


def _silence_stdout() -> None:
    # stdout's reader went away: point fd 1 at /dev/null so the final flush does not fail again.
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass
