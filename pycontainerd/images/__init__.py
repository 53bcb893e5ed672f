"""Images: import archives, the image model, unpacking into snapshots.

Layout (one concern per module):

* :mod:`.archive` reads OCI-layout and ``docker save`` tars in one streaming pass.
* :mod:`.ingest` writes content as containerd's client does (lease, refs, resume).
* :mod:`.walk` checks an image's content for a platform and computes its GC labels.
* :mod:`.unpack` turns layers into committed snapshots (chain IDs, extract keys).
* :mod:`.image` is the :class:`Image` model; :mod:`.platform` parses and matches platforms.
* :mod:`.importer` is ``Client.import_archive``; :mod:`.exporter` is ``Client.export_archive``;
  :mod:`.store` the record operations.
* :mod:`.containers` makes a container from an image (``Client.new_container(image=...)``),
  its spec from :mod:`.spec` (``WithImageConfig``), user names read by :mod:`.rootfs_files`.
* :mod:`.mediatypes` names the media types; :mod:`.errors` holds the typed errors.

``pycontainerd.images`` is a public submodule (``import pycontainerd; pycontainerd.images.Image``);
images are made by :class:`pycontainerd.Client`, and test images by :mod:`pycontainerd.testing_images`.
"""

from __future__ import annotations

from pycontainerd.images.errors import (
    ArchiveError,
    BlobMismatchError,
    DiffIDMismatchError,
    ImageError,
    MalformedContentError,
    MissingBlobError,
    NoMatchingPlatformError,
    SnapshotterError,
    TruncatedArchiveError,
    UnknownMediaTypeError,
    UnsafePathError,
)
from pycontainerd.images.image import Image, ImageConfig
from pycontainerd.images.platform import Platform
from pycontainerd.images.unpack import DEFAULT_SNAPSHOTTER, chain_ids

__all__ = [
    "DEFAULT_SNAPSHOTTER",
    "ArchiveError",
    "BlobMismatchError",
    "DiffIDMismatchError",
    "Image",
    "ImageConfig",
    "ImageError",
    "MalformedContentError",
    "MissingBlobError",
    "NoMatchingPlatformError",
    "Platform",
    "SnapshotterError",
    "TruncatedArchiveError",
    "UnknownMediaTypeError",
    "UnsafePathError",
    "chain_ids",
]
