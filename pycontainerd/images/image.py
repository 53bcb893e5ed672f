"""``Image``: an image record plus, read lazily from the content store, its manifest for a platform.

An :class:`Image` is a frozen value (name, target, labels, timestamps) bound to the
client that fetched it. Its manifest, config and layers are read on first use per
platform (the host's unless ``platform="linux/arm64"``-style is given) and cached;
an index without a manifest for the platform raises
:class:`~pycontainerd.images.errors.NoMatchingPlatformError`, which lists what the
index offers.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pycontainerd.api.images import Image as ImageRecord
from pycontainerd.api.types import Descriptor
from pycontainerd.images import platform as _platform
from pycontainerd.images import unpack as _unpack
from pycontainerd.images import walk as _walk
from pycontainerd.images.errors import MalformedContentError
from pycontainerd.images.platform import Platform
from pycontainerd.images.walk import ImageManifest, walk

if TYPE_CHECKING:
    from pycontainerd.client import Client

__all__ = ["Image", "ImageConfig"]


def _strings(value: Any, what: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise MalformedContentError(f"image config: {what} is not a list of strings")
    return tuple(value)


def _keys(value: Any, what: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, Mapping):
        raise MalformedContentError(f"image config: {what} is not an object")
    return tuple(str(key) for key in value)


@dataclass(frozen=True)
class ImageConfig:
    """The parts of an image config that matter to running it (OCI image spec ``config``).

    Attributes:
        entrypoint: ``Entrypoint``.
        cmd: ``Cmd``.
        env: ``Env`` (``KEY=VALUE`` strings).
        working_dir: ``WorkingDir`` (``""`` if unset).
        user: ``User`` (``"uid[:gid]"``, names, or ``""``).
        labels: ``Labels``.
        exposed_ports: ``ExposedPorts`` keys (``"80/tcp"``).
        volumes: ``Volumes`` keys.
        stop_signal: ``StopSignal`` (``""`` if unset).
        platform: ``os``/``architecture``/``variant``.
        diff_ids: ``rootfs.diff_ids``, base layer first.
    """

    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    env: tuple[str, ...] = ()
    working_dir: str = ""
    user: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)
    exposed_ports: tuple[str, ...] = ()
    volumes: tuple[str, ...] = ()
    stop_signal: str = ""
    platform: Platform = field(default_factory=lambda: Platform("", ""))
    diff_ids: tuple[str, ...] = ()

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> ImageConfig:
        """From a parsed image config.

        Raises:
            MalformedContentError: A field has the wrong type.
        """
        config = value.get("config") or {}
        if not isinstance(config, Mapping):
            raise MalformedContentError("image config: config is not an object")
        labels = config.get("Labels") or {}
        if not isinstance(labels, Mapping):
            raise MalformedContentError("image config: Labels is not an object")
        rootfs = value.get("rootfs") or {}
        return cls(
            entrypoint=_strings(config.get("Entrypoint"), "Entrypoint"),
            cmd=_strings(config.get("Cmd"), "Cmd"),
            env=_strings(config.get("Env"), "Env"),
            working_dir=str(config.get("WorkingDir") or ""),
            user=str(config.get("User") or ""),
            labels={str(k): str(v) for k, v in labels.items()},
            exposed_ports=_keys(config.get("ExposedPorts"), "ExposedPorts"),
            volumes=_keys(config.get("Volumes"), "Volumes"),
            stop_signal=str(config.get("StopSignal") or ""),
            platform=Platform.from_json(value),
            diff_ids=_strings(rootfs.get("diff_ids") if isinstance(rootfs, Mapping) else None, "diff_ids"),
        )


@dataclass(frozen=True)
class Image:
    """An image: its record, and its content read lazily through the client that fetched it.

    Obtain one from ``Client.get_image``, ``Client.list_images`` or ``Client.import_archive``.

    Attributes:
        name: The image name, e.g. ``docker.io/library/busybox:latest``.
        target: The root descriptor (an index or a manifest).
        labels: The record's labels.
        created_at: When the record was created.
        updated_at: When it was last updated.
    """

    name: str
    target: Descriptor
    labels: Mapping[str, str] = field(default_factory=dict)
    created_at: _dt.datetime | None = None
    updated_at: _dt.datetime | None = None
    _client: Client | None = field(default=None, compare=False, repr=False)
    _cache: dict[Any, Any] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_record(cls, client: Client, record: ImageRecord) -> Image:
        """Bind an ``Images`` service record to ``client``."""
        return cls(
            record.name, record.target, dict(record.labels), record.created_at, record.updated_at, client
        )

    @property
    def client(self) -> Client:
        """The client this image reads its content through."""
        if self._client is None:
            raise RuntimeError(f"image {self.name!r} is not bound to a client")
        return self._client

    def manifest(self, platform: str | Platform | None = None) -> ImageManifest:
        """The manifest for ``platform`` (default: the host's), checked against the store.

        Raises:
            NoMatchingPlatformError: The image has no manifest for the platform.
            MissingBlobError: A blob it needs is not in the content store.
            ValueError: A malformed ``platform`` string.
        """
        want = _platform.parse(platform) if platform is not None else _platform.host()
        key = ("manifest", want)
        if key not in self._cache:
            found = walk(self.client.api.content, self.name, self.target, want, first_only=True)
            self._cache[key] = found.manifests[0]
        manifest: ImageManifest = self._cache[key]
        return manifest

    def platforms(self) -> list[Platform]:
        """The platforms the image offers (one for a single manifest)."""
        if "platforms" not in self._cache:
            self._cache["platforms"] = _walk.platforms(self.client.api.content, self.name, self.target)
        platforms: list[Platform] = self._cache["platforms"]
        return list(platforms)

    def config(self, platform: str | Platform | None = None) -> ImageConfig:
        """The image config for ``platform`` (see :meth:`manifest`)."""
        return ImageConfig.from_json(self.manifest(platform).config_json)

    def layers(self, platform: str | Platform | None = None) -> tuple[Descriptor, ...]:
        """The layer descriptors for ``platform``, base first."""
        return self.manifest(platform).layers

    def size(self, platform: str | Platform | None = None) -> int:
        """Bytes in the content store for ``platform``: manifest, config and layer blobs."""
        manifest = self.manifest(platform)
        return manifest.descriptor.size + manifest.config.size + sum(layer.size for layer in manifest.layers)

    def chain_id(self, platform: str | Platform | None = None) -> str:
        """The chain ID of the top layer: the name of the image's committed snapshot."""
        chain = _unpack.chain_ids(self.manifest(platform).diff_ids)
        return chain[-1] if chain else ""

    def is_unpacked(self, snapshotter: str = _unpack.DEFAULT_SNAPSHOTTER,
                    platform: str | Platform | None = None) -> bool:
        """Whether the image's top snapshot exists in ``snapshotter``.

        Raises:
            SnapshotterError: The daemon has no such snapshotter.
        """
        return _unpack.is_unpacked(self.client, self.manifest(platform), snapshotter)

    def unpack(self, snapshotter: str = _unpack.DEFAULT_SNAPSHOTTER,
               platform: str | Platform | None = None) -> str:
        """Unpack the layers into ``snapshotter`` (existing snapshots are kept); return the top chain ID.

        Runs under a lease of its own, deleted at the end.

        Raises:
            SnapshotterError: The daemon has no such snapshotter.
            DiffIDMismatchError: A layer does not have its config's diff ID.
        """
        manifest = self.manifest(platform)
        with self.client.api.leases.lease() as lease:
            return _unpack.unpack(self.client.with_lease(lease.id), manifest, snapshotter)
