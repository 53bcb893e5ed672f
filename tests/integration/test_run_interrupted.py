"""KeyboardInterrupt during run(), at each step: nothing of the container is left behind.

Ctrl-C can land anywhere in run(): while the container is created, the task
created, started, or while its output streams. At each step run() must let the
KeyboardInterrupt through and first remove what exists by then: the task (its
process killed), the container, the FIFOs and the bundle dir, on both transports.
The interrupt is injected by wrapping the public methods run() goes through
(before and after each), and mid-stream with a real SIGINT to the main thread.
"""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from pycontainerd._run import run
from pycontainerd.container import Container, default_state_dir
from pycontainerd.task import Task

HANG = 120  # seconds: only bounds a hang, never asserted as a duration
SCRIPT = "echo started; exec sleep 1000"


def _assert_nothing_left(client) -> None:
    assert client.api.containers.list() == []
    assert client.api.tasks.list() == []
    state = os.path.join(default_state_dir(), client.namespace)
    assert not os.path.exists(state) or os.listdir(state) == [], os.listdir(state)


def _interrupting(monkeypatch, cls: type, name: str, *, after: bool) -> None:
    original = getattr(cls, name)

    def wrapper(self, *args, **kwargs):
        if not after:
            raise KeyboardInterrupt
        original(self, *args, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(cls, name, wrapper)


STEPS = [
    (Container, "new_task", False),  # the container exists, nothing else
    (Container, "new_task", True),  # the task is created (FIFOs or helper made), not started
    (Task, "wait", False),
    (Task, "start", False),
    (Task, "start", True),  # running
]


@pytest.mark.parametrize("handoff", [False, True], ids=["fifo", "handoff"])
@pytest.mark.parametrize(("cls", "name", "after"), STEPS,
                         ids=[f"{'after' if a else 'before'}-{n}" for _, n, a in STEPS])
def test_interrupt_at_each_step(monkeypatch, client, rootfs, tmp_path, handoff, cls, name, after) -> None:
    _interrupting(monkeypatch, cls, name, after=after)
    with open(tmp_path / "out", "wb") as out, pytest.raises(KeyboardInterrupt):
        run(["sh", "-c", SCRIPT], rootfs=rootfs, stdout=out, client=client, handoff=handoff)
    monkeypatch.undo()
    _assert_nothing_left(client)


@pytest.mark.parametrize("handoff", [False, True], ids=["fifo", "handoff"])
def test_ctrl_c_while_streaming(request, client, rootfs, tmp_path, handoff) -> None:
    out_path = tmp_path / "out"
    main = threading.main_thread()
    assert threading.current_thread() is main  # SIGINT is delivered to the main thread

    def interrupt_once_streaming() -> None:
        deadline = time.monotonic() + HANG
        while time.monotonic() < deadline:
            if out_path.exists() and out_path.read_bytes().startswith(b"started"):
                signal.pthread_kill(main.ident, signal.SIGINT)
                return
            time.sleep(0.01)

    killer = threading.Thread(target=interrupt_once_streaming)
    # Ctrl-C as an interactive Python sees it: a process started in the background by a
    # non-interactive shell (CI scripts, `cmd &`) inherits SIGINT ignored.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    request.addfinalizer(lambda: signal.signal(signal.SIGINT, previous))
    with open(out_path, "wb") as out:
        killer.start()
        try:
            with pytest.raises(KeyboardInterrupt):
                run(["sh", "-c", SCRIPT], rootfs=rootfs, stdout=out, client=client, handoff=handoff,
                    timeout=HANG)
        finally:
            killer.join()
    assert out_path.read_bytes() == b"started\n"
    _assert_nothing_left(client)
