"""Connection, Client and API behaviour against an in-process fake containerd (real grpc, unix socket)."""

from __future__ import annotations

import concurrent.futures
import os
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import any_pb2, timestamp_pb2

from pycontainerd import errors, typeurl
from pycontainerd._grpc import MAX_MESSAGE_SIZE, socket_path, validate_namespace
from pycontainerd._proto.events import task_pb2 as events_task_pb2
from pycontainerd._proto.health.v1 import health_pb2
from pycontainerd._proto.services.containers.v1 import containers_pb2, containers_pb2_grpc
from pycontainerd._proto.services.events.v1 import events_pb2, events_pb2_grpc
from pycontainerd._proto.services.tasks.v1 import tasks_pb2, tasks_pb2_grpc
from pycontainerd._proto.services.version.v1 import version_pb2, version_pb2_grpc
from pycontainerd.api import events as ev
from pycontainerd.api.health import CHECK_METHOD, ServingStatus
from pycontainerd.api.types import ExitStatus, Status
from pycontainerd.client import Client

GO_ZERO = -62135596800


@dataclass
class Recorder:
    metadata: list[dict[str, str]] = field(default_factory=list)
    wait_arrived: threading.Event = field(default_factory=threading.Event)
    wait_release: threading.Event = field(default_factory=threading.Event)
    wait_cancelled: threading.Event = field(default_factory=threading.Event)
    subscribe_filters: list[list[str]] = field(default_factory=list)
    stream_release: threading.Event = field(default_factory=threading.Event)
    payload_size: int = 0
    envelopes: list[events_pb2.Envelope] = field(default_factory=list)


class FakeVersion(version_pb2_grpc.VersionServicer):
    def __init__(self, rec: Recorder) -> None:
        self.rec = rec

    def Version(self, request: Any, context: grpc.ServicerContext) -> version_pb2.VersionResponse:
        self.rec.metadata.append(dict(context.invocation_metadata()))
        return version_pb2.VersionResponse(version="v" + "x" * self.rec.payload_size, revision="fake")


class FakeTasks(tasks_pb2_grpc.TasksServicer):
    def __init__(self, rec: Recorder) -> None:
        self.rec = rec

    def Wait(self, request: Any, context: grpc.ServicerContext) -> tasks_pb2.WaitResponse:
        self.rec.metadata.append(dict(context.invocation_metadata()))
        if request.container_id == "missing":
            context.abort(grpc.StatusCode.NOT_FOUND, f"container {request.container_id!r}: not found")
        context.add_callback(self.rec.wait_cancelled.set)
        self.rec.wait_arrived.set()
        self.rec.wait_release.wait(30)
        return tasks_pb2.WaitResponse(exit_status=7, exited_at=timestamp_pb2.Timestamp(seconds=1700000000))

    def Get(self, request: Any, context: grpc.ServicerContext) -> tasks_pb2.GetResponse:
        process = tasks_pb2.GetResponse().process
        process.id = request.exec_id or request.container_id
        process.pid = 42
        process.status = 2
        process.exited_at.seconds = GO_ZERO  # what a gogo-era daemon sends for "not exited"
        return tasks_pb2.GetResponse(process=process)


class FakeEvents(events_pb2_grpc.EventsServicer):
    def __init__(self, rec: Recorder) -> None:
        self.rec = rec

    def Subscribe(self, request: Any, context: grpc.ServicerContext) -> Iterator[events_pb2.Envelope]:
        self.rec.subscribe_filters.append(list(request.filters))
        yield from self.rec.envelopes
        self.rec.stream_release.wait(30)


class FakeContainers(containers_pb2_grpc.ContainersServicer):
    """Implements List only: ListStream answers UNIMPLEMENTED, as on a daemon without it."""

    def List(self, request: Any, context: grpc.ServicerContext) -> containers_pb2.ListContainersResponse:
        spec = typeurl.pack_spec({"ociVersion": "1.0.2"})
        return containers_pb2.ListContainersResponse(
            containers=[containers_pb2.Container(id=f"c{i}", spec=spec) for i in range(3)]
        )


