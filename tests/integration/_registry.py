"""Helpers of the registry tests: images uploaded without pycontainerd, and what a failure may leave."""

from __future__ import annotations

import ssl
from typing import Any

from pycontainerd import testing_images as ti
from pycontainerd import testing_registry as tr


def upload(registry: tr.PrivateRegistry, repository: str, tag: str, image: ti.BuiltImage | ti.BuiltIndex,
           *, headers: dict[str, str] | None = None) -> None:
    """Put ``image`` into ``registry`` under ``repository:tag`` with plain HTTP calls."""
    manifests: list[tuple[str, str, bytes]] = []
    images = image.images if isinstance(image, ti.BuiltIndex) else [image]
    for built in images:
        desc = built.manifest
        manifests.append((desc["digest"], desc["mediaType"], built.blobs[desc["digest"]]))
    root = image.target
    manifests.append((tag, root["mediaType"], image.blobs[root["digest"]]))
    documents = {digest for _, _, data in manifests for digest in [tr.digest_of(data)]}
    blobs = {d: b for d, b in image.blobs.items() if d not in documents}
    context = ssl.create_default_context(cafile=registry.ca_file) if registry.ca_file else None
    tr.push_blobs(registry.url, repository, blobs, manifests, headers=headers, context=context)


def leftovers(client: Any) -> dict[str, list[Any]]:
    """What the namespace holds after a synchronous garbage collection."""
    lease = client.api.leases.create()
    client.api.leases.delete(lease.id, sync=True)
    return {
        "images": client.api.images.list(),
        "leases": client.api.leases.list(),
        "ingests": client.api.content.list_statuses(),
        "content": client.api.content.list(),
        "snapshots": client.api.snapshots.list("overlayfs"),
    }


NOTHING: dict[str, list[Any]] = {"images": [], "leases": [], "ingests": [], "content": [], "snapshots": []}
