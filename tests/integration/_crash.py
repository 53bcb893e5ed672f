"""Shared by the containerd-crash tests of ``run()`` and ``pycontainerd run``."""

from __future__ import annotations

import os
import time
from pathlib import Path

LINES = 40
# Numbered lines 50 ms apart after half a second (the Start RPC has returned by then:
# the client rides out a daemon lost while the process runs), then exit 7.
SCRIPT = f"sleep 0.5; i=0; while [ $i -lt {LINES} ]; do i=$((i+1)); echo line $i; sleep 0.05; done; exit 7"
EXPECTED = b"".join(b"line %d\n" % i for i in range(1, LINES + 1))
TIMEOUT = 60


def wait_for_output(path: str | Path, n: int) -> None:
    """Until ``path`` holds at least ``n`` bytes."""
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        if os.path.exists(path) and os.stat(path).st_size >= n:
            return
        time.sleep(0.01)
    raise AssertionError(f"{path} never reached {n} bytes")


def wait_until_script_ended(path: str | Path) -> None:
    """Until the container printed every line and its ``sh`` is gone from the host's /proc.

    A fixed sleep is not enough on a loaded machine: the process could still be
    printing when the daemon comes back, and the test would then see the other case.
    The output flows while containerd is down (shim, helper and pump carry on).
    """
    wait_for_output(path, len(EXPECTED))
    wanted = b"\0".join([b"sh", b"-c", SCRIPT.encode()]) + b"\0"
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        alive = False
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    if f.read() == wanted:
                        alive = True
                        break
            except OSError:
                continue
        if not alive:
            return
        time.sleep(0.05)
    raise AssertionError("the container's process never ended")
