"""Bad archives: each is a typed error, and nothing of the import is left in the daemon.

"Nothing left" is checked after a synchronous garbage collection: no image record,
no lease, no ingest, no content blob, no snapshot in the test's namespace.
"""

from __future__ import annotations

import io
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from _leftovers import NOTHING, leftovers

from pycontainerd import testing_images as ti
from pycontainerd.images import (
    ArchiveError,
    BlobMismatchError,
    MalformedContentError,
    MissingBlobError,
    TruncatedArchiveError,
    UnknownMediaTypeError,
    UnsafePathError,
)

NAME = "docker.io/test/bad:1"


@pytest.fixture(scope="module")
def image() -> ti.BuiltImage:
    return ti.build_image([ti.busybox_layer(), ti.Layer([ti.file("hello", b"hello\n")], gzip=False)])


Members = list[tuple[tarfile.TarInfo, "bytes | None"]]
Edit = Callable[[tarfile.TarInfo, "bytes | None"], Members]


def _rewrite(src: str, dest: Path, edit: Edit) -> Path:
    """Copy the tar ``src`` to ``dest``, each member through ``edit`` (which returns the members to write)."""
    with tarfile.open(src) as tin, tarfile.open(dest, "w", format=tarfile.PAX_FORMAT) as tout:
        for member in tin:
            handle = tin.extractfile(member) if member.isfile() else None
            data = handle.read() if handle is not None else None
            for info, payload in edit(member, data):
                tout.addfile(info, io.BytesIO(payload) if payload is not None else None)
    return dest


def _archive(tmp_path: Path, built: ti.BuiltImage) -> str:
    return ti.write_oci_archive(tmp_path / "good.tar", {NAME: built})


def _layer_path(built: ti.BuiltImage, n: int) -> str:
    digest: str = built.layers[n]["digest"]
    return "blobs/sha256/" + digest.split(":", 1)[1]


