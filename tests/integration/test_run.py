"""pycontainerd.run: the subprocess.run-like one-call API, against a real containerd."""

from __future__ import annotations

import os

import pytest

import pycontainerd
from pycontainerd import errors
from pycontainerd._run import CompletedContainer, run


def _nothing_left(client) -> None:
    assert client.containers() == []
    assert client.api.tasks.list() == []


def test_capture_output(client, rootfs):
    result = run(
        ["sh", "-c", "echo out; echo err >&2; exit 3"], rootfs=rootfs, capture_output=True, client=client
    )
    assert isinstance(result, CompletedContainer)
    assert result.args == ["sh", "-c", "echo out; echo err >&2; exit 3"]
    assert (result.returncode, result.stdout, result.stderr) == (3, b"out\n", b"err\n")
    assert result.container_id.startswith("pcd-run-")
    _nothing_left(client)


def test_files_and_stdin(client, rootfs, tmp_path):
    payload = os.urandom(3 << 20)
    with open(tmp_path / "out", "wb") as out, open(tmp_path / "err", "wb") as err:
        out.write(b"header\n")  # buffered in Python: must land before the container's bytes
        result = run(
            ["sh", "-c", "cat; echo done >&2"],
            rootfs=rootfs,
            stdin=payload,
            stdout=out,
            stderr=err,
            client=client,
        )
    assert result.returncode == 0
    assert (result.stdout, result.stderr) == (None, None)
    assert (tmp_path / "out").read_bytes() == b"header\n" + payload
    assert (tmp_path / "err").read_bytes() == b"done\n"
    _nothing_left(client)


def test_stdin_from_a_file(client, rootfs, tmp_path):
    (tmp_path / "in").write_bytes(b"from a file\n")
    with open(tmp_path / "in", "rb") as f:
        result = run(["cat"], rootfs=rootfs, stdin=f, capture_output=True, client=client)
    assert result.stdout == b"from a file\n"


def test_check_raises_container_error(client, rootfs):
    with pytest.raises(errors.ContainerError) as info:
        run(
            ["sh", "-c", "echo oops >&2; exit 9"],
            rootfs=rootfs,
            capture_output=True,
            check=True,
            client=client,
        )
    assert info.value.exit_status == 9
    assert info.value.stderr == b"oops\n"
    assert info.value.container_id.startswith("pcd-run-")
    with pytest.raises(errors.ContainerError) as info:
        run(["false"], rootfs=rootfs, check=True, client=client)
    assert (info.value.exit_status, info.value.stderr) == (1, None)
    assert run(["true"], rootfs=rootfs, check=True, client=client).returncode == 0
    _nothing_left(client)


def test_timeout_kills_and_cleans_up(client, rootfs):
    with pytest.raises(TimeoutError):
        run(["sleep", "1000"], rootfs=rootfs, timeout=0.5, client=client)
    _nothing_left(client)
    with pytest.raises(TimeoutError):
        run(
            ["sh", "-c", "trap '' TERM; sleep 1000 & wait"],
            rootfs=rootfs,
            timeout=0.5,
            capture_output=True,
            client=client,
        )
    _nothing_left(client)


def test_tty(client, rootfs):
    result = run(
        ["sh", "-c", "tty; echo to-stderr >&2"], rootfs=rootfs, tty=True, capture_output=True, client=client
    )
    assert result.returncode == 0
    assert result.stdout.startswith(b"/dev/pts/")
    assert result.stdout.endswith(b"to-stderr\r\n")
    assert not result.stderr


def test_options(client, rootfs):
    result = run(
        ["sh", "-c", "id -u; id -g; pwd; hostname; echo $GREETING"],
        rootfs=rootfs,
        capture_output=True,
        env={"GREETING": "hi"},
        user=(65534, 65534),
        cwd="/tmp",
        hostname="box",
        client=client,
    )
    assert result.stdout.decode().split() == ["65534", "65534", "/tmp", "box", "hi"]


def test_missing_binary_and_bad_arguments(client, rootfs):
    with pytest.raises(errors.ContainerdError, match="nonexistent"):
        run(["/nonexistent"], rootfs=rootfs, capture_output=True, client=client)
    _nothing_left(client)
    with pytest.raises(ValueError, match="capture_output"):
        run(["true"], rootfs=rootfs, capture_output=True, stdout=1, client=client)
    with pytest.raises(ValueError, match="args"):
        run([], rootfs=rootfs, client=client)
    with pytest.raises(ValueError, match="rootfs"):
        run(["true"], rootfs="relative", client=client)
    _nothing_left(client)


def test_default_client_from_environment(client, rootfs, containerd_address, monkeypatch):
    monkeypatch.setenv("CONTAINERD_ADDRESS", containerd_address)
    monkeypatch.setenv("CONTAINERD_NAMESPACE", client.namespace)
    result = pycontainerd.run(["echo", "env"], rootfs=rootfs, capture_output=True)
    assert result.stdout == b"env\n"
    _nothing_left(client)
