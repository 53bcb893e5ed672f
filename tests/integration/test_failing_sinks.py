"""A stdout sink that fails: reported as SinkError, never a hang, never a silent success, nothing left.

Each sink kind (a file on a full tmpfs, /dev/full, a read-only descriptor, a closed
descriptor, a pipe whose reader leaves early) is tried on both transports (FIFO and
the zero-copy handoff), through ``run()`` and through the command line. The
container writes 4 MiB to stdout, more than any pipe holds, so a client that stops
reading would leave it blocked forever; its stderr goes to a healthy file and must
arrive whole.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shlex
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from pycontainerd import errors
from pycontainerd._run import run
from pycontainerd.container import default_state_dir

# 4 MiB on stdout, then one line on stderr: the stderr line proves the process was
# never blocked by its failing stdout.
SCRIPT = "dd if=/dev/zero bs=65536 count=64 2>/dev/null; echo finished >&2"
SINKS = ["full-tmpfs", "dev-full", "read-only", "closed", "reader-left"]
EXPECTED_ERRNO = {
    "full-tmpfs": errno.ENOSPC,
    "dev-full": errno.ENOSPC,
    "read-only": errno.EBADF,
    "closed": errno.EBADF,
    "reader-left": errno.EPIPE,
}
TRANSPORTS = {"fifo": False, "handoff": True}
# Only a hang guard: a failing sink used to block these runs forever.
pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def small_tmpfs(tmp_path: Path) -> Iterator[Path]:
    mnt = tmp_path / "small"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)], check=True)
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


@contextlib.contextmanager
def failing_sink(kind: str, tmp_path: Path, small_tmpfs: Path) -> Iterator[int]:
    """A descriptor whose writes fail the way ``kind`` says."""
    if kind == "full-tmpfs":
        fd = os.open(small_tmpfs / "out", os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    elif kind == "dev-full":
        fd = os.open("/dev/full", os.O_WRONLY | os.O_CLOEXEC)
    elif kind == "read-only":
        (tmp_path / "ro").write_bytes(b"")
        fd = os.open(tmp_path / "ro", os.O_RDONLY | os.O_CLOEXEC)
    elif kind == "closed":
        fd = os.open(os.devnull, os.O_WRONLY | os.O_CLOEXEC)
        os.close(fd)
        yield fd
        return
    elif kind == "reader-left":
        r, fd = os.pipe2(os.O_CLOEXEC)

        def read_a_little_and_leave() -> None:
            got = 0
            while got < 1000:
                chunk = os.read(r, 1000 - got)
                if not chunk:
                    break
                got += len(chunk)
            os.close(r)

        threading.Thread(target=read_a_little_and_leave, daemon=True).start()
    else:
        raise AssertionError(kind)
    try:
        yield fd
    finally:
        os.close(fd)


def nothing_left(client) -> None:
    assert client.containers() == []
    assert client.api.tasks.list() == []
    ns_dir = Path(default_state_dir()) / client.namespace
    assert not ns_dir.exists() or list(ns_dir.iterdir()) == []


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("kind", SINKS)
def test_run_reports_a_failing_stdout_sink(client, rootfs, tmp_path, small_tmpfs, kind, transport):
    err_path = tmp_path / "stderr"
    with (
        open(err_path, "wb") as err_file,
        failing_sink(kind, tmp_path, small_tmpfs) as sink,
        pytest.raises(OSError) as info,  # noqa: PT011 (a SinkError, or EBADF refused up front)
    ):
        run(["sh", "-c", SCRIPT], rootfs=rootfs, stdout=sink, stderr=err_file,
            handoff=TRANSPORTS[transport], client=client)  # fmt: skip
    failure = info.value
    if kind == "closed" and not isinstance(failure, errors.SinkError):
        # A descriptor that is already closed is refused before anything exists.
        assert failure.errno == errno.EBADF
        nothing_left(client)
        return
    assert isinstance(failure, errors.SinkError), repr(failure)
    assert failure.errno == EXPECTED_ERRNO[kind]
    assert failure.stream == "stdout"
    assert failure.filename == "stdout"
    assert failure.status is not None
    assert failure.status.code == 0, "the process ran to its end"
    assert failure.delivered + failure.dropped == 4 << 20
    assert err_path.read_bytes() == b"finished\n"
    nothing_left(client)


# -- the command line -----------------------------------------------------------------------------

REDIRECTS = {
    "full-tmpfs": '> "$SMALL/out"',
    "dev-full": "> /dev/full",
    "read-only": '1< "$RO"',
    "closed": ">&-",
}


def _cli_shell(address: str, namespace: str, rootfs: str, name: str, no_handoff: bool, tail: str) -> str:
    argv = [sys.executable, "-m", "pycontainerd", "--address", address, "--namespace", namespace,
            "run", "--rm", "--rootfs", rootfs, *(["--no-handoff"] if no_handoff else []), name,
            "--", "sh", "-c", SCRIPT]  # fmt: skip
    return shlex.join(argv) + " " + tail


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("kind", [*REDIRECTS, "head"])
def test_cli_reports_a_failing_stdout(containerd_address, namespace, client, rootfs, tmp_path, small_tmpfs,
                                      kind, transport):  # fmt: skip
    (tmp_path / "ro").write_bytes(b"")
    name = f"sink-{kind}-{transport}"
    err = tmp_path / "stderr"
    if kind == "head":
        # The exit status of the pipeline's left side, and its stderr, are what count.
        shell = _cli_shell(containerd_address, namespace, rootfs, name, not TRANSPORTS[transport],
                           f'2> "{err}" | head -c 100 > /dev/null; exit "${{PIPESTATUS[0]}}"')  # fmt: skip
    else:
        shell = _cli_shell(containerd_address, namespace, rootfs, name, not TRANSPORTS[transport],
                           f'2> "{err}" {REDIRECTS[kind]}')  # fmt: skip
    env = dict(os.environ, SMALL=str(small_tmpfs), RO=str(tmp_path / "ro"))
    result = subprocess.run(["bash", "-c", shell], env=env, stdin=subprocess.DEVNULL, timeout=150)
    lines = err.read_bytes().decode().splitlines()
    assert result.returncode not in (0, None), lines
    errors_ = [line for line in lines if line.startswith("pycontainerd: error:")]
    assert len(errors_) == 1, lines
    assert "stdout" in errors_[0]
    expected = {"head": errno.EPIPE}.get(kind) or EXPECTED_ERRNO[kind]
    assert f"errno {expected}" in errors_[0], errors_[0]
    # The container's stderr went to the same file and arrived whole.
    assert "finished" in lines
    containers = subprocess.run(
        [sys.executable, "-m", "pycontainerd", "--address", containerd_address, "--namespace", namespace,
         "--json", "containers"], capture_output=True, check=True, timeout=60,
    )  # fmt: skip
    assert json.loads(containers.stdout) == []
    nothing_left(client)