def _health_handler() -> grpc.GenericRpcHandler:
    def check(request: health_pb2.HealthCheckRequest, context: grpc.ServicerContext) -> Any:
        status = health_pb2.HealthCheckResponse.SERVING if not request.service else 3
        return health_pb2.HealthCheckResponse(status=status)

    return grpc.method_handlers_generic_handler(
        "grpc.health.v1.Health",
        {
            "Check": grpc.unary_unary_rpc_method_handler(
                check,
                request_deserializer=health_pb2.HealthCheckRequest.FromString,
                response_serializer=health_pb2.HealthCheckResponse.SerializeToString,
            )
        },
    )


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[tuple[str, Recorder]]:
    rec = Recorder()
    path = str(tmp_path / "containerd.sock")
    server = grpc.server(concurrent.futures.ThreadPoolExecutor(max_workers=8))
    version_pb2_grpc.add_VersionServicer_to_server(FakeVersion(rec), server)
    tasks_pb2_grpc.add_TasksServicer_to_server(FakeTasks(rec), server)
    events_pb2_grpc.add_EventsServicer_to_server(FakeEvents(rec), server)
    containers_pb2_grpc.add_ContainersServicer_to_server(FakeContainers(), server)
    server.add_generic_rpc_handlers((_health_handler(),))
    server.add_insecure_port(f"unix://{path}")
    server.start()
    yield path, rec
    rec.wait_release.set()
    rec.stream_release.set()
    server.stop(None)


# -- addresses and namespaces ---------------------------------------------------------------


def test_address_forms(monkeypatch: pytest.MonkeyPatch) -> None:
    assert socket_path("/run/x.sock") == "/run/x.sock"
    assert socket_path("unix:///run/x.sock") == "/run/x.sock"
    assert socket_path("unix:/run/x.sock") == "/run/x.sock"
    monkeypatch.setenv("CONTAINERD_ADDRESS", "unix:///env/c.sock")
    assert socket_path(None) == "/env/c.sock"
    monkeypatch.delenv("CONTAINERD_ADDRESS")
    assert socket_path(None) == "/run/containerd/containerd.sock"


@pytest.mark.parametrize("bad", ["tcp://127.0.0.1:1", "relative.sock", "unix://rel/x.sock", "/a\0b"])
def test_bad_addresses_are_rejected(bad: str) -> None:
    with pytest.raises(ValueError, match="containerd address"):
        socket_path(bad)


def test_socket_path_length_limit() -> None:
    ok = "/" + "a" * 106
    assert socket_path(ok) == ok
    with pytest.raises(ValueError, match="at most 107"):
        socket_path("/" + "a" * 107)
    with pytest.raises(ValueError, match="at most 107"):
        Client("/" + "é" * 60)  # 121 bytes though only 61 characters


VALID_NS = ["default", "containerd.io", "task.0.0123456789", "underscores_are_allowed", "a" * 76]
INVALID_NS = [
    "",
    ".foo..foo",
    "foo/foo",
    "foo/..",
    "foo..foo",
    "foo.-boo",
    "-foo.boo",
    "foo.boo-",
    "but__only_tasteful_underscores",
    "default--default",
    "a" * 77,
]


@pytest.mark.parametrize("ns", VALID_NS)
def test_valid_namespaces(ns: str) -> None:
    assert validate_namespace(ns) == ns
    assert Client("/run/x.sock", namespace=ns).namespace == ns


@pytest.mark.parametrize("ns", INVALID_NS)
def test_invalid_namespaces(ns: str) -> None:
    with pytest.raises(ValueError, match="namespace"):
        Client("/run/x.sock", namespace=ns)
    with pytest.raises(ValueError, match="namespace"):
        Client("/run/x.sock").with_namespace(ns)


def test_namespace_default_and_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CONTAINERD_NAMESPACE", raising=False)
    assert Client("/run/x.sock").namespace == "default"
    monkeypatch.setenv("CONTAINERD_NAMESPACE", "from-env")
    assert Client("/run/x.sock").namespace == "from-env"
    assert Client("/run/x.sock", namespace="explicit").namespace == "explicit"


