"""``pycontainerd run`` shares ``run()``'s lifecycle: what the command gains from it.

The command runs its container through ``pycontainerd._run.run_container``, so
like ``run()`` it waits out a containerd crash (the shim and the output carry on;
once the daemon serves again the command waits again and exits with the
container's status, every byte delivered), and a ``--rm`` container carries its
owner's label, so that ``cleanup_runs()`` removes it when the command died.
containerd 1.7 and 2.x lose the exit status of a process that ends while they are
down: the command then says so in one line and exits 125, output delivered.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
from _crash import EXPECTED, SCRIPT, TIMEOUT, wait_for_output, wait_until_script_ended

from pycontainerd import _run
from pycontainerd._run import cleanup_runs

pytestmark = pytest.mark.timeout(240)


def _command(address: str, namespace: str, *args: str) -> list[str]:
    return [sys.executable, "-m", "pycontainerd", "--address", address, "--namespace", namespace, *args]




@pytest.mark.parametrize("transport", ["fifo", "handoff"])
@pytest.mark.parametrize("when", ["mid-stream", "exits-while-down"])
def test_cli_run_survives_a_containerd_crash(private_daemon, containerd_address, namespace, client, rootfs,
                                             tmp_path, transport, when):  # fmt: skip
    out_path = tmp_path / "out"
    flags = ["--no-handoff"] if transport == "fifo" else []
    argv = _command(containerd_address, namespace, "run", "--rm", "--rootfs", rootfs, *flags, "survivor",
                    "--", "sh", "-c", SCRIPT)  # fmt: skip
    with open(out_path, "wb") as out:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.PIPE)
    try:
        wait_for_output(out_path, len(b"line 1\n"))
        private_daemon.kill()
        if when == "exits-while-down":
            wait_until_script_ended(out_path)
        else:
            time.sleep(0.3)
        private_daemon.start()
        _, err = proc.communicate(timeout=180)
    finally:
        proc.kill()
        proc.communicate()
    assert out_path.read_bytes() == EXPECTED
    if when == "exits-while-down" and private_daemon.version >= (1, 7):
        # The daemon deleted the task at its restart, and the exit status with it.
        lines = err.decode().splitlines()
        assert proc.returncode == 125, lines
        assert len(lines) == 1, lines
        assert lines[0].startswith("pycontainerd: error: ")
        assert "exit status" in lines[0]
    else:
        assert proc.returncode == 7, err
        assert err == b""
    assert client.containers() == []


def test_cli_run_rm_is_owned_and_cleanup_runs_removes_it_after_the_command_died(
    containerd_address, namespace, client, rootfs
):
    argv = _command(containerd_address, namespace, "run", "--rm", "--rootfs", rootfs, "owned", "--",
                    "sh", "-c", "echo up; sleep 600")  # fmt: skip
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == b"up\n"
        (container,) = client.containers()
        _, pid, _ = container.info.labels[_run.RUN_OWNER_LABEL].split("/")
        assert int(pid) == proc.pid
        assert cleanup_runs(client) == []  # its owner, the command, is alive
        proc.kill()
        proc.wait(TIMEOUT)
        assert cleanup_runs(client) == ["owned"]
    finally:
        proc.kill()
        proc.communicate()
    assert client.containers() == []
    assert client.api.tasks.list() == []


def test_cli_run_without_rm_is_not_owned(containerd_address, namespace, client, rootfs):
    # The container outlives the command on purpose: cleanup_runs() must never take it.
    argv = _command(containerd_address, namespace, "run", "--rootfs", rootfs, "kept", "--", "true")
    ran = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=TIMEOUT)
    assert ran.returncode == 0, ran.stderr
    listing = _command(containerd_address, namespace, "--json", "containers")
    listed = json.loads(subprocess.run(listing, capture_output=True, check=True, timeout=TIMEOUT).stdout)
    assert [c["id"] for c in listed] == ["kept"]
    assert _run.RUN_OWNER_LABEL not in listed[0]["labels"]
    assert cleanup_runs(client) == []
    assert [c.id for c in client.containers()] == ["kept"]
    client.load_container("kept").delete()
    assert not os.path.exists(listed[0]["bundle"])
