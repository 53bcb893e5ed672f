"""atheris harness: the command line's value checks and ``parse()``.

Every value a user types goes through a ``type=`` function of
``pycontainerd.cli._app``; each must return a value in its documented range or
raise what argparse turns into a usage line and exit status 2:
``ArgumentTypeError`` (its own message), ``ValueError`` or ``TypeError`` (a
generic one). Anything else ends the command with a traceback. ``parse()`` as a
whole may raise only ``UsageError`` or, for ``--help``, ``SystemExit(0)``.

The input's first byte picks a checker, or ``parse()``; the rest is the text,
decoded as the interpreter decodes ``sys.argv`` (UTF-8, surrogateescape), with
NUL bytes separating the words of an argv. With the first byte's high bit set,
the second byte repeats the text up to 256 times: long numbers are where
conversions overflow, and mutations alone grow an input only slowly. fuzz/cli.dict lists the parser's
words. Run by scripts/fuzz (``make fuzz``).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
from collections.abc import Callable
from typing import Any

import atheris
from _oracle import expect, fuzz

with atheris.instrument_imports():
    from pycontainerd.cli import _app

_MAX_ID = 2**31 - 1


def _check_identifier(v: Any) -> None:
    expect(isinstance(v, str) and 1 <= len(v) <= 76, f"identifier {v!r}")


def _check_byte_size(v: Any) -> None:
    expect(isinstance(v, int) and v >= 1, f"size {v!r}")


def _check_cpus(v: Any) -> None:
    expect(isinstance(v, float) and 0.01 <= v <= 1_000_000, f"cpus {v!r}")


def _check_user(v: Any) -> None:
    expect(len(v) == 2 and all(isinstance(x, int) and 0 <= x <= _MAX_ID for x in v), f"user {v!r}")


def _check_userns(v: Any) -> None:
    expect(len(v) == 3 and all(isinstance(x, int) and 0 <= x <= _MAX_ID for x in v), f"userns {v!r}")
    expect(v[2] >= 1, f"userns size {v[2]}")


def _check_env(v: Any) -> None:
    key, sep, _ = v.partition("=")
    expect(sep and key and "\0" not in v, f"env {v!r}")


def _check_signal(v: Any) -> None:
    expect(isinstance(v, int) and 1 <= v <= 64, f"signal {v!r}")


def _check_absolute(v: Any) -> None:
    expect(isinstance(v, str) and os.path.isabs(v) and "\0" not in v, f"path {v!r}")


def _check_container_path(v: Any) -> None:
    expect(isinstance(v, str) and v.startswith("/") and "\0" not in v, f"cwd {v!r}")


def _check_hostname(v: Any) -> None:
    expect(isinstance(v, str) and 1 <= len(v) <= 64, f"hostname {v!r}")


def _check_positive(v: Any) -> None:
    expect(isinstance(v, int) and v >= 1, f"positive {v!r}")


_CHECKERS: list[tuple[Callable[[str], Any], Callable[[Any], None]]] = [
    (_app.identifier, _check_identifier),
    (_app.byte_size, _check_byte_size),
    (_app.cpus, _check_cpus),
    (_app.user, _check_user),
    (_app.userns, _check_userns),
    (_app.env_var, _check_env),
    (_app.signal_spec, _check_signal),
    (_app.absolute_dir_path, _check_absolute),
    (_app.container_path, _check_container_path),
    (_app.hostname, _check_hostname),
    (_app.positive_int, _check_positive),
]


def test_one_input(data: bytes) -> None:
    which = (data[0] & 0x7F) % (len(_CHECKERS) + 1) if data else 0
    if data and data[0] & 0x80:
        data = data[:1] + data[2:] * (1 + (data[1] if len(data) > 1 else 0))
    text = data[1:].decode("utf-8", "surrogateescape")
    if which < len(_CHECKERS):
        convert, check = _CHECKERS[which]
        try:
            value = convert(text)
        except (argparse.ArgumentTypeError, ValueError, TypeError):
            return
        check(value)
        return
    argv = text.split("\0") if text else []
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            args = _app.parse(argv)
    except _app.UsageError:
        return
    except SystemExit as exc:
        expect(exc.code in (0, None), f"exit {exc.code!r} for {argv!r}")
        return
    expect(args.command is None or isinstance(args.command, str), f"command {args.command!r}")


if __name__ == "__main__":
    fuzz(test_one_input)
