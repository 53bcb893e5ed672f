"""Fetching from a registry: manifests (capped, verified) and blobs streamed into the content store.

**Manifests and indexes** are asked for with the OCI and Docker Accept types, by tag
or digest. The answer may be at most :data:`MAX_MANIFEST_SIZE` (4 MiB, containerd's
limit), checked against ``Content-Length`` before reading and again while reading.
Its digest is computed and must be the one asked for (a digest reference, an index
entry) or the one the registry announces (``Docker-Content-Digest``). Docker schema 1
is refused with :class:`~.errors.UnsupportedManifestError`.

**Blobs** go straight from the answer into containerd's content store
(``Content.Write`` under the caller's lease, digest and size announced, so the daemon
verifies both on commit). The bytes are hashed on the way too, so a corrupt blob
fails before the commit (:class:`~pycontainerd.images.errors.BlobMismatchError`) and
its ingest is aborted. A connection that breaks mid-blob is resumed with
``Range: bytes=<offset>-`` (:data:`MAX_RESUMES` times per blob; after that, or when the
registry is unreachable, the partial ingest is left to the pull's lease); a partial upload the daemon
still holds under the blob's ref (a pull interrupted in this or another process) is
resumed from the daemon's offset, the registry asked for the rest only. A blob
already in the store is not downloaded: the write is refused at once and the blob
joins the caller's lease.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import urllib3.exceptions

from pycontainerd import errors
from pycontainerd.api.types import Descriptor
from pycontainerd.images import mediatypes
from pycontainerd.images.errors import BlobMismatchError
from pycontainerd.registry.auth import pull_scope
from pycontainerd.registry.errors import (
    ManifestTooLargeError,
    RegistryProtocolError,
    RegistryUnavailableError,
    UnsupportedManifestError,
)
from pycontainerd.registry.progress import Phase, Reporter
from pycontainerd.registry.remote import Remote

if TYPE_CHECKING:
    from pycontainerd.api.content import ContentService

__all__ = [
    "BLOB_REF_PREFIX",
    "MANIFEST_ACCEPT",
    "MAX_MANIFEST_SIZE",
    "SCHEMA1_TYPES",
    "Cancelled",
    "Document",
    "fetch_blob",
    "fetch_manifest",
    "source_label",
    "store_document",
]

#: The largest manifest or index accepted (containerd's ``MaxManifestSize``).
MAX_MANIFEST_SIZE = 4 << 20
#: The ingest ref prefix of pulled blobs (``ctr content active`` lists them).
BLOB_REF_PREFIX = "pycontainerd-pull-"
SCHEMA1_TYPES = frozenset({
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
    "application/vnd.docker.distribution.manifest.v1+json",
})
#: The manifest Accept header: the types this client pulls, then anything (to name what it got).
MANIFEST_ACCEPT = ", ".join([
    mediatypes.OCI_INDEX,
    mediatypes.DOCKER_MANIFEST_LIST,
    mediatypes.OCI_MANIFEST,
    mediatypes.DOCKER_MANIFEST,
    "*/*",
])
#: Times a blob download is resumed after its connection broke (per blob, not counting progress).
MAX_RESUMES = 5
_CHUNK = 1 << 20
# Another writer (a concurrent pull) holds the blob's ref: wait for it, boundedly.
_LOCKED_RETRIES = 600
_LOCKED_PAUSE = 0.1


class Cancelled(Exception):
    """The pull was abandoned (another blob failed): stop this download."""


def source_label(domain: str) -> str:
    """The label containerd puts on pulled blobs, naming the repositories they came from."""
    return f"containerd.io/distribution.source.{domain}"


@dataclass(frozen=True)
class Document:
    """A manifest or index as fetched and verified.

    Attributes:
        descriptor: Its descriptor (media type, digest, size).
        data: Its bytes.
        value: The parsed JSON.
    """

    descriptor: Descriptor
    data: bytes
    value: Mapping[str, Any]


def _media_type(header: str | None, value: Mapping[str, Any]) -> str:
    declared = value.get("mediaType")
    if isinstance(declared, str) and declared:
        return declared
    content_type = (header or "").split(";")[0].strip()
    if content_type and content_type not in ("application/json", "application/octet-stream"):
        return content_type
    # An OCI document may omit mediaType: tell index from manifest by shape.
    if isinstance(value.get("manifests"), list):
        return mediatypes.OCI_INDEX
    return mediatypes.OCI_MANIFEST


def _hasher(digest: str) -> Any:
    algorithm = digest.split(":", 1)[0]
    try:
        return hashlib.new(algorithm)
    except ValueError:
        raise BlobMismatchError(f"{digest}: unsupported digest algorithm", digest=digest) from None


def fetch_manifest(remote: Remote, reference: str, expected: Descriptor | None = None) -> Document:
    """Fetch the manifest or index ``reference`` (a tag or a digest) of ``remote``'s repository.

    Args:
        remote: The repository.
        reference: A tag or ``sha256:<hex>``.
        expected: The descriptor naming it (an index entry): its size and digest are checked.

    Returns:
        The verified document.

    Raises:
        RegistryNotFoundError: No such tag or manifest.
        ManifestTooLargeError: Larger than :data:`MAX_MANIFEST_SIZE`.
        BlobMismatchError: Not the digest (or size) asked for or announced.
        UnsupportedManifestError: Docker schema 1, or not an image manifest or index.
        RegistryProtocolError: Not JSON.
    """
    path = f"{remote.ref.path}/manifests/{reference}"
    what = f"manifest {remote.ref.name}{'@' if ':' in reference else ':'}{reference}"
    response = remote.request("GET", path, scopes=[pull_scope(remote.ref.path)],
                              headers={"Accept": MANIFEST_ACCEPT})
    length = response.header("Content-Length")
    if length is not None and length.isdigit() and int(length) > MAX_MANIFEST_SIZE:
        response.close()
        raise ManifestTooLargeError(f"{what}: {int(length)} bytes, more than the {MAX_MANIFEST_SIZE} allowed")
    content_type = response.header("Content-Type")
    announced = response.header("Docker-Content-Digest")
    try:
        data = response.read(MAX_MANIFEST_SIZE)
    except RegistryProtocolError:
        raise ManifestTooLargeError(f"{what}: more than the {MAX_MANIFEST_SIZE} bytes allowed") from None
    if (content_type or "").split(";")[0].strip() in SCHEMA1_TYPES:
        raise UnsupportedManifestError(f"{what}: docker schema 1 manifests are not supported (push the image "
                                       "again with a current client)", media_type=content_type or "")
    want = expected.digest if expected is not None else reference if ":" in reference else announced
    hasher = _hasher(want) if want else hashlib.sha256()
    hasher.update(data)
    actual = f"{hasher.name}:{hasher.hexdigest()}"
    if want and actual != want:
        raise BlobMismatchError(f"{what}: the registry sent content with digest {actual}, not {want}",
                                digest=want)
    if expected is not None and expected.size != len(data):
        raise BlobMismatchError(f"{what}: {len(data)} bytes, the index says {expected.size}", digest=actual)
    try:
        value = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise RegistryProtocolError(f"{what}: not JSON ({(content_type or 'no content type')})") from None
    if not isinstance(value, Mapping):
        raise RegistryProtocolError(f"{what}: not a JSON object")
    if value.get("schemaVersion") == 1:
        raise UnsupportedManifestError(f"{what}: docker schema 1 manifests are not supported",
                                       media_type=_schema1_type(content_type))
    media_type = expected.media_type if expected is not None else _media_type(content_type, value)
    if not (mediatypes.is_index(media_type) or mediatypes.is_manifest(media_type)):
        raise UnsupportedManifestError(f"{what}: media type {media_type!r} is not an image manifest or index",
                                       media_type=media_type)
    return Document(Descriptor(media_type, actual, len(data)), data, value)


def _schema1_type(content_type: str | None) -> str:
    # The schema 1 media type to report: the answer's, else the signed one's.
    kind = (content_type or "").split(";")[0].strip()
    return kind if kind in SCHEMA1_TYPES else "application/vnd.docker.distribution.manifest.v1+prettyjws"


def store_document(content: ContentService, document: Document, labels: Mapping[str, str]) -> None:
    """Write a fetched manifest or index into the content store (existing is fine)."""
    desc = document.descriptor
    with contextlib.suppress(errors.AlreadyExistsError):
        content.write(BLOB_REF_PREFIX + desc.digest, document.data, expected=desc.digest, labels=labels)


class _Download:
    """The bytes of one blob from ``offset``, resumed with Range requests when the connection breaks."""

    def __init__(self, remote: Remote, desc: Descriptor, report: Reporter, cancel: threading.Event) -> None:
        self.remote = remote
        self.desc = desc
        self.report = report
        self.cancel = cancel

    def _open(self, offset: int) -> tuple[Any, int]:
        headers = {"Range": f"bytes={offset}-"} if offset else {}
        path = self.remote.ref.path
        response = self.remote.request("GET", f"{path}/blobs/{self.desc.digest}", scopes=[pull_scope(path)],
                                       headers=headers, ok=(200, 206))
        if response.status == 206:
            start = (response.header("Content-Range") or "").removeprefix("bytes ").split("-")[0]
            if start != str(offset):
                response.close()
                raise RegistryProtocolError(f"blob {self.desc.digest}: asked for bytes from {offset}, "
                                            f"got a range starting at {start or '?'}", status=206)
            return response, offset
        return response, 0  # no range support: the whole blob again

    def chunks(self, offset: int) -> Iterator[bytes]:
        """The blob's bytes from ``offset`` on, verified at the end when ``offset`` is 0."""
        desc = self.desc
        if offset >= desc.size > 0:
            # The daemon holds every byte already (an ingest completed but not committed,
            # or the blob shared from another namespace): commit, which verifies it.
            return
        hasher = _hasher(desc.digest) if offset == 0 else None
        pos = offset
        resumes = 0
        while True:
            if self.cancel.is_set():
                raise Cancelled()
            response, at = self._open(pos)
            try:
                for chunk in response.stream(_CHUNK):
                    if self.cancel.is_set():
                        raise Cancelled()
                    if at < pos:  # a 200 to a range request: skip what was already sent
                        skip = min(len(chunk), pos - at)
                        at += skip
                        chunk = chunk[skip:]
                        if not chunk:
                            continue
                    at += len(chunk)
                    pos = at
                    if pos > desc.size:
                        raise BlobMismatchError(f"blob {desc.digest}: the registry sent more than the "
                                                f"{desc.size} bytes its descriptor says", digest=desc.digest)
                    if hasher is not None:
                        hasher.update(chunk)
                    self.report(Phase.DOWNLOADING, desc.digest, desc.media_type, desc.size, pos)
                    yield chunk
                break
            except urllib3.exceptions.HTTPError as err:
                response.close()
                resumes += 1
                if resumes > MAX_RESUMES:
                    raise RegistryUnavailableError(
                        f"blob {desc.digest}: the connection broke {resumes} times "
                        f"(at byte {pos} of {desc.size})"
                    ) from err
                time.sleep(min(2.0, 0.1 * 2**resumes))
            finally:
                response.close()
        if pos != desc.size:
            raise BlobMismatchError(f"blob {desc.digest}: the registry sent {pos} bytes, its descriptor says "
                                    f"{desc.size}", digest=desc.digest)
        self.report(Phase.VERIFYING, desc.digest, desc.media_type, desc.size, pos)
        if hasher is not None and f"{hasher.name}:{hasher.hexdigest()}" != desc.digest:
            raise BlobMismatchError(f"blob {desc.digest}: the bytes the registry sent have digest "
                                    f"{hasher.name}:{hasher.hexdigest()}", digest=desc.digest)


