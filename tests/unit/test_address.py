"""Which containerd a client talks to when it is not told (pycontainerd._address): the documented order."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from pycontainerd import _address, errors
from pycontainerd.client import Client


@pytest.fixture
def places(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """A private system socket path and embedded dir; nothing listens yet."""
    system = tmp_path / "system.sock"
    embedded = tmp_path / "embedded"
    embedded.mkdir()
    monkeypatch.delenv("CONTAINERD_ADDRESS", raising=False)
    monkeypatch.setenv(_address.ENV_SYSTEM_ADDRESS, str(system))
    monkeypatch.setenv(_address.ENV_EMBEDDED_DIR, str(embedded))
    return system, embedded / "containerd.sock"


def listen(path: Path) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(path))
    sock.listen(1)
    return sock


def test_nothing_listens_gives_the_system_socket(places: tuple[Path, Path]) -> None:
    system, _ = places
    assert _address.default_address() == str(system)


def test_the_embedded_daemon_is_found_when_no_system_daemon_serves(places: tuple[Path, Path]) -> None:
    system, embedded = places
    with listen(embedded):
        assert _address.default_address() == str(embedded)
        assert Client().address == str(embedded)
    # A socket file nobody listens on any more does not count.
    assert _address.default_address() == str(system)


def test_a_serving_system_daemon_comes_first(places: tuple[Path, Path]) -> None:
    system, embedded = places
    with listen(system), listen(embedded):
        assert _address.default_address() == str(system)


def test_containerd_address_and_the_argument_come_before_both(places: tuple[Path, Path],
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    _, embedded = places
    with listen(embedded):
        monkeypatch.setenv("CONTAINERD_ADDRESS", "/run/other.sock")
        assert _address.default_address() == "/run/other.sock"
        assert Client("/run/given.sock").address == "/run/given.sock"


def test_embedded_dir_default_for_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(_address.ENV_EMBEDDED_DIR, raising=False)
    monkeypatch.setattr("os.geteuid", lambda: 0)
    assert _address.embedded_address() == "/run/pycontainerd/.embedded/containerd.sock"


def test_missing_system_socket_error_says_what_to_do(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pycontainerd import _grpc

    missing = str(tmp_path / "containerd.sock")
    monkeypatch.setattr(_grpc, "DEFAULT_ADDRESS", missing)  # as on a machine without containerd
    problem = _grpc.socket_problem(missing)
    assert isinstance(problem, errors.UnavailableError)
    assert "pycontainerd daemon start" in str(problem)
    # An address the caller chose gets no such advice.
    other = _grpc.socket_problem(str(tmp_path / "other.sock"))
    assert other is not None
    assert "daemon start" not in str(other)
