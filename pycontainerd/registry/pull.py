"""``Client.pull``: an image from a registry into containerd, as containerd's client-side pull does it.

The sequence, under one lease (``containerd.io/gc.expire`` 24 h) deleted at the end:

1. Resolve the reference: its manifest or index by tag or digest (:mod:`.fetch`),
   verified and stored.
2. An index: the first manifest for the platform (the host's by default), nested
   indexes followed; a manifest without a platform in its index entry is judged by its
   config. No match is a :class:`~pycontainerd.images.errors.NoMatchingPlatformError`
   listing what the index offers.
3. The manifest's config, then its layers, ``max_concurrent`` at a time, each streamed
   into the content store and verified; blobs the store has are not downloaded.
4. Unpacking (unless ``unpack=False``) runs in the calling thread meanwhile, layer by
   layer in order, each as soon as it is committed (:mod:`pycontainerd.images.unpack`).
5. The GC labels on the index and manifest (containerd's, as an import sets them),
   then the image record, named by the normalised reference.

Any error before step 5 cancels the other downloads and leaves no image record.
After bad content or a refusal (a digest mismatch, no such tag, bad credentials) the
lease is deleted with a synchronous garbage collection, so no blob, ingest or
snapshot of the failed pull remains. After the registry became unreachable
(:class:`~.errors.RegistryUnavailableError`) the lease, if it holds anything, is kept, labelled with the
reference, so that the next pull of it finds the layers already committed and
resumes the partial downloads from the offset the daemon holds; that pull deletes
the kept lease when it succeeds (else it expires after 24 h). A pull whose process
died leaves its lease the same way.

A pull given a ``cancel`` token (the asyncio client's hook, not part of ``Client.pull``)
stops when it is set: the downloads at their next chunk, a blocked read at once
(the transport shuts its sockets down), and the lease is deleted with a synchronous
garbage collection as after bad content, never kept: a cancelled pull leaves nothing.
It then raises :class:`~pycontainerd._cancel.OperationCancelled`.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from pycontainerd import errors
from pycontainerd._cancel import CancelToken, OperationCancelled
from pycontainerd.api.leases import DEFAULT_EXPIRE
from pycontainerd.api.types import Descriptor
from pycontainerd.images import mediatypes
from pycontainerd.images import platform as _platform
from pycontainerd.images import reference as _reference
from pycontainerd.images.errors import MalformedContentError, NoMatchingPlatformError, UnknownMediaTypeError
from pycontainerd.images.image import Image
from pycontainerd.images.ingest import set_labels
from pycontainerd.images.platform import Platform
from pycontainerd.images.store import put_image
from pycontainerd.images.unpack import DEFAULT_SNAPSHOTTER, check_snapshotter, unpack
from pycontainerd.images.walk import MAX_DOCUMENT_SIZE, ImageManifest, descriptor, walk
from pycontainerd.registry.credentials import AuthSource
from pycontainerd.registry.errors import RegistryUnavailableError
from pycontainerd.registry.fetch import (
    Cancelled,
    Document,
    fetch_blob,
    fetch_manifest,
    source_label,
    store_document,
)
from pycontainerd.registry.progress import Phase, Progress, Reporter
from pycontainerd.registry.remote import Remote, open_remote
from pycontainerd.registry.transport import DEFAULT_RETRIES, DEFAULT_TIMEOUT

if TYPE_CHECKING:
    from pycontainerd.api.content import ContentService
    from pycontainerd.client import Client

__all__ = ["DEFAULT_MAX_CONCURRENT", "PULL_POLICIES", "ensure_image", "pull"]

#: Layers downloaded at once by default (containerd's ``max_concurrent_downloads``).
DEFAULT_MAX_CONCURRENT = 3
#: The label of a pull's lease: the reference (the lease of a failed pull is found by it).
PULL_LEASE_LABEL = "io.pycontainerd.pull.ref"
#: When ``run(image=...)`` pulls: never, when the image is missing, or every time.
PULL_POLICIES = ("never", "missing", "always")
# Index nesting followed before giving up (a cycle cannot be built with digests, but depth can).
_MAX_DEPTH = 8


class _Pull:
    """One pull's state: the remote, the leased store, the labels and the progress."""

    def __init__(self, remote: Remote, content: ContentService, want: Platform, report: Reporter) -> None:
        self.remote = remote
        self.content = content
        self.want = want
        self.report = report
        self.labels = {source_label(remote.ref.domain): remote.ref.path}
        self.cancel = threading.Event()
        self.available: list[Platform] = []
        self.failure: BaseException | None = None
        self.futures: list[Future[bool]] = []

    def document(self, reference: str, expected: Descriptor | None) -> Document:
        document = fetch_manifest(self.remote, reference, expected)
        store_document(self.content, document, self.labels)
        return document

    def config(self, manifest: Document) -> tuple[Descriptor, tuple[Descriptor, ...], Mapping[str, Any]]:
        what = f"manifest {manifest.descriptor.digest}"
        value = manifest.value
        if not isinstance(value.get("layers"), list):
            raise MalformedContentError(f"{what}: no config or layers")
        config = descriptor(value.get("config"), what)
        if not mediatypes.is_config(config.media_type):
            raise UnknownMediaTypeError(f"{what}: config media type {config.media_type!r}",
                                        media_type=config.media_type)
        if config.size > MAX_DOCUMENT_SIZE:
            raise MalformedContentError(f"config {config.digest} is too large ({config.size} bytes)")
        layers = tuple(descriptor(layer, what) for layer in value["layers"])
        for layer in layers:
            if not mediatypes.is_layer(layer.media_type):
                raise UnknownMediaTypeError(
                    f"layer {layer.digest} has unknown media type {layer.media_type!r}",
                    media_type=layer.media_type,
                )
        fetch_blob(self.content, self.remote, config, labels=self.labels, report=self.report,
                   cancel=self.cancel)
        try:
            config_json = json.loads(self.content.read(config.digest))
        except (ValueError, UnicodeDecodeError) as err:
            raise MalformedContentError(f"config {config.digest}: not valid JSON: {err}") from err
        if not isinstance(config_json, Mapping):
            raise MalformedContentError(f"config {config.digest}: not a JSON object")
        return config, layers, config_json

    def select(self, document: Document, platform: Platform | None, depth: int = 0) -> ImageManifest | None:
        """The manifest for the wanted platform under ``document`` (fetching what it needs)."""
        desc = document.descriptor
        if mediatypes.is_index(desc.media_type):
            if depth >= _MAX_DEPTH:
                raise MalformedContentError(f"index {desc.digest}: nested more than {_MAX_DEPTH} deep")
            entries = document.value.get("manifests")
            if not isinstance(entries, list):
                raise MalformedContentError(f"index {desc.digest}: no manifests list")
            for entry in entries:
                child = descriptor(entry, f"index {desc.digest}")
                raw = entry.get("platform")
                child_platform = Platform.from_json(raw) if isinstance(raw, Mapping) else None
                if mediatypes.is_manifest(child.media_type) and child_platform is not None:
                    self.available.append(child_platform)
                    if not self.want.matches(child_platform):
                        continue
                elif not (mediatypes.is_manifest(child.media_type) or mediatypes.is_index(child.media_type)):
                    continue  # artifacts (signatures, attestations) are not part of a runnable image
                found = self.select(self.document(child.digest, child), child_platform, depth + 1)
                if found is not None:
                    return found
            return None
        config, layers, config_json = self.config(document)
        actual = platform if platform is not None else Platform.from_json(config_json)
        if platform is None:
            self.available.append(actual)
            if not self.want.matches(actual):
                return None
        rootfs = config_json.get("rootfs")
        diff_ids = rootfs.get("diff_ids") if isinstance(rootfs, Mapping) else None
        if not isinstance(diff_ids, list) or not all(isinstance(d, str) for d in diff_ids):
            raise MalformedContentError(f"config {config.digest}: no rootfs.diff_ids")
        if len(diff_ids) != len(layers):
            raise MalformedContentError(f"manifest {desc.digest}: {len(layers)} layers but the config lists "
                                        f"{len(diff_ids)} diff IDs")
        return ImageManifest(desc, actual, config, layers, config_json, tuple(diff_ids))

    def start_layers(self, manifest: ImageManifest, executor: ThreadPoolExecutor) -> None:
        for layer in manifest.layers:
            self.report(Phase.WAITING, layer.digest, layer.media_type, layer.size)
        for layer in manifest.layers:
            future = executor.submit(fetch_blob, self.content, self.remote, layer, labels=self.labels,
                                     report=self.report, cancel=self.cancel)
            future.add_done_callback(self._finished)
            self.futures.append(future)

    def _finished(self, future: Future[bool]) -> None:
        error = future.exception() if not future.cancelled() else None
        if error is not None and not isinstance(error, Cancelled) and self.failure is None:
            # The first real failure stops the other downloads at their next chunk.
            self.failure = error
            self.cancel.set()

    def layer(self, n: int) -> None:
        """Wait for layer ``n``'s download; raise the pull's first failure, not a cancellation."""
        try:
            self.futures[n].result()
        except Cancelled:
            if self.failure is not None:
                raise self.failure from None
            raise


