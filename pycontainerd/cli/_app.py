"""The ``pycontainerd`` command line: argument parsing only (no client imports here).

Every value a user types is checked while parsing, by the ``type=`` functions
below, so a bad flag value is one ``argparse`` error line and exit status 2
before anything touches containerd. :func:`parse` also splits ``ID -- CMD…``
and resolves ``run``'s ``(--rootfs DIR | IMAGE) ID`` positionals.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn

from pycontainerd import _rules
from pycontainerd.cli import _registry

__all__ = ["EXIT_USAGE", "UsageError", "build_parser", "parse"]

#: Exit status for a command-line mistake (argparse's convention).
EXIT_USAGE = 2

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgtKMGT]?)(i?[bB]?)\s*$")
_SIZE_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
_ENV_NAME = re.compile(r"^[^=\0]+$")
# A user or group name as /etc/passwd and /etc/group hold them (no ':', whitespace or NUL).
_ACCOUNT_NAME = re.compile(r"^[A-Za-z0-9_.][A-Za-z0-9_.-]*\$?$")

_ALIASES = {"tasks": "ps", "ls": "containers"}
_DESCRIPTION = "pycontainerd: run and manage containers through containerd (a fast, typed client)."
_EPILOG = """\
address: --address, else $CONTAINERD_ADDRESS, else the system socket
  ($PYCONTAINERD_SYSTEM_ADDRESS, default /run/containerd/containerd.sock)
  (or the embedded daemon: --embedded, `pycontainerd daemon start`, PYCONTAINERD_EMBEDDED=1).
namespace: --namespace, else $CONTAINERD_NAMESPACE, else "default".
exit status: run/exec return the container's (128+N when killed by signal N) and 125 when
  pycontainerd itself fails; other commands 0 on success, 1 on failure; 2 for usage errors.
"""
_RUN_EPILOG = """\
IMAGE: an image name (`pycontainerd images import FILE` imports one; `busybox` also finds
  docker.io/library/busybox:latest); it is unpacked if needed, and without CMD the image's
  own command runs. Or a root filesystem directory with --rootfs (`pycontainerd rootfs
  busybox DIR` makes one).
examples:
  pycontainerd run --rm docker.io/library/busybox:latest hello -- echo hello
  pycontainerd run --rm -u nobody busybox whoami -- id -un
  pycontainerd run --rm --rootfs /srv/busybox hello -- echo hello
  pycontainerd run --rm -t -i --rootfs /srv/busybox shell -- sh
"""
_IMAGES_EPILOG = """\
examples:
  pycontainerd images import busybox.tar          (OCI layout or docker save; '-' reads stdin)
  pycontainerd images ls --json
  pycontainerd images export out.tar docker.io/library/busybox:latest
"""


class UsageError(Exception):
    """A command-line mistake: one line for stderr, exit status 2."""


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line (``prog: error: msg``), never usage dumps."""

    def error(self, message: str) -> NoReturn:
        if message.startswith("unrecognized arguments"):
            message += " (a container's command, or options for bench, go after '--')"
        raise UsageError(f"{message} (see '{self.prog} --help')")


# -- value checks (argparse ``type=`` functions: raise ArgumentTypeError) ----------------------------


def identifier(text: str) -> str:
    """Check a containerd identifier (container id, exec id, namespace).

    Args:
        text: The value typed.

    Returns:
        The identifier.

    Raises:
        argparse.ArgumentTypeError: It breaks containerd's identifier rules.
    """
    problem = _rules.identifier_problem(text)
    if problem is not None:
        shown = f"{text[:20]!r}..." if len(text) > _rules.MAX_IDENTIFIER_LENGTH else repr(text)
        raise argparse.ArgumentTypeError(f"invalid id {shown}: {problem}")
    return text


def byte_size(text: str) -> int:
    """Parse a size: ``1048576``, ``512k``, ``64M``, ``64MiB``, ``1.5G`` (powers of 1024).

    Raises:
        argparse.ArgumentTypeError: Not a positive size.
    """
    match = _SIZE.match(text)
    if match is None:
        raise argparse.ArgumentTypeError(f"invalid size {text!r} (e.g. 67108864, 512k, 64M, 1G)")
    value = float(match.group(1)) * _SIZE_UNITS[match.group(2).lower()]
    if value < 1 or value != value:
        raise argparse.ArgumentTypeError(f"invalid size {text!r}: must be at least 1 byte")
    # OCI limits are int64; a longer number would also be float infinity, which int() refuses.
    if value >= 2**63:
        raise argparse.ArgumentTypeError(f"invalid size {text!r}: must be less than 8 EiB")
    return int(value)


