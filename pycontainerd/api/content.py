"""Typed wrapper of containerd's content store (``containerd.services.content.v1.Content``).

Blobs are addressed by digest (``sha256:<hex>``); uploads in progress ("ingests") by a ref the
client chooses. :meth:`ContentService.write` runs the whole Write protocol (STAT, WRITE...,
COMMIT) and returns a :class:`~pycontainerd.api.types.Descriptor` ready to hand to another
call (for example a checkpoint to Tasks/Create).

Unreferenced blobs are garbage collected: write under a lease
(:meth:`pycontainerd.api.leases.LeasesService.lease`) or label the blob
``containerd.io/gc.root`` to keep it.

Requests (the Write stream's messages included) are built and responses converted by the
pure functions below, reused by an asyncio client; only the calls block.
"""

from __future__ import annotations

import builtins
import contextlib
import datetime as _dt
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import grpc
from google.protobuf import field_mask_pb2

from pycontainerd import errors, typeurl
from pycontainerd._grpc import Metadata, ResponseStream, Service
from pycontainerd._proto.services.content.v1 import content_pb2, content_pb2_grpc
from pycontainerd.api.types import Descriptor

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "MAX_CHUNK_SIZE",
    "ContentInfo",
    "ContentService",
    "IngestStatus",
]

# Large enough to amortise per-message cost, small enough to keep memory flat.
DEFAULT_CHUNK_SIZE = 1 << 20
# Leaves room for the request's other fields under the 16 MiB message limit.
MAX_CHUNK_SIZE = (16 << 20) - (64 << 10)

_DEFAULT_MEDIA_TYPE = "application/octet-stream"


@dataclass(frozen=True)
class ContentInfo:
    """A committed blob (Content/Info, Content/List).

    Attributes:
        digest: Its digest, ``sha256:<hex>``.
        size: Its size in bytes.
        created_at: When it was committed.
        updated_at: When it or its labels last changed.
        labels: Its labels (``containerd.io/gc.*`` labels steer garbage collection).
    """

    digest: str
    size: int
    created_at: _dt.datetime | None = None
    updated_at: _dt.datetime | None = None
    labels: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_proto(cls, info: Any) -> ContentInfo:
        """From a ``containerd.services.content.v1.Info``."""
        return cls(
            digest=info.digest,
            size=info.size,
            created_at=typeurl.field_timestamp(info, "created_at"),
            updated_at=typeurl.field_timestamp(info, "updated_at"),
            labels=dict(info.labels),
        )


@dataclass(frozen=True)
class IngestStatus:
    """An upload in progress (Content/Status, Content/ListStatuses).

    Attributes:
        ref: The ref the writer chose.
        offset: Bytes received so far.
        total: The announced size, 0 if unknown.
        expected: The announced digest, "" if unknown.
        started_at: When the ingest began.
        updated_at: When it last received data.
    """

    ref: str
    offset: int
    total: int = 0
    expected: str = ""
    started_at: _dt.datetime | None = None
    updated_at: _dt.datetime | None = None

    @classmethod
    def from_proto(cls, status: Any) -> IngestStatus:
        """From a ``containerd.services.content.v1.Status``."""
        return cls(
            ref=status.ref,
            offset=status.offset,
            total=status.total,
            expected=status.expected,
            started_at=typeurl.field_timestamp(status, "started_at"),
            updated_at=typeurl.field_timestamp(status, "updated_at"),
        )


def info_request(digest: str) -> Any:
    """An ``InfoRequest``."""
    return content_pb2.InfoRequest(digest=digest)


def info_result(response: Any) -> ContentInfo:
    """The blob in an Info or Update response."""
    return ContentInfo.from_proto(response.info)


def update_request(digest: str, *, labels: Mapping[str, str], fieldpaths: Sequence[str] | None = None) -> Any:
    """An ``UpdateRequest`` (default field mask: ``["labels"]``)."""
    paths = ["labels"] if fieldpaths is None else builtins.list(fieldpaths)
    return content_pb2.UpdateRequest(
        info=content_pb2.Info(digest=digest, labels=dict(labels)),
        update_mask=field_mask_pb2.FieldMask(paths=paths),
    )


def list_request(filters: Sequence[str] = ()) -> Any:
    """A ``ListContentRequest``."""
    return content_pb2.ListContentRequest(filters=builtins.list(filters))


