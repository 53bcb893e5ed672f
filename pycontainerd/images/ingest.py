"""Content ingestion the way containerd's client does it: per-blob refs, resume, skip what exists.

Every write goes through a client view bound to a lease (the caller's), so what is
written stays until the image records and GC labels reference it, and whatever a
failure leaves behind is collected once the lease is deleted.

* A blob whose digest is known (an OCI layout's ``blobs/<alg>/<hex>``) is written
  with ``expected`` and its total size: the daemon verifies both on commit,
  refuses at once when the blob already exists (which adds it to the lease), and
  a partial upload left under the same ref is resumed from the offset the daemon
  reports.
* A file whose digest is not known (a docker archive's layer) is digested on the
  way, and an "already exists" at commit means the same bytes are there.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from pycontainerd import errors
from pycontainerd.api.types import Descriptor
from pycontainerd.images.archive import MemberReader
from pycontainerd.images.errors import BlobMismatchError

if TYPE_CHECKING:
    from pycontainerd.api.content import ContentService

__all__ = ["REF_PREFIX", "Ingester", "set_labels"]

#: The prefix of every ingest ref this client uses (``ctr content active`` shows them).
REF_PREFIX = "pycontainerd-import-"
# A ref is locked while another writer streams it; that writer's upload ends (commit or
# abort) in the time one blob takes, so wait as containerd's client does, boundedly.
_LOCKED_RETRIES = 100
_LOCKED_PAUSE = 0.1


class Ingester:
    """Writes archive files and generated documents into the content store.

    Args:
        content: The content service of a client view bound to a lease.
    """

    def __init__(self, content: ContentService) -> None:
        self._content = content

    def store(self, reader: MemberReader, expected: str | None) -> str:
        """Stream one archive file into the store; return its digest.

        Raises:
            BlobMismatchError: The bytes do not have the digest their name promises.
            TruncatedArchiveError: The archive ended inside the file.
        """
        if expected is None:
            return self._store_unknown(reader)
        ref = REF_PREFIX + expected
        try:
            desc = self._write(
                reader,
                lambda: self._content.write(
                    ref, reader.chunks(), expected=expected, total=reader.size, resume=reader.skip_to
                ),
            )
        except errors.AlreadyExistsError:
            return expected
        except errors.FailedPreconditionError as err:
            raise BlobMismatchError(
                f"archive file {reader.name!r} does not have digest {expected} and size {reader.size}: "
                f"{err.details}",
                digest=expected,
            ) from err
        if desc.digest != expected:  # pragma: no cover - the daemon verified it
            raise BlobMismatchError(f"{reader.name!r}: committed as {desc.digest}", digest=expected)
        return expected

    def _store_unknown(self, reader: MemberReader) -> str:
        hasher = hashlib.sha256()
        reader.digest_on_the_way(hasher)
        ref = REF_PREFIX + "tar-" + reader.name
        try:
            desc = self._write(reader, lambda: self._content.write(ref, reader.chunks(), total=reader.size))
        except errors.AlreadyExistsError:
            # Refused at commit, after every byte went out: the digest is complete.
            return "sha256:" + hasher.hexdigest()
        return desc.digest

    def _write(self, reader: MemberReader, call: Callable[[], Descriptor]) -> Descriptor:
        for _ in range(_LOCKED_RETRIES):
            try:
                return call()
            except errors.UnavailableError as err:
                # Only "ref locked" is answered before any byte is read; anything else
                # (a lost daemon) or a retry after reading would lose data.
                if reader.head or isinstance(err, errors.ConnectionLostError) or "locked" not in err.details:
                    raise
                time.sleep(_LOCKED_PAUSE)
        return call()

    def write_bytes(self, data: bytes, media_type: str) -> Descriptor:
        """Store a small document (a generated manifest); existing is fine."""
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        with contextlib.suppress(errors.AlreadyExistsError):
            self._content.write(REF_PREFIX + digest, data, expected=digest, media_type=media_type)
        return Descriptor(media_type=media_type, digest=digest, size=len(data))


def set_labels(content: ContentService, digest: str, labels: Mapping[str, str]) -> None:
    """Set (add or overwrite) ``labels`` on a blob, leaving its other labels alone."""
    if labels:
        content.update(digest, labels=labels, fieldpaths=[f"labels.{key}" for key in labels])