# -- metadata ----------------------------------------------------------------------------------


def test_namespace_and_lease_metadata(fake: tuple[str, Recorder]) -> None:
    path, rec = fake
    with Client(f"unix://{path}", namespace="ns1") as client:
        assert client.version().revision == "fake"
        view = client.with_namespace("ns2")
        view.version()
        leased = view.with_lease("lease-1")
        leased.version()
        client.api.version.version(metadata=[("containerd-namespace", "override")])
        names = (client.namespace, view.namespace, leased.lease, client.lease)
        assert names == ("ns1", "ns2", "lease-1", None)
    got = [(m.get("containerd-namespace"), m.get("containerd-lease")) for m in rec.metadata]
    assert got == [("ns1", None), ("ns2", None), ("ns2", "lease-1"), ("override", None)]


def test_views_share_the_channel_and_its_closing(fake: tuple[str, Recorder]) -> None:
    path, _ = fake
    client = Client(path, namespace="a")
    view = client.with_namespace("b")
    view.version()
    client.close()
    with pytest.raises(ValueError, match="closed"):
        view.version()
    client.close()  # idempotent


def test_channel_is_created_lazily(tmp_path: Path) -> None:
    client = Client(str(tmp_path / "absent.sock"))
    assert client.api.tasks is client.api.tasks
    client.close()  # nothing was ever connected: no error


# -- limits and deadlines ------------------------------------------------------------------------


def test_messages_up_to_16_mib_are_received(fake: tuple[str, Recorder]) -> None:
    path, rec = fake
    rec.payload_size = 15 << 20  # well above grpc's 4 MiB default
    with Client(path) as client:
        assert len(client.version().version) == (15 << 20) + 1
        rec.payload_size = MAX_MESSAGE_SIZE + 1
        with pytest.raises(errors.ResourceExhaustedError):
            client.version()


def test_deadline_maps_to_deadline_exceeded(fake: tuple[str, Recorder]) -> None:
    path, rec = fake
    with Client(path) as client, pytest.raises(errors.DeadlineExceededError):
        client.api.tasks.wait("c", timeout=0.2)
    assert rec.wait_arrived.is_set()


# -- wait_future ---------------------------------------------------------------------------------


def test_wait_future_reaches_server_and_resolves(fake: tuple[str, Recorder]) -> None:
    path, rec = fake
    with Client(path, namespace="w") as client:
        future = client.api.tasks.wait_future("c1")
        assert isinstance(future, concurrent.futures.Future)
        assert rec.wait_arrived.wait(30), "the Wait RPC never reached the server"
        assert not future.done()
        rec.wait_release.set()
        status = future.result(30)
    assert status == ExitStatus(7, status.exited_at)
    assert status.exited_at is not None
    assert status.exited_at.timestamp() == 1700000000
    assert rec.metadata[-1]["containerd-namespace"] == "w"


def test_wait_future_cancel_cancels_the_rpc(fake: tuple[str, Recorder]) -> None:
    path, rec = fake
    with Client(path) as client:
        future = client.api.tasks.wait_future("c1")
        assert rec.wait_arrived.wait(30)
        assert future.cancel()
        assert future.cancelled()
        with pytest.raises(concurrent.futures.CancelledError):
            future.result(1)
        assert rec.wait_cancelled.wait(30), "the server never saw the cancellation"


def test_wait_future_error_is_mapped(fake: tuple[str, Recorder]) -> None:
    path, _ = fake
    with Client(path) as client:
        err = client.api.tasks.wait_future("missing").exception(30)
    assert isinstance(err, errors.NotFoundError)
    assert "missing" in err.details
    assert isinstance(err.__cause__, grpc.RpcError)


