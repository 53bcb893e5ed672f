"""The outside world's rules, written once in pycontainerd._rules, and every place that applies them."""

from __future__ import annotations

import argparse
import signal

import pytest

from pycontainerd import _rules, oci
from pycontainerd._grpc import socket_path, validate_namespace
from pycontainerd.cli import _app

VALID_IDS = ["default", "containerd.io", "task.0.0123456789", "underscores_are_allowed", "a" * 76, "A-b_c.9"]
INVALID_IDS = [
    "",
    ".",
    "..",
    "/",
    ".foo..foo",
    "foo/foo",
    "foo/..",
    "foo..foo",
    "foo.-boo",
    "-foo.boo",
    "foo.boo-",
    "but__only_tasteful_underscores",
    "default--default",
    "a" * 77,
    "a b",
    "a\0b",
    "é",
    # Python's `$` also matches before a final newline; containerd's (Go's) does not.
    "abc\n",
    "\nabc",
]


@pytest.mark.parametrize("value", VALID_IDS)
def test_identifier_accepts(value):
    assert _rules.identifier(value) == value
    assert _rules.identifier_problem(value) is None


@pytest.mark.parametrize("value", INVALID_IDS)
def test_identifier_rejects(value):
    with pytest.raises(ValueError, match="exec id"):
        _rules.identifier(value, "exec id")
    assert _rules.identifier_problem(value)


@pytest.mark.parametrize("value", [None, 3, b"abc"])
def test_identifier_type(value):
    with pytest.raises(TypeError):
        _rules.identifier(value)


@pytest.mark.parametrize("value", VALID_IDS + INVALID_IDS)
def test_namespaces_and_cli_ids_follow_the_one_identifier_rule(value):
    valid = _rules.identifier_problem(value) is None
    try:
        validate_namespace(value)
    except ValueError:
        namespace_ok = False
    else:
        namespace_ok = True
    try:
        _app.identifier(value)
    except argparse.ArgumentTypeError:
        cli_ok = False
    else:
        cli_ok = True
    assert namespace_ok == cli_ok == valid


def test_socket_path_limit_is_sun_path_minus_its_nul():
    assert _rules.socket_path_fits("/" + "a" * 106)
    assert not _rules.socket_path_fits("/" + "a" * 107)
    # Bytes, not characters: "é" is two bytes in UTF-8.
    assert not _rules.socket_path_fits("/" + "é" * 54)
    assert socket_path("/" + "a" * 106) == "/" + "a" * 106
    with pytest.raises(ValueError, match=f"at most {_rules.MAX_SOCKET_PATH}"):
        socket_path("/" + "a" * 107)


@pytest.mark.parametrize(
    ("value", "number"),
    [
        (9, 9),
        (signal.SIGTERM, 15),
        ("KILL", 9),
        ("SIGKILL", 9),
        ("sigusr1", int(signal.SIGUSR1)),
        (" term ", 15),
        ("1", 1),
        (64, 64),
        ("SIGRTMIN", int(signal.SIGRTMIN)),
    ],
)
def test_signal_number_accepts(value, number):
    assert _rules.signal_number(value) == number


@pytest.mark.parametrize("value", [0, -1, 65, 1 << 32, "SIG42", "FOO", "", "SIG", "0", "99"])
def test_signal_number_rejects(value):
    with pytest.raises(ValueError, match="invalid signal"):
        _rules.signal_number(value)


@pytest.mark.parametrize("value", [True, 1.0, None, b"KILL"])
def test_signal_number_type(value):
    with pytest.raises(TypeError):
        _rules.signal_number(value)


@pytest.mark.parametrize("text", ["9", "KILL", "sigterm", " int ", "64", "0", "65", "NOPE", ""])
def test_cli_signals_follow_the_one_signal_table(text):
    try:
        expected: int | None = _rules.signal_number(text)
    except ValueError:
        expected = None
    if expected is None:
        with pytest.raises(argparse.ArgumentTypeError, match="invalid signal"):
            _app.signal_spec(text)
    else:
        assert _app.signal_spec(text) == expected


@pytest.mark.parametrize("name", ["box", "a" * 64, "é" * 32, "a" * 65, "é" * 33])
def test_hostnames_are_limited_in_bytes_by_the_spec_builder_and_the_cli(name):
    fits = len(name.encode()) <= _rules.HOST_NAME_MAX
    try:
        oci.build(args=["true"], rootfs="/r", hostname=name)
    except ValueError:
        built = False
    else:
        built = True
    try:
        _app.hostname(name)
    except argparse.ArgumentTypeError:
        parsed = False
    else:
        parsed = True
    assert built == parsed == fits


@pytest.mark.parametrize(
    ("uid", "fits"), [(0, True), (_rules.MAX_USER_ID, True), (_rules.MAX_USER_ID + 1, False)]
)
def test_user_ids_stop_below_the_int32_overflow(uid, fits):
    try:
        _app.user(f"{uid}:0")
    except argparse.ArgumentTypeError:
        parsed = False
    else:
        parsed = True
    assert parsed == fits
