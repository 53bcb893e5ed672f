"""Cancellation of pycontainerd.aio.run() and waits: at every await point, nothing is left behind.

A cancel is injected at each RPC a run makes, in two ways: while the call is
in flight (the daemon may or may not have acted on it) and right after it
answered (the cancel then lands on whatever the run awaits next: the IO's
drain, the handoff's receive, the next call). Each time the run must raise
CancelledError and leave no container, task, FIFO, bundle dir, descriptor,
pool job or loop reader behind. Also: leaving an ``asyncio.timeout()`` block,
cancelling a ``ContainerProcess.wait()``, and a second cancel during the
clean-up.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Iterator

import pytest

from pycontainerd import aio
from pycontainerd.aio import _grpc
from pycontainerd.aio._pump import loop_pump
from pycontainerd.container import default_state_dir
from pycontainerd.stdio.handoff_io import available as handoff_available

pytestmark = pytest.mark.asyncio

HANG = 120.0


@contextlib.contextmanager
def _inject(target: asyncio.Task | None, at: int, mode: str) -> Iterator[list[str]]:
    """Count the RPCs made while ``target`` runs; cancel it during the ``at``-th or right ``after`` it."""
    original = _grpc.AsyncConnection.unary
    seen: list[str] = []
    state = {"fired": False}

    async def unary(self, method, request, **kw):  # type: ignore[no-untyped-def]
        # Every call while the run is active counts, also those of the tasks it spawned (its
        # Wait, its shielded clean-ups): a cancel of the run can land while any of them is awaited.
        mine = target is not None and not state["fired"]
        if mine:
            seen.append(type(request).__name__)
        if mine and len(seen) == at:
            state["fired"] = True
            if mode == "during":
                asyncio.get_running_loop().call_soon(target.cancel)
                return await original(self, method, request, **kw)
            try:
                return await original(self, method, request, **kw)
            finally:
                target.cancel()
        return await original(self, method, request, **kw)

    _grpc.AsyncConnection.unary = unary  # type: ignore[method-assign]
    try:
        yield seen
    finally:
        _grpc.AsyncConnection.unary = original  # type: ignore[method-assign]


def _fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


def _readers() -> int:
    return len(asyncio.get_running_loop()._selector.get_map())  # type: ignore[attr-defined]


async def _nothing_left(client: aio.Client) -> None:
    assert await client.containers() == []
    assert await client.api.tasks.list() == []
    bundles = os.path.join(default_state_dir(), client.namespace)
    assert not os.path.exists(bundles) or os.listdir(bundles) == []
    assert loop_pump().active == 0


def _run_kwargs(variant: str) -> dict:
    if variant == "stdin":
        return {"stdin": b"x" * 100000, "capture_output": True}
    return {"capture_output": True, "handoff": variant == "handoff"}


@pytest.mark.parametrize("variant", ["fifo", "handoff", "stdin"])
async def test_cancel_at_every_rpc_leaves_nothing(aio_client_factory, rootfs, variant):
    if variant == "handoff" and not handoff_available():
        pytest.skip("pcd-handoff is not built")
    args = ["sh", "-c", "cat >/dev/null; echo out; echo err >&2; exit 3"]
    async with aio_client_factory() as client:
        # A full run first: how many RPCs it makes, and the baseline of fds and readers.
        this = asyncio.current_task()
        with _inject(this, 0, "after") as calls:
            result = await aio.run(args, rootfs=rootfs, client=client, **_run_kwargs(variant))
        assert result.returncode == 3
        total = len(calls)
        for step in ("CreateContainerRequest", "CreateTaskRequest", "StartRequest", "WaitRequest",
                     "DeleteTaskRequest", "DeleteContainerRequest"):
            assert step in calls, calls
        fds, readers = _fds(), _readers()
        for mode in ("during", "after"):
            for at in range(1, total + 1):
                run = asyncio.ensure_future(aio.run(args, rootfs=rootfs, client=client,
                                                    **_run_kwargs(variant)))
                with _inject(run, at, mode) as seen:
                    try:
                        await asyncio.wait_for(asyncio.shield(run), HANG)
                    except asyncio.CancelledError:
                        pass
                    else:
                        # A cancel after the last RPC (or during it) may land when the run has finished.
                        assert at >= total - 1, (mode, at, seen)
                assert run.cancelled() or run.done(), (mode, at, seen)
                await _nothing_left(client)
                assert _fds() == fds, (mode, at, seen)
                assert _readers() == readers, (mode, at, seen)


async def test_leaving_a_timeout_block_kills_and_removes(aio_client_factory, rootfs):
    async with aio_client_factory() as client:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(1.0):
                await aio.run(["sleep", "1000"], rootfs=rootfs, capture_output=True, client=client)
        await _nothing_left(client)
        # The run's own timeout too.
        with pytest.raises(TimeoutError):
            await aio.run(["sleep", "1000"], rootfs=rootfs, timeout=0.5, client=client)
        await _nothing_left(client)


async def test_cancel_while_waiting_for_the_exit(aio_client_factory, rootfs):
    async with aio_client_factory() as client:
        run = asyncio.ensure_future(aio.run(["sh", "-c", "echo started; sleep 1000"], rootfs=rootfs,
                                            capture_output=True, client=client))
        while not await client.api.tasks.list():
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.2)
        run.cancel()
        with pytest.raises(asyncio.CancelledError):
            await run
        await _nothing_left(client)


async def test_second_cancel_during_cleanup_still_cleans_up(aio_client_factory, rootfs):
    async with aio_client_factory() as client:
        run = asyncio.ensure_future(aio.run(["sleep", "1000"], rootfs=rootfs, capture_output=True,
                                            client=client))
        while not await client.api.tasks.list():
            await asyncio.sleep(0.01)
        run.cancel()
        await asyncio.sleep(0)
        run.cancel()
        with pytest.raises(asyncio.CancelledError):
            await run
        # The clean-up goes on in the background (bounded) after a second cancel.
        for _ in range(int(HANG * 10)):
            if not await client.containers():
                break
            await asyncio.sleep(0.1)
        await _nothing_left(client)


async def test_cancelling_a_subprocess_wait_kills_and_removes(aio_client_factory, rootfs):
    async with aio_client_factory() as client:
        proc = await aio.create_subprocess_exec("sh", "-c", "echo up; sleep 1000", rootfs=rootfs,
                                                stdout=aio.PIPE, client=client)
        assert await asyncio.wait_for(proc.stdout.readline(), HANG) == b"up\n"
        waiting = asyncio.ensure_future(proc.wait())
        await asyncio.sleep(0.1)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        await _nothing_left(client)
