"""The registry commands: ``pull``, ``push``, ``login``, ``logout``.

Their arguments (``add_*``, used by ``_app``) and their bodies (``cmd_*``, used by
``_commands``) live here together, apart from the container commands. Progress goes
to stderr: one line per blob and phase change (a terminal gets the lines a log gets;
no redrawing), so stdout carries only the result (the image name and digest).
"""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from collections.abc import Callable

    from pycontainerd.cli._commands import Context
    from pycontainerd.registry.credentials import Credentials
    from pycontainerd.registry.progress import ProgressEvent

__all__ = [
    "add_login", "add_logout", "add_pull", "add_push", "cmd_login", "cmd_logout", "cmd_pull", "cmd_push",
    "progress_lines",
]


def _add_transport(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument("--plain-http", action="store_true", help="speak HTTP, not HTTPS, to the registry")
    cmd.add_argument("--ca-file", metavar="FILE", help="PEM file of CAs to trust besides the system's")
    cmd.add_argument("-u", "--user", metavar="USER", help="registry user (password from --password-stdin, "
                     "else prompted on a terminal); default: the Docker config's credentials")
    cmd.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    cmd.add_argument("--platform", metavar="OS/ARCH[/VARIANT]", help="platform (default: the host's)")
    cmd.add_argument("-q", "--quiet", action="store_true", help="no progress lines")


def add_pull(pull: argparse.ArgumentParser) -> None:
    """``pull REF``."""
    _add_transport(pull)
    pull.add_argument("--no-unpack", action="store_true", help="do not unpack the layers")
    pull.add_argument("--snapshotter", default="overlayfs", help="snapshotter to unpack into")
    pull.add_argument("--max-concurrent", type=int, default=3, metavar="N", help="layers downloaded at once")
    pull.add_argument("ref", metavar="REF", help="image reference (alpine, host:port/repo:tag, ...)")


def add_push(push: argparse.ArgumentParser) -> None:
    """``push IMAGE [REF]``."""
    _add_transport(push)
    push.add_argument("image", metavar="IMAGE", help="local image name")
    push.add_argument("ref", nargs="?", metavar="REF", help="where to push (default: the image name)")


def add_login(login: argparse.ArgumentParser) -> None:
    """``login REGISTRY``."""
    login.add_argument("-u", "--user", metavar="USER", required=True, help="registry user")
    login.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    login.add_argument("registry", metavar="REGISTRY", help="registry host[:port] (docker.io for Docker Hub)")


def add_logout(logout: argparse.ArgumentParser) -> None:
    """``logout REGISTRY``."""
    logout.add_argument("registry", metavar="REGISTRY", help="registry host[:port]")


def _password(args: argparse.Namespace) -> str:
    from pycontainerd.cli._commands import CLIError

    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    elif sys.stdin.isatty():
        password = getpass.getpass(f"Password for {args.user}: ")
    else:
        raise CLIError("no password: give --password-stdin (or run on a terminal to be asked)")
    if not password:
        raise CLIError("empty password")
    return password


def progress_lines(out: TextIO) -> Callable[[ProgressEvent], None]:
    """The pull/push progress printer the commands use: one line per blob and phase on ``out``."""
    return _Lines(out)


def _auth(args: argparse.Namespace) -> Credentials | None:
    from pycontainerd.registry.credentials import Credentials

    if args.user is None:
        if args.password_stdin:
            from pycontainerd.cli._commands import CLIError

            raise CLIError("--password-stdin needs -u USER")
        return None
    return Credentials(args.user, _password(args))


class _Lines:
    """Progress events as lines: one per blob and phase (downloading/uploading at most every 25%)."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.last: dict[str, tuple[str, int]] = {}

    def __call__(self, event: ProgressEvent) -> None:
        phase = event.phase.value
        step = 100 * event.offset // event.size // 25 if event.size else 4
        previous = self.last.get(event.digest)
        if previous is not None and previous[0] == phase and previous[1] == step:
            return
        self.last[event.digest] = (phase, step)
        short = event.digest.split(":", 1)[-1][:12]
        if phase in ("downloading", "uploading"):
            self.out.write(f"{short}: {phase} {event.offset}/{event.size}\n")
        else:
            self.out.write(f"{short}: {phase}\n")
        self.out.flush()


def cmd_pull(ctx: Context) -> int:
    """Pull an image; print its name and digest."""
    args = ctx.args
    image = ctx.client().pull(
        args.ref, platform=args.platform, unpack=not args.no_unpack, snapshotter=args.snapshotter,
        auth=_auth(args),
        plain_http=args.plain_http, ca_file=args.ca_file, max_concurrent=args.max_concurrent,
        progress=None if args.quiet else _Lines(sys.stderr),
    )
    print(f"{image.name} {image.target.digest}")
    return 0


def cmd_push(ctx: Context) -> int:
    """Push an image; print where and the pushed digest."""
    args = ctx.args
    from pycontainerd.images.reference import parse

    root = ctx.client().push(
        args.image, args.ref, platform=args.platform, auth=_auth(args),
        plain_http=args.plain_http, ca_file=args.ca_file, progress=None if args.quiet else _Lines(sys.stderr),
    )
    print(f"{parse(args.ref or args.image)} {root.digest}")
    return 0


def cmd_login(ctx: Context) -> int:
    """Store credentials in the Docker config (checked against nothing: as ``docker login`` offline)."""
    from pycontainerd.registry.credentials import Credentials, save_login

    args = ctx.args
    path = save_login(args.registry, Credentials(args.user, _password(args)))
    print(f"credentials for {args.registry} saved in {path}", file=sys.stderr)
    return 0


def cmd_logout(ctx: Context) -> int:
    """Remove credentials from the Docker config."""
    from pycontainerd.cli._commands import CLIError
    from pycontainerd.registry.credentials import remove_login

    if not remove_login(ctx.args.registry):
        raise CLIError(f"not logged in to {ctx.args.registry}")
    return 0
