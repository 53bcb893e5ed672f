"""``export_archive``: images into an OCI image layout tar, as containerd's exporter writes one.

The tar holds:

* ``blobs/<algorithm>/<hex>``: every blob the selected platforms need (indexes on the
  way, manifests, configs, layers), each once, streamed from the content store and
  never held in memory;
* ``oci-layout`` and ``index.json``: one entry per image, its target descriptor named
  by ``io.containerd.image.name`` (the full name) and
  ``org.opencontainers.image.ref.name`` (its tag), as containerd's exporter names them;
* Docker's ``manifest.json`` (``Config``, ``RepoTags``, ``Layers`` as blob paths), so
  that ``docker load`` takes the archive too.

An index target is written as it is, with only the selected platforms' manifests (and
their configs and layers), as containerd exports by default: an importer picks one of
those platforms (``ctr images import`` and :func:`~pycontainerd.images.importer.import_archive`
the host's). Everything written is first checked against the store
(:func:`~pycontainerd.images.walk.walk`), so a missing blob fails before the archive exists.
"""

from __future__ import annotations

import io
import json
import os
import tarfile
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any

from pycontainerd.api.types import Descriptor
from pycontainerd.images import mediatypes
from pycontainerd.images import platform as _platform
from pycontainerd.images.archive import familiar_reference, reference_tag
from pycontainerd.images.errors import NoMatchingPlatformError
from pycontainerd.images.image import Image
from pycontainerd.images.importer import ANNOTATION_IMAGE_NAME, ANNOTATION_REF_NAME
from pycontainerd.images.walk import ImageManifest, walk

if TYPE_CHECKING:
    from pycontainerd.client import Client

__all__ = ["export_archive"]

_OCI_LAYOUT = b'{"imageLayoutVersion":"1.0.0"}'


class _BlobReader:
    """A ``read(n)`` file over a blob's chunks, which ``tarfile.addfile`` copies from."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._buffer = bytearray()

    def read(self, size: int = -1) -> bytes:
        while size < 0 or len(self._buffer) < size:
            chunk = next(self._chunks, None)
            if chunk is None:
                break
            self._buffer += chunk
        if size < 0:
            size = len(self._buffer)
        data = bytes(self._buffer[:size])
        del self._buffer[:size]
        return data


@dataclass(frozen=True)
class _Selected:
    """One image's part of the archive: its blobs, and the manifests of the selected platforms."""

    image: Image
    blobs: list[Descriptor]
    manifests: list[ImageManifest]


def _select(client: Client, image: Image, wanted: Sequence[_platform.Platform]) -> _Selected:
    content = client.api.content
    manifests: dict[str, ImageManifest] = {}
    indexes: dict[str, Descriptor] = {}
    offered: set[str] = set()
    for platform in wanted:
        try:
            found = walk(content, image.name, image.target, platform)
        except NoMatchingPlatformError as err:
            offered.update(err.available)
            continue
        for manifest in found.manifests:
            manifests.setdefault(manifest.descriptor.digest, manifest)
        for index in reversed(found.indexes):  # outermost first
            indexes.setdefault(index.digest, index)
    if not manifests:
        raise NoMatchingPlatformError(image.name, ", ".join(map(str, wanted)), sorted(offered))
    blobs = list(indexes.values())
    for manifest in manifests.values():
        blobs += [manifest.descriptor, manifest.config, *manifest.layers]
    return _Selected(image, blobs, list(manifests.values()))


def _blob_path(digest: str) -> str:
    algorithm, _, hexdigest = digest.partition(":")
    return f"blobs/{algorithm}/{hexdigest}"


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode = len(data), 0o644
    tar.addfile(info, io.BytesIO(data))


def _add_dir(tar: tarfile.TarFile, name: str) -> None:
    info = tarfile.TarInfo(name)
    info.type, info.mode = tarfile.DIRTYPE, 0o755
    tar.addfile(info)


def _index_entry(image: Image) -> dict[str, Any]:
    annotations = dict(image.target.annotations)
    annotations[ANNOTATION_IMAGE_NAME] = image.name
    annotations[ANNOTATION_REF_NAME] = reference_tag(image.name) or image.name
    return {
        "mediaType": image.target.media_type,
        "digest": image.target.digest,
        "size": image.target.size,
        "annotations": annotations,
    }


