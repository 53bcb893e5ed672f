"""run() across a containerd crash: it waits for the daemon, reattaches and delivers everything.

containerd is SIGKILLed while a run() streams output, at several points (mid-stream,
and so that the process exits while the daemon is down), on both transports. The
shim and the output carry on without the daemon; once it serves again run() waits
again and returns the exit status with every byte. If the daemon does not return
within RECONNECT_TIMEOUT, run() raises ConnectionLostError naming the container, and
cleanup_runs() removes what was left once the daemon is back. containerd 1.7 and 2.x
differ from 1.6 when the process exits while the daemon is down (see below).
"""

from __future__ import annotations

import os
import threading
import time

import pytest
from _crash import EXPECTED, SCRIPT, wait_for_output, wait_until_script_ended

import pycontainerd
from pycontainerd import _run, errors
from pycontainerd._run import cleanup_runs, run

pytestmark = pytest.mark.timeout(240)




@pytest.mark.parametrize("transport", ["fifo", "handoff"])
@pytest.mark.parametrize("when", ["mid-stream", "exits-while-down"])
def test_run_survives_a_containerd_crash(private_daemon, client, rootfs, tmp_path, transport, when):
    out_path = str(tmp_path / "out")
    result: list[object] = []

    def go() -> None:
        with open(out_path, "wb") as out:
            try:
                result.append(run(["sh", "-c", SCRIPT], rootfs=rootfs, stdout=out, client=client,
                                  handoff=transport == "handoff"))  # fmt: skip
            except BaseException as exc:
                result.append(exc)

    thread = threading.Thread(target=go)
    thread.start()
    try:
        wait_for_output(out_path, len(b"line 1\n"))
        private_daemon.kill()
        if when == "exits-while-down":
            wait_until_script_ended(out_path)
        else:
            time.sleep(0.3)
        private_daemon.start()
    finally:
        thread.join(180)
    assert not thread.is_alive(), "run() hung"
    (outcome,) = result
    with open(out_path, "rb") as f:
        assert f.read() == EXPECTED
    if when == "exits-while-down" and private_daemon.version >= (1, 7):
        # containerd 1.7 and 2.x delete a task whose process ended while they were down
        # (they clean its shim up as leaked at start): the status is lost, and run() says so.
        assert isinstance(outcome, errors.ConnectionLostError), repr(outcome)
        assert "exit status" in str(outcome)
    else:
        assert isinstance(outcome, pycontainerd.CompletedContainer), repr(outcome)
        assert outcome.returncode == 7
    assert client.containers() == []


def test_run_gives_up_naming_the_container_and_cleanup_runs_removes_it(
    private_daemon, client, rootfs, monkeypatch
):
    monkeypatch.setattr(_run, "RECONNECT_TIMEOUT", 1.0)
    result: list[object] = []

    def go() -> None:
        try:
            result.append(run(["sh", "-c", "sleep 0.5; echo up; sleep 600"], rootfs=rootfs, stdout=write_end,
                              client=client, handoff=False))  # fmt: skip
        except BaseException as exc:
            result.append(exc)

    read_end, write_end = os.pipe2(os.O_CLOEXEC)
    thread = threading.Thread(target=go)
    try:
        thread.start()
        assert os.read(read_end, 3) == b"up\n"
        private_daemon.kill()
        thread.join(120)
        assert not thread.is_alive(), "run() hung"
    finally:
        private_daemon.start()
    (outcome,) = result
    assert isinstance(outcome, errors.ConnectionLostError), repr(outcome)
    client.connection.connect(timeout=30)  # the channel may still be backing off from the outage
    (left,) = client.containers()
    assert left.id in str(outcome)
    assert left.info.labels[_run.RUN_OWNER_LABEL]
    # The owner (this process) is alive: a cleanup leaves it alone.
    assert cleanup_runs(client) == []
    monkeypatch.setattr(_run, "_owner_alive", lambda token: False)
    assert cleanup_runs(client) == [left.id]
    assert client.containers() == []
    assert client.api.tasks.list() == []
    os.close(read_end)
    os.close(write_end)


def test_owner_tokens() -> None:
    assert _run._owner_alive(_run.owner_token())
    me = _run.owner_token()
    boot, pid, start = me.split("/")
    assert not _run._owner_alive(f"{boot}/{pid}/{int(start) + 1}")  # pid reused by a later process
    assert not _run._owner_alive(f"another-boot/{pid}/{start}")
    assert not _run._owner_alive("garbage")
