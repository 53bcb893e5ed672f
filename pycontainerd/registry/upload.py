"""Sending to a registry: blobs (existence check, cross-repo mount, monolithic or chunked), manifests.

A blob is pushed as containerd's pusher does it:

1. ``HEAD /v2/<repo>/blobs/<digest>``: the registry has it → nothing to send.
2. For each repository of the same registry the blob is known to come from (the
   ``containerd.io/distribution.source.<registry>`` label a pull or push leaves):
   ``POST /v2/<repo>/blobs/uploads/?mount=<digest>&from=<other>``; ``201`` means
   mounted, nothing to send.
3. Otherwise an upload session (``POST .../blobs/uploads/``, or the one a refused mount
   opened), then either one ``PUT <location>?digest=<digest>`` carrying the whole blob
   (blobs up to ``chunk_size``), or ``PATCH`` requests of ``chunk_size`` bytes each
   (``Content-Range``), and a final empty ``PUT ...?digest=``. The registry verifies
   the digest. The bytes are streamed from the content store, never held whole.

Manifests and indexes are ``PUT /v2/<repo>/manifests/<digest or tag>`` with their
media type as ``Content-Type``, after everything they reference.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING
from urllib.parse import urlencode, urlsplit, urlunsplit

from pycontainerd.api.types import Descriptor
from pycontainerd.registry.auth import pull_scope, push_scope
from pycontainerd.registry.errors import RegistryProtocolError
from pycontainerd.registry.progress import Phase, Reporter
from pycontainerd.registry.remote import Remote

if TYPE_CHECKING:
    from pycontainerd.api.content import ContentService

__all__ = ["DEFAULT_CHUNK_SIZE", "manifest_exists", "push_blob", "push_manifest"]

#: Blobs up to this size go in one PUT; larger ones in PATCH requests of this size.
DEFAULT_CHUNK_SIZE = 64 << 20
_READ_CHUNK = 1 << 20


def _with_query(location: str, **params: str) -> str:
    parts = urlsplit(location)
    query = parts.query + ("&" if parts.query else "") + urlencode(params)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


def _location(remote: Remote, response_location: str | None, what: str) -> str:
    if not response_location:
        raise RegistryProtocolError(f"{what}: the registry opened an upload without a Location")
    return remote.url(response_location)


class _Body:
    """A blob's bytes from the content store, ``size`` bytes from ``offset``, with progress."""

    def __init__(self, content: ContentService, desc: Descriptor, offset: int, size: int, report: Reporter,
                 done_before: int) -> None:
        self.content, self.desc, self.offset, self.size = content, desc, offset, size
        self.report, self.done_before = report, done_before

    def __call__(self) -> Iterator[bytes]:
        sent = 0
        with self.content.read_chunks(self.desc.digest, offset=self.offset, size=self.size) as chunks:
            for chunk in chunks:
                sent += len(chunk)
                yield chunk
                self.report(Phase.UPLOADING, self.desc.digest, self.desc.media_type, self.desc.size,
                            self.done_before + sent)


def push_blob(
    remote: Remote,
    content: ContentService,
    desc: Descriptor,
    *,
    report: Reporter,
    mount_from: Sequence[str] = (),
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> Phase:
    """Make the registry have the blob ``desc`` in ``remote``'s repository.

    Args:
        remote: The repository.
        content: The content store to read the blob from.
        desc: The blob's descriptor.
        report: The progress reporter.
        mount_from: Repositories of the same registry that may have the blob.
        chunk_size: The largest blob sent in one request (larger ones go in chunks of it).

    Returns:
        :attr:`Phase.EXISTS`, :attr:`Phase.MOUNTED` or :attr:`Phase.DONE` (uploaded).

    Raises:
        RegistryError: The registry refused (the subclass tells why).
    """
    path = remote.ref.path
    sources = [source for source in mount_from if source != path]
    scopes = [push_scope(path), *(pull_scope(source) for source in sources)]
    blob = f"{path}/blobs/{desc.digest}"
    head = remote.request("HEAD", blob, scopes=scopes, ok=(200, 404))
    head.close()
    if head.status == 200:
        report(Phase.EXISTS, desc.digest, desc.media_type, desc.size, desc.size)
        return Phase.EXISTS
    location = None
    for source in sources:
        query = urlencode({"mount": desc.digest, "from": source})
        answer = remote.request("POST", f"{path}/blobs/uploads/?{query}", scopes=scopes, ok=(201, 202),
                                headers={"Content-Length": "0"})
        answer.close()
        if answer.status == 201:
            report(Phase.MOUNTED, desc.digest, desc.media_type, desc.size, desc.size)
            return Phase.MOUNTED
        location = _location(remote, answer.header("Location"), f"mount of {desc.digest}")
        break
    if location is None:
        answer = remote.request("POST", f"{path}/blobs/uploads/", scopes=scopes, ok=(202,),
                                headers={"Content-Length": "0"})
        answer.close()
        location = _location(remote, answer.header("Location"), f"upload of {desc.digest}")
    octets = {"Content-Type": "application/octet-stream"}
    if desc.size <= chunk_size:
        body = _Body(content, desc, 0, desc.size, report, 0)
        answer = remote.request("PUT", _with_query(location, digest=desc.digest), scopes=scopes, ok=(201,),
                                body=body, headers={**octets, "Content-Length": str(desc.size)})
        answer.close()
    else:
        offset = 0
        while offset < desc.size:
            size = min(chunk_size, desc.size - offset)
            body = _Body(content, desc, offset, size, report, offset)
            span = {"Content-Length": str(size), "Content-Range": f"{offset}-{offset + size - 1}"}
            answer = remote.request("PATCH", location, scopes=scopes, ok=(202,), body=body, idempotent=False,
                                    headers={**octets, **span})
            answer.close()
            location = _location(remote, answer.header("Location"), f"upload of {desc.digest}")
            offset += size
        answer = remote.request("PUT", _with_query(location, digest=desc.digest), scopes=scopes, ok=(201,),
                                headers={"Content-Length": "0"})
        answer.close()
    report(Phase.DONE, desc.digest, desc.media_type, desc.size, desc.size)
    return Phase.DONE


def manifest_exists(remote: Remote, digest: str) -> bool:
    """Whether the repository has the manifest ``digest``."""
    path = remote.ref.path
    answer = remote.request("HEAD", f"{path}/manifests/{digest}", scopes=[push_scope(path)], ok=(200, 404),
                            headers={"Accept": "*/*"})
    answer.close()
    return answer.status == 200


def push_manifest(remote: Remote, desc: Descriptor, data: bytes, reference: str) -> None:
    """``PUT`` the manifest or index ``data`` under ``reference`` (a tag or its digest)."""
    path = remote.ref.path
    headers = {"Content-Type": desc.media_type, "Content-Length": str(len(data))}
    answer = remote.request("PUT", f"{path}/manifests/{reference}", scopes=[push_scope(path)], ok=(201,),
                            body=data, headers=headers)
    answer.close()
