"""api.content against a real containerd: blobs written, read back, relabelled, deleted."""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Iterator

import pytest

from pycontainerd import errors
from pycontainerd._proto.services.content.v1 import content_pb2
from pycontainerd.api.content import MAX_CHUNK_SIZE
from pycontainerd.client import Client


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@pytest.fixture
def leased(client: Client) -> Iterator[Client]:
    """The test's client with every call under one lease, so nothing is garbage collected mid-test."""
    with client.api.leases.lease() as lease:
        yield client.with_lease(lease.id)


def partial_ingest(client: Client, ref: str, data: bytes) -> None:
    """Leave an unfinished upload of ``data`` under ``ref`` (what a crashed writer leaves)."""
    requests = [
        content_pb2.WriteContentRequest(action=content_pb2.STAT, ref=ref),
        content_pb2.WriteContentRequest(action=content_pb2.WRITE, offset=0, data=data),
    ]
    for _ in client.api.content.stub.Write(iter(requests), timeout=30):
        pass


def test_write_then_read_back(leased: Client) -> None:
    content = leased.api.content
    data = os.urandom(3 * (1 << 20) + 123)
    desc = content.write(
        "roundtrip", data, expected=sha256(data), media_type="application/vnd.test+bin", labels={"a": "1"}
    )
    assert (desc.digest, desc.size, desc.media_type) == (sha256(data), len(data), "application/vnd.test+bin")
    back = content.read(desc.digest)
    assert sha256(back) == desc.digest
    assert back == data
    assert content.read(desc.digest, offset=1000, size=5000) == data[1000:6000]
    assert content.read(desc.digest, offset=len(data) - 10) == data[-10:]
    with content.read_chunks(desc.digest) as chunks:
        assert b"".join(chunks) == data
    info = content.info(desc.digest)
    assert (info.digest, info.size, dict(info.labels)) == (desc.digest, len(data), {"a": "1"})
    assert info.created_at is not None
    assert content.list_statuses() == []


def test_write_iterable_rechunked_without_expected(leased: Client) -> None:
    pieces = [os.urandom(n) for n in (1, 70_000, 0, 300_001, 5)]
    data = b"".join(pieces)
    desc = leased.api.content.write("pieces", iter(pieces), chunk_size=64 << 10)
    assert (desc.digest, desc.size) == (sha256(data), len(data))
    assert leased.api.content.read(desc.digest) == data


def test_write_larger_than_a_grpc_message(leased: Client) -> None:
    data = os.urandom((16 << 20) + 4096)
    desc = leased.api.content.write("big", data, chunk_size=MAX_CHUNK_SIZE)
    assert desc.size == len(data)
    assert sha256(leased.api.content.read(desc.digest)) == sha256(data)


def test_write_empty_blob(leased: Client) -> None:
    desc = leased.api.content.write("empty", b"")
    assert (desc.digest, desc.size) == (sha256(b""), 0)
    assert leased.api.content.read(desc.digest) == b""


def test_update_labels(leased: Client) -> None:
    content = leased.api.content
    desc = content.write("labels", b"labelled", labels={"a": "1", "b": "2"})
    updated = content.update(desc.digest, labels={"c": "3"}, fieldpaths=["labels.c", "labels.b"])
    assert dict(updated.labels) == {"a": "1", "c": "3"}
    replaced = content.update(desc.digest, labels={"only": "this"})
    assert dict(replaced.labels) == {"only": "this"}
    assert dict(content.info(desc.digest).labels) == {"only": "this"}
    assert replaced.updated_at is not None
    assert replaced.created_at is not None
    assert replaced.updated_at >= replaced.created_at


def test_list_with_filters(leased: Client) -> None:
    content = leased.api.content
    one = content.write("one", b"first blob", labels={"pick": "yes"})
    two = content.write("two", b"second blob")
    assert {i.digest for i in content.list()} >= {one.digest, two.digest}
    assert [i.digest for i in content.list([f"digest=={two.digest}"])] == [two.digest]
    assert [i.digest for i in content.list(['labels."pick"==yes'])] == [one.digest]
    with pytest.raises(errors.InvalidArgumentError):
        content.list(["=="])


