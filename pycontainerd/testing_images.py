r"""A test-image builder: multi-layer images written as OCI-layout or ``docker save`` archives.

Nothing here needs the network. Layers are described entry by entry (files,
directories, symlinks, hard links, whiteouts, opaque directories, with modes,
owners and xattrs), built into reproducible tars, optionally gzip-compressed,
and assembled into images and multi-platform indexes whose digests, sizes,
media types and diff IDs follow the OCI image spec, so ``ctr images import``
and :meth:`pycontainerd.Client.import_archive` both accept them.

Example, a two-layer busybox image that deletes a file of its base::

    from pycontainerd import testing_images as ti

    base = ti.busybox_layer()
    top = ti.Layer([ti.file("etc/motd", b"hi\n"), ti.whiteout("etc/group")])
    image = ti.build_image([base, top], cmd=["/bin/sh"])
    ti.write_oci_archive("img.tar", {"docker.io/test/img:1": image})

:func:`whiteout_image` builds the standard multi-layer image of the test suite.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import posixpath
import tarfile
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pycontainerd.testing import _layer_tar, _platform, busybox_rootfs

__all__ = [
    "MT_DOCKER_CONFIG",
    "MT_DOCKER_LAYER",
    "MT_DOCKER_LAYER_GZIP",
    "MT_DOCKER_MANIFEST",
    "MT_OCI_CONFIG",
    "MT_OCI_INDEX",
    "MT_OCI_LAYER",
    "MT_OCI_LAYER_GZIP",
    "MT_OCI_MANIFEST",
    "BuiltImage",
    "BuiltIndex",
    "Entry",
    "Layer",
    "build_image",
    "build_index",
    "busybox_layer",
    "digest_of",
    "directory",
    "file",
    "foreign_platform",
    "hardlink",
    "host_platform",
    "layer_tar",
    "multi_platform_index",
    "opaque",
    "symlink",
    "tampered",
    "whiteout",
    "whiteout_image",
    "whiteout_layers",
    "write_docker_archive",
    "write_oci_archive",
]

MT_OCI_INDEX = "application/vnd.oci.image.index.v1+json"
MT_OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
MT_OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
MT_DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
MT_DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
MT_DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar"
MT_DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"

#: containerd's annotation naming an image in an index.
ANNOTATION_IMAGE_NAME = "io.containerd.image.name"
#: The OCI annotation holding an image's tag (``ref.name``).
ANNOTATION_REF_NAME = "org.opencontainers.image.ref.name"

_WHITEOUT_PREFIX = ".wh."
_OPAQUE = ".wh..wh..opq"
_DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

Kind = Literal["file", "dir", "symlink", "hardlink", "whiteout", "opaque"]


def digest_of(data: bytes) -> str:
    """The OCI digest (``sha256:<hex>``) of ``data``."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _json_bytes(value: Any) -> bytes:
    # Canonical (sorted, compact) so the same image always has the same digests.
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


@dataclass(frozen=True)
class Entry:
    """One entry of a layer tar (build with :func:`file`, :func:`directory`, ...).

    Attributes:
        path: The path relative to the root, without a leading ``/``.
        kind: What the entry is.
        data: A file's content.
        target: A symlink's target, or the path a hard link links to.
        mode: Permission bits (with setuid/setgid/sticky).
        uid: Owner uid.
        gid: Owner gid.
        xattrs: Extended attributes (``user.*`` names), stored as PAX ``SCHILY.xattr.``.
    """

    path: str
    kind: Kind
    data: bytes = b""
    target: str = ""
    mode: int = 0o644
    uid: int = 0
    gid: int = 0
    xattrs: Mapping[str, str] = field(default_factory=dict)


def file(path: str, data: bytes, *, mode: int = 0o644, uid: int = 0, gid: int = 0,
         xattrs: Mapping[str, str] | None = None) -> Entry:
    """A regular file."""
    return Entry(path, "file", data=data, mode=mode, uid=uid, gid=gid, xattrs=dict(xattrs or {}))