def list_batch(response: Any) -> builtins.list[ContentInfo]:
    """The blobs in one message of the List stream."""
    return [ContentInfo.from_proto(info) for info in response.info]


def delete_request(digest: str) -> Any:
    """A ``DeleteContentRequest``."""
    return content_pb2.DeleteContentRequest(digest=digest)


def read_request(digest: str, *, offset: int = 0, size: int = 0) -> Any:
    """A ``ReadContentRequest`` (``size=0``: to the end)."""
    return content_pb2.ReadContentRequest(digest=digest, offset=offset, size=size)


def read_chunk(response: Any) -> bytes:
    """The bytes in one message of the Read stream."""
    data: bytes = response.data
    return data


def status_request(ref: str) -> Any:
    """A ``StatusRequest``."""
    return content_pb2.StatusRequest(ref=ref)


def status_result(response: Any) -> IngestStatus:
    """The ingest in a ``StatusResponse``."""
    return IngestStatus.from_proto(response.status)


def list_statuses_request(filters: Sequence[str] = ()) -> Any:
    """A ``ListStatusesRequest``."""
    return content_pb2.ListStatusesRequest(filters=builtins.list(filters))


def list_statuses_result(response: Any) -> builtins.list[IngestStatus]:
    """The ingests of a ``ListStatusesResponse``."""
    return [IngestStatus.from_proto(s) for s in response.statuses]


def abort_request(ref: str) -> Any:
    """An ``AbortRequest``."""
    return content_pb2.AbortRequest(ref=ref)


def check_write(ref: str, data: object, chunk_size: int) -> None:
    """Refuse a Write that cannot succeed, before the stream opens.

    Raises:
        ValueError: An empty ref or a chunk size out of range.
        TypeError: ``data`` is a str.
    """
    if not ref:
        raise ValueError("content write needs a non-empty ref")
    if isinstance(data, str):
        raise TypeError("content data must be bytes or an iterable of bytes, not str")
    if not 0 < chunk_size <= MAX_CHUNK_SIZE:
        raise ValueError(f"chunk_size must be between 1 and {MAX_CHUNK_SIZE}, not {chunk_size}")


def write_stat_request(ref: str, *, total: int, expected: str) -> Any:
    """The Write stream's first message: open (or find) the ingest ``ref``."""
    return content_pb2.WriteContentRequest(action=content_pb2.STAT, ref=ref, total=total, expected=expected)


def write_data_request(offset: int, data: bytes) -> Any:
    """A Write stream message carrying ``data`` at ``offset`` (0 restarts the ingest)."""
    return content_pb2.WriteContentRequest(action=content_pb2.WRITE, offset=offset, data=data)


def write_commit_request(size: int, *, expected: str, labels: Mapping[str, str]) -> Any:
    """The Write stream's last message: commit ``size`` bytes as a blob with ``labels``."""
    return content_pb2.WriteContentRequest(
        action=content_pb2.COMMIT, offset=size, total=size, expected=expected, labels=dict(labels)
    )


def write_stat_offset(response: Any) -> int:
    """How many bytes of the ingest the daemon already holds, from the STAT answer."""
    return int(response.offset)


def write_committed_digest(response: Any) -> str | None:
    """The committed blob's digest if this Write stream answer is the COMMIT one, else ``None``."""
    if response.action == content_pb2.COMMIT:
        digest: str = response.digest
        return digest
    return None


