"""pycontainerd.aio without a daemon: the error mapping over grpc.aio, the surface, stdio on the loop."""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import os
import select
import threading
import time
from collections.abc import Iterator

import grpc
import pytest
from google.protobuf import empty_pb2

import pycontainerd
from pycontainerd import aio, errors, stdio
from pycontainerd._proto.services.version.v1 import version_pb2, version_pb2_grpc
from pycontainerd.aio import _grpc as aio_grpc
from pycontainerd.aio import api as aio_api
from pycontainerd.aio._pump import loop_pump
from pycontainerd.aio._stdio import FIFOLoopIO
from pycontainerd.api.containers import ContainersService
from pycontainerd.api.tasks import TasksService
from pycontainerd.client import Client
from pycontainerd.container import Container
from pycontainerd.stdio.fifo import FIFOSet
from pycontainerd.task import Process, Task

FAILURE_CODES = [code for code in grpc.StatusCode if code is not grpc.StatusCode.OK]


class RefusingVersion(version_pb2_grpc.VersionServicer):
    """Aborts with the status code named in the request metadata ("code"), message in "msg"."""

    def Version(self, request: empty_pb2.Empty, context: grpc.ServicerContext) -> version_pb2.VersionResponse:
        md = dict(context.invocation_metadata())
        if "code" not in md:
            return version_pb2.VersionResponse(version=md.get("containerd-namespace", ""), revision="fake")
        context.abort(grpc.StatusCode[md["code"]], md["msg"])