def directory(path: str, *, mode: int = 0o755, uid: int = 0, gid: int = 0) -> Entry:
    """A directory."""
    return Entry(path, "dir", mode=mode, uid=uid, gid=gid)


def symlink(path: str, target: str, *, uid: int = 0, gid: int = 0) -> Entry:
    """A symbolic link to ``target`` (absolute or relative, stored as given)."""
    return Entry(path, "symlink", target=target, mode=0o777, uid=uid, gid=gid)


def hardlink(path: str, target: str) -> Entry:
    """A hard link to ``target``, a file earlier in the same layer (root-relative path)."""
    return Entry(path, "hardlink", target=target)


def whiteout(path: str) -> Entry:
    """Delete ``path`` (and everything under it) of the lower layers: a ``.wh.<name>`` entry."""
    return Entry(path, "whiteout")


def opaque(path: str) -> Entry:
    """Hide everything the lower layers have under directory ``path`` (``.wh..wh..opq``).

    Put the directory itself and the entries it should keep in the same layer.
    """
    return Entry(path, "opaque")


def _tar_member(entry: Entry) -> tuple[tarfile.TarInfo, bytes | None]:
    path = entry.path.strip("/")
    if entry.kind == "whiteout":
        parent, name = posixpath.split(path)
        info = tarfile.TarInfo(posixpath.join(parent, _WHITEOUT_PREFIX + name))
        return info, b""
    if entry.kind == "opaque":
        return tarfile.TarInfo(posixpath.join(path, _OPAQUE)), b""
    info = tarfile.TarInfo(path)
    info.mode = entry.mode
    info.uid, info.gid = entry.uid, entry.gid
    if entry.xattrs:
        info.pax_headers = {f"SCHILY.xattr.{k}": v for k, v in entry.xattrs.items()}
    if entry.kind == "file":
        return info, entry.data
    if entry.kind == "dir":
        info.type = tarfile.DIRTYPE
    elif entry.kind == "symlink":
        info.type, info.linkname = tarfile.SYMTYPE, entry.target
    else:
        info.type, info.linkname = tarfile.LNKTYPE, entry.target.strip("/")
    return info, None


def layer_tar(entries: Iterable[Entry]) -> bytes:
    """A reproducible (mtime 0, PAX) uncompressed layer tar of ``entries``, in the given order."""
    buf = io.BytesIO()
    seen: dict[str, Entry] = {}
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for entry in entries:
            linked = seen.get(entry.target.strip("/")) if entry.kind == "hardlink" else None
            if linked is not None:
                # A link's header carries its inode's attributes (as tar and docker write
                # it): containerd applies them to the shared inode after linking.
                entry = Entry(entry.path, "hardlink", target=entry.target, mode=linked.mode,
                              uid=linked.uid, gid=linked.gid)
            seen[entry.path.strip("/")] = entry
            info, data = _tar_member(entry)
            info.mtime = 0
            if data is None:
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@dataclass(frozen=True)
class Layer:
    """A layer: its entries (or a ready tar) and whether the blob is gzip-compressed.

    Attributes:
        entries: The entries, in tar order.
        gzip: Store the blob gzip-compressed (``...tar+gzip``) rather than plain (``...tar``).
        tar: A ready uncompressed tar, used instead of ``entries`` when given.
    """

    entries: Sequence[Entry] = ()
    gzip: bool = True
    tar: bytes | None = None

    def uncompressed(self) -> bytes:
        """The layer's uncompressed tar (its digest is the layer's diff ID)."""
        return self.tar if self.tar is not None else layer_tar(self.entries)


def busybox_layer(*, gzip: bool = True) -> Layer:
    """The busybox root filesystem of :func:`pycontainerd.testing.busybox_rootfs` as one layer."""
    with tempfile.TemporaryDirectory(prefix="pcd-layer-") as work:
        tar = _layer_tar(busybox_rootfs(os.path.join(work, "rootfs")))
    return Layer(gzip=gzip, tar=tar)