def test_truncated_inside_a_blob(client: Any, image: ti.BuiltImage, tmp_path: Path) -> None:
    data = Path(_archive(tmp_path, image)).read_bytes()
    cut = tmp_path / "cut.tar"
    with tarfile.open(tmp_path / "good.tar") as tar:
        layer = tar.getmember(_layer_path(image, 0))
    # Half way through the base layer's bytes.
    cut.write_bytes(data[: layer.offset_data + layer.size // 2])
    with pytest.raises(TruncatedArchiveError, match=r"ends inside|truncated"):
        client.import_archive(cut)
    assert leftovers(client) == NOTHING


def test_not_a_tar(client: Any, tmp_path: Path) -> None:
    junk = tmp_path / "junk.tar"
    junk.write_bytes(b"this is not an archive\n" * 100)
    with pytest.raises(TruncatedArchiveError):
        client.import_archive(junk)
    assert leftovers(client) == NOTHING


def test_truncated_gzip_archive(client: Any, image: ti.BuiltImage, tmp_path: Path) -> None:
    path = ti.write_oci_archive(tmp_path / "a.tar.gz", {NAME: image}, gzip_archive=True)
    data = Path(path).read_bytes()
    Path(path).write_bytes(data[: len(data) * 2 // 3])
    with pytest.raises(TruncatedArchiveError):
        client.import_archive(path)
    assert leftovers(client) == NOTHING


def test_blob_not_matching_its_name(client: Any, image: ti.BuiltImage, tmp_path: Path) -> None:
    target = _layer_path(image, 1)

    def corrupt(member: tarfile.TarInfo, data: bytes | None) -> Members:
        if member.name == target and data is not None:
            data = data[:-1] + bytes([data[-1] ^ 1])
        return [(member, data)]

    bad = _rewrite(_archive(tmp_path, image), tmp_path / "bad.tar", corrupt)
    with pytest.raises(BlobMismatchError) as caught:
        client.import_archive(bad)
    assert caught.value.digest == image.layers[1]["digest"]
    assert leftovers(client) == NOTHING


def test_missing_blob(client: Any, image: ti.BuiltImage, tmp_path: Path) -> None:
    target = _layer_path(image, 1)
    bad = _rewrite(_archive(tmp_path, image), tmp_path / "bad.tar",
                   lambda member, data: [] if member.name == target else [(member, data)])
    with pytest.raises(MissingBlobError) as caught:
        client.import_archive(bad)
    assert caught.value.digest == image.layers[1]["digest"]
    assert leftovers(client) == NOTHING


def test_unknown_layer_media_type(client: Any, image: ti.BuiltImage, tmp_path: Path) -> None:
    def odd_layer(manifest: dict[str, Any]) -> None:
        manifest["layers"][1]["mediaType"] = "application/x-not-a-layer"

    bad = ti.tampered(image, manifest=odd_layer)
    with pytest.raises(UnknownMediaTypeError) as caught:
        client.import_archive(_archive(tmp_path, bad))
    assert caught.value.media_type == "application/x-not-a-layer"
    assert leftovers(client) == NOTHING


@pytest.mark.parametrize("document", ["config", "manifest"])
def test_malformed_json(client: Any, image: ti.BuiltImage, tmp_path: Path, document: str) -> None:
    bad = ti.tampered(image, **{document: b'{"schemaVersion": 2, '})
    with pytest.raises(MalformedContentError):
        client.import_archive(_archive(tmp_path, bad))
    assert leftovers(client) == NOTHING


def test_malformed_index_json(client: Any, image: ti.BuiltImage, tmp_path: Path) -> None:
    def broken_index(member: tarfile.TarInfo, data: bytes | None) -> Members:
        if member.name == "index.json":
            data = b"[not json"
            member.size = len(data)
        return [(member, data)]

    bad = _rewrite(_archive(tmp_path, image), tmp_path / "bad.tar", broken_index)
    with pytest.raises(MalformedContentError, match=r"index\.json"):
        client.import_archive(bad)
    assert leftovers(client) == NOTHING


def test_diff_ids_not_matching_the_layers(client: Any, image: ti.BuiltImage, tmp_path: Path) -> None:
    def one_diff_id_short(config: dict[str, Any]) -> None:
        config["rootfs"]["diff_ids"].pop()

    with pytest.raises(MalformedContentError, match="diff IDs"):
        client.import_archive(_archive(tmp_path, ti.tampered(image, config=one_diff_id_short)))
    assert leftovers(client) == NOTHING


def test_huge_declared_size_on_a_small_blob(client: Any, image: ti.BuiltImage, tmp_path: Path) -> None:
    def ten_gib(manifest: dict[str, Any]) -> None:
        manifest["layers"][1]["size"] = 10 << 30

    with pytest.raises(BlobMismatchError, match=str(10 << 30)):
        client.import_archive(_archive(tmp_path, ti.tampered(image, manifest=ten_gib)))
    assert leftovers(client) == NOTHING


def test_huge_size_in_a_tar_header(client: Any, image: ti.BuiltImage, tmp_path: Path) -> None:
    target = _layer_path(image, 1)

    def claim_ten_gib(member: tarfile.TarInfo, data: bytes | None) -> Members:
        if member.name == target:
            # The header claims 10 GiB; the archive ends long before.
            member.size = 10 << 30
            return [(member, (data or b"") + b"\0" * 4096)]
        return [(member, data)]

    path = Path(_archive(tmp_path, image))
    bad = tmp_path / "bad.tar"
    with tarfile.open(path) as tin, open(bad, "wb") as out:
        for member in tin:
            handle = tin.extractfile(member) if member.isfile() else None
            data = handle.read() if handle is not None else None
            for info, payload in claim_ten_gib(member, data):
                out.write(info.tobuf(tarfile.PAX_FORMAT))
                if payload:
                    out.write(payload + b"\0" * (-len(payload) % 512))
            if member.name == target:
                break
    with pytest.raises(TruncatedArchiveError):
        client.import_archive(bad)
    assert leftovers(client) == NOTHING


@pytest.mark.parametrize("name", ["../evil", "/etc/evil", "blobs/../../evil", "blobs/sha256/../../../x"])
def test_path_traversal(client: Any, image: ti.BuiltImage, tmp_path: Path, name: str) -> None:
    def add_evil(member: tarfile.TarInfo, data: bytes | None) -> Members:
        if member.name != "oci-layout":
            return [(member, data)]
        evil = tarfile.TarInfo(name)
        evil.size = 4
        return [(member, data), (evil, b"evil")]

    bad = _rewrite(_archive(tmp_path, image), tmp_path / "bad.tar", add_evil)
    with pytest.raises(UnsafePathError) as caught:
        client.import_archive(bad)
    assert caught.value.path == name
    assert leftovers(client) == NOTHING


def test_symlink_out_of_the_archive(client: Any, tmp_path: Path) -> None:
    docker = ti.build_image([ti.Layer([ti.file("a", b"a")])], docker=True)
    path = ti.write_docker_archive(tmp_path / "d.tar", {"test/bad:1": docker})

    def link_out(member: tarfile.TarInfo, data: bytes | None) -> Members:
        if member.name != "manifest.json":
            return [(member, data)]
        link = tarfile.TarInfo("x/layer.tar")
        link.type, link.linkname = tarfile.SYMTYPE, "../../../etc/passwd"
        return [(link, None), (member, data)]

    with pytest.raises(UnsafePathError):
        client.import_archive(_rewrite(path, tmp_path / "bad.tar", link_out))
    assert leftovers(client) == NOTHING


def test_docker_manifest_naming_a_missing_layer(client: Any, tmp_path: Path) -> None:
    docker = ti.build_image([ti.Layer([ti.file("a", b"a")])], docker=True)
    path = ti.write_docker_archive(tmp_path / "d.tar", {"test/bad:1": docker})
    bad = _rewrite(path, tmp_path / "bad.tar",
                   lambda member, data: [] if member.name.endswith("/layer.tar") else [(member, data)])
    with pytest.raises(ArchiveError, match="layer"):
        client.import_archive(bad)
    assert leftovers(client) == NOTHING


def test_unnamed_image_needs_a_name(client: Any, image: ti.BuiltImage, tmp_path: Path) -> None:
    def strip_names(member: tarfile.TarInfo, data: bytes | None) -> Members:
        if member.name == "index.json" and data is not None:
            data = data.replace(b'"io.containerd.image.name"', b'"x-other"')
            member.size = len(data)
        return [(member, data)]

    bad = _rewrite(_archive(tmp_path, image), tmp_path / "unnamed.tar", strip_names)
    with pytest.raises(ArchiveError, match="names no image"):
        client.import_archive(bad)
    assert leftovers(client) == NOTHING
    (named,) = client.import_archive(bad, name="docker.io/test/named:1")
    assert named.target.digest == image.manifest["digest"]


def test_neither_layout(client: Any, tmp_path: Path) -> None:
    path = tmp_path / "other.tar"
    with tarfile.open(path, "w") as tar:
        info = tarfile.TarInfo("README")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"hi\n"))
    with pytest.raises(ArchiveError, match="neither"):
        client.import_archive(path)
    assert leftovers(client) == NOTHING
