"""200 cycles of pycontainerd.aio runs leave nothing growing: fds, threads, tasks, FIFOs, loop callbacks."""

from __future__ import annotations

import asyncio
import os
import threading

import pytest

from pycontainerd import aio
from pycontainerd.aio._pump import loop_pump
from pycontainerd.container import default_state_dir
from pycontainerd.stdio.handoff_io import available as handoff_available

pytestmark = pytest.mark.asyncio

CYCLES = 200


def _variant(i: int) -> dict:
    # FIFO with stdin, FIFO capture, handoff capture: every path, in turn.
    if i % 3 == 0:
        return {"stdin": b"in" * 1000, "capture_output": True}
    return {"capture_output": True, "handoff": i % 3 == 2 and handoff_available()}


async def test_200_cycles_leak_nothing(aio_client_factory, rootfs):
    loop = asyncio.get_running_loop()
    async with aio_client_factory() as client:
        for i in range(3):  # warm-up: the channel, the pool's threads, imports
            await aio.run(["sh", "-c", "cat >/dev/null; echo ok"], rootfs=rootfs, client=client,
                          **_variant(i))
        fds = set(os.listdir("/proc/self/fd"))
        threads = threading.active_count()
        readers = len(loop._selector.get_map())  # type: ignore[attr-defined]
        for i in range(CYCLES):
            result = await aio.run(["sh", "-c", "cat >/dev/null; echo ok; echo err >&2"], rootfs=rootfs,
                                   client=client, **_variant(i))
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
