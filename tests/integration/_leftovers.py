"""What a failed or finished image operation may leave in a namespace, after containerd's GC.

One copy for the image and registry tests: each asserts ``leftovers(client) == NOTHING``
(or inspects one kind) after collecting garbage the way containerd's own tests do.
"""

from __future__ import annotations

from typing import Any

__all__ = ["NOTHING", "collect_garbage", "leftovers"]

NOTHING: dict[str, list[Any]] = {"images": [], "leases": [], "ingests": [], "content": [], "snapshots": []}


def collect_garbage(client: Any) -> None:
    """Run containerd's garbage collector to completion.

    A lease deleted with ``sync=True`` makes the daemon collect before it answers, so
    whatever nothing references is gone when this returns.
    """
    lease = client.api.leases.create()
    client.api.leases.delete(lease.id, sync=True)


def leftovers(client: Any) -> dict[str, list[Any]]:
    """Images, leases, ingests, blobs and overlayfs snapshots the namespace holds after a GC."""
    collect_garbage(client)
    return {
        "images": client.api.images.list(),
        "leases": client.api.leases.list(),
        "ingests": client.api.content.list_statuses(),
        "content": client.api.content.list(),
        "snapshots": client.api.snapshots.list("overlayfs"),
    }