@pytest.fixture(scope="module")
def server_socket(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    path = str(tmp_path_factory.mktemp("aiosrv") / "s.sock")
    server = grpc.server(concurrent.futures.ThreadPoolExecutor(max_workers=4))
    version_pb2_grpc.add_VersionServicer_to_server(RefusingVersion(), server)
    server.add_insecure_port(f"unix://{path}")
    server.start()
    yield path
    server.stop(None)


@pytest.mark.asyncio
async def test_every_code_maps_as_in_the_sync_client(server_socket: str) -> None:
    conn = aio_grpc.AsyncConnection(server_socket, namespace="errs")
    stub = conn.stub(version_pb2_grpc.VersionStub)
    try:
        for code in FAILURE_CODES:
            with pytest.raises(errors.ContainerdError) as info:
                await conn.unary(stub.Version, empty_pb2.Empty(),
                                 metadata=[("code", code.name), ("msg", "no")])
            assert type(info.value) is errors.class_for(code), code
            assert info.value.code is code
            assert isinstance(info.value.__cause__, grpc.RpcError)
        with pytest.raises(errors.ConflictError):
            await conn.unary(stub.Version, empty_pb2.Empty(),
                             metadata=[("code", "FAILED_PRECONDITION"), ("msg", 'x "y": conflict')])
    finally:
        await conn.close()


@pytest.mark.asyncio
async def test_namespace_metadata_and_views(server_socket: str) -> None:
    async with aio.Client(server_socket, namespace="one") as client:
        assert (await client.version()).version == "one"
        assert (await client.with_namespace("two").version()).version == "two"
        assert client.with_lease("l1").lease == "l1"
    with pytest.raises(ValueError, match="closed"):
        await client.version()


@pytest.mark.asyncio
async def test_missing_socket_is_unavailable_naming_it(tmp_path) -> None:
    async with aio.Client(str(tmp_path / "none.sock"), namespace="x") as client:
        with pytest.raises(errors.UnavailableError, match="does not exist"):
            await client.version()
        with pytest.raises(errors.UnavailableError):
            await client.connect(timeout=0.2)


# -- the surface: the asyncio client covers the sync one ------------------------------------------

# Every public name of a sync class the asyncio twin does not have, and why.
DELIBERATE = {
    "Client": {},
    "Container": {},
    "Task": {},
    "Process": {},
    "TasksService": {"wait_future": "aio: wait() is a coroutine; wrap it in a task to arm it early"},
    "ContainersService": {"list_stream": "aio: list() returns the whole list"},
}
# Public names only the asyncio twin has, and why.
EXTRA = {
    "Client": {
        "connect": "the sync Connection.connect, surfaced",
        "events": "the monitor as an async iterator",
        "pulling": "pull with its progress as an async iterator (a Transfer)",
        "pushing": "push with its progress as an async iterator (a Transfer)",
    },
}
# Parameters of a shared method that differ, and why.
PARAMS: dict[tuple[str, str], str] = {}

PAIRS = [
    ("Client", Client, aio.Client),
    ("Container", Container, aio.Container),
    ("Task", Task, aio.Task),
    ("Process", Process, aio.Process),
    ("TasksService", TasksService, aio_api.AsyncTasksService),
    ("ContainersService", ContainersService, aio_api.AsyncContainersService),
]


def _public(cls: type) -> set[str]:
    return {name for name in dir(cls) if not name.startswith("_")}


@pytest.mark.parametrize(("name", "sync", "async_"), PAIRS, ids=[p[0] for p in PAIRS])
def test_surface_matches_but_for_listed_differences(name: str, sync: type, async_: type) -> None:
    missing = _public(sync) - _public(async_)
    assert missing == set(DELIBERATE[name]), f"{name}: missing {missing - set(DELIBERATE[name])}"
    extra = _public(async_) - _public(sync)
    assert extra == set(EXTRA.get(name, {})), f"{name}: unlisted extras {extra}"
    for attr in sorted(_public(sync) & _public(async_)):
        s, a = inspect.getattr_static(sync, attr), inspect.getattr_static(async_, attr)
        if not callable(s) or isinstance(s, (property, type)):
            continue
        if inspect.iscoroutinefunction(s) or not inspect.isfunction(s):
            continue
        sync_params = list(inspect.signature(s).parameters)
        async_params = list(inspect.signature(a).parameters)
        if (name, attr) in PARAMS:
            assert set(async_params) < set(sync_params), (name, attr)
            continue
        assert sync_params == async_params, (name, attr, sync_params, async_params)
        # What blocks in the sync client is awaited in the asyncio one.
        if attr not in {"with_namespace", "with_lease", "events"}:
            assert inspect.iscoroutinefunction(a) or attr in {"stub"}, (name, attr)


def test_run_takes_the_sync_run_arguments() -> None:
    sync = inspect.signature(pycontainerd.run).parameters
    asynchronous = inspect.signature(aio.run).parameters
    assert list(sync) == list(asynchronous)


# -- stdio on the loop, with a plain writer standing in for the shim ------------------------------


def _shim_writer(path: str, data: bytes) -> threading.Thread:
    def run() -> None:
        fd = os.open(path, os.O_WRONLY)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.close(fd)

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def _shim_reader(path: str, into: list[bytes]) -> threading.Thread:
    def run() -> None:
        fd = os.open(path, os.O_RDONLY)
        while chunk := os.read(fd, 65536):
            into.append(chunk)
        os.close(fd)

    thread = threading.Thread(target=run)
    thread.start()
    return thread


@pytest.mark.asyncio
async def test_fifo_io_on_the_loop_delivers_every_byte_then_resolves(tmp_path) -> None:
    payload, out, err = os.urandom(3 << 20), os.urandom((1 << 20) + 1), b"e" * 65537
    fifos = FIFOSet.new(str(tmp_path), "p", stdin=True, terminal=False)
    io = FIFOLoopIO.open(stdio.capture(payload), fifos)
    # The shim's side: a reader of stdin first (as after Create), then writers of the outputs.
    got: list[bytes] = []
    reader = _shim_reader(fifos.stdin, got)
    while not os.path.exists(fifos.stdin):
        await asyncio.sleep(0.001)
    await asyncio.sleep(0.05)
    closed = asyncio.get_running_loop().create_future()

    async def closer() -> None:
        closed.set_result(None)

    io.set_stdin_closer(closer)
    await io.process_created()
    writers = [_shim_writer(fifos.stdout, out), _shim_writer(fifos.stderr, err)]
    await asyncio.wait_for(io.done, 60)
    await asyncio.wait_for(closed, 60)  # the source's end closed stdin, then ran the closer
    for t in [reader, *writers]:
        await asyncio.to_thread(t.join)
    assert (io.stdout_data, io.stderr_data) == (out, err)
    assert b"".join(got) == payload
    await io.aclose()
    assert not os.path.exists(fifos.stdout)
    assert loop_pump().active == 0


def _late_shim_reader(path: str, into: list[bytes], *, delay: float, deadline: float) -> threading.Thread:
    # containerd's shim opens its stdin reader in a goroutine (containerd/fifo's OpenFifo with
    # O_NONBLOCK returns before open(2)), so it may come after Create has answered. Opened
    # O_NONBLOCK and polled so that a writer that never comes fails the test instead of hanging it.
    def run() -> None:
        time.sleep(delay)
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        try:
            poller = select.poll()
            poller.register(fd, select.POLLIN)
            end = time.monotonic() + deadline
            while time.monotonic() < end:
                if not poller.poll(100):
                    continue
                chunk = os.read(fd, 65536)
                if not chunk:
                    into.append(b"<EOF>")
                    return
                into.append(chunk)
        finally:
            os.close(fd)

    thread = threading.Thread(target=run)
    thread.start()
    return thread


@pytest.mark.asyncio
async def test_stdin_reaches_a_shim_reader_that_opens_after_create(tmp_path) -> None:
    payload = os.urandom(100_000)
    fifos = FIFOSet.new(str(tmp_path), "late", stdin=True, terminal=False)
    io = FIFOLoopIO.open(stdio.capture(payload), fifos)
    closed = asyncio.get_running_loop().create_future()

    async def closer() -> None:
        closed.set_result(None)

    io.set_stdin_closer(closer)
    await io.process_created()  # no reader yet: the writer's open must wait for it, not give up
    got: list[bytes] = []
    reader = _late_shim_reader(fifos.stdin, got, delay=0.2, deadline=10)
    await asyncio.to_thread(reader.join)
    assert b"".join(got) == payload + b"<EOF>"
    await asyncio.wait_for(closed, 10)  # and CloseIO still follows the source's end
    await io.aclose()
    assert loop_pump().active == 0


@pytest.mark.asyncio
async def test_closing_stdin_while_its_writer_waits_for_the_reader(tmp_path) -> None:
    fifos = FIFOSet.new(str(tmp_path), "never", stdin=True, terminal=False)
    io = FIFOLoopIO.open(stdio.capture(b"x"), fifos)
    threads = threading.active_count()  # the shared pool's workers are up now
    closed: list[bool] = []

    async def closer() -> None:
        closed.append(True)

    io.set_stdin_closer(closer)
    await io.process_created()  # no reader ever comes
    await asyncio.sleep(0.05)
    await io.close_stdin()  # the pending open is given up, and CloseIO still goes out
    assert closed == [True]
    assert threading.active_count() == threads
    await io.aclose()  # no thread, descriptor or FIFO left
    assert threading.active_count() == threads
    assert not os.path.exists(fifos.stdin)
    assert loop_pump().active == 0


@pytest.mark.asyncio
async def test_closing_cancels_and_removes_without_a_writer(tmp_path) -> None:
    selector = asyncio.get_running_loop()._selector  # type: ignore[attr-defined]
    readers = len(selector.get_map())  # the loop's own self-pipe
    fifos = FIFOSet.new(str(tmp_path), "q", stdin=False, terminal=False)
    io = FIFOLoopIO.open(stdio.capture(), fifos)
    await asyncio.sleep(0.05)
    assert not io.done.done()  # no writer ever came: no EOF
    await io.aclose()
    assert io.done.done()
    assert not os.path.exists(fifos.stdout)
    assert loop_pump().active == 0
    assert len(selector.get_map()) == readers  # the pool's eventfds are watched only while jobs run


@pytest.mark.asyncio
async def test_attach_strategies_are_refused() -> None:
    from pycontainerd.aio._stdio import open_io

    with pytest.raises(TypeError, match="copies stdio itself"):
        open_io(stdio.attach(lambda direct: None), "/tmp", "x", terminal=False)


@pytest.mark.asyncio
async def test_wait_for_never_drops_a_cancel_that_lands_with_the_result() -> None:
    from pycontainerd.aio._util import wait_for

    loop = asyncio.get_running_loop()
    inner: asyncio.Future[int] = loop.create_future()
    waiter = asyncio.ensure_future(wait_for(inner, 10))
    await asyncio.sleep(0)
    inner.set_result(1)  # the result and the cancel arrive in the same turn of the loop
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter


@pytest.mark.asyncio
async def test_shielded_work_finishes_through_two_cancels() -> None:
    from pycontainerd.aio._util import shielded

    finished = asyncio.Event()

    async def work() -> None:
        await asyncio.sleep(0.05)
        finished.set()

    task = asyncio.ensure_future(shielded(work()))
    await asyncio.sleep(0)
    task.cancel()
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert finished.is_set()
