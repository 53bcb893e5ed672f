"""pycontainerd.aio surviving restarts: of the calling process (reattach) and of containerd (events,
                                                                                             waits)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap

import pytest

from pycontainerd import aio, errors, oci, stdio
from pycontainerd.api.types import Status
from pycontainerd.events import EventType

pytestmark = pytest.mark.asyncio

HANG = 120.0
LINES = 2_000_000  # seq output: ~15 MB, more than the FIFO buffers while nobody reads


def _spec(rootfs, args, namespace, cid, **kw):
    return oci.build(args=args, rootfs=rootfs, namespace=namespace, container_id=cid, **kw)


CHILD = textwrap.dedent(
    """
    import asyncio, os, sys
    from pycontainerd import aio, oci, stdio

    async def main(address, namespace, rootfs, out_path, lines):
        client = aio.Client(address, namespace=namespace)
        spec = oci.build(args=["sh", "-c", f"seq 1 {lines}; exit 7"], rootfs=rootfs,
                         namespace=namespace, container_id="survivor")
        container = await client.new_container("survivor", spec)
        out = open(out_path, "wb")
        task = await container.new_task(stdio=stdio.streams(stdout=out))
        await task.start()
        print(task.pid, flush=True)
        while os.fstat(out.fileno()).st_size < (1 << 20):
            await asyncio.sleep(0.001)
        os._exit(0)  # abruptly, while the container is still writing

    asyncio.run(main(*sys.argv[1:6]))
    """
)


async def test_reattach_after_the_calling_process_died(aio_client_factory, containerd_address, namespace,
                                                       rootfs,
                                                       tmp_path):
    out_path = tmp_path / "child-stdout"
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CHILD, containerd_address, namespace, rootfs, str(out_path), str(LINES),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(child.communicate(), HANG)
    assert child.returncode == 0, err.decode()
    pid = int(out)
    expected = b"".join(b"%d\n" % n for n in range(1, LINES + 1))
    async with aio_client_factory() as client:
        container = await client.load_container("survivor")
        task = await container.attach_task(stdio.capture())
        assert task.pid == pid
        status = await asyncio.wait_for(task.wait(), HANG)
        first = out_path.read_bytes()
        assert 0 < len(first) < len(expected), "the child was meant to die mid-output"
        second = task.io.stdout_data or b""
        assert status.code == 7
        assert first + second == expected  # nothing lost, nothing duplicated
        assert (await task.delete()).code == 7
        assert not os.path.exists(os.path.join(container.bundle_dir, "survivor-stdout"))
        await container.delete()


async def _read_line(reader: asyncio.StreamReader) -> bytes:
    return await asyncio.wait_for(reader.readline(), HANG)


@pytest.mark.parametrize("kill", [False, True], ids=["stop", "crash"])
async def test_containerd_restart_while_a_task_runs(private_daemon, aio_client_factory, rootfs, kill):
    async with aio_client_factory() as client:
        proc = await aio.create_subprocess_exec("cat", rootfs=rootfs, stdin=aio.PIPE, stdout=aio.PIPE,
                                                client=client)
        proc.stdin.write(b"before\n")
        assert await _read_line(proc.stdout) == b"before\n"
        waiting = asyncio.ensure_future(proc.task.wait())
        await asyncio.to_thread(private_daemon.restart, kill=kill)
        with pytest.raises(errors.ConnectionLostError):
            await asyncio.wait_for(waiting, HANG)
        assert await client.api.health.is_serving(timeout=HANG)
        # the task and its IO survived
        assert (await proc.task.status()).status is Status.RUNNING
        proc.stdin.write(b"after\n")
        assert await _read_line(proc.stdout) == b"after\n"
        proc.stdin.close()
        assert await asyncio.wait_for(proc.wait(), HANG) == 0
        assert await client.containers() == []


async def _next(events: aio.EventMonitor, predicate, what: str, seen: list) -> None:
    async def find() -> None:
        while not any(predicate(e) for e in seen):
            seen.append(await events.__anext__())

    try:
        await asyncio.wait_for(find(), HANG)
    except asyncio.TimeoutError:
        raise AssertionError(f"no {what}; got {seen}") from None


async def test_event_monitor_survives_restart_and_loses_no_exit(private_daemon, aio_client_factory, rootfs):
    async with aio_client_factory() as client, client.events() as events:
        seen: list = []
        container = await client.new_container("a", _spec(rootfs, ["sleep", "100000"], client.namespace, "a"))
        task = await container.new_task()
        await task.start()
        proc = await task.exec("e", oci.process(["sleep", "100000"]), stdio=stdio.null())
        await proc.start()
        await _next(events, lambda e: e[1] is EventType.EXEC_STARTED, "exec-started event", seen)
        await asyncio.to_thread(private_daemon.stop)
        # both processes die while containerd is down: no event can reach us now
        os.kill(proc.pid, signal.SIGKILL)
        os.kill(task.pid, signal.SIGKILL)
        await asyncio.to_thread(private_daemon.start)
        await _next(events, lambda e: e[0] == "a" and e[1] is EventType.EXIT and e[2].process_id == "a",
                    "init exit", seen)
        await _next(events, lambda e: e[0] == "a" and e[1] is EventType.EXIT and e[2].process_id == "e",
                    "exec exit", seen)
        assert events.reconnects >= 1
        # more traffic after the reconnect, so late duplicates would have arrived
        result = await aio.run(["true"], rootfs=rootfs, client=client)
        assert result.returncode == 0
        await _next(events, lambda e: e[0] == result.container_id and e[1] is EventType.EXIT,
                    "exit of the run",
                    seen)
        code = 137 if private_daemon.version < (1, 7) else 255
        exits = [(e[2].pid, e[2].exit_code) for e in seen if e[0] == "a" and e[1] is EventType.EXIT]
        assert sorted(exits) == sorted([(task.pid, code), (proc.pid, code)])
        assert all(e[2].reconciled for e in seen if e[0] == "a" and e[1] is EventType.EXIT)
        if private_daemon.version < (1, 7):
            await task.delete()
        else:  # removed with the leaked shim at the restart
            with pytest.raises(errors.NotFoundError):
                await task.delete()
        await container.delete()
    # after stop(), iteration ends (once what was received is yielded)
    async for _ in events:
        pass
