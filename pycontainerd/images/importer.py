"""``import_archive``: an OCI layout or ``docker save`` tar into containerd, as ``ctr images import`` does.

The sequence, all under one lease (``containerd.io/gc.expire`` 24 h) deleted at the end:

1. One streaming pass over the tar (:mod:`.archive`): each file into the content
   store (:mod:`.ingest`), digest and size verified by the daemon on commit.
2. The images: index.json's entries (OCI), or docker schema 2 manifests made from
   ``manifest.json`` and stored (docker).
3. Each image walked for the platform (:mod:`.walk`): every blob it needs present
   with its descriptor's size, every document well-formed, every media type known;
   no manifest for the platform is an error listing what the image offers.
4. Optionally unpacked into snapshots (:mod:`.unpack`).
5. The GC labels set on every index and manifest kept, then the image records
   created (or their targets updated: importing twice changes nothing).

Any error before step 5 leaves no image record; the lease is then deleted with a
synchronous garbage collection, so no content, ingest or snapshot of the failed
import remains either.

If the daemon went away mid-import, the lease cannot be deleted then: its id is
remembered, and the next successful import through the same daemon and namespace
deletes it at its end, after it has resumed the partial uploads the lease kept and
removed the extract snapshot a killed unpack left (:mod:`.unpack`). In another
process only the lease's expiry (24 h) ends it.

An import given a ``cancel`` token (the asyncio client's hook, not part of
``Client.import_archive``) checks it before each read of the source and between the
steps, and ends as a failed import does (its lease deleted with a synchronous
garbage collection), raising :class:`~pycontainerd._cancel.OperationCancelled`. A
read blocked on a silent pipe is not interrupted: it sees the cancel once the pipe
delivers its next block or closes.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from collections.abc import Iterator, Mapping
from typing import IO, TYPE_CHECKING, Any, cast

from pycontainerd import errors
from pycontainerd._cancel import CancelToken
from pycontainerd.api.leases import DEFAULT_EXPIRE
from pycontainerd.api.types import Descriptor
from pycontainerd.images import mediatypes
from pycontainerd.images import platform as _platform
from pycontainerd.images.archive import (
    ArchiveContents,
    Progress,
    docker_manifests,
    read_archive,
    reference_tag,
)
from pycontainerd.images.errors import ArchiveError, MalformedContentError
from pycontainerd.images.image import Image
from pycontainerd.images.ingest import Ingester, set_labels
from pycontainerd.images.store import put_image
from pycontainerd.images.unpack import DEFAULT_SNAPSHOTTER, check_snapshotter, unpack
from pycontainerd.images.walk import descriptor, walk

if TYPE_CHECKING:
    from pycontainerd.client import Client

__all__ = ["ANNOTATION_IMAGE_NAME", "ANNOTATION_REF_NAME", "import_archive"]

ANNOTATION_IMAGE_NAME = "io.containerd.image.name"
ANNOTATION_REF_NAME = "org.opencontainers.image.ref.name"
_OCI_LAYOUT_VERSION = "1.0.0"
# Leases of failed imports that could not be deleted (the daemon was gone), by (socket, namespace).
_orphaned: dict[tuple[str, str], set[str]] = {}
_orphaned_lock = threading.Lock()

Source = str | os.PathLike[str] | IO[bytes]


class _Cancellable:
    """The source as the tar reader sees it: each read first checks the import's cancel token."""

    def __init__(self, fileobj: IO[bytes], cancel: CancelToken) -> None:
        self._fileobj = fileobj
        self._cancel = cancel

    def read(self, size: int = -1) -> bytes:
        self._cancel.check("import")
        return self._fileobj.read(size)


@contextlib.contextmanager
def _opened(source: Source) -> Iterator[IO[bytes]]:
    if isinstance(source, (str, os.PathLike)):
        with open(source, "rb") as f:
            yield f
    else:
        yield source


def _full_reference(ref: str) -> bool:
    # A ref.name annotation is often just a tag ("latest"); only a name with a
    # registry-like first component names an image on its own.
    first = ref.split("/", 1)[0]
    return "/" in ref and ("." in first or ":" in first or first == "localhost")


def _oci_targets(contents: ArchiveContents) -> list[tuple[list[str], Descriptor]]:
    layout = contents.oci_layout
    version = layout.get("imageLayoutVersion") if isinstance(layout, Mapping) else None
    if version != _OCI_LAYOUT_VERSION:
        raise ArchiveError(f"unsupported OCI layout version {version!r}")
    if contents.index is None:
        raise ArchiveError("OCI layout without index.json")
    try:
        index = json.loads(contents.index)
    except (ValueError, UnicodeDecodeError) as err:
        raise MalformedContentError(f"index.json: not valid JSON: {err}") from err
    entries = index.get("manifests") if isinstance(index, Mapping) else None
    if not isinstance(entries, list):
        raise MalformedContentError("index.json: no manifests list")
    targets = []
    for entry in entries:
        desc = descriptor(entry, "index.json")
        names = []
        if name := desc.annotations.get(ANNOTATION_IMAGE_NAME):
            names.append(name)
        elif (ref := desc.annotations.get(ANNOTATION_REF_NAME)) and _full_reference(ref):
            names.append(ref)
        # The record's target is the index entry, annotations included, as containerd stores it.
        targets.append((names, desc))
    return targets


