"""Unpacking an image's layers into committed snapshots, as containerd's ``image.Unpack`` does.

For each layer, base first, the snapshot is named by the layer's chain ID
(``chain[0] = diff_id[0]``, ``chain[n] = sha256(chain[n-1] + " " + diff_id[n])``).
An existing snapshot is skipped (``Snapshots.Stat``). Otherwise: ``Prepare`` of a
unique extract key (``extract-<nanos>-<random> <chainID>``, containerd's format) on
the parent chain ID → ``Diff.Apply`` of the layer blob onto its mounts → the digest
the daemon computed while applying must be the config's diff ID → ``Commit`` under
the chain ID. Any failure removes the extract key, so nothing half-applied stays.

An unpacker that died mid-layer (its process or the daemon killed) leaves its extract
snapshot to its lease's expiry. The next successful unpack of the same layers removes
such leftovers: extract keys of its chain IDs stamped before it started. An unpacker
still running on one of them then finds its apply failing and the chain ID committed,
which it takes as done, as it takes losing a commit race.

After a layer is applied its blob gets ``containerd.io/uncompressed = <diff ID>``;
after the last one the config gets ``containerd.io/gc.ref.snapshot.<snapshotter> =
<top chain ID>``, which keeps the snapshots alive once the unpack's lease is gone.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from pycontainerd import errors
from pycontainerd.api.types import Descriptor
from pycontainerd.images.errors import DiffIDMismatchError, SnapshotterError
from pycontainerd.images.ingest import set_labels
from pycontainerd.images.walk import ImageManifest

if TYPE_CHECKING:
    from pycontainerd.client import Client

__all__ = [
    "DEFAULT_SNAPSHOTTER",
    "UNCOMPRESSED_LABEL",
    "chain_ids",
    "check_snapshotter",
    "is_unpacked",
    "snapshot_label",
    "unpack",
]

DEFAULT_SNAPSHOTTER = "overlayfs"
UNCOMPRESSED_LABEL = "containerd.io/uncompressed"
# Another unpacker picked the same key (vanishingly rare): try a fresh one.
_KEY_ATTEMPTS = 3


def snapshot_label(snapshotter: str) -> str:
    """The config label naming the image's top snapshot in ``snapshotter``."""
    return f"containerd.io/gc.ref.snapshot.{snapshotter}"


def chain_ids(diff_ids: Sequence[str]) -> list[str]:
    """The chain ID of each layer (OCI image spec: ``ChainID``)."""
    chain: list[str] = []
    for diff_id in diff_ids:
        if not chain:
            chain.append(diff_id)
        else:
            chain.append("sha256:" + hashlib.sha256(f"{chain[-1]} {diff_id}".encode()).hexdigest())
    return chain


def _extract_key(chain_id: str) -> str:
    unique = base64.urlsafe_b64encode(os.urandom(9)).decode()
    return f"extract-{time.time_ns()}-{unique} {chain_id}"


def _exists(client: Client, snapshotter: str, key: str) -> bool:
    try:
        client.api.snapshots.stat(snapshotter, key)
    except errors.NotFoundError:
        return False
    except errors.InvalidArgumentError as err:
        if "snapshotter" in err.details:
            raise SnapshotterError(f"the daemon has no snapshotter {snapshotter!r}: {err.details}") from err
        raise
    return True


def check_snapshotter(client: Client, snapshotter: str) -> None:
    """Fail early, before any work, when the daemon lacks ``snapshotter``.

    Raises:
        SnapshotterError: It is not loaded.
    """
    _exists(client, snapshotter, "pycontainerd-probe")


def is_unpacked(client: Client, manifest: ImageManifest, snapshotter: str = DEFAULT_SNAPSHOTTER) -> bool:
    """Whether the image's top snapshot exists in ``snapshotter``."""
    chain = chain_ids(manifest.diff_ids)
    return bool(chain) and _exists(client, snapshotter, chain[-1])