class _Ingest:
    """The request side of one Write stream, produced on grpc's sending thread.

    The first request (STAT) goes out at once; the data waits until the caller has seen
    the STAT answer and chosen where to start (:meth:`begin`), because a resumed ingest
    must continue at the offset the daemon already holds.
    """

    def __init__(
        self,
        ref: str,
        data: memoryview | Iterable[bytes],
        *,
        total: int,
        expected: str,
        labels: Mapping[str, str],
        chunk_size: int,
    ) -> None:
        self._ref = ref
        self._data = data
        self._total = total
        self._expected = expected
        self._labels = dict(labels)
        self._chunk_size = chunk_size
        self._go = threading.Event()
        self._start = 0
        self._abandoned = False
        self.failure: BaseException | None = None
        self.sent = 0

    def begin(self, offset: int, data: Iterable[bytes] | None = None) -> None:
        """Release the data, starting at ``offset`` (0 truncates a partial ingest).

        ``data``, when given, replaces an iterable source: the bytes from ``offset`` on.
        """
        self._start = offset
        if data is not None:
            self._data = data
        self._go.set()

    def abandon(self) -> None:
        """Stop producing requests (the call is over or failed)."""
        self._abandoned = True
        self._go.set()

    def _chunks(self) -> Iterator[bytes]:
        size = self._chunk_size
        if isinstance(self._data, memoryview):
            view = self._data
            for pos in range(self._start, len(view), size):
                yield bytes(view[pos : pos + size])
            return
        for piece in self._data:
            if type(piece) is bytes and len(piece) <= size:
                yield piece  # already a message-sized bytes object: no copy
                continue
            if not isinstance(piece, (bytes, bytearray, memoryview)):
                raise TypeError(f"content data must yield bytes, not {type(piece).__name__}")
            view = memoryview(piece).cast("B")
            for pos in range(0, len(view), size):
                yield bytes(view[pos : pos + size])

    def __iter__(self) -> Iterator[Any]:
        yield write_stat_request(self._ref, total=self._total, expected=self._expected)
        self._go.wait()
        if self._abandoned:
            return
        offset = self._start
        chunks = self._chunks()
        while True:
            try:
                chunk = next(chunks, None)
            except BaseException as exc:
                # Raising here would only make grpc log it and cancel the call. Ending the
                # request stream without a COMMIT instead ends the call cleanly, and the
                # caller re-raises this.
                self.failure = exc
                return
            if chunk is None:
                break
            if self._abandoned:
                return
            if chunk:
                # The daemon checks a non-zero offset against its own; 0 restarts the ingest.
                yield write_data_request(offset, chunk)
                offset += len(chunk)
        self.sent = offset
        yield write_commit_request(offset, expected=self._expected, labels=self._labels)