def pull(
    client: Client,
    ref: str,
    *,
    platform: str | Platform | None = None,
    unpack_into: str | None = DEFAULT_SNAPSHOTTER,
    auth: AuthSource | None = None,
    plain_http: bool = False,
    ca_file: str | None = None,
    progress: Progress | None = None,
    max_concurrent: int = DEFAULT_MAX_CONCURRENT,
    timeout: float = DEFAULT_TIMEOUT,
    retries: int = DEFAULT_RETRIES,
    cancel: CancelToken | None = None,
) -> Image:
    """Pull ``ref`` into ``client``'s namespace (see ``Client.pull``).

    ``cancel`` (internal) stops the pull when set; see the module docstring.

    Raises:
        OperationCancelled: ``cancel`` was set (nothing of the pull is left).
    """
    if max_concurrent < 1:
        raise ValueError(f"max_concurrent must be at least 1, not {max_concurrent}")
    parsed = _reference.parse(ref)
    want = _platform.parse(platform) if platform is not None else _platform.host()
    if unpack_into is not None:
        check_snapshotter(client, unpack_into)
    report = Reporter(progress)
    cancel = cancel if cancel is not None else CancelToken()
    cancel.check("pull")
    remote = open_remote(parsed, auth=auth, plain_http=plain_http, ca_file=ca_file, timeout=timeout,
                         retries=retries, connections=max_concurrent + 1, cancel=cancel)
    lease = client.api.leases.create(expire=DEFAULT_EXPIRE, labels={PULL_LEASE_LABEL: str(parsed)})
    leased = client.with_lease(lease.id)
    state = _Pull(remote, leased.api.content, want, report)
    # The downloads poll the pull's own event between chunks; a cancel sets it too.
    unlink = cancel.on_set(state.cancel.set)
    executor = ThreadPoolExecutor(max_concurrent, thread_name_prefix="pycontainerd-pull")
    done = keep = False
    try:
        root = state.document(parsed.object, None)
        report(Phase.RESOLVED, root.descriptor.digest, root.descriptor.media_type, root.descriptor.size)
        manifest = state.select(root, None)
        if manifest is None:
            raise NoMatchingPlatformError(str(parsed), str(want), sorted({str(p) for p in state.available}))
        state.start_layers(manifest, executor)

        def wait_for(n: int) -> None:
            state.layer(n)
            layer = manifest.layers[n]
            report(Phase.UNPACKING, layer.digest, layer.media_type, layer.size, layer.size)

        if unpack_into is not None:
            unpack(leased, manifest, unpack_into, before_layer=wait_for)
            for layer in manifest.layers:
                report(Phase.UNPACKED, layer.digest, layer.media_type, layer.size, layer.size)
        for n in range(len(manifest.layers)):
            state.layer(n)
        found = walk(state.content, str(parsed), root.descriptor, want, first_only=True)
        for digest, labels in found.missing_labels().items():
            set_labels(state.content, digest, labels)
        cancel.check("pull")
        image = put_image(client, str(parsed), root.descriptor)
        done = True
    except BaseException as err:
        if cancel.is_set():
            # Whatever the cancel broke (a shut socket, an abandoned download) is not
            # the registry's fault: nothing is kept for a next pull.
            if isinstance(err, OperationCancelled):
                raise
            raise OperationCancelled(f"pull of {parsed} cancelled") from err
        if isinstance(err, RegistryUnavailableError):
            # What was downloaded serves the next pull of this reference (a lease holding
            # nothing, as after a refused connection, serves nothing).
            with contextlib.suppress(errors.ContainerdError):
                keep = bool(client.api.leases.list_resources(lease.id))
        raise
    finally:
        unlink()
        state.cancel.set()
        executor.shutdown(wait=True, cancel_futures=True)
        remote.transport.close()
        if not keep:
            _end_lease(client, lease.id, failed=not done)
    _end_kept_leases(client, str(parsed))
    return image


