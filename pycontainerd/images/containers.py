"""Containers that run from an image, as containerd's ``NewContainer(WithImage, ...)`` makes them.

That is ``WithImage``, ``WithNewSnapshot`` and ``WithImageConfig``.

Under a lease of its own (deleted at the end): the image is unpacked if it is not
yet; the container's active snapshot is prepared from the image's top chain ID
(key = the container id unless given, as ``ctr run`` does); the spec is built from
the image config (:mod:`.spec`; user names are read through a view of the image once
per image, :func:`~.rootfs_files.user_files`); the container record is created with
the image name, snapshotter and snapshot key, so ``ctr c info`` shows them and
containerd's garbage collector keeps the snapshot for the container. If the record
cannot be created, the snapshot is removed again.

The task gets the snapshot's mounts as its rootfs (``Container.new_task``) and
``Container.delete`` removes the snapshot (``WithSnapshotCleanup``). A crash between
the steps leaves only a snapshot held by the expiring lease, or a container whose
delete removes its snapshot.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from pycontainerd import errors
from pycontainerd.images import unpack as _unpack
from pycontainerd.images.image import Image, ImageConfig
from pycontainerd.images.rootfs_files import user_files
from pycontainerd.images.spec import image_spec

if TYPE_CHECKING:
    from pycontainerd.client import Client
    from pycontainerd.container import Container

__all__ = ["CreateRecord", "new_image_container"]

#: Creates the container record: ``(spec, image name, snapshotter, snapshot key) -> Container``.
CreateRecord = Callable[[Mapping[str, Any], str, str, str], "Container"]


def _user_needs_files(config: ImageConfig, options: Mapping[str, Any]) -> bool:
    user = options.get("user", config.user)
    # Even a numeric uid is looked up (its gid and groups come from /etc/passwd, /etc/group).
    return (isinstance(user, str) and bool(user)) or (user is None and bool(config.user))


def new_image_container(
    client: Client,
    id: str,
    image: Image | str,
    create: CreateRecord,
    *,
    spec: Mapping[str, Any] | None = None,
    snapshotter: str | None = None,
    snapshot: str | None = None,
    platform: str | None = None,
    spec_options: Mapping[str, Any] | None = None,
) -> Container:
    """Create container ``id`` running ``image`` (see ``Client.new_container``).

    Raises:
        NotFoundError: No such image.
        NoMatchingPlatformError: The image has no manifest for the platform.
        SnapshotterError: The daemon lacks the snapshotter.
        ConflictError: The id (or the snapshot key) is in use.
        ValueError: Bad spec options, an unknown user name, no command.
    """
    if isinstance(image, str):
        image = Image.from_record(client, client.api.images.get(image))
    snapshotter = snapshotter or _unpack.DEFAULT_SNAPSHOTTER
    key = snapshot or id
    manifest = image.manifest(platform)
    config = ImageConfig.from_json(manifest.config_json)
    options = dict(spec_options or {})
    options.setdefault("namespace", client.namespace)
    options.setdefault("container_id", id)
    with client.api.leases.lease() as lease:
        leased = client.with_lease(lease.id)
        if _unpack.is_unpacked(leased, manifest, snapshotter):
            parent = _unpack.chain_ids(manifest.diff_ids)[-1]
        else:
            parent = _unpack.unpack(leased, manifest, snapshotter)
        if spec is None:
            if _user_needs_files(config, options):
                spec = image_spec(config, read_file=user_files(leased, snapshotter, parent), **options)
            else:
                spec = image_spec(config, **options)
        try:
            leased.api.snapshots.prepare(snapshotter, key, parent=parent)
        except errors.AlreadyExistsError as err:
            raise errors.ConflictError(f"snapshot {key!r} already exists in {snapshotter}") from err
        try:
            return create(spec, image.name, snapshotter, key)
        except BaseException:
            with contextlib.suppress(errors.ContainerdError):
                client.api.snapshots.remove(snapshotter, key)
            raise