def cpus(text: str) -> float:
    """Parse a CPU count (``0.5``, ``2``); at least 0.01.

    Raises:
        argparse.ArgumentTypeError: Not a number, or below 0.01.
    """
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid CPU count {text!r} (e.g. 0.5, 2)") from None
    if not 0.01 <= value <= 1_000_000:
        raise argparse.ArgumentTypeError(f"invalid CPU count {text!r}: must be at least 0.01")
    return value


def _uint(text: str, what: str, original: str, upper: int = _rules.MAX_USER_ID) -> int:
    if not text.isdigit() or int(text) > upper:
        raise argparse.ArgumentTypeError(f"invalid {what} in {original!r}: must be a number 0..{upper}")
    return int(text)


def user(text: str) -> tuple[int, int]:
    """Parse ``UID[:GID]`` (numeric; a missing gid is 0).

    Raises:
        argparse.ArgumentTypeError: Not numeric ids in range.
    """
    uid, sep, gid = text.partition(":")
    return _uint(uid, "uid", text), (_uint(gid, "gid", text) if sep else 0)


def user_spec(text: str) -> str:
    """Check ``USER[:GROUP]``: each a number in range or a name (names need an image to resolve).

    Raises:
        argparse.ArgumentTypeError: An empty part, a number out of range, a malformed name.
    """
    for part, what in zip(text.split(":", 1), ("uid", "gid"), strict=False):
        if part.isdigit():
            _uint(part, what, text)
        elif not _ACCOUNT_NAME.match(part):
            raise argparse.ArgumentTypeError(
                f"invalid {what} in {text!r}: must be a number 0..{_rules.MAX_USER_ID} or a name"
            )
    return text


def userns(text: str) -> tuple[int, int, int]:
    """Parse ``UID:GID:SIZE``: container root maps to host uid UID and gid GID, SIZE ids each.

    Raises:
        argparse.ArgumentTypeError: Not three numbers, or a size of 0.
    """
    parts = text.split(":")
    if len(parts) != 3:
        raise argparse.ArgumentTypeError(f"invalid --userns {text!r}: expected HOST_UID:HOST_GID:SIZE")
    uid, gid, size = (_uint(p, name, text) for p, name in zip(parts, ("uid", "gid", "size"), strict=False))
    if size == 0:
        raise argparse.ArgumentTypeError(f"invalid --userns {text!r}: size must be at least 1")
    return uid, gid, size


def env_var(text: str) -> str:
    """Check ``KEY=VALUE``.

    Raises:
        argparse.ArgumentTypeError: No ``=``, an empty key, or a NUL byte.
    """
    key, sep, value = text.partition("=")
    if not sep or not _ENV_NAME.match(key) or "\0" in value:
        raise argparse.ArgumentTypeError(f"invalid environment variable {text!r}: expected KEY=VALUE")
    return text


