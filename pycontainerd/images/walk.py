"""Walking an image in the content store: index → manifests (for a platform) → config and layers.

Every descriptor on the way is checked against the store (the blob exists, its size
is the descriptor's), every JSON document parsed and shape-checked, every media type
checked for its position. The walk also computes the garbage-collection labels
containerd's client puts on each parent for the children it keeps
(``containerd.io/gc.ref.content.m.<n>`` on an index for its manifests,
``...content.config`` and ``...content.l.<n>`` on a manifest), so that an image
record keeps exactly what the chosen platform needs.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pycontainerd import errors
from pycontainerd.api.types import Descriptor
from pycontainerd.images import mediatypes
from pycontainerd.images.errors import (
    BlobMismatchError,
    MalformedContentError,
    MissingBlobError,
    NoMatchingPlatformError,
    UnknownMediaTypeError,
)
from pycontainerd.images.platform import Platform

if TYPE_CHECKING:
    from pycontainerd.api.content import ContentInfo, ContentService

__all__ = [
    "MAX_DOCUMENT_SIZE",
    "ImageManifest",
    "Walk",
    "check_blob",
    "child_gc_labels",
    "platforms",
    "read_json",
    "walk",
]

#: The most an index, manifest or config may hold (containerd's own limit for manifests is 4 MiB).
MAX_DOCUMENT_SIZE = 8 << 20

GC_REF_CONTENT = "containerd.io/gc.ref.content."


@dataclass(frozen=True)
class ImageManifest:
    """One platform's manifest of an image, checked.

    Attributes:
        descriptor: The manifest's descriptor.
        platform: The platform (from the index entry, else from the config).
        config: The config's descriptor.
        layers: The layer descriptors, base first.
        config_json: The parsed config.
        diff_ids: The config's ``rootfs.diff_ids``, one per layer.
    """

    descriptor: Descriptor
    platform: Platform
    config: Descriptor
    layers: tuple[Descriptor, ...]
    config_json: Mapping[str, Any]
    diff_ids: tuple[str, ...]


@dataclass
class Walk:
    """What a walk found.

    Attributes:
        manifests: The manifests kept (those for the platform), in index order.
        labels: For each parent blob, the GC labels naming the children kept.
        available: Every platform the image offers.
        current: The labels each parent blob had when the walk read it.
        indexes: The indexes on the way to a kept manifest (innermost first).
    """

    manifests: list[ImageManifest] = field(default_factory=list)
    labels: dict[str, dict[str, str]] = field(default_factory=dict)
    available: list[Platform] = field(default_factory=list)
    current: dict[str, Mapping[str, str]] = field(default_factory=dict)
    indexes: list[Descriptor] = field(default_factory=list)

    def missing_labels(self) -> dict[str, dict[str, str]]:
        """Per parent blob, the GC labels it lacks (or has with another value)."""
        out = {}
        for digest, labels in self.labels.items():
            have = self.current.get(digest, {})
            lacking = {k: v for k, v in labels.items() if have.get(k) != v}
            if lacking:
                out[digest] = lacking
        return out


def child_gc_labels(children: Sequence[Descriptor]) -> dict[str, str]:
    """The labels containerd's ``SetChildrenMappedLabels`` puts on a parent for ``children``.

    Keys ending in ``.`` are numbered per key (``l.0``, ``l.1``, ...), as containerd does.
    """
    labels: dict[str, str] = {}
    counts: dict[str, int] = {}
    for child in children:
        if mediatypes.is_config(child.media_type):
            key = GC_REF_CONTENT + "config"
        elif mediatypes.is_manifest(child.media_type):
            key = GC_REF_CONTENT + "m."
        elif mediatypes.is_layer(child.media_type):
            key = GC_REF_CONTENT + "l."
        else:
            key = GC_REF_CONTENT
        n = counts.get(key, 0)
        counts[key] = n + 1
        labels[f"{key}{n}" if key.endswith(".") else key] = child.digest
    return labels


def check_blob(content: ContentService, desc: Descriptor, what: str) -> ContentInfo:
    """The blob of ``desc`` is in the store with the descriptor's size.

    Raises:
        MissingBlobError: It is not.
        BlobMismatchError: It has another size.
    """
    try:
        info = content.info(desc.digest)
    except errors.NotFoundError:
        raise MissingBlobError(f"{what} {desc.digest} is missing", digest=desc.digest) from None
    if info.size != desc.size:
        raise BlobMismatchError(
            f"{what} {desc.digest}: the descriptor says {desc.size} bytes, the blob has {info.size}",
            digest=desc.digest,
        )
    return info


def read_json(content: ContentService, desc: Descriptor, what: str, walk: Walk | None = None) -> Any:
    """The parsed JSON document of ``desc`` (checked as by :func:`check_blob`).

    Raises:
        MissingBlobError, BlobMismatchError: See :func:`check_blob`.
        MalformedContentError: Too large, or not JSON.
    """
    if desc.size > MAX_DOCUMENT_SIZE:
        raise MalformedContentError(f"{what} {desc.digest} is too large ({desc.size} bytes)")
    info = check_blob(content, desc, what)
    if walk is not None:
        walk.current[desc.digest] = info.labels
    try:
        return json.loads(content.read(desc.digest))
    except (ValueError, UnicodeDecodeError) as err:
        raise MalformedContentError(f"{what} {desc.digest}: not valid JSON: {err}") from err


def descriptor(value: Any, what: str) -> Descriptor:
    """An OCI descriptor object as a :class:`Descriptor`.

    Raises:
        MalformedContentError: Not an object with a string media type and digest and a size.
    """
    if not isinstance(value, Mapping):
        raise MalformedContentError(f"{what}: a descriptor is not an object")
    media_type, digest, size = value.get("mediaType"), value.get("digest"), value.get("size")
    if not isinstance(media_type, str) or not isinstance(digest, str) or not isinstance(size, int) \
            or isinstance(size, bool) or size < 0 or ":" not in digest:
        raise MalformedContentError(f"{what}: a descriptor lacks a media type, digest or size")
    annotations = value.get("annotations") or {}
    if not isinstance(annotations, Mapping):
        raise MalformedContentError(f"{what}: annotations are not an object")
    return Descriptor(media_type, digest, size, {str(k): str(v) for k, v in annotations.items()})


def _platform_of(value: Any) -> Platform | None:
    return Platform.from_json(value) if isinstance(value, Mapping) else None


def walk(
    content: ContentService,
    name: str,
    target: Descriptor,
    want: Platform | None,
    *,
    first_only: bool = False,
) -> Walk:
    """Walk the image ``name`` from ``target``, keeping the manifests for ``want``.

    Args:
        content: The content store.
        name: The image name (for messages).
        target: The image's root descriptor (index or manifest).
        want: The platform to keep; ``None`` keeps every manifest.
        first_only: Stop at the first manifest kept.

    Returns:
        The manifests kept, the labels their parents need, the platforms on offer.

    Raises:
        NoMatchingPlatformError: No manifest for ``want``.
        UnknownMediaTypeError: The target, a config or a layer has an unusable media type.
        MissingBlobError, BlobMismatchError, MalformedContentError: Broken content.
    """
    result = Walk()
    if not (mediatypes.is_index(target.media_type) or mediatypes.is_manifest(target.media_type)):
        raise UnknownMediaTypeError(
            f"image {name!r}: target has media type {target.media_type!r}, not an index or manifest",
            media_type=target.media_type,
        )
    _visit(content, name, target, None, want, result, first_only)
    if not result.manifests:
        raise NoMatchingPlatformError(
            name, str(want), sorted({str(p) for p in result.available})
        )
    return result


def platforms(content: ContentService, name: str, target: Descriptor) -> list[Platform]:
    """The platforms an image offers, from its index entries (configs only where an entry has none).

    Unlike :func:`walk` this reads no manifest an index entry describes: an import keeps
    only the chosen platform's blobs, and the others' are collected.
    """
    found: list[Platform] = []
    _platforms(content, name, target, found)
    return sorted(set(found))


def _platforms(content: ContentService, name: str, desc: Descriptor, found: list[Platform]) -> None:
    if mediatypes.is_index(desc.media_type):
        index = read_json(content, desc, "index")
        entries = index.get("manifests") if isinstance(index, Mapping) else None
        if not isinstance(entries, list):
            raise MalformedContentError(f"index {desc.digest}: no manifests list")
        for entry in entries:
            child = descriptor(entry, f"index {desc.digest}")
            platform = _platform_of(entry.get("platform"))
            if mediatypes.is_manifest(child.media_type) and platform is not None:
                found.append(platform)
            elif mediatypes.is_manifest(child.media_type) or mediatypes.is_index(child.media_type):
                _platforms(content, name, child, found)
    elif mediatypes.is_manifest(desc.media_type):
        manifest = read_json(content, desc, "manifest")
        config = descriptor(manifest.get("config") if isinstance(manifest, Mapping) else None,
                            f"manifest {desc.digest}")
        found.append(Platform.from_json(read_json(content, config, "config")))


def _visit(content: ContentService, name: str, desc: Descriptor, platform: Platform | None,
           want: Platform | None, result: Walk, first_only: bool) -> None:
    if first_only and result.manifests:
        return
    if mediatypes.is_index(desc.media_type):
        index = read_json(content, desc, "index", result)
        entries = index.get("manifests") if isinstance(index, Mapping) else None
        if not isinstance(entries, list):
            raise MalformedContentError(f"index {desc.digest}: no manifests list")
        kept: list[Descriptor] = []
        for entry in entries:
            child = descriptor(entry, f"index {desc.digest}")
            child_platform = _platform_of(entry.get("platform"))
            if mediatypes.is_manifest(child.media_type) and child_platform is not None:
                result.available.append(child_platform)
                if want is not None and not want.matches(child_platform):
                    continue
            elif not (mediatypes.is_manifest(child.media_type) or mediatypes.is_index(child.media_type)):
                continue  # artifacts and other documents are not part of a runnable image
            before = len(result.manifests)
            _visit(content, name, child, child_platform, want, result, first_only)
            if len(result.manifests) > before:
                kept.append(child)
            if first_only and result.manifests:
                break
        if kept:
            result.labels[desc.digest] = child_gc_labels(kept)
            result.indexes.append(desc)
        return
    found = _manifest(content, name, desc, platform, result)
    if platform is None:
        result.available.append(found.platform)
        if want is not None and not want.matches(found.platform):
            return
    result.manifests.append(found)
    result.labels[desc.digest] = child_gc_labels([found.config, *found.layers])


def _manifest(
    content: ContentService, name: str, desc: Descriptor, platform: Platform | None, result: Walk
) -> ImageManifest:
    manifest = read_json(content, desc, "manifest", result)
    what = f"manifest {desc.digest}"
    if not isinstance(manifest, Mapping) or not isinstance(manifest.get("layers"), list):
        raise MalformedContentError(f"{what}: no config or layers")
    config = descriptor(manifest.get("config"), what)
    if not mediatypes.is_config(config.media_type):
        raise UnknownMediaTypeError(
            f"{what}: config media type {config.media_type!r}", media_type=config.media_type
        )
    layers = tuple(descriptor(layer, what) for layer in manifest["layers"])
    for layer in layers:
        if not mediatypes.is_layer(layer.media_type):
            raise UnknownMediaTypeError(
                f"image {name!r}: layer {layer.digest} has unknown media type {layer.media_type!r}",
                media_type=layer.media_type,
            )
    config_json = read_json(content, config, "config")
    rootfs = config_json.get("rootfs") if isinstance(config_json, Mapping) else None
    diff_ids = rootfs.get("diff_ids") if isinstance(rootfs, Mapping) else None
    if not isinstance(diff_ids, list) or not all(isinstance(d, str) for d in diff_ids):
        raise MalformedContentError(f"config {config.digest}: no rootfs.diff_ids")
    if len(diff_ids) != len(layers):
        raise MalformedContentError(
            f"{what}: {len(layers)} layers but the config lists {len(diff_ids)} diff IDs"
        )
    for layer in layers:
        check_blob(content, layer, "layer")
    return ImageManifest(
        descriptor=desc,
        platform=platform if platform is not None else Platform.from_json(config_json),
        config=config,
        layers=layers,
        config_json=config_json,
        diff_ids=tuple(diff_ids),
    )