def _end_lease(client: Client, lease_id: str, *, failed: bool) -> None:
    try:
        # After a failure, collect what the pull left before returning, so the caller
        # finds the store as it was.
        client.api.leases.delete(lease_id, sync=failed)
    except errors.ContainerdError:
        if not failed:
            raise


def _end_kept_leases(client: Client, ref: str) -> None:
    """Delete the leases earlier failed pulls of ``ref`` kept (their content is the image's now)."""
    quoted = ref.replace("\\", "\\\\").replace('"', '\\"')
    with contextlib.suppress(errors.ContainerdError):
        for lease in client.api.leases.list([f'labels."{PULL_LEASE_LABEL}"=="{quoted}"']):
            with contextlib.suppress(errors.NotFoundError):
                client.api.leases.delete(lease.id)



def ensure_image(client: Client, image: Any, policy: str, options: Mapping[str, Any] | None = None) -> Any:
    """The image to run for ``image`` under the pull ``policy`` (``pycontainerd.run(pull=...)``).

    ``"never"`` takes ``image`` as it is; ``"missing"`` pulls a name that is neither a
    local image as written nor under its normalised reference; ``"always"`` pulls a
    name every time. An :class:`~pycontainerd.images.Image` is never pulled.

    Args:
        client: The client.
        image: An image, or an image name or reference.
        policy: One of :data:`PULL_POLICIES`.
        options: Keyword arguments of ``Client.pull`` (``plain_http``, ``auth``, ...).

    Returns:
        An :class:`~pycontainerd.images.Image`, or ``image`` itself with ``"never"``.

    Raises:
        ValueError: An unknown policy.
        NotFoundError: ``"missing"`` with a name that is not a reference and not local.
    """
    if policy not in PULL_POLICIES:
        raise ValueError(f"pull must be one of {', '.join(PULL_POLICIES)}, not {policy!r}")
    if not isinstance(image, str) or policy == "never":
        return image
    kwargs = dict(options or {})
    if policy == "always":
        return client.pull(image, **kwargs)
    try:
        return client.get_image(image)
    except errors.NotFoundError as err:
        try:
            normalised = str(_reference.parse(image))
        except ValueError:
            raise err from None
    try:
        return client.get_image(normalised)
    except errors.NotFoundError:
        return client.pull(normalised, **kwargs)