def signal_spec(text: str) -> int:
    """Parse a signal: ``9``, ``KILL``, ``SIGKILL``, ``sigterm``.

    Raises:
        argparse.ArgumentTypeError: Unknown name or a number outside 1..64.
    """
    try:
        return _rules.signal_number(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def absolute_dir_path(text: str) -> str:
    """Make a path absolute (relative to the current directory) and normalise it."""
    if not text or "\0" in text:
        raise argparse.ArgumentTypeError(f"invalid path {text!r}")
    return os.path.abspath(text)


def container_path(text: str) -> str:
    """Check an absolute path inside the container (``--cwd``)."""
    if not text.startswith("/") or "\0" in text:
        raise argparse.ArgumentTypeError(f"invalid --cwd {text!r}: must be an absolute path in the container")
    return text


def hostname(text: str) -> str:
    """Check a hostname (1..64 bytes, no whitespace, '/' or NUL)."""
    if not 1 <= len(text.encode()) <= _rules.HOST_NAME_MAX or any(c.isspace() or c in "/\0" for c in text):
        raise argparse.ArgumentTypeError(f"invalid hostname {text!r}")
    return text


def seconds(text: str) -> float:
    """A duration in seconds: a finite number, zero or more."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid duration {text!r}: a number of seconds") from None
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"invalid duration {text!r}: must be finite and not negative")
    return value


def platform_spec(text: str) -> str:
    """Check ``os/arch[/variant]`` (or just ``arch``)."""
    parts = text.split("/")
    if not 1 <= len(parts) <= 3 or not all(parts) or any(c.isspace() or c == "\0" for c in text):
        raise argparse.ArgumentTypeError(
            f"invalid platform {text!r}: expected OS/ARCH[/VARIANT], e.g. linux/arm64"
        )
    return text


def positive_int(text: str) -> int:
    """A positive integer."""
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"invalid value {text!r}: must be a positive integer")
    return int(text)


# -- the parser ----------------------------------------------------------------------------------


def _common(*, suppress: bool) -> _Parser:
    """The global options, accepted before and after the subcommand."""
    parent = _Parser(add_help=False)
    default = argparse.SUPPRESS if suppress else None
    group = parent.add_argument_group("connection and output")
    group.add_argument(
        "--address",
        "-a",
        default=default,
        metavar="SOCKET",
        help="containerd socket (default: $CONTAINERD_ADDRESS, else the system socket)",
    )
    group.add_argument(
        "--namespace",
        "-n",
        default=default,
        type=identifier,
        metavar="NS",
        help="containerd namespace (default: $CONTAINERD_NAMESPACE, else 'default')",
    )
    group.add_argument(
        "--embedded",
        action="store_true",
        default=argparse.SUPPRESS if suppress else False,
        help="use the embedded private containerd, starting it if needed",
    )
    group.add_argument(
        "--json",
        action="store_true",
        default=argparse.SUPPRESS if suppress else False,
        help="machine-readable JSON output",
    )
    group.add_argument(
        "--timeout",
        type=float,
        default=default,
        metavar="SECONDS",
        help="deadline of each containerd call (default 60)",
    )
    return parent


def _add_run(run: argparse.ArgumentParser) -> None:
    run.add_argument("--rm", action="store_true", help="delete the container when it exits")
    run.add_argument("-d", "--detach", action="store_true", help="start it and return (output is discarded)")
    run.add_argument(
        "--no-handoff",
        action="store_true",
        help="copy stdout/stderr through FIFOs (default without -i/-t: zero-copy pipe handoff)",
    )
    _process_flags(run)
    run.add_argument("--rootfs", type=absolute_dir_path, metavar="DIR", help="root filesystem directory")
    run.add_argument("--pull", choices=("missing", "always", "never"), default="missing",
                     help="pull the image first: when it is not local (default), always, or never")
    run.add_argument("--plain-http", action="store_true", help="pull over HTTP, not HTTPS")
    run.add_argument("--ca-file", metavar="FILE", help="PEM file of CAs to trust for the pull")
    run.add_argument("--memory", "-m", type=byte_size, metavar="BYTES", help="memory limit (e.g. 64M)")
    run.add_argument("--cpus", type=cpus, metavar="N", help="CPU limit (e.g. 0.5)")
    run.add_argument("--hostname", type=hostname, help="the container's hostname")
    run.add_argument(
        "--userns",
        type=userns,
        metavar="UID:GID:SIZE",
        help="run in a user namespace: container root is host UID:GID, SIZE ids mapped",
    )
    run.add_argument(
        "refs",
        nargs="+",
        metavar="[IMAGE] ID [CMD]",
        help="the image (unless --rootfs is given), then the container id",
    )


def _add_exec(exec_: argparse.ArgumentParser) -> None:
    exec_.add_argument(
        "-d", "--detach", action="store_true", help="start it and return (output is discarded)"
    )
    _process_flags(exec_)
    exec_.add_argument("refs", nargs="+", metavar="ID EXEC_ID [CMD]", help="container id, then a new exec id")


def _add_ps(ps: argparse.ArgumentParser) -> None:
    ps.add_argument("id", nargs="?", type=identifier, metavar="ID", help="list this container's processes")


def _add_nothing(_: argparse.ArgumentParser) -> None:
    pass


def _add_kill(kill: argparse.ArgumentParser) -> None:
    kill.add_argument(
        "-s",
        "--signal",
        type=signal_spec,
        default=15,
        metavar="SIG",
        help="signal name or number (default TERM)",
    )
    kill.add_argument("--all", action="store_true", help="signal every process in the container")
    kill.add_argument("--exec-id", type=identifier, metavar="EXEC_ID", help="signal this exec'd process")
    kill.add_argument("ids", nargs="+", type=identifier, metavar="ID")


def _add_ids(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument("ids", nargs="+", type=identifier, metavar="ID")


def _add_rm(rm: argparse.ArgumentParser) -> None:
    rm.add_argument("-f", "--force", action="store_true", help="kill a running task first")
    rm.add_argument("ids", nargs="+", type=identifier, metavar="ID")


def _add_bench(bench: argparse.ArgumentParser) -> None:
    bench.add_argument("--quick", action="store_true", help="smaller sizes and fewer repeats")
    bench.add_argument(
        "bench_args",
        nargs=argparse.REMAINDER,
        metavar="...",
        help="further options for benchmarks/e2e.py (see its --help)",
    )


def _add_daemon(daemon: argparse.ArgumentParser) -> None:
    daemon.add_argument("action", choices=["start", "stop", "status"])
    daemon.add_argument(
        "--purge",
        action="store_true",
        help="with stop: also delete its state directory (content, metadata, logs)",
    )


def _add_images(images: argparse.ArgumentParser) -> None:
    actions = images.add_subparsers(
        dest="images_action", metavar="ACTION", parser_class=_Parser, required=True
    )
    common = [_common(suppress=True)]

    def action(name: str, text: str) -> argparse.ArgumentParser:
        return actions.add_parser(name, help=text, description=text, parents=common)

    def snapshotter(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--snapshotter", default="overlayfs", help="the snapshotter (default overlayfs)")

    def platform(parser: argparse.ArgumentParser, what: str) -> None:
        parser.add_argument("--platform", type=platform_spec, metavar="OS/ARCH[/VARIANT]",
                            help=f"{what} (default: this machine's)")

    ls = action("ls", "list images: name, digest, size, platforms, whether unpacked")
    snapshotter(ls)
    ls.add_argument("filters", nargs="*", metavar="FILTER", help="containerd filters, e.g. 'name~=busybox'")
    inspect = action("inspect", "show images' target, manifest, config and layers (JSON)")
    snapshotter(inspect)
    platform(inspect, "the platform to show")
    inspect.add_argument("names", nargs="+", metavar="NAME")
    rm = action("rm", "delete image records (what only they used is garbage collected)")
    rm.add_argument("--sync", action="store_true", help="return after the garbage collection")
    rm.add_argument("names", nargs="+", metavar="NAME")
    tag = action("tag", "give an image another name")
    tag.add_argument("-f", "--force", action="store_true", help="re-point TARGET if it names an image")
    tag.add_argument("source", metavar="SOURCE")
    tag.add_argument("target", metavar="TARGET")
    import_ = action("import", "import an OCI image layout or docker save tar (gzip too; '-': stdin)")
    import_.add_argument("--name", help="the name of the archive's single image (replaces its own)")
    platform(import_, "the platform to keep and unpack")
    import_.add_argument("--no-unpack", action="store_true", help="do not unpack the layers")
    snapshotter(import_)
    import_.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    import_.add_argument("file", metavar="FILE")
    export = action("export", "write images to an OCI layout tar with docker's manifest.json ('-': stdout)")
    export.add_argument(
        "--platform", type=platform_spec, action="append", default=[], metavar="OS/ARCH[/VARIANT]",
        help="a platform to include (repeatable; default: this machine's)",
    )
    export.add_argument("file", metavar="FILE")
    export.add_argument("names", nargs="+", metavar="NAME")


def _add_rootfs(rootfs: argparse.ArgumentParser) -> None:
    rootfs.add_argument("kind", choices=["busybox"])
    rootfs.add_argument("dir", type=absolute_dir_path, metavar="DIR")


# argparse would render run's positional "refs" as "[IMAGE] ID [CMD] [[IMAGE] ID [CMD] ...]".
_USAGE = {
    "run": "%(prog)s [OPTIONS] (IMAGE | --rootfs DIR) ID [--] [CMD [ARG...]]",
    "exec": "%(prog)s [OPTIONS] ID EXEC_ID [--] CMD [ARG...]",
}
# name -> (help, aliases, epilog, what adds its arguments), in the order --help lists them.
_COMMANDS: dict[str, tuple[str, tuple[str, ...], str | None, Callable[[argparse.ArgumentParser], None]]] = {
    "run": ("run a command in a new container", (), _RUN_EPILOG, _add_run),
    "exec": ("run an additional process in a running container", (), None, _add_exec),
    "ps": ("list tasks, or the processes of one container's task", ("tasks",), None, _add_ps),
    "containers": ("list containers", ("ls",), None, _add_nothing),
    "kill": ("signal a container's task (or one exec'd process)", (), None, _add_kill),
    "pause": ("freeze every process of a container", (), None, _add_ids),
    "resume": ("thaw a paused container", (), None, _add_ids),
    "rm": ("delete containers (and their stopped tasks)", (), None, _add_rm),
    "stats": ("show a container's cgroup metrics", (), None, _add_ids),
    "events": ("print task events as they happen (one line each; Ctrl-C stops)", (), None, _add_nothing),
    "version": ("print client and daemon versions", (), None, _add_nothing),
    "bench": ("run the end-to-end benchmarks against ctr (needs a source checkout)", (), None, _add_bench),
    "images": ("list, inspect, remove, tag, import and export images", (), _IMAGES_EPILOG, _add_images),
    "daemon": ("manage the embedded private containerd", (), None, _add_daemon),
    "rootfs": ("build a root filesystem for demos and tests", (), None, _add_rootfs),
    "pull": ("pull an image from a registry", (), None, _registry.add_pull),
    "push": ("push an image to a registry", (), None, _registry.add_push),
    "login": ("save registry credentials in the Docker config", (), None, _registry.add_login),
    "logout": ("remove registry credentials from the Docker config", (), None, _registry.add_logout),
}


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """Build the ``pycontainerd`` parser.

    Args:
        only: Add only this command (its canonical name), not the others: what
            :func:`parse` tries first, as every subcommand parser costs time.

    Returns:
        The parser; :func:`parse` is what the command uses.
    """
    parser = _Parser(
        prog="pycontainerd",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[_common(suppress=False)],
    )
    parser.add_argument("--version", action="store_true", help="print the client version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    common = [_common(suppress=True)]
    for name, (text, aliases, epilog, add_arguments) in _COMMANDS.items():
        if only is not None and name != only:
            continue
        add_arguments(
            sub.add_parser(
                name,
                help=text,
                description=text,
                aliases=list(aliases),
                parents=common,
                epilog=epilog,
                usage=_USAGE.get(name),
                formatter_class=argparse.RawDescriptionHelpFormatter,
            )
        )
    return parser


def _process_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-t", "--tty", action="store_true", help="allocate a terminal (raw mode with -i)")
    parser.add_argument(
        "--stop-timeout",
        type=seconds,
        default=10.0,
        metavar="SECONDS",
        help="after Ctrl-C/SIGTERM (forwarded), kill the process if it still runs this long later "
        "(default 10; a second Ctrl-C kills at once)",
    )
    parser.add_argument("-i", "--interactive", action="store_true", help="forward stdin")
    parser.add_argument(
        "--env",
        "-e",
        type=env_var,
        action="append",
        default=[],
        metavar="K=V",
        help="set an environment variable (repeatable)",
    )
    parser.add_argument(
        "--cwd",
        "-w",
        type=container_path,
        metavar="DIR",
        help="working directory in the container (default: / for run, the container's for exec)",
    )
    parser.add_argument(
        "--user",
        "-u",
        type=user_spec,
        metavar="USER[:GROUP]",
        help="numeric UID[:GID]; names too when running an IMAGE (looked up in its /etc/passwd "
        "and /etc/group) (default: the image's user, 0:0 with --rootfs, the container's for exec)",
    )


def _split_command(argv: list[str]) -> tuple[list[str], list[str] | None]:
    """Split ``argv`` at the first ``--`` that follows a ``run``/``exec`` subcommand."""
    for i, arg in enumerate(argv):
        if arg == "--":
            return argv[:i], list(argv[i + 1 :])
    return argv, None


# The global options that take a value (as a separate word unless written --opt=value or -aVALUE).
_GLOBAL_VALUES = ("--address", "-a", "--namespace", "-n", "--timeout")


def _predicted_command(words: list[str]) -> str | None:
    """The command these words name, found without parsing (``None``: not found).

    Skips the global options (and their values) before the command. Only a
    guess: :func:`_parse_fast` checks it.
    """
    expect_value = False
    for word in words:
        if expect_value:
            expect_value = False
        elif word.startswith("-"):
            expect_value = word in _GLOBAL_VALUES
        else:
            name = _ALIASES.get(word, word)
            return name if name in _COMMANDS else None
    return None


def _asks_for_help(words: list[str]) -> bool:
    """Whether any word may be ``-h``/``--help`` (alone, abbreviated, or among combined short flags)."""
    return any(w.startswith("--h") or (w[:1] == "-" and w[1:2] != "-" and "h" in w) for w in words)


def _parse_fast(words: list[str]) -> argparse.Namespace | None:
    """Parse with a parser that has only the predicted command (``None``: use the full parser).

    Building every command's parser is most of the parsing time. Any doubt (no
    prediction, help, an error, another command parsed) returns ``None``, so that
    every message and help text comes from the full parser, as it always did.
    """
    predicted = _predicted_command(words)
    if predicted is None or _asks_for_help(words):
        return None
    try:
        args = build_parser(only=predicted).parse_args(words)
    except (UsageError, SystemExit):
        return None
    if _ALIASES.get(args.command, args.command) != predicted:
        return None
    return args


def parse(argv: Sequence[str]) -> argparse.Namespace:
    """Parse a ``pycontainerd`` command line.

    For ``run``/``exec`` the namespace gets ``id``, ``exec_id`` (exec), ``image``
    (run: ``None`` with ``--rootfs``) and ``cmd`` (the words after ``--``, or the
    positionals after the ids).

    Args:
        argv: The arguments, without the program name.

    Returns:
        The parsed namespace (``command`` is ``None`` when none was given).

    Raises:
        UsageError: A command-line mistake (one line, for stderr).
        SystemExit: ``--help`` was printed.
    """
    words = list(argv)
    head, tail = words, None
    # Only split for the commands that take a command line after "--".
    for word in words:
        if word in ("run", "exec"):
            head, tail = _split_command(words)
            break
        if word == "--" or not word.startswith("-"):
            break
    args = _parse_fast(head) or build_parser().parse_args(head)
    args.command = _ALIASES.get(args.command, args.command)
    if args.command in ("run", "exec"):
        _resolve_process_refs(args, tail)
    elif tail is not None:
        raise UsageError(f"{args.command} takes no command after '--'")
    if args.command == "bench" and args.bench_args[:1] == ["--"]:
        args.bench_args = args.bench_args[1:]
    return args


def _resolve_process_refs(args: argparse.Namespace, tail: list[str] | None) -> None:
    refs: list[str] = list(args.refs)
    prog = f"pycontainerd {args.command}"
    if args.command == "run":
        if args.rootfs is None:
            if len(refs) < 2:
                raise UsageError(f"give --rootfs DIR (or IMAGE) and a container ID (see '{prog} --help')")
            args.image, refs = refs[0], refs[1:]
        else:
            args.image = None
        id_count = 1
    else:
        if len(refs) < 2:
            raise UsageError(f"give the container ID and a new EXEC_ID (see '{prog} --help')")
        id_count = 2
    ids, cmd = refs[:id_count], refs[id_count:]
    try:
        args.id = identifier(ids[0])
        if args.command == "exec":
            args.exec_id = identifier(ids[1])
    except argparse.ArgumentTypeError as exc:
        raise UsageError(f"{exc} (see '{prog} --help')") from None
    args.cmd = cmd + (tail or [])
    if args.user is not None and not (args.command == "run" and args.image is not None):
        # Only an image has the /etc/passwd that names are looked up in.
        try:
            args.user = user(args.user)
        except argparse.ArgumentTypeError as exc:
            raise UsageError(f"{exc} (user names need an IMAGE)") from None
    if not args.cmd and not (args.command == "run" and args.image is not None):
        raise UsageError(
            f"no command given: put it after '--', e.g. '{prog} ... {ids[-1]} -- sh' (see '{prog} --help')"
        )
    if args.detach and (args.interactive or args.tty):
        raise UsageError("-d cannot be combined with -i or -t")
    if args.command == "run" and args.detach and args.rm:
        raise UsageError("--rm cannot be combined with -d (the container outlives the command)")


def print_help_if_no_command(args: argparse.Namespace) -> bool:
    """Print the top-level help when no command was given; return whether it did."""
    if args.command is None:
        build_parser().print_help(sys.stderr)
        return True
    return False