def unpack(client: Client, manifest: ImageManifest, snapshotter: str = DEFAULT_SNAPSHOTTER, *,
           before_layer: Callable[[int], None] | None = None) -> str:
    """Unpack ``manifest``'s layers into ``snapshotter``; return the top chain ID.

    Call it through a client view bound to a lease: the snapshots are referenced only
    by the config's label once every layer is done.

    Args:
        client: A client view bound to a lease.
        manifest: The image's manifest for the platform.
        snapshotter: The snapshotter.
        before_layer: Called with each layer's index before it is looked at: a pull
            waits there for that layer's download, so layers are applied in order
            while later ones still download.

    Raises:
        SnapshotterError: The daemon has no such snapshotter.
        DiffIDMismatchError: A layer's uncompressed digest is not its diff ID (that layer
            is not committed).
        UnknownError: The daemon could not apply a layer (corrupt blob).
    """
    started = time.time_ns()
    chain = chain_ids(manifest.diff_ids)
    parent = ""
    layers = zip(manifest.layers, manifest.diff_ids, chain, strict=True)
    for n, (layer, diff_id, chain_id) in enumerate(layers):
        if before_layer is not None:
            before_layer(n)
        if not _exists(client, snapshotter, chain_id) and _apply(
            client, snapshotter, layer, diff_id, parent, chain_id
        ):
            set_labels(client.api.content, layer.digest, {UNCOMPRESSED_LABEL: diff_id})
        parent = chain_id
    if chain:
        set_labels(client.api.content, manifest.config.digest, {snapshot_label(snapshotter): chain[-1]})
        _remove_stale_extracts(client, snapshotter, set(chain), started)
    return chain[-1] if chain else ""


def _remove_stale_extracts(client: Client, snapshotter: str, chain: set[str], before: int) -> None:
    for info in client.api.snapshots.list(snapshotter, ['kind==active,name~="^extract-"']):
        stamp, _, chain_id = info.name.partition(" ")
        nanos = stamp.split("-")[1] if stamp.count("-") >= 2 else ""
        if chain_id in chain and nanos.isdigit() and int(nanos) < before:
            with contextlib.suppress(errors.NotFoundError, errors.FailedPreconditionError):
                client.api.snapshots.remove(snapshotter, info.name)


def _apply(
    client: Client, snapshotter: str, layer: Descriptor, diff_id: str, parent: str, chain_id: str
) -> bool:
    """Apply ``layer`` as snapshot ``chain_id``; False when a racing unpacker committed it first."""
    snapshots = client.api.snapshots
    for attempt in range(_KEY_ATTEMPTS):
        key = _extract_key(chain_id)
        try:
            mounts = snapshots.prepare(snapshotter, key, parent=parent)
            break
        except errors.AlreadyExistsError:
            if attempt == _KEY_ATTEMPTS - 1:
                raise
    try:
        applied = client.api.diff.apply(layer, mounts)
        if applied.digest != diff_id:
            raise DiffIDMismatchError(layer.digest, diff_id, applied.digest)
        try:
            snapshots.commit(snapshotter, chain_id, key)
        except errors.AlreadyExistsError:
            # Committed meanwhile by a concurrent unpack of the same layer: same content.
            snapshots.remove(snapshotter, key)
            return False
    except BaseException as err:
        # Never leave a half-applied extract snapshot; its own failure must not mask this one.
        with contextlib.suppress(errors.ContainerdError):
            snapshots.remove(snapshotter, key)
        if isinstance(err, errors.ContainerdError) and _committed_meanwhile(client, snapshotter, chain_id):
            # Another unpacker finished this layer and removed our key as a leftover.
            return False
        raise
    return True


def _committed_meanwhile(client: Client, snapshotter: str, chain_id: str) -> bool:
    try:
        return _exists(client, snapshotter, chain_id)
    except errors.ContainerdError:
        return False