def test_wait_future_after_daemon_death_is_connection_lost(tmp_path: Path) -> None:
    rec = Recorder()
    path = str(tmp_path / "c.sock")
    server = grpc.server(concurrent.futures.ThreadPoolExecutor(max_workers=4))
    tasks_pb2_grpc.add_TasksServicer_to_server(FakeTasks(rec), server)
    server.add_insecure_port(f"unix://{path}")
    server.start()
    try:
        with Client(path) as client:
            future = client.api.tasks.wait_future("c1")
            assert rec.wait_arrived.wait(30)
            server.stop(None)  # the daemon goes away mid-Wait
            err = future.exception(30)
    finally:
        rec.wait_release.set()
        server.stop(None)
    assert isinstance(err, errors.ConnectionLostError), repr(err)
    assert isinstance(err, errors.UnavailableError)


# -- decoding --------------------------------------------------------------------------------


def test_get_decodes_go_zero_exit_time_as_unset(fake: tuple[str, Recorder]) -> None:
    path, _ = fake
    with Client(path) as client:
        info = client.api.tasks.get("web")
        exec_info = client.api.tasks.get("web", "sidecar")
    assert (info.container_id, info.id, info.exec_id, info.pid) == ("web", "web", "", 42)
    assert info.status is Status.RUNNING
    assert info.exited_at is None
    assert (exec_info.container_id, exec_info.exec_id) == ("web", "sidecar")


def _envelope(topic: str, event: any_pb2.Any | None) -> events_pb2.Envelope:
    env = events_pb2.Envelope(namespace="ns", topic=topic, timestamp=timestamp_pb2.Timestamp(seconds=1))
    if event is not None:
        env.event.CopyFrom(event)
    return env


def test_subscribe_decodes_and_never_raises_on_bad_payloads(fake: tuple[str, Recorder]) -> None:
    path, rec = fake
    exit_any = typeurl.pack(events_task_pb2.TaskExit(container_id="c", id="e1", pid=9, exit_status=137))
    google_url = any_pb2.Any(
        type_url="type.googleapis.com/containerd.events.TaskStart",
        value=events_task_pb2.TaskStart(container_id="c", pid=5).SerializeToString(),
    )
    rec.envelopes = [
        _envelope("/tasks/exit", exit_any),
        _envelope("/tasks/start", google_url),
        _envelope("/custom", any_pb2.Any(type_url="example.com/Unknown", value=b"\x01")),
        _envelope("/tasks/exit", any_pb2.Any(type_url="containerd.events.TaskExit", value=b"\xff\xff")),
        _envelope("/empty", None),
    ]
    with Client(path, namespace="ns") as client, client.api.events.subscribe("topic~=|^/tasks/|") as stream:
        got = [next(stream) for _ in range(5)]
    exit_event, start_event, unknown, corrupt, empty = got
    assert isinstance(exit_event, ev.TaskExit)
    assert (exit_event.container_id, exit_event.exec_id, exit_event.exit_status) == ("c", "e1", 137)
    assert exit_event.exited_at is None
    assert exit_event.namespace == "ns"
    assert isinstance(start_event, ev.TaskStart)
    assert start_event.pid == 5
    assert isinstance(unknown, ev.RawEvent)
    assert unknown.type_url == "example.com/Unknown"
    assert unknown.error == "unknown event type"
    assert unknown.value == b"\x01"
    assert isinstance(corrupt, ev.RawEvent)
    assert corrupt.error.startswith("cannot decode")
    assert isinstance(empty, ev.RawEvent)
    assert empty.topic == "/empty"
    assert rec.subscribe_filters == [["namespace==ns,topic~=|^/tasks/|"]]


def test_subscribe_scopes_to_namespace_unless_asked(fake: tuple[str, Recorder]) -> None:
    path, rec = fake
    rec.envelopes = [_envelope("/tasks/oom", typeurl.pack(events_task_pb2.TaskOOM(container_id="c")))]
    with Client(path, namespace="ns") as client:
        for all_namespaces in (False, True):
            stream = client.api.events.subscribe(all_namespaces=all_namespaces)
            assert isinstance(next(stream), ev.TaskOOM)  # the server has seen the request
            stream.cancel()
            assert list(stream) == []
    assert rec.subscribe_filters == [["namespace==ns"], []]


