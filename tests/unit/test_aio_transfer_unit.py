"""The asyncio transfer machinery without a daemon: relay, Transfer, cancel token, transport abort."""

from __future__ import annotations

import asyncio
import http.server
import threading
import time
from collections.abc import Callable, Iterator

import pytest
import urllib3.exceptions

from pycontainerd._cancel import CancelToken, OperationCancelled
from pycontainerd.aio._relay import EventRelay
from pycontainerd.aio.transfer import Transfer
from pycontainerd.registry.progress import Phase, ProgressEvent
from pycontainerd.registry.transport import Transport


def _event(phase: Phase, digest: str, offset: int = 0) -> ProgressEvent:
    return ProgressEvent(phase, digest, "m", 100, offset)


Work = Callable[[Callable[[ProgressEvent], None], CancelToken], str]


def _transfer(work: Work) -> Transfer[ProgressEvent, str]:
    return Transfer(work, blob=lambda e: e.digest,
                    transient=lambda e: e.phase in (Phase.DOWNLOADING, Phase.UPLOADING))


# -- the relay -------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_relay_coalesces_bytes_in_place_and_keeps_every_phase() -> None:
    woken: list[int] = []
    relay: EventRelay[ProgressEvent] = EventRelay(
        asyncio.get_running_loop(), blob=lambda e: e.digest,
        transient=lambda e: e.phase == Phase.DOWNLOADING, wake=lambda: woken.append(1))
    relay.put(_event(Phase.WAITING, "a"))
    for offset in range(1, 1000):
        relay.put(_event(Phase.DOWNLOADING, "a", offset))
        relay.put(_event(Phase.DOWNLOADING, "b", offset))
    relay.put(_event(Phase.DONE, "a", 100))
    relay.put(_event(Phase.DOWNLOADING, "a", 5))  # after a phase change: a new slot, not the old one
    assert len(relay) == 5  # bounded: one bytes event per blob, plus the phases
    await asyncio.sleep(0)
    assert woken == [1]  # one wake-up for the batch
    assert [(e.phase, e.digest, e.offset) for e in relay.take()] == [
        (Phase.WAITING, "a", 0), (Phase.DOWNLOADING, "a", 999), (Phase.DOWNLOADING, "b", 999),
        (Phase.DONE, "a", 100), (Phase.DOWNLOADING, "a", 5),
    ]
    assert relay.take() == []


# -- Transfer ----------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_transfer_delivers_in_order_then_the_result() -> None:
    def work(progress: Callable[[ProgressEvent], None], cancel: CancelToken) -> str:
        for n in range(50):
            progress(_event(Phase.DONE, f"d{n}"))
        return "result"

    async with _transfer(work) as transfer:
        digests = [e.digest async for e in transfer]
    assert digests == [f"d{n}" for n in range(50)]
    assert transfer.result() == "result"


@pytest.mark.asyncio
async def test_transfer_raises_the_works_error_after_its_events() -> None:
    def work(progress: Callable[[ProgressEvent], None], cancel: CancelToken) -> str:
        progress(_event(Phase.RESOLVED, "r"))
        raise LookupError("no such thing")

    seen: list[str] = []

    async def consume() -> None:
        async with _transfer(work) as transfer:
            async for event in transfer:
                seen.append(event.digest)

    with pytest.raises(LookupError, match="no such thing"):
        await consume()
    assert seen == ["r"]


@pytest.mark.asyncio
async def test_cancelling_the_consumer_cancels_the_work_and_waits_for_it() -> None:
    stopped = threading.Event()

    def work(progress: Callable[[ProgressEvent], None], cancel: CancelToken) -> str:
        progress(_event(Phase.DOWNLOADING, "x", 1))
        while not cancel.wait(0.01):
            pass
        time.sleep(0.2)  # the clean-up takes a while: the cancel must wait for it
        stopped.set()
        raise OperationCancelled("stopped")

    async def consume() -> None:
        async with _transfer(work) as transfer:
            async for _ in transfer:
                pass

    task = asyncio.ensure_future(consume())
    await asyncio.sleep(0.1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert stopped.is_set()


@pytest.mark.asyncio
async def test_an_error_in_the_block_stops_the_work() -> None:
    def work(progress: Callable[[ProgressEvent], None], cancel: CancelToken) -> str:
        progress(_event(Phase.RESOLVED, "r"))
        cancel.wait(30)
        cancel.check()
        return "not reached"

    transfer = _transfer(work)

    async def consume() -> None:
        async with transfer:
            async for _ in transfer:
                raise KeyError("consumer")

    started = time.monotonic()
    with pytest.raises(KeyError):
        await consume()
    assert time.monotonic() - started < 5
    with pytest.raises(OperationCancelled):
        transfer.result()


# -- the token and the transport ------------------------------------------------------------------------


def test_token_runs_callbacks_once_and_late_ones_at_once() -> None:
    token = CancelToken()
    calls: list[str] = []
    token.on_set(lambda: calls.append("a"))
    remove = token.on_set(lambda: calls.append("removed"))
    remove()
    token.on_set(lambda: 1 / 0)  # a failing callback does not stop the others
    token.on_set(lambda: calls.append("b"))
    token.set()
    token.set()
    token.on_set(lambda: calls.append("late"))
    assert calls == ["a", "b", "late"]
    with pytest.raises(OperationCancelled, match="pull cancelled"):
        token.check("pull")


@pytest.fixture
def stalling_server() -> Iterator[str]:
    release = threading.Event()

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", "1000000")
            self.end_headers()
            self.wfile.write(b"x" * 1000)
            self.wfile.flush()
            release.wait(30)  # then stall mid-body

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/blob"
    finally:
        release.set()
        server.shutdown()
        server.server_close()


def test_a_cancel_wakes_a_read_stalled_mid_body(stalling_server: str) -> None:
    token = CancelToken()
    transport = Transport(timeout=30, cancel=token)
    response = transport.request("GET", stalling_server)
    threading.Timer(0.3, token.set).start()
    started = time.monotonic()
    with pytest.raises(urllib3.exceptions.HTTPError):
        for _ in response.stream(1 << 16):
            pass
    assert time.monotonic() - started < 5
    with pytest.raises(OperationCancelled):
        transport.request("GET", stalling_server)
    transport.close()
