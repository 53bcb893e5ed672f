"""The media types of images (OCI and docker schema 2) and what each one is."""

from __future__ import annotations

__all__ = [
    "DOCKER_CONFIG",
    "DOCKER_LAYER",
    "DOCKER_LAYER_GZIP",
    "DOCKER_MANIFEST",
    "DOCKER_MANIFEST_LIST",
    "OCI_CONFIG",
    "OCI_INDEX",
    "OCI_LAYER",
    "OCI_LAYER_GZIP",
    "OCI_LAYER_ZSTD",
    "OCI_MANIFEST",
    "is_config",
    "is_index",
    "is_layer",
    "is_manifest",
]

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
_DOCKER_FOREIGN = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
_OCI_NONDISTRIBUTABLE = "application/vnd.oci.image.layer.nondistributable.v1.tar"

_LAYERS = frozenset(
    {
        OCI_LAYER,
        OCI_LAYER_GZIP,
        OCI_LAYER_ZSTD,
        _OCI_NONDISTRIBUTABLE,
        _OCI_NONDISTRIBUTABLE + "+gzip",
        _OCI_NONDISTRIBUTABLE + "+zstd",
        DOCKER_LAYER,
        DOCKER_LAYER_GZIP,
        _DOCKER_FOREIGN,
    }
)


def is_index(media_type: str) -> bool:
    """An OCI index or a docker manifest list."""
    return media_type in (OCI_INDEX, DOCKER_MANIFEST_LIST)


def is_manifest(media_type: str) -> bool:
    """An OCI or docker schema 2 image manifest."""
    return media_type in (OCI_MANIFEST, DOCKER_MANIFEST)


def is_config(media_type: str) -> bool:
    """An OCI or docker image config."""
    return media_type in (OCI_CONFIG, DOCKER_CONFIG)


def is_layer(media_type: str) -> bool:
    """A layer type the differ can apply (plain, gzip or zstd tar; OCI or docker)."""
    return media_type in _LAYERS