def host_platform() -> dict[str, str]:
    """The host's OCI platform (``{"os": "linux", "architecture": "amd64"}``, with a variant on arm)."""
    return dict(_platform())


@dataclass(frozen=True)
class BuiltImage:
    """A single-platform image: its manifest, config and layer blobs.

    Attributes:
        manifest: The manifest descriptor (media type, digest, size; platform when built with one).
        config: The config descriptor.
        layers: The layer descriptors, base first.
        diff_ids: The digests of the uncompressed layer tars, base first.
        blobs: Every blob by digest (manifest, config, layers).
        platform: The image's platform.
        docker: Built with docker (schema 2) media types rather than OCI ones.
    """

    manifest: dict[str, Any]
    config: dict[str, Any]
    layers: list[dict[str, Any]]
    diff_ids: list[str]
    blobs: dict[str, bytes]
    platform: dict[str, str]
    docker: bool = False

    @property
    def target(self) -> dict[str, Any]:
        """The descriptor an index points at (the manifest)."""
        return self.manifest


@dataclass(frozen=True)
class BuiltIndex:
    """A multi-platform image: an index of :class:`BuiltImage` manifests.

    Attributes:
        index: The index descriptor.
        images: The images it lists.
        blobs: Every blob by digest (the index's and each image's).
    """

    index: dict[str, Any]
    images: list[BuiltImage]
    blobs: dict[str, bytes]

    @property
    def target(self) -> dict[str, Any]:
        """The descriptor an outer index points at (this index)."""
        return self.index


def _descriptor(media_type: str, data: bytes, **extra: Any) -> dict[str, Any]:
    return {"mediaType": media_type, "digest": digest_of(data), "size": len(data), **extra}


def build_image(
    layers: Sequence[Layer],
    *,
    entrypoint: Sequence[str] | None = None,
    cmd: Sequence[str] | None = ("/bin/sh",),
    env: Sequence[str] = (_DEFAULT_PATH,),
    working_dir: str = "/",
    user: str = "",
    labels: Mapping[str, str] | None = None,
    exposed_ports: Sequence[str] = (),
    volumes: Sequence[str] = (),
    stop_signal: str = "",
    platform: Mapping[str, str] | None = None,
    docker: bool = False,
) -> BuiltImage:
    """Build an image from ``layers`` (base first) and the given container config.

    Args:
        layers: The layers.
        entrypoint: The config's ``Entrypoint``.
        cmd: The config's ``Cmd``.
        env: The config's ``Env`` (``KEY=VALUE`` strings).
        working_dir: The config's ``WorkingDir``.
        user: The config's ``User`` (``"uid[:gid]"`` or names).
        labels: The config's ``Labels``.
        exposed_ports: The config's ``ExposedPorts`` keys (``"80/tcp"``).
        volumes: The config's ``Volumes`` keys.
        stop_signal: The config's ``StopSignal``.
        platform: The image's platform; the host's by default.
        docker: Use docker schema 2 media types (manifest, config, layers).

    Returns:
        The image with every blob.
    """
    plat = dict(platform) if platform is not None else host_platform()
    blobs: dict[str, bytes] = {}
    layer_descs: list[dict[str, Any]] = []
    diff_ids: list[str] = []
    for layer in layers:
        tar = layer.uncompressed()
        diff_ids.append(digest_of(tar))
        # mtime=0 keeps the gzip stream reproducible.
        blob = gzip.compress(tar, mtime=0) if layer.gzip else tar
        if docker:
            media_type = MT_DOCKER_LAYER_GZIP if layer.gzip else MT_DOCKER_LAYER
        else:
            media_type = MT_OCI_LAYER_GZIP if layer.gzip else MT_OCI_LAYER
        layer_descs.append(_descriptor(media_type, blob))
        blobs[digest_of(blob)] = blob
    container_config: dict[str, Any] = {"Env": list(env), "WorkingDir": working_dir}
    if entrypoint is not None:
        container_config["Entrypoint"] = list(entrypoint)
    if cmd is not None:
        container_config["Cmd"] = list(cmd)
    if user:
        container_config["User"] = user
    if labels:
        container_config["Labels"] = dict(labels)
    if exposed_ports:
        container_config["ExposedPorts"] = {port: {} for port in exposed_ports}
    if volumes:
        container_config["Volumes"] = {volume: {} for volume in volumes}
    if stop_signal:
        container_config["StopSignal"] = stop_signal
    config = {
        **plat,
        "config": container_config,
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created_by": "pycontainerd.testing_images"} for _ in layers],
    }
    config_data = _json_bytes(config)
    config_desc = _descriptor(MT_DOCKER_CONFIG if docker else MT_OCI_CONFIG, config_data)
    blobs[config_desc["digest"]] = config_data
    manifest_type = MT_DOCKER_MANIFEST if docker else MT_OCI_MANIFEST
    manifest = {"schemaVersion": 2, "mediaType": manifest_type, "config": config_desc, "layers": layer_descs}
    manifest_data = _json_bytes(manifest)
    manifest_desc = _descriptor(manifest_type, manifest_data, platform=plat)
    blobs[manifest_desc["digest"]] = manifest_data
    return BuiltImage(manifest_desc, config_desc, layer_descs, diff_ids, blobs, plat, docker)


