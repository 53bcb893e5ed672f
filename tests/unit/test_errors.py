"""The one status-code mapping point, exercised with real grpc errors from an in-process server."""

from __future__ import annotations

import concurrent.futures
import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from google.protobuf import empty_pb2

from pycontainerd import errors
from pycontainerd._grpc import Connection
from pycontainerd._proto.services.version.v1 import version_pb2, version_pb2_grpc

# Every code a server can send; OK is not an error.
FAILURE_CODES = [code for code in grpc.StatusCode if code is not grpc.StatusCode.OK]


class RefusingVersion(version_pb2_grpc.VersionServicer):
    """Aborts with the status code named in the request metadata ("code"), message in "msg"."""

    def Version(self, request: empty_pb2.Empty, context: grpc.ServicerContext) -> version_pb2.VersionResponse:
        md = dict(context.invocation_metadata())
        context.abort(grpc.StatusCode[md["code"]], md["msg"])


@pytest.fixture(scope="module")
def server_socket(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    path = str(tmp_path_factory.mktemp("errsrv") / "s.sock")
    server = grpc.server(concurrent.futures.ThreadPoolExecutor(max_workers=4))
    version_pb2_grpc.add_VersionServicer_to_server(RefusingVersion(), server)
    server.add_insecure_port(f"unix://{path}")
    server.start()
    yield path
    server.stop(None)


@pytest.fixture
def conn(server_socket: str) -> Iterator[Connection]:
    c = Connection(server_socket, namespace="errs")
    yield c
    c.close()


def _refused(conn: Connection, code: grpc.StatusCode, msg: str) -> errors.ContainerdError:
    stub = version_pb2_grpc.VersionStub(conn.channel)
    with pytest.raises(errors.ContainerdError) as info:
        conn.unary(stub.Version, empty_pb2.Empty(), metadata=[("code", code.name), ("msg", msg)])
    return info.value


def test_table_covers_every_status_code() -> None:
    for code in FAILURE_CODES:
        cls = errors.class_for(code)
        assert cls.code is code, code
    # A "failed" call claiming OK is not trusted as success.
    assert errors.class_for(grpc.StatusCode.OK) is errors.UnknownError


@pytest.mark.parametrize("code", FAILURE_CODES, ids=lambda c: c.name)
def test_every_code_maps_to_its_class_keeping_message_and_cause(
    conn: Connection, code: grpc.StatusCode
) -> None:
    err = _refused(conn, code, f"server says {code.name}")
    assert type(err) is errors.class_for(code)
    assert err.code is code
    assert err.details.startswith(f"server says {code.name}")
    assert isinstance(err.__cause__, grpc.RpcError)
    assert err.__cause__.code() is code  # type: ignore[attr-defined]
    assert not isinstance(err, OSError)


def test_conflict_is_recovered_from_failed_precondition(conn: Connection) -> None:
    err = _refused(conn, grpc.StatusCode.FAILED_PRECONDITION, 'content "x": conflict')
    assert type(err) is errors.ConflictError
    assert isinstance(err, errors.FailedPreconditionError)
    plain = _refused(conn, grpc.StatusCode.FAILED_PRECONDITION, "cannot delete a running process")
    assert type(plain) is errors.FailedPreconditionError
    # Only the errdefs suffix counts, not the word anywhere.
    inner = _refused(conn, grpc.StatusCode.FAILED_PRECONDITION, "conflict detected later")
    assert type(inner) is errors.FailedPreconditionError


def test_builtin_mixins() -> None:
    assert issubclass(errors.NotFoundError, LookupError)
    assert issubclass(errors.InvalidArgumentError, ValueError)
    assert issubclass(errors.ConnectionLostError, errors.UnavailableError)
    for cls in vars(errors).values():
        if isinstance(cls, type) and issubclass(cls, errors.ContainerdError):
            assert not issubclass(cls, OSError), cls


def test_from_rpc_error_is_returned_not_raised(conn: Connection) -> None:
    stub = version_pb2_grpc.VersionStub(conn.channel)
    with pytest.raises(grpc.RpcError) as info:
        stub.Version(empty_pb2.Empty(), metadata=[("code", "NOT_FOUND"), ("msg", "gone")], timeout=10)
    mapped = errors.from_rpc_error(info.value, context="extra")
    assert isinstance(mapped, errors.NotFoundError)
    assert str(mapped) == "gone (extra)"


def test_domain_errors_carry_their_fields() -> None:
    err = errors.ContainerError("web", 3, b"boom")
    assert (err.container_id, err.exit_status, err.stderr, err.code) == ("web", 3, b"boom", None)
    assert "3" in str(err)


def test_missing_socket_names_the_path(tmp_path: Path) -> None:
    path = str(tmp_path / "nothing.sock")
    with contextlib.closing(Connection(path)) as c, pytest.raises(errors.UnavailableError) as info:
        c.connect()
    assert path in str(info.value)
    assert "does not exist" in str(info.value)


def test_regular_file_is_not_a_socket(tmp_path: Path) -> None:
    path = tmp_path / "file.sock"
    path.write_text("")
    with contextlib.closing(Connection(str(path))) as c, pytest.raises(errors.UnavailableError) as info:
        c.connect()
    assert "not a unix socket" in str(info.value)


def test_dead_socket_is_unavailable(tmp_path: Path) -> None:
    import socket

    path = str(tmp_path / "dead.sock")
    s = socket.socket(socket.AF_UNIX)
    s.bind(path)
    s.close()  # the file stays, nobody listens: connect() gets ECONNREFUSED
    with contextlib.closing(Connection(path)) as c:
        stub = version_pb2_grpc.VersionStub(c.channel)
        with pytest.raises(errors.UnavailableError) as info:
            c.unary(stub.Version, empty_pb2.Empty())  # fails fast, no waiting for a daemon
        assert path in str(info.value)
        with pytest.raises(errors.UnavailableError, match=r"not serving after 0\.2 s"):
            c.connect(timeout=0.2)  # connect() waits for a starting daemon, up to its timeout
    assert os.path.exists(path)