def test_delete_then_not_found(leased: Client) -> None:
    content = leased.api.content
    desc = content.write("gone", b"short-lived")
    content.delete(desc.digest)
    with pytest.raises(errors.NotFoundError):
        content.info(desc.digest)
    with pytest.raises(errors.NotFoundError):
        content.read(desc.digest)
    with pytest.raises(errors.NotFoundError):
        content.delete(desc.digest)


def test_write_of_existing_blob_is_refused_before_sending(leased: Client) -> None:
    content = leased.api.content
    data = b"already here"
    content.write("first", data)

    def must_not_be_read() -> Iterator[bytes]:
        raise AssertionError("data was read although the daemon refused the ingest")
        yield b""

    with pytest.raises(errors.AlreadyExistsError):
        content.write("second", must_not_be_read(), expected=sha256(data))
    assert content.list_statuses() == []


def test_wrong_expected_digest_fails_and_leaves_no_ingest(leased: Client) -> None:
    content = leased.api.content
    with pytest.raises(errors.FailedPreconditionError):
        content.write("mismatch", b"these bytes", expected=sha256(b"other bytes"))
    with pytest.raises(errors.NotFoundError):
        content.status("mismatch")
    with pytest.raises(errors.NotFoundError):
        content.info(sha256(b"these bytes"))


def test_failing_data_source_propagates_and_aborts(leased: Client) -> None:
    def source() -> Iterator[bytes]:
        yield b"some bytes"
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError, match="disk on fire"):
        leased.api.content.write("broken", source())
    with pytest.raises(errors.NotFoundError):
        leased.api.content.status("broken")


def test_status_list_statuses_and_abort(leased: Client) -> None:
    content = leased.api.content
    partial_ingest(leased, "half-done", b"x" * 1000)
    status = content.status("half-done")
    assert (status.ref, status.offset) == ("half-done", 1000)
    assert status.started_at is not None
    assert [s.ref for s in content.list_statuses(["ref==half-done"])] == ["half-done"]
    assert content.list_statuses(["ref==other"]) == []
    content.abort("half-done")
    with pytest.raises(errors.NotFoundError):
        content.status("half-done")
    with pytest.raises(errors.NotFoundError):
        content.abort("half-done")


def test_write_resumes_at_the_daemons_offset(leased: Client) -> None:
    data = os.urandom(300_000)
    partial_ingest(leased, "resume", data[:100_000])
    # Only the bytes past the daemon's offset are sent: a resumed write commits the real
    # digest although the caller's first 100 000 bytes are wrong.
    wrong_prefix = bytes(100_000) + data[100_000:]
    desc = leased.api.content.write("resume", wrong_prefix, expected=sha256(data))
    assert desc.size == len(data)
    assert leased.api.content.read(desc.digest) == data


def test_write_without_expected_restarts_a_partial_ingest(leased: Client) -> None:
    partial_ingest(leased, "restart", b"stale bytes from an earlier attempt")
    desc = leased.api.content.write("restart", b"fresh")
    assert desc.digest == sha256(b"fresh")
    assert leased.api.content.read(desc.digest) == b"fresh"


def test_second_writer_on_a_ref_is_unavailable(leased: Client) -> None:
    release = threading.Event()

    def holder() -> Iterator[content_pb2.WriteContentRequest]:
        yield content_pb2.WriteContentRequest(action=content_pb2.STAT, ref="held")
        release.wait(30)

    call = leased.api.content.stub.Write(holder(), timeout=30)
    try:
        assert next(call).action == content_pb2.STAT
        with pytest.raises(errors.UnavailableError):
            leased.api.content.write("held", b"contender")
    finally:
        release.set()
    # Ending the holder's stream (not cancelling it) returns only once the daemon let go of the ref.
    for _ in call:
        pass
    assert leased.api.content.status("held").offset == 0
    leased.api.content.abort("held")


def test_argument_checks(leased: Client) -> None:
    content = leased.api.content
    with pytest.raises(ValueError, match="ref"):
        content.write("", b"x")
    with pytest.raises(ValueError, match="chunk_size"):
        content.write("r", b"x", chunk_size=0)
    with pytest.raises(ValueError, match="chunk_size"):
        content.write("r", b"x", chunk_size=MAX_CHUNK_SIZE + 1)
    with pytest.raises(TypeError):
        content.write("r", "text")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        content.write("r", [b"ok", "text"])  # type: ignore[list-item]
    with pytest.raises(errors.NotFoundError):
        content.status("r")