def build_index(images: Sequence[BuiltImage]) -> BuiltIndex:
    """A multi-platform index listing ``images`` (each manifest with its platform)."""
    blobs: dict[str, bytes] = {}
    for image in images:
        blobs.update(image.blobs)
    index = {"schemaVersion": 2, "mediaType": MT_OCI_INDEX, "manifests": [image.manifest for image in images]}
    data = _json_bytes(index)
    desc = _descriptor(MT_OCI_INDEX, data)
    blobs[desc["digest"]] = data
    return BuiltIndex(desc, list(images), blobs)


def _tag(name: str) -> str:
    last = name.rsplit("/", 1)[-1]
    return last.rsplit(":", 1)[1] if ":" in last else "latest"


def _add(tar: tarfile.TarFile, name: str, data: bytes, mode: int = 0o644) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode = len(data), mode
    tar.addfile(info, io.BytesIO(data))


def _add_dir(tar: tarfile.TarFile, name: str) -> None:
    info = tarfile.TarInfo(name)
    info.type, info.mode = tarfile.DIRTYPE, 0o755
    tar.addfile(info)


def _write_atomically(dest: str | os.PathLike[str], fill: Any, *, compress: bool = False) -> str:
    path = os.path.abspath(os.fspath(dest))
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        if compress:
            with open(tmp, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz, \
                    tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:
                fill(tar)
        else:
            with tarfile.open(tmp, mode="w", format=tarfile.PAX_FORMAT) as tar:
                fill(tar)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def write_oci_archive(
    dest: str | os.PathLike[str],
    images: Mapping[str, BuiltImage | BuiltIndex],
    *,
    gzip_archive: bool = False,
    blobs_first: bool = False,
) -> str:
    """Write an OCI image layout tar (``oci-layout``, ``index.json``, ``blobs/sha256/...``).

    Each index.json entry is named with both ``io.containerd.image.name`` (the full
    name) and ``org.opencontainers.image.ref.name`` (its tag), as ``ctr images export``
    does.

    Args:
        dest: The archive file (replaced atomically).
        images: Image name to image or multi-platform index.
        gzip_archive: gzip the whole tar.
        blobs_first: Put the blobs before ``index.json`` in the tar (both orders are valid).

    Returns:
        The absolute path of the archive.
    """
    blobs: dict[str, bytes] = {}
    manifests = []
    for name, image in images.items():
        blobs.update(image.blobs)
        annotations = {ANNOTATION_IMAGE_NAME: name, ANNOTATION_REF_NAME: _tag(name)}
        manifests.append({**image.target, "annotations": annotations})
    index = {"schemaVersion": 2, "mediaType": MT_OCI_INDEX, "manifests": manifests}

    def fill(tar: tarfile.TarFile) -> None:
        def blob_files() -> None:
            _add_dir(tar, "blobs")
            _add_dir(tar, "blobs/sha256")
            for digest, data in sorted(blobs.items()):
                _add(tar, "blobs/sha256/" + digest.split(":", 1)[1], data)

        if blobs_first:
            blob_files()
        _add(tar, "oci-layout", _json_bytes({"imageLayoutVersion": "1.0.0"}))
        _add(tar, "index.json", _json_bytes(index))
        if not blobs_first:
            blob_files()

    return _write_atomically(dest, fill, compress=gzip_archive)


def write_docker_archive(dest: str | os.PathLike[str], images: Mapping[str, BuiltImage]) -> str:
    """Write a classic ``docker save`` archive (``manifest.json``, ``repositories``, ``<id>/layer.tar``).

    Layers are stored as the image's layer blobs (``docker save`` writes plain tars; a
    gzip layer exercises the importer's compression detection). Layer directory ids
    are the layers' blob digests.

    Args:
        dest: The archive file (replaced atomically).
        images: ``name:tag`` to image; several names may share an image.

    Returns:
        The absolute path of the archive.
    """
    entries: dict[str, dict[str, Any]] = {}
    repositories: dict[str, dict[str, str]] = {}
    files: dict[str, bytes] = {}
    for name, image in images.items():
        config_hex = image.config["digest"].split(":", 1)[1]
        layer_paths = []
        for desc in image.layers:
            layer_id = desc["digest"].split(":", 1)[1]
            files[f"{layer_id}/VERSION"] = b"1.0"
            files[f"{layer_id}/json"] = _json_bytes({"id": layer_id})
            files[f"{layer_id}/layer.tar"] = image.blobs[desc["digest"]]
            layer_paths.append(f"{layer_id}/layer.tar")
        files[f"{config_hex}.json"] = image.blobs[image.config["digest"]]
        entry = entries.setdefault(
            config_hex, {"Config": f"{config_hex}.json", "RepoTags": [], "Layers": layer_paths}
        )
        entry["RepoTags"].append(name)
        repo, tag = name.rsplit(":", 1) if ":" in name.rsplit("/", 1)[-1] else (name, "latest")
        repositories.setdefault(repo, {})[tag] = layer_paths[-1].split("/", 1)[0]

    def fill(tar: tarfile.TarFile) -> None:
        for name in sorted({path.split("/", 1)[0] for path in files if "/" in path}):
            _add_dir(tar, name)
        for name, data in sorted(files.items()):
            _add(tar, name, data)
        _add(tar, "manifest.json", _json_bytes(list(entries.values())))
        _add(tar, "repositories", _json_bytes(repositories))

    return _write_atomically(dest, fill)


def whiteout_layers() -> list[Layer]:
    """The layers of :func:`whiteout_image`: busybox, additions, then deletions and an opaque dir.

    Layer 2 (uncompressed) adds ``/data`` with files of several modes and owners, a user
    xattr, a symlink, a hard link, ``/data/keep`` and ``/data/opq`` with content, and
    modifies ``/etc/passwd``. Layer 3 (gzip) deletes ``/data/gone`` and ``/etc/group``
    through whiteouts, makes ``/data/opq`` opaque (keeping only ``new``), and changes
    ``/data/modified``.
    """
    passwd = (b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
              b"app:x:1000:1000:app:/home/app:/bin/sh\n")
    add = Layer(
        [
            directory("data", mode=0o755),
            file("data/modified", b"first\n"),
            file("data/gone", b"to be deleted\n"),
            file("data/owned", b"owned\n", mode=0o640, uid=1000, gid=1000),
            file("data/setuid", b"#!/bin/sh\n", mode=0o4755),
            file("data/xattr", b"x\n", xattrs={"user.pycontainerd": "yes"}),
            symlink("data/link", "modified"),
            symlink("data/abslink", "/etc/passwd"),
            hardlink("data/hard", "data/owned"),
            directory("data/sticky", mode=0o1777),
            directory("data/opq", mode=0o755),
            file("data/opq/old", b"old\n"),
            directory("data/opq/olddir"),
            file("data/opq/olddir/f", b"f\n"),
            directory("home"),
            directory("home/app", mode=0o700, uid=1000, gid=1000),
            file("etc/passwd", passwd),
        ],
        gzip=False,
    )
    delete = Layer(
        [
            directory("data", mode=0o755),
            whiteout("data/gone"),
            file("data/modified", b"second\n", mode=0o600),
            directory("data/opq", mode=0o750),
            opaque("data/opq"),
            file("data/opq/new", b"new\n"),
            directory("etc"),
            whiteout("etc/group"),
        ],
        gzip=True,
    )
    return [add, delete]


def whiteout_image(*, docker: bool = False, **config: Any) -> BuiltImage:
    """The test suite's multi-layer image: :func:`busybox_layer` plus :func:`whiteout_layers`.

    Args:
        docker: Use docker schema 2 media types.
        config: Container config for :func:`build_image` (``cmd``, ``env``, ...).
    """
    return build_image([busybox_layer(), *whiteout_layers()], docker=docker, **config)


def foreign_platform() -> dict[str, str]:
    """A platform that is not the host's (``linux/arm64`` on amd64, else ``linux/amd64``)."""
    host = host_platform()
    arch = "arm64" if host["architecture"] != "arm64" else "amd64"
    return {"architecture": arch, "os": "linux"}


def multi_platform_index(**config: Any) -> BuiltIndex:
    """An index of a runnable host-platform busybox image and a foreign-platform one.

    The foreign image's single layer holds only ``/platform`` (it need not run).
    """
    host = build_image([busybox_layer()], **config)
    foreign = build_image([Layer([file("platform", b"foreign\n")])], platform=foreign_platform(), **config)
    return build_index([host, foreign])


def _edit(document: bytes, change: Callable[[dict[str, Any]], Any] | bytes) -> bytes:
    if isinstance(change, bytes):
        return change
    value = json.loads(document)
    change(value)
    return _json_bytes(value)


def tampered(
    image: BuiltImage,
    *,
    config: Callable[[dict[str, Any]], Any] | bytes | None = None,
    manifest: Callable[[dict[str, Any]], Any] | bytes | None = None,
) -> BuiltImage:
    """A copy of ``image`` with its config and/or manifest changed, for bad-input tests.

    A callable edits the parsed document in place; bytes replace it verbatim (malformed
    JSON, say). The manifest's config descriptor and the manifest descriptor follow the
    new bytes; nothing else is checked, so the result may break any rule on purpose.

    Args:
        image: The image to copy.
        config: The change to the config.
        manifest: The change to the manifest (applied after the config descriptor update).
    """
    replaced = (image.config["digest"], image.manifest["digest"])
    blobs = {d: b for d, b in image.blobs.items() if d not in replaced}
    config_desc = dict(image.config)
    config_data = image.blobs[image.config["digest"]]
    if config is not None:
        config_data = _edit(config_data, config)
        config_desc.update(digest=digest_of(config_data), size=len(config_data))
    blobs[config_desc["digest"]] = config_data
    manifest_value = json.loads(image.blobs[image.manifest["digest"]])
    manifest_value["config"] = config_desc
    manifest_data = _edit(_json_bytes(manifest_value), manifest) if manifest is not None \
        else _json_bytes(manifest_value)
    manifest_desc = {**image.manifest, "digest": digest_of(manifest_data), "size": len(manifest_data)}
    blobs[manifest_desc["digest"]] = manifest_data
    return BuiltImage(
        manifest_desc, config_desc, image.layers, image.diff_ids, blobs, image.platform, image.docker
    )
