"""200 cycles of pycontainerd.aio runs leave nothing growing: fds, threads, tasks, FIFOs, loop callbacks."""

from __future__ import annotations

import asyncio
import os
import threading
from typing import Any

import pytest

from pycontainerd import aio
from pycontainerd.aio._pump import loop_pump
from pycontainerd.container import default_state_dir
from pycontainerd.stdio.handoff_io import available as handoff_available

pytestmark = pytest.mark.asyncio

CYCLES = 200
# One cycle takes well under a second; a stuck one must fail the test, not hang the run.
CYCLE_LIMIT = 60


def _variant(i: int) -> dict:
    # FIFO with stdin, FIFO capture, handoff capture: every path, in turn.
    if i % 3 == 0:
        return {"stdin": b"in" * 1000, "capture_output": True}
    return {"capture_output": True, "handoff": i % 3 == 2 and handoff_available()}


async def _run(i: int, args: list[str], **options: Any) -> aio.CompletedContainer:
    try:
        return await asyncio.wait_for(aio.run(args, **options, **_variant(i)), CYCLE_LIMIT)
    except asyncio.TimeoutError:  # TimeoutError only from 3.11
        pytest.fail(f"cycle {i} ({_variant(i)}) did not finish within {CYCLE_LIMIT} s")


async def test_200_cycles_leak_nothing(aio_client_factory, rootfs):
    loop = asyncio.get_running_loop()
    async with aio_client_factory() as client:
        for i in range(3):  # warm-up: the channel, the pool's threads, imports
            await _run(i, ["sh", "-c", "cat >/dev/null; echo ok"], rootfs=rootfs, client=client)
        fds = set(os.listdir("/proc/self/fd"))
        threads = threading.active_count()
        readers = len(loop._selector.get_map())  # type: ignore[attr-defined]
        for i in range(CYCLES):
            result = await _run(i, ["sh", "-c", "cat >/dev/null; echo ok; echo err >&2"], rootfs=rootfs,
                                client=client)
            assert (result.returncode, result.stdout, result.stderr) == (0, b"ok\n", b"err\n")
        assert set(os.listdir("/proc/self/fd")) == fds
        assert threading.active_count() == threads
        assert len(loop._selector.get_map()) == readers  # type: ignore[attr-defined]
        assert loop_pump().active == 0
        assert len(asyncio.all_tasks()) == 1  # only this test
        assert await client.containers() == []
        assert await client.api.tasks.list() == []
        bundles = os.path.join(default_state_dir(), client.namespace)
        assert not os.path.exists(bundles) or os.listdir(bundles) == []