class ContentService(Service):
    """containerd's content store: blobs by digest, resumable uploads by ref."""

    _stub_factory = content_pb2_grpc.ContentStub

    def info(self, digest: str, *, timeout: float | None = None, metadata: Metadata = ()) -> ContentInfo:
        """Describe a committed blob.

        Args:
            digest: The blob's digest.
            timeout: Deadline in seconds (default: the connection's).
            metadata: Extra gRPC metadata for the call.

        Returns:
            Its size, timestamps and labels.

        Raises:
            NotFoundError: No such blob in this namespace.
            InvalidArgumentError: ``digest`` is not a valid digest.
        """
        request = info_request(digest)
        response = self._conn.unary(self.stub.Info, request, timeout=timeout, metadata=metadata)
        return info_result(response)

    def update(
        self,
        digest: str,
        *,
        labels: Mapping[str, str],
        fieldpaths: Sequence[str] | None = None,
        timeout: float | None = None,
        metadata: Metadata = (),
    ) -> ContentInfo:
        """Change a blob's labels (the only mutable field).

        Args:
            digest: The blob's digest.
            labels: The new labels.
            fieldpaths: Which fields to change: ``"labels"`` replaces every label,
                ``"labels.<key>"`` sets one key (removes it when ``labels`` lacks it).
                Default: ``["labels"]``.
            timeout: Deadline in seconds (default: the connection's).
            metadata: Extra gRPC metadata for the call.

        Returns:
            The blob as updated.

        Raises:
            NotFoundError: No such blob.
            InvalidArgumentError: A field path that cannot be updated.
        """
        request = update_request(digest, labels=labels, fieldpaths=fieldpaths)
        response = self._conn.unary(self.stub.Update, request, timeout=timeout, metadata=metadata)
        return info_result(response)

    def list(
        self, filters: Sequence[str] = (), *, timeout: float | None = None, metadata: Metadata = ()
    ) -> builtins.list[ContentInfo]:
        """List committed blobs.

        Args:
            filters: containerd filter expressions (``labels."a"==b``, ``digest==...``),
                any of which may match; none lists everything.
            timeout: Deadline in seconds for the whole listing (default: the connection's).
            metadata: Extra gRPC metadata for the call.

        Returns:
            The matching blobs.

        Raises:
            InvalidArgumentError: A malformed filter.
        """
        request = list_request(filters)
        deadline = self._conn.timeout if timeout is None else timeout
        stream = self._conn.stream(self.stub.List, request, list_batch, timeout=deadline, metadata=metadata)
        with stream:
            return [info for batch in stream for info in batch]

    def delete(self, digest: str, *, timeout: float | None = None, metadata: Metadata = ()) -> None:
        """Delete a committed blob.

        Args:
            digest: The blob's digest.
            timeout: Deadline in seconds (default: the connection's).
            metadata: Extra gRPC metadata for the call.

        Raises:
            NotFoundError: No such blob.
        """
        request = delete_request(digest)
        self._conn.unary(self.stub.Delete, request, timeout=timeout, metadata=metadata)

    def read_chunks(
        self,
        digest: str,
        *,
        offset: int = 0,
        size: int = 0,
        timeout: float | None = None,
        metadata: Metadata = (),
    ) -> ResponseStream[bytes]:
        """Stream a blob's bytes in the chunks the daemon sends (up to 1 MiB each).

        Leaving early is cheap: use the result as a context manager (or call ``cancel()``)
        to end the call.

        Args:
            digest: The blob's digest.
            offset: Where to start.
            size: How many bytes at most; 0 reads to the end.
            timeout: Deadline in seconds for the whole read (default: none).
            metadata: Extra gRPC metadata for the call.

        Returns:
            A cancellable iterator of byte chunks.

        Raises:
            NotFoundError: No such blob (raised by the first ``next()``).
        """
        request = read_request(digest, offset=offset, size=size)
        return self._conn.stream(self.stub.Read, request, read_chunk, timeout=timeout, metadata=metadata)

    def read(
        self,
        digest: str,
        *,
        offset: int = 0,
        size: int = 0,
        timeout: float | None = None,
        metadata: Metadata = (),
    ) -> bytes:
        """Read a blob (or a range of it) into memory.

        Args:
            digest: The blob's digest.
            offset: Where to start.
            size: How many bytes at most; 0 reads to the end.
            timeout: Deadline in seconds for the whole read (default: none).
            metadata: Extra gRPC metadata for the call.

        Returns:
            The bytes.

        Raises:
            NotFoundError: No such blob.
        """
        with self.read_chunks(digest, offset=offset, size=size, timeout=timeout, metadata=metadata) as chunks:
            return b"".join(chunks)

    def status(self, ref: str, *, timeout: float | None = None, metadata: Metadata = ()) -> IngestStatus:
        """Describe an upload in progress.

        Args:
            ref: The ingest's ref.
            timeout: Deadline in seconds (default: the connection's).
            metadata: Extra gRPC metadata for the call.

        Returns:
            Its progress.

        Raises:
            NotFoundError: No ingest with that ref.
        """
        request = status_request(ref)
        response = self._conn.unary(self.stub.Status, request, timeout=timeout, metadata=metadata)
        return status_result(response)

    def list_statuses(
        self, filters: Sequence[str] = (), *, timeout: float | None = None, metadata: Metadata = ()
    ) -> builtins.list[IngestStatus]:
        """List uploads in progress.

        Args:
            filters: containerd filter expressions (``ref~=^layer-``); none lists all.
            timeout: Deadline in seconds (default: the connection's).
            metadata: Extra gRPC metadata for the call.

        Returns:
            Their progress.
        """
        request = list_statuses_request(filters)
        response = self._conn.unary(self.stub.ListStatuses, request, timeout=timeout, metadata=metadata)
        return list_statuses_result(response)

    def abort(self, ref: str, *, timeout: float | None = None, metadata: Metadata = ()) -> None:
        """Discard an upload in progress.

        Args:
            ref: The ingest's ref.
            timeout: Deadline in seconds (default: the connection's).
            metadata: Extra gRPC metadata for the call.

        Raises:
            NotFoundError: No ingest with that ref.
        """
        request = abort_request(ref)
        self._conn.unary(self.stub.Abort, request, timeout=timeout, metadata=metadata)

    def write(
        self,
        ref: str,
        data: bytes | bytearray | memoryview | Iterable[bytes],
        *,
        expected: str | None = None,
        labels: Mapping[str, str] | None = None,
        media_type: str = _DEFAULT_MEDIA_TYPE,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        timeout: float | None = None,
        metadata: Metadata = (),
        total: int | None = None,
        resume: Callable[[int], Iterable[bytes]] | None = None,
        keep_partial: tuple[type[BaseException], ...] = (),
    ) -> Descriptor:
        """Upload a blob and commit it (the Content/Write STAT, WRITE..., COMMIT protocol).

        ``data`` is sent in chunks of at most ``chunk_size`` bytes (below the 16 MiB message
        limit), pipelined: the next chunk goes out while the daemon stores the previous one.
        If the daemon already holds a partial upload under ``ref`` and ``expected`` is given
        with bytes-like ``data``, the upload resumes where it stopped; otherwise the partial
        upload is restarted. If anything fails after the daemon accepted the ref, the partial
        upload is aborted. That is best effort when the call itself broke (timeout, lost
        connection): the daemon may still hold the ref then, and :meth:`list_statuses` shows
        what is left.

        Args:
            ref: A client-chosen name for the upload, unique among concurrent uploads in the
                namespace (a second writer on the same ref gets :class:`UnavailableError`).
            data: The bytes, or an iterable of byte chunks (e.g. a generator reading a file).
            expected: The blob's digest if known; the daemon verifies it on commit and
                refuses at once if the blob already exists.
            labels: Labels for the committed blob (e.g. ``containerd.io/gc.root``).
            media_type: The media type put in the returned descriptor (not sent).
            chunk_size: Bytes per message, 1 to :data:`MAX_CHUNK_SIZE`.
            timeout: Deadline in seconds for the whole upload (default: none).
            metadata: Extra gRPC metadata for the call.
            total: The blob's size when ``data`` is an iterable (sent in the STAT
                request, so the daemon refuses a commit of any other size).
            resume: For iterable ``data`` with ``expected`` and ``total``: called with the
                offset of a partial upload the daemon holds under ``ref`` (0 < offset <=
                total); returns the bytes from that offset on, which are sent instead of
                ``data``. Without it a partial upload is restarted.
            keep_partial: Exception types which, raised while iterating ``data``, leave
                the partial upload under ``ref`` for a later ``resume`` instead of
                aborting it (a download that broke; the daemon's lease keeps it).

        Returns:
            A descriptor with the committed digest and size.

        Raises:
            AlreadyExistsError: The blob is already in the content store (in this namespace).
            FailedPreconditionError: The committed bytes do not match ``expected``.
            UnavailableError: Another writer holds ``ref``.
            ValueError: An empty ref or a chunk size out of range.
            TypeError: ``data`` yielded something other than bytes.
            Exception: Whatever iterating ``data`` raised, unchanged.
        """
        check_write(ref, data, chunk_size)
        source: memoryview | Iterable[bytes]
        if isinstance(data, (bytes, bytearray, memoryview)):
            source = memoryview(data).cast("B")
            total = len(source)
        else:
            source, total = data, total or 0
        ingest = _Ingest(
            ref,
            source,
            total=total,
            expected=expected or "",
            labels=labels or {},
            chunk_size=chunk_size,
        )
        self._conn.connect()
        # Like every stream, no default deadline: an upload's duration grows with its size.
        call = self.stub.Write(iter(ingest), timeout=timeout, metadata=tuple(metadata) or None)
        accepted = committed = False
        try:
            try:
                responses = iter(call)
                held = write_stat_offset(next(responses))
                accepted = True
                if bool(expected) and isinstance(source, memoryview) and 0 < held <= total:
                    ingest.begin(held)
                elif bool(expected) and resume is not None and 0 < held <= total:
                    ingest.begin(held, resume(held))
                else:
                    ingest.begin(0)
                digest = ""
                for response in responses:
                    found = write_committed_digest(response)
                    if found is not None:
                        digest = found
                        committed = True
                        break
                # The request side has closed after COMMIT; let the call end normally.
                for _ in responses:
                    pass
            except grpc.RpcError as err:
                if ingest.failure is not None:
                    raise ingest.failure from None
                raise self._conn.map_error(err, long_running=accepted) from err
            except StopIteration:
                raise errors.UnknownError(f"content write {ref!r}: the daemon ended the stream") from None
            if not committed:
                if ingest.failure is not None:
                    raise ingest.failure
                raise errors.UnknownError(f"content write {ref!r}: the stream ended before the commit")
        except BaseException:
            ingest.abandon()
            call.cancel()
            kept = keep_partial and isinstance(ingest.failure, keep_partial)
            if accepted and not committed and not kept:
                self._abort_quietly(ref, metadata)
            raise
        ingest.abandon()
        return Descriptor(media_type=media_type, digest=digest, size=ingest.sent)

    def _abort_quietly(self, ref: str, metadata: Metadata) -> None:
        # Cleanup after a failure that is already being raised: its own failure must not mask it.
        with contextlib.suppress(errors.ContainerdError):
            self.abort(ref, metadata=metadata)