def _docker_manifest(selected: Sequence[_Selected]) -> list[dict[str, Any]]:
    # Docker's manifest.json knows one manifest per image: the first selected platform's.
    # Images sharing it share an entry, with one RepoTag per name.
    entries: dict[str, dict[str, Any]] = {}
    for item in selected:
        manifest = item.manifests[0]
        entry = entries.setdefault(manifest.descriptor.digest, {
            "Config": _blob_path(manifest.config.digest),
            "RepoTags": [],
            "Layers": [_blob_path(layer.digest) for layer in manifest.layers],
        })
        if reference_tag(item.image.name) and "@" not in item.image.name:
            entry["RepoTags"].append(familiar_reference(item.image.name))
    return list(entries.values())


def _write(client: Client, tar: tarfile.TarFile, selected: Sequence[_Selected]) -> None:
    content = client.api.content
    _add_dir(tar, "blobs")
    directories = {"blobs"}
    written: set[str] = set()
    for item in selected:
        for desc in item.blobs:
            if desc.digest in written:
                continue
            path = _blob_path(desc.digest)
            directory = path.rsplit("/", 1)[0]
            if directory not in directories:
                _add_dir(tar, directory)
                directories.add(directory)
            info = tarfile.TarInfo(path)
            info.size, info.mode = desc.size, 0o644
            # tarfile reads exactly info.size bytes and fails on fewer ("unexpected end of data").
            with content.read_chunks(desc.digest) as chunks:
                tar.addfile(info, _BlobReader(iter(chunks)))
            written.add(desc.digest)
    index = {"schemaVersion": 2, "mediaType": mediatypes.OCI_INDEX,
             "manifests": [_index_entry(item.image) for item in selected]}
    _add_bytes(tar, "oci-layout", _OCI_LAYOUT)
    _add_bytes(tar, "index.json", json.dumps(index, separators=(",", ":")).encode())
    _add_bytes(tar, "manifest.json", json.dumps(_docker_manifest(selected), separators=(",", ":")).encode())


def _open_tar(fileobj: IO[bytes]) -> tarfile.TarFile:
    # Stream mode: the destination may be a pipe (no tell/seek).
    return tarfile.open(fileobj=fileobj, mode="w|", format=tarfile.PAX_FORMAT)


def export_archive(
    client: Client,
    images: Sequence[Image | str],
    dest: str | os.PathLike[str] | IO[bytes],
    *,
    platforms: Sequence[str | _platform.Platform] | None = None,
) -> None:
    """Write ``images`` to an OCI image layout tar (see ``Client.export_archive``).

    Args:
        client: The client (its namespace holds the images).
        images: The images, or their names; each becomes one ``index.json`` entry.
        dest: A path (written to a temporary file beside it, then renamed: a failure
            leaves nothing) or a writable binary stream.
        platforms: The platforms to include (default: the host's).

    Raises:
        ValueError: No images, or a malformed platform.
        NotFoundError: No image of that name.
        NoMatchingPlatformError: An image has nothing for any of the platforms.
        MissingBlobError: A blob a selected manifest needs is not in the content store.
    """
    if isinstance(images, (str, Image)):
        raise TypeError("images must be a sequence of images or names, not a single one")
    if not images:
        raise ValueError("export_archive needs at least one image")
    wanted = [_platform.parse(p) for p in platforms] if platforms else [_platform.host()]
    resolved = [Image.from_record(client, client.api.images.get(i)) if isinstance(i, str) else i
                for i in images]
    # Everything is checked before the archive is begun.
    selected = [_select(client, image, wanted) for image in resolved]
    if not isinstance(dest, (str, os.PathLike)):
        with _open_tar(dest) as tar:
            _write(client, tar, selected)
        return
    path = os.path.abspath(os.fspath(dest))
    fd, tmp = tempfile.mkstemp(prefix=".pycontainerd-export-", dir=os.path.dirname(path))
    try:
        with os.fdopen(fd, "wb") as f:
            with _open_tar(f) as tar:
                _write(client, tar, selected)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
