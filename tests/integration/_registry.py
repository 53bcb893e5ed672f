"""Helpers of the registry tests: images put into a registry or the store without pycontainerd's own paths."""

from __future__ import annotations

import ssl
from typing import Any

from pycontainerd import testing_images as ti
from pycontainerd import testing_registry as tr
from pycontainerd.api.types import Descriptor


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


def store_index(client: Any, index: ti.BuiltIndex, name: str) -> Any:
    """Put every blob of ``index`` in the store (as a pull of all platforms would) and name it."""
    with client.api.leases.lease() as lease:
        leased = client.with_lease(lease.id)
        for digest, data in index.blobs.items():
            leased.api.content.write(f"test-{digest}", data, expected=digest,
                                     labels={"containerd.io/gc.root": "test"})
        target = index.index
        client.api.images.create(name, Descriptor(target["mediaType"], target["digest"], target["size"]))
    return client.get_image(name)