def test_subscription_cancelled_from_another_thread_ends_iteration(fake: tuple[str, Recorder]) -> None:
    path, rec = fake
    rec.envelopes = [_envelope("/tasks/oom", typeurl.pack(events_task_pb2.TaskOOM(container_id="c")))]
    seen: list[object] = []
    outcome: list[BaseException | None] = []
    with Client(path) as client:
        stream = client.api.events.subscribe()

        def consume() -> None:
            try:
                seen.extend(stream)
                outcome.append(None)
            except BaseException as err:
                outcome.append(err)

        reader = threading.Thread(target=consume)
        reader.start()
        while not seen:
            reader.join(0.01)
        stream.cancel()  # the reader is blocked in next() waiting for a second event
        reader.join(30)
        assert not reader.is_alive()
    assert outcome == [None]
    assert [type(e) for e in seen] == [ev.TaskOOM]


def test_list_stream_falls_back_to_list_on_unimplemented(fake: tuple[str, Recorder]) -> None:
    path, _ = fake
    with Client(path) as client:
        streamed = list(client.api.containers.list_stream())
    assert [c.id for c in streamed] == ["c0", "c1", "c2"]
    assert streamed[0].spec == {"ociVersion": "1.0.2"}


def test_health_check_uses_the_standard_path(fake: tuple[str, Recorder]) -> None:
    path, _ = fake
    assert CHECK_METHOD == "/grpc.health.v1.Health/Check"
    with Client(path) as client:
        assert client.api.health.check() is ServingStatus.SERVING
        assert client.api.health.check("nope") is ServingStatus.SERVICE_UNKNOWN
        assert client.api.health.is_serving(timeout=10)


def test_is_serving_is_false_for_a_missing_daemon(tmp_path: Path) -> None:
    with Client(str(tmp_path / "none.sock")) as client:
        assert client.api.health.is_serving() is False


# -- process boundaries --------------------------------------------------------------------


def test_client_refuses_to_cross_fork(fake: tuple[str, Recorder]) -> None:
    path, _ = fake
    with Client(path) as client:
        client.version()
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # child: must not touch the parent's channel
            code = 1
            try:
                client.version()
            except RuntimeError as err:
                code = 0 if "fork" in str(err) else 2
            except BaseException:
                code = 3
            os.write(write_end, bytes([code]))
            os._exit(0)
        os.close(write_end)
        result = os.read(read_end, 1)
        os.close(read_end)
        os.waitpid(pid, 0)
        assert result == b"\x00"
        assert client.version().revision == "fake"  # the parent is unaffected


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None, reason="needs root and setpriv")
def test_socket_without_permission_is_permission_denied(fake: tuple[str, Recorder]) -> None:
    path, _ = fake
    # Owned by another user, 0600: what containerd's 0660 root:root socket is to a non-member.
    os.chown(path, 65534, 65534)
    os.chmod(path, 0o600)
    script = (
        "import sys\n"
        "from pycontainerd import errors\n"
        "from pycontainerd.client import Client\n"
        f"c = Client({path!r})\n"
        "try:\n"
        "    c.version()\n"
        "except errors.PermissionDeniedError as err:\n"
        "    print('DENIED', err)\n"
        "    sys.exit(0)\n"
        "except Exception as err:\n"
        "    print('OTHER', type(err).__name__, err)\n"
        "sys.exit(1)\n"
    )
    repo = str(Path(__file__).resolve().parents[2])
    # Root without any capability: file permissions apply to it like to any user.
    result = subprocess.run(
        ["setpriv", "--bounding-set=-all", "--inh-caps=-all", "--", sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": repo},
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert path in result.stdout
    assert "permission denied" in result.stdout


def test_sigpipe_default_does_not_matter_for_unary_calls(fake: tuple[str, Recorder]) -> None:
    path, _ = fake
    old = signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    try:
        with Client(path) as client:
            assert client.version().revision == "fake"
    finally:
        signal.signal(signal.SIGPIPE, old)