def _docker_targets(contents: ArchiveContents, ingester: Ingester) -> list[tuple[list[str], Descriptor]]:
    targets = []
    for image in docker_manifests(contents):
        target = ingester.write_bytes(image.manifest, mediatypes.DOCKER_MANIFEST)
        targets.append((image.names, target))
    return targets


def _annotated(target: Descriptor, name: str) -> Descriptor:
    # The index entry containerd's importer makes for each name of a docker archive.
    annotations = {ANNOTATION_IMAGE_NAME: name, ANNOTATION_REF_NAME: reference_tag(name) or name}
    return Descriptor(target.media_type, target.digest, target.size, annotations)


def _named(targets: list[tuple[list[str], Descriptor]], name: str | None,
           docker: bool) -> list[tuple[str, Descriptor]]:
    if name is not None:
        if len(targets) != 1:
            raise ArchiveError(f"name={name!r} needs an archive of exactly one image; it has {len(targets)}")
        target = targets[0][1]
        return [(name, _annotated(target, name) if docker else target)]
    named = [(n, _annotated(target, n) if docker else target) for names, target in targets for n in names]
    if not named:
        raise ArchiveError("the archive names no image; pass name=")
    return named


def import_archive(
    client: Client,
    source: Source,
    *,
    name: str | None = None,
    platform: str | _platform.Platform | None = None,
    unpack_into: str | None = DEFAULT_SNAPSHOTTER,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
) -> list[Image]:
    """Import the images of an archive (see ``Client.import_archive``).

    Args:
        client: The client (its namespace receives the images).
        source: The archive's path, or a readable binary stream at its start.
        name: Name the archive's one image so (its own names are then ignored).
        platform: The platform to keep (default: the host's).
        unpack_into: The snapshotter to unpack into; ``None`` skips unpacking.
        progress: Told how far each archive file is (see :data:`.archive.Progress`).
        cancel: (Internal) stops the import when set; see the module docstring.

    Returns:
        The images, in archive order.

    Raises:
        OperationCancelled: ``cancel`` was set (nothing of the import is left).
    """
    want = _platform.parse(platform) if platform is not None else _platform.host()
    if unpack_into is not None:
        check_snapshotter(client, unpack_into)
    cancel = cancel if cancel is not None else CancelToken()
    with _opened(source) as fileobj:
        lease = client.api.leases.create(expire=DEFAULT_EXPIRE)
        done = False
        try:
            leased = client.with_lease(lease.id)
            content = leased.api.content
            ingester = Ingester(content)
            reader = cast(IO[bytes], _Cancellable(fileobj, cancel))
            contents = read_archive(reader, ingester.store, progress)
            if contents.is_oci:
                targets = _oci_targets(contents)
            elif contents.docker_manifest is not None:
                targets = _docker_targets(contents, ingester)
            else:
                raise ArchiveError("neither an OCI layout (oci-layout) nor a docker archive (manifest.json)")
            named = _named(targets, name, docker=not contents.is_oci)
            walks: dict[str, Any] = {}
            for image_name, target in named:
                if target.digest not in walks:
                    walks[target.digest] = walk(content, image_name, target, want)
            if unpack_into is not None:
                for found in walks.values():
                    cancel.check("import")
                    unpack(leased, found.manifests[0], unpack_into)
            for found in walks.values():
                for digest, labels in found.missing_labels().items():
                    set_labels(content, digest, labels)
            cancel.check("import")
            images = [put_image(client, image_name, target) for image_name, target in named]
            done = True
        finally:
            _end_lease(client, lease.id, failed=not done)
    _delete_orphaned_leases(client)
    return images


def _end_lease(client: Client, lease_id: str, *, failed: bool) -> None:
    try:
        # After a failure, collect what the import left before returning, so the
        # caller finds the store as it was.
        client.api.leases.delete(lease_id, sync=failed)
    except errors.NotFoundError:
        pass
    except errors.ContainerdError:
        if not failed:
            raise
        # Most likely the daemon is gone (why the import failed): try again next time.
        with _orphaned_lock:
            _orphaned.setdefault((client.address, client.namespace), set()).add(lease_id)


def _delete_orphaned_leases(client: Client) -> None:
    with _orphaned_lock:
        pending = _orphaned.pop((client.address, client.namespace), set())
    for lease_id in pending:
        _end_lease(client, lease_id, failed=True)