def fetch_blob(
    content: ContentService,
    remote: Remote,
    desc: Descriptor,
    *,
    labels: Mapping[str, str],
    report: Reporter,
    cancel: threading.Event,
) -> bool:
    """Stream the blob ``desc`` from ``remote`` into ``content``; whether it was downloaded.

    Args:
        content: The content service of a client view bound to the pull's lease.
        remote: The repository.
        desc: The blob's descriptor.
        labels: Labels for the committed blob.
        report: The progress reporter.
        cancel: Set to abandon the download.

    Returns:
        ``False`` when the store already had the blob.

    Raises:
        BlobMismatchError: Other bytes than the digest or size promise (nothing committed).
        RegistryUnavailableError: The connection broke too often.
        Cancelled: ``cancel`` was set.
    """
    download = _Download(remote, desc, report, cancel)
    ref = BLOB_REF_PREFIX + desc.digest
    for _ in range(_LOCKED_RETRIES):
        try:
            # chunks() is a generator: nothing is requested until the daemon has accepted the
            # ref (it may be locked, or the blob may exist, and then nothing is downloaded).
            content.write(ref, download.chunks(0), expected=desc.digest, total=desc.size, labels=labels,
                          resume=download.chunks, keep_partial=(RegistryUnavailableError,))
        except errors.AlreadyExistsError:
            report(Phase.EXISTS, desc.digest, desc.media_type, desc.size, desc.size)
            return False
        except errors.FailedPreconditionError as err:
            # The daemon's own check at commit (a resumed upload is hashed only there).
            raise BlobMismatchError(f"blob {desc.digest}: {err.details}", digest=desc.digest) from err
        except errors.UnavailableError as err:
            if isinstance(err, (errors.ConnectionLostError, RegistryUnavailableError)) \
                    or "locked" not in err.details or cancel.is_set():
                raise
            # A concurrent pull is writing this blob: wait for its commit (or abort).
            time.sleep(_LOCKED_PAUSE)
            continue
        report(Phase.DONE, desc.digest, desc.media_type, desc.size, desc.size)
        return True
    raise RegistryUnavailableError(f"blob {desc.digest}: another writer kept its ingest locked")
