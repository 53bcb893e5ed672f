"""``Client.push``: an image of the content store to a registry, as containerd's ``Push`` does.

What is pushed: with ``platform``, that platform's manifest (its config and layers)
as the image; without, the image's target as it is, an index with every manifest
it lists (each must be in the content store; an image imported or pulled for one
platform of a multi-platform index has only that one, so pass ``platform=``).

The order is containerd's: blobs first (configs and layers, ``max_concurrent`` at a
time; each checked with HEAD, mounted from another repository of the registry when
its source label names one, else uploaded, see :mod:`.upload`), then manifests by
digest, then indexes, and last the root under the reference's tag (or its digest
when the reference has no tag). Afterwards each pushed blob's
``containerd.io/distribution.source.<registry>`` label names the repository, as a
pull's does, so a later push to another repository can mount it.

A push given a ``cancel`` token (the asyncio client's hook, not part of ``Client.push``)
stops when it is set (open requests at once: the transport shuts its sockets down)
and raises :class:`~pycontainerd._cancel.OperationCancelled`. It writes nothing to
containerd before its end; an upload the registry had begun is the registry's to
expire.
"""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from pycontainerd import errors
from pycontainerd._cancel import CancelToken, OperationCancelled
from pycontainerd.api.types import Descriptor
from pycontainerd.images import mediatypes
from pycontainerd.images import platform as _platform
from pycontainerd.images import reference as _reference
from pycontainerd.images.errors import MissingBlobError
from pycontainerd.images.image import Image
from pycontainerd.images.ingest import set_labels
from pycontainerd.images.platform import Platform
from pycontainerd.images.walk import descriptor, read_json, walk
from pycontainerd.registry.credentials import AuthSource
from pycontainerd.registry.fetch import source_label
from pycontainerd.registry.progress import Phase, Progress, Reporter
from pycontainerd.registry.remote import open_remote
from pycontainerd.registry.transport import DEFAULT_RETRIES, DEFAULT_TIMEOUT
from pycontainerd.registry.upload import DEFAULT_CHUNK_SIZE, manifest_exists, push_blob, push_manifest

if TYPE_CHECKING:
    from pycontainerd.api.content import ContentService
    from pycontainerd.client import Client

__all__ = ["push"]


def _indexes(content: ContentService, desc: Descriptor, out: list[Descriptor]) -> None:
    """The indexes under ``desc`` (itself included), children before parents."""
    if not mediatypes.is_index(desc.media_type):
        return
    value = read_json(content, desc, "index")
    for entry in value.get("manifests") or ():
        child = descriptor(entry, f"index {desc.digest}")
        _indexes(content, child, out)
    out.append(desc)


def _sources(labels: Mapping[str, str], key: str) -> list[str]:
    return [repo for repo in labels.get(key, "").split(",") if repo]


def push(
    client: Client,
    image: Image | str,
    ref: str | None = None,
    *,
    platform: str | Platform | None = None,
    auth: AuthSource | None = None,
    plain_http: bool = False,
    ca_file: str | None = None,
    progress: Progress | None = None,
    max_concurrent: int = 3,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    timeout: float = DEFAULT_TIMEOUT,
    retries: int = DEFAULT_RETRIES,
    cancel: CancelToken | None = None,
) -> Descriptor:
    """Push ``image`` to ``ref`` (default: its own name); see ``Client.push``.

    ``cancel`` (internal) stops the push when set; see the module docstring.

    Raises:
        OperationCancelled: ``cancel`` was set.
    """
    if max_concurrent < 1:
        raise ValueError(f"max_concurrent must be at least 1, not {max_concurrent}")
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be positive, not {chunk_size}")
    if isinstance(image, str):
        image = Image.from_record(client, client.api.images.get(image))
    target = _reference.parse(ref if ref is not None else image.name)
    content = client.api.content
    if platform is not None:
        want = _platform.parse(platform)
        found = walk(content, image.name, image.target, want, first_only=True)
        chosen = found.manifests[0].descriptor
        root = Descriptor(chosen.media_type, chosen.digest, chosen.size)
    else:
        found = walk(content, image.name, image.target, None)
        root = Descriptor(image.target.media_type, image.target.digest, image.target.size)
    manifests = {m.descriptor.digest: m for m in found.manifests}
    blobs: dict[str, Descriptor] = {}
    for manifest in manifests.values():
        for blob in (manifest.config, *manifest.layers):
            blobs.setdefault(blob.digest, blob)
    indexes: list[Descriptor] = []
    _indexes(content, root, indexes)
    label = source_label(target.domain)
    # Every blob is looked up before the first byte goes out, so an image with a layer
    # missing (collected, or never fetched for this platform) is refused with nothing
    # half-pushed; the labels are the mount sources.
    sources = {digest: _blob_sources(content, image.name, blob, label) for digest, blob in blobs.items()}
    report = Reporter(progress)
    cancel = cancel if cancel is not None else CancelToken()
    remote = open_remote(target, auth=auth, plain_http=plain_http, ca_file=ca_file, timeout=timeout,
                         retries=retries, connections=max_concurrent + 1, cancel=cancel)
    pushed: list[str] = []
    try:
        def one(blob: Descriptor) -> None:
            cancel.check("push")
            push_blob(remote, content, blob, report=report, mount_from=sources[blob.digest],
                      chunk_size=chunk_size)
            pushed.append(blob.digest)

        with ThreadPoolExecutor(max_concurrent, thread_name_prefix="pycontainerd-push") as executor:
            futures = [executor.submit(one, blob) for blob in blobs.values()]
            for future in futures:
                future.result()
        documents = [m.descriptor for m in manifests.values()] + indexes
        for desc in documents:
            data = content.read(desc.digest)
            is_root = desc.digest == root.digest
            if not is_root and manifest_exists(remote, desc.digest):
                report(Phase.EXISTS, desc.digest, desc.media_type, desc.size, desc.size)
                continue
            push_manifest(remote, desc, data, target.tag if is_root and target.tag else desc.digest)
            report(Phase.DONE, desc.digest, desc.media_type, desc.size, desc.size)
            pushed.append(desc.digest)
    except Exception as err:
        if cancel.is_set() and not isinstance(err, OperationCancelled):
            # A failure the cancel caused (a shut socket) is reported as the cancel.
            raise OperationCancelled(f"push to {target} cancelled") from err
        raise
    finally:
        remote.transport.close()
    for digest in pushed:
        _add_source(content, digest, label, target.path)
    return root


def _blob_sources(content: ContentService, image: str, blob: Descriptor, key: str) -> list[str]:
    """The repositories ``blob`` came from; :class:`MissingBlobError` when the store lacks it."""
    try:
        return _sources(content.info(blob.digest).labels, key)
    except errors.NotFoundError:
        raise MissingBlobError(
            f"cannot push {image}: blob {blob.digest} ({blob.media_type}) is missing from the content store "
            "(pull or import it for every platform, or push one platform with platform=)",
            digest=blob.digest,
        ) from None


def _add_source(content: ContentService, digest: str, key: str, repository: str) -> None:
    try:
        current = _sources(content.info(digest).labels, key)
        if repository not in current:
            set_labels(content, digest, {key: ",".join([*current, repository])})
    except errors.NotFoundError:
        pass  # collected meanwhile: nothing to label
