"""Image records: get, list, delete, tag (the ``Images`` service, returning :class:`Image` values)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pycontainerd import errors
from pycontainerd.api.types import Descriptor
from pycontainerd.images.image import Image

if TYPE_CHECKING:
    from pycontainerd.client import Client

__all__ = ["delete_image", "get_image", "list_images", "put_image", "tag"]


def get_image(client: Client, name: str) -> Image:
    """The image ``name``.

    Raises:
        NotFoundError: No such image.
    """
    return Image.from_record(client, client.api.images.get(name))


def list_images(client: Client, *filters: str) -> list[Image]:
    """The images matching any of the containerd ``filters`` (every image when none)."""
    return [Image.from_record(client, record) for record in client.api.images.list(filters)]


def delete_image(client: Client, name: str, *, sync: bool = False) -> None:
    """Delete the record ``name``; what only it referenced becomes collectable.

    A container created from the image keeps its snapshot (and keeps running) until
    the container is deleted, as with containerd's own client.

    Args:
        client: The client.
        name: The image name.
        sync: Return only after the garbage collection the deletion triggers.

    Raises:
        NotFoundError: No such image.
    """
    client.api.images.delete(name, sync=sync)


def tag(client: Client, source: str, target: str, *, force: bool = False) -> Image:
    """Record ``target`` as another name of the image ``source`` (same target descriptor).

    Args:
        client: The client.
        source: The existing image.
        target: The new name.
        force: Re-point ``target`` if it already names an image.

    Raises:
        NotFoundError: No image ``source``.
        AlreadyExistsError: ``target`` exists and ``force`` is false.
    """
    record = client.api.images.get(source)
    try:
        created = client.api.images.create(target, record.target, labels=record.labels)
    except errors.AlreadyExistsError:
        if not force:
            raise
        created = client.api.images.update(target, target=record.target, fieldpaths=["target"])
    return Image.from_record(client, created)


def put_image(client: Client, name: str, target: Descriptor) -> Image:
    """Point the record ``name`` at ``target``, creating it if needed (a concurrent creator is fine)."""
    images = client.api.images
    try:
        record = images.update(name, target=target, fieldpaths=["target"])
    except errors.NotFoundError:
        try:
            record = images.create(name, target)
        except errors.AlreadyExistsError:
            # Created meanwhile by a concurrent pull or import: point it at this target.
            record = images.update(name, target=target, fieldpaths=["target"])
    return Image.from_record(client, record)
