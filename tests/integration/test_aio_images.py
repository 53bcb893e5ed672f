"""pycontainerd.aio's image and registry methods against a real containerd and a loopback registry.

Each method round-trips; progress arrives in order through the callback and the
async iterator; cancelling a pull stalled mid-layer, or an import fed by a slow
pipe, returns promptly and leaves nothing; bad input raises what the sync client raises.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _leftovers import NOTHING, leftovers
from _registry import upload

from pycontainerd import aio, errors
from pycontainerd import testing_images as ti
from pycontainerd import testing_registry as tr
from pycontainerd.registry import InvalidReferenceError, Phase, ProgressEvent

pytestmark = pytest.mark.asyncio

# How long a cancel may take to come back (the stall it cuts short is far longer).
CANCEL_BOUND = 10.0
STALL = 30.0
# A pull's phases of one layer, in the order they must arrive.
PULL_ORDER = [Phase.WAITING, Phase.DOWNLOADING, Phase.VERIFYING, Phase.DONE, Phase.UNPACKING, Phase.UNPACKED]


@pytest.fixture(scope="module")
def registry() -> Iterator[tr.PrivateRegistry]:
    with tr.PrivateRegistry() as r:
        yield r


@pytest.fixture(scope="module")
def big_image(registry: tr.PrivateRegistry) -> ti.BuiltImage:
    # 4 MiB uncompressed: downloads in several chunks, so a stall can cut it mid-layer.
    big = ti.Layer([ti.file("big", os.urandom(4 << 20))], gzip=False)
    built = ti.build_image([ti.busybox_layer(), big], cmd=["wc", "-c", "/big"])
    upload(registry, "aio/big", "1", built)
    return built


def _small(text: str) -> ti.BuiltImage:
    return ti.build_image([ti.busybox_layer(), ti.Layer([ti.file("m", text.encode())])], cmd=["cat", "/m"])


async def _drain(transfer: Any) -> list[ProgressEvent]:
    async with transfer:
        return [event async for event in transfer]


def _in_order(events: list[ProgressEvent], digest: str, order: list[Phase]) -> list[Phase]:
    """The phases of ``digest``, checked to follow ``order`` (repeats of one phase allowed)."""
    phases = [e.phase for e in events if e.digest == digest]
    ranks = [order.index(p) for p in phases]
    assert ranks == sorted(ranks), phases
    offsets = [e.offset for e in events if e.digest == digest and e.phase == Phase.DOWNLOADING]
    assert offsets == sorted(offsets)
    return phases


async def test_import_list_get_tag_export_reimport(aio_client_factory: Any, client: Any,
                                                   tmp_path: Path) -> None:
    built = _small("round trip\n")
    archive = ti.write_oci_archive(tmp_path / "in.tar", {"docker.io/aio/rt:1": built})
    reports: list[tuple[str, int, int]] = []
    async with aio_client_factory() as aclient:
        (image,) = await aclient.import_archive(archive, progress=lambda *r: reports.append(r))
        assert image.name == "docker.io/aio/rt:1"
        assert image.target.digest == built.target["digest"]
        # Every file's last report is its whole size, after its partial ones.
        for name in {r[0] for r in reports}:
            mine = [r for r in reports if r[0] == name]
            assert mine[-1][1] == mine[-1][2]
            assert [r[1] for r in mine] == sorted(r[1] for r in mine)
        assert [i.name for i in await aclient.list_images()] == ["docker.io/aio/rt:1"]
        assert (await aclient.get_image("docker.io/aio/rt:1")).target == image.target
        tagged = await aclient.tag("docker.io/aio/rt:1", "docker.io/aio/rt:2")
        assert tagged.target.digest == image.target.digest
        with pytest.raises(errors.AlreadyExistsError):
            await aclient.tag("docker.io/aio/rt:1", "docker.io/aio/rt:2")
        assert sorted(i.name for i in await aclient.list_images('name=="docker.io/aio/rt:2"')) == \
            ["docker.io/aio/rt:2"]
        out = tmp_path / "out.tar"
        await aclient.export_archive(["docker.io/aio/rt:1", tagged], out)
        for name in ("docker.io/aio/rt:1", "docker.io/aio/rt:2"):
            await aclient.delete_image(name, sync=True)
        with pytest.raises(errors.NotFoundError):
            await aclient.get_image("docker.io/aio/rt:1")
        again = await aclient.import_archive(out)
        assert sorted(i.name for i in again) == ["docker.io/aio/rt:1", "docker.io/aio/rt:2"]
        assert {i.target.digest for i in again} == {built.target["digest"]}
        result = await aio.run([], image="docker.io/aio/rt:1", pull="never", client=aclient,
                               capture_output=True)
        assert result.stdout == b"round trip\n"
        for name in ("docker.io/aio/rt:1", "docker.io/aio/rt:2"):
            await aclient.delete_image(name, sync=True)
    assert leftovers(client) == NOTHING


async def test_push_delete_pull_run_with_progress_both_ways(aio_client_factory: Any, client: Any,
                                                            registry: tr.PrivateRegistry,
                                                            tmp_path: Path) -> None:
    built = _small("from the registry\n")
    archive = ti.write_oci_archive(tmp_path / "p.tar", {"docker.io/aio/p:1": built})
    ref = f"{registry.host}/aio/p:1"
    async with aio_client_factory() as aclient:
        (local,) = await aclient.import_archive(archive, unpack=False)
        pushed_events: list[ProgressEvent] = []
        pushed = await aclient.push(local, ref, plain_http=True, progress=pushed_events.append)
        assert pushed.digest == built.target["digest"]
        uploaded = {e.digest for e in pushed_events if e.phase == Phase.DONE}
        assert uploaded >= {layer["digest"] for layer in built.layers}
        await aclient.delete_image(local.name, sync=True)

        # The callback form.
        loop_thread = threading.get_ident()
        callback_events: list[ProgressEvent] = []

        def progress(event: ProgressEvent) -> None:
            assert threading.get_ident() == loop_thread  # called on the loop
            callback_events.append(event)

        pulled = await aclient.pull(ref, plain_http=True, progress=progress)
        assert pulled.name == ref
        assert pulled.target.digest == pushed.digest
        assert callback_events[0].phase == Phase.RESOLVED
        for layer in built.layers:
            phases = _in_order(callback_events, layer["digest"], PULL_ORDER)
            assert phases[-1] == Phase.UNPACKED
        result = await aio.run([], image=ref, pull="never", client=aclient, capture_output=True)
        assert result.stdout == b"from the registry\n"
        await aclient.delete_image(ref, sync=True)

        # The async-iterator form, on a view of the client.
        iterated: list[ProgressEvent] = []
        async with aclient.with_namespace(aclient.namespace).pulling(ref, plain_http=True) as transfer:
            async for event in transfer:
                iterated.append(event)
        assert transfer.result().target.digest == pushed.digest
        assert iterated[0].phase == Phase.RESOLVED
        for layer in built.layers:
            # The same steps per blob (the downloads of several blobs interleave freely).
            steps = [p for p in _in_order(iterated, layer["digest"], PULL_ORDER) if p != Phase.DOWNLOADING]
            assert steps == [p for p in _in_order(callback_events, layer["digest"], PULL_ORDER)
                             if p != Phase.DOWNLOADING]

        # A push as an iterator: the registry has every blob now (the tag is put again).
        async with aclient.pushing(ref, ref, plain_http=True) as pushing:
            again = [e async for e in pushing]
        assert {e.phase for e in again if e.digest != pushed.digest} == {Phase.EXISTS}
        assert again[-1] == ProgressEvent(Phase.DONE, pushed.digest, pushed.media_type, pushed.size,
                                          pushed.size)
        assert pushing.result().digest == pushed.digest
        await aclient.delete_image(ref, sync=True)
    assert leftovers(client) == NOTHING


async def test_a_slow_consumer_gets_coalesced_bytes_but_every_phase(aio_client_factory: Any, client: Any,
                                                                    registry: tr.PrivateRegistry,
                                                                    big_image: ti.BuiltImage) -> None:
    ref = f"{registry.host}/aio/big:1"
    async with aio_client_factory() as aclient:
        async with aclient.pulling(ref, plain_http=True, unpack=False) as transfer:
            await transfer.wait()  # take nothing while the pull runs: the events wait, coalesced
            events = [e async for e in transfer]
        big = big_image.layers[1]["digest"]
        phases = [e.phase for e in events if e.digest == big]
        assert phases == [Phase.WAITING, Phase.DOWNLOADING, Phase.VERIFYING, Phase.DONE]
        assert [e.offset for e in events if e.digest == big and e.phase == Phase.DOWNLOADING] == \
            [big_image.layers[1]["size"]]
        await aclient.delete_image(ref, sync=True)
    assert leftovers(client) == NOTHING


@pytest.mark.parametrize("form", ["callback", "iterator"])
async def test_cancelling_a_pull_stalled_mid_layer_is_prompt_and_leaves_nothing(
        aio_client_factory: Any, client: Any, registry: tr.PrivateRegistry, big_image: ti.BuiltImage,
        form: str) -> None:
    big = big_image.layers[1]
    with tr.FaultProxy(registry.host) as proxy:
        proxy.faults.append(tr.Fault("GET", f"/blobs/{big['digest']}", stall=STALL, stall_after=(1 << 20) + 7,
                                     times=-1))
        ref = f"{proxy.host}/aio/big:1"
        async with aio_client_factory() as aclient:
            mid_layer = asyncio.Event()

            def progress(event: ProgressEvent) -> None:
                if event.digest == big["digest"] and event.phase == Phase.DOWNLOADING:
                    mid_layer.set()

            async def pull() -> None:
                if form == "callback":
                    await aclient.pull(ref, plain_http=True, progress=progress)
                    return
                async with aclient.pulling(ref, plain_http=True) as transfer:
                    async for event in transfer:
                        progress(event)

            task = asyncio.ensure_future(pull())
            await asyncio.wait_for(mid_layer.wait(), 60)
            await asyncio.sleep(0.3)  # well inside the stall
            started = time.monotonic()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert time.monotonic() - started < CANCEL_BOUND
        assert leftovers(client) == NOTHING


async def test_cancelling_a_stalled_push_is_prompt_and_keeps_the_image(aio_client_factory: Any, client: Any,
                                                                     registry: tr.PrivateRegistry,
                                                                     tmp_path: Path) -> None:
    built = _small("pushed\n")
    archive = ti.write_oci_archive(tmp_path / "s.tar", {"docker.io/aio/s:1": built})
    with tr.FaultProxy(registry.host) as proxy:
        # Every upload's answer hangs: the push sits in a read of its first PUT.
        proxy.faults.append(tr.Fault("PUT", "/blobs/uploads/", stall=STALL, times=-1))
        async with aio_client_factory() as aclient:
            (local,) = await aclient.import_archive(archive, unpack=False)
            task = asyncio.ensure_future(aclient.push(local, f"{proxy.host}/aio/s:1", plain_http=True))
            for _ in range(600):
                if any(method == "PUT" for method, *_ in proxy.log) or proxy.faults[0].hits:
                    break
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.3)
            started = time.monotonic()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert time.monotonic() - started < CANCEL_BOUND
            assert [i.name for i in await aclient.list_images()] == ["docker.io/aio/s:1"]
            await aclient.delete_image("docker.io/aio/s:1", sync=True)
    assert leftovers(client) == NOTHING


async def test_cancelling_an_import_from_a_slow_pipe_leaves_nothing(aio_client_factory: Any, client: Any,
                                                                   tmp_path: Path) -> None:
    big = ti.Layer([ti.file("big", os.urandom(8 << 20))], gzip=False)
    built = ti.build_image([ti.busybox_layer(), big], cmd=["true"])
    data = Path(ti.write_oci_archive(tmp_path / "big.tar", {"docker.io/aio/slow:1": built})).read_bytes()
    read_fd, write_fd = os.pipe()
    stop = threading.Event()

    def feed() -> None:
        # 64 KiB every 20 ms: the 8 MiB layer alone takes seconds.
        with open(write_fd, "wb", buffering=0) as pipe:
            for pos in range(0, len(data), 64 << 10):
                if stop.is_set():
                    return
                try:
                    pipe.write(data[pos : pos + (64 << 10)])
                except BrokenPipeError:
                    return
                time.sleep(0.02)

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    try:
        with open(read_fd, "rb") as source:
            async with aio_client_factory() as aclient:
                reading_big = asyncio.Event()

                def progress(name: str, done: int, size: int) -> None:
                    if size >= 8 << 20 and done < size:
                        reading_big.set()

                task = asyncio.ensure_future(aclient.import_archive(source, progress=progress))
                await asyncio.wait_for(reading_big.wait(), 60)
                started = time.monotonic()
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await task
                assert time.monotonic() - started < CANCEL_BOUND
    finally:
        stop.set()
        feeder.join(10)
    assert leftovers(client) == NOTHING


async def test_bad_input_raises_the_sync_clients_errors(aio_client_factory: Any, client: Any,
                                                        registry: tr.PrivateRegistry) -> None:
    async with aio_client_factory() as aclient:
        with pytest.raises(InvalidReferenceError) as sync_error:
            client.pull("Not/Valid:ref", plain_http=True)
        with pytest.raises(InvalidReferenceError) as aio_error:
            await aclient.pull("Not/Valid:ref", plain_http=True)
        assert str(aio_error.value) == str(sync_error.value)
        with pytest.raises(InvalidReferenceError):
            await _drain(aclient.pulling("Not/Valid:ref", plain_http=True))
        with pytest.raises(errors.NotFoundError):
            await aclient.pull(f"{registry.host}/aio/none:1", plain_http=True)
        with pytest.raises(errors.NotFoundError):
            await aclient.get_image("docker.io/aio/none:1")
        with pytest.raises(errors.NotFoundError):
            await aclient.delete_image("docker.io/aio/none:1")
        with pytest.raises(errors.NotFoundError):
            await aclient.push("docker.io/aio/none:1", f"{registry.host}/aio/none:1", plain_http=True)
        with pytest.raises(ValueError, match="at least one image"):
            await aclient.export_archive([], "/dev/null")
    closed = aio_client_factory()
    await closed.close()
    with pytest.raises(ValueError, match="closed"):
        await closed.get_image("docker.io/aio/none:1")
    assert leftovers(client) == NOTHING
