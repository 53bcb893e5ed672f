"""Closing stdin of a process that has already exited is quiet: no warning, no error (FIFOs, TTY)."""

from __future__ import annotations

import logging
import os
import threading
import uuid

import pytest

from pycontainerd import oci, stdio

HANG = 120  # seconds: only bounds a hang, never asserted as a duration

# An exception that kills one of our threads (the stdin feeder) fails the test.
pytestmark = pytest.mark.filterwarnings("error::pytest.PytestUnhandledThreadExceptionWarning")


@pytest.mark.parametrize("terminal", [False, True], ids=["pipe", "tty"])
def test_exec_with_open_stdin_exits_without_a_stdin_warning(client, rootfs, caplog, terminal: bool) -> None:
    """``pycontainerd exec -i [-t]``: the exec exits while its stdin source is still open.

    The stdin end is then closed (the feeder's EPIPE, then the IO's close) after
    the process is gone; CloseIO on a process that no longer exists is not a
    failure worth a warning (it printed "failed to close the process's stdin:
    process does not exist ... not found" on most exits).
    """
    cid = f"stdin-{uuid.uuid4().hex[:8]}"
    container = client.new_container(cid, oci.build(args=["sleep", "1000"], rootfs=rootfs,
                                                     namespace=client.namespace, container_id=cid))
    task = container.new_task()
    task.wait()
    task.start()
    reader, writer = os.pipe()
    try:
        with caplog.at_level(logging.WARNING):
            for n in range(5):
                spec = oci.process(["sh", "-c", "exit 3"], tty=terminal)
                process = task.exec(f"e{n}", spec, stdio=stdio.streams(stdin=reader))
                exited = process.wait()
                process.start()
                assert exited.result(HANG).code == 3
                process.close_stdin()
                process.delete()
        assert not [r for r in caplog.records if "stdin" in r.getMessage()], caplog.text
    finally:
        os.close(writer)
        os.close(reader)
        task.kill(9)
        task.wait().result(HANG)
        task.delete()
        container.delete()


def test_close_stdin_racing_the_feeder_raises_nothing_in_a_thread(client, rootfs) -> None:
    """close_stdin() right after start(): the feeder may not have opened its end yet.

    It found the end closed and died with ``ValueError: FIFO end ... is closed``
    in its thread (printed to stderr, and pytest's unhandled-thread warning).
    """
    cid = f"stdin-{uuid.uuid4().hex[:8]}"
    container = client.new_container(cid, oci.build(args=["sleep", "1000"], rootfs=rootfs,
                                                     namespace=client.namespace, container_id=cid))
    task = container.new_task()
    task.wait()
    task.start()
    reader, writer = os.pipe()
    failures: list[BaseException] = []
    previous = threading.excepthook
    threading.excepthook = lambda args: failures.append(args.exc_value)  # type: ignore[assignment]
    try:
        for n in range(20):
            process = task.exec(f"r{n}", oci.process(["cat"]), stdio=stdio.streams(stdin=reader))
            exited = process.wait()
            process.start()
            process.close_stdin()
            assert exited.result(HANG).code == 0
            process.delete()
    finally:
        threading.excepthook = previous
        os.close(writer)
        os.close(reader)
        task.kill(9)
        task.wait().result(HANG)
        task.delete()
        container.delete()
    assert failures == []
