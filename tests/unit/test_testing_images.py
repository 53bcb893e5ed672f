"""The test-image builder's output against the OCI image spec's rules.

Every blob file is named by its own sha256; every descriptor's digest and size
match the blob it points at; media types are the spec's; each diff ID is the
digest of the uncompressed layer; whiteouts and opaque markers use the
spec's names.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from pathlib import Path
from typing import Any

import pytest

from pycontainerd import testing_images as ti


def _members(path: Path) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    with tarfile.open(path, mode="r:*") as tar:
        for member in tar:
            if member.isfile():
                handle = tar.extractfile(member)
                assert handle is not None
                out[member.name] = handle.read()
    return out


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _check_descriptor(desc: dict[str, Any], blobs: dict[str, bytes]) -> bytes:
    data = blobs["blobs/sha256/" + desc["digest"].split(":", 1)[1]]
    assert _sha(data) == desc["digest"]
    assert len(data) == desc["size"]
    return data


def _check_image(manifest_desc: dict[str, Any], blobs: dict[str, bytes]) -> dict[str, Any]:
    assert manifest_desc["mediaType"] == ti.MT_OCI_MANIFEST
    manifest = json.loads(_check_descriptor(manifest_desc, blobs))
    assert manifest["schemaVersion"] == 2
    assert manifest["mediaType"] == ti.MT_OCI_MANIFEST
    assert manifest["config"]["mediaType"] == ti.MT_OCI_CONFIG
    config: dict[str, Any] = json.loads(_check_descriptor(manifest["config"], blobs))
    assert config["rootfs"]["type"] == "layers"
    assert len(config["rootfs"]["diff_ids"]) == len(manifest["layers"])
    for layer, diff_id in zip(manifest["layers"], config["rootfs"]["diff_ids"], strict=True):
        blob = _check_descriptor(layer, blobs)
        if layer["mediaType"] == ti.MT_OCI_LAYER_GZIP:
            assert blob[:2] == b"\x1f\x8b"
            blob = gzip.decompress(blob)
        else:
            assert layer["mediaType"] == ti.MT_OCI_LAYER
            assert blob[:2] != b"\x1f\x8b"
        assert _sha(blob) == diff_id
    # The platform on the index entry is the config's.
    if "platform" in manifest_desc:
        assert manifest_desc["platform"]["architecture"] == config["architecture"]
        assert manifest_desc["platform"]["os"] == config["os"]
    return config


def test_oci_archive_follows_the_spec(tmp_path: Path) -> None:
    image = ti.whiteout_image(entrypoint=["/bin/sh", "-c"], cmd=["echo hi"], user="1000:1000")
    path = ti.write_oci_archive(tmp_path / "img.tar", {"docker.io/test/whiteout:v1": image})
    blobs = _members(Path(path))
    assert json.loads(blobs["oci-layout"]) == {"imageLayoutVersion": "1.0.0"}
    index = json.loads(blobs["index.json"])
    assert index["schemaVersion"] == 2
    assert index["mediaType"] == ti.MT_OCI_INDEX
    (entry,) = index["manifests"]
    assert entry["annotations"] == {
        "io.containerd.image.name": "docker.io/test/whiteout:v1",
        "org.opencontainers.image.ref.name": "v1",
    }
    config: dict[str, Any] = _check_image(entry, blobs)
    assert config["config"]["Entrypoint"] == ["/bin/sh", "-c"]
    assert config["config"]["Cmd"] == ["echo hi"]
    assert config["config"]["User"] == "1000:1000"
    assert config["os"] == "linux"
    assert config["architecture"] == ti.host_platform()["architecture"]
    # Every blob in the archive is one of the image's (nothing extra, nothing missing).
    assert {n for n in blobs if n.startswith("blobs/")} == {
        "blobs/sha256/" + d.split(":", 1)[1] for d in image.blobs
    }


def test_layers_mix_gzip_and_plain_and_are_reproducible(tmp_path: Path) -> None:
    image = ti.whiteout_image()
    assert [layer["mediaType"] for layer in image.layers] == [
        ti.MT_OCI_LAYER_GZIP, ti.MT_OCI_LAYER, ti.MT_OCI_LAYER_GZIP
    ]
    again = ti.whiteout_image()
    assert again.manifest["digest"] == image.manifest["digest"]
    first = Path(ti.write_oci_archive(tmp_path / "a.tar", {"x/y:z": image})).read_bytes()
    second = Path(ti.write_oci_archive(tmp_path / "b.tar", {"x/y:z": again})).read_bytes()
    assert first == second


def _layer_members(image: ti.BuiltImage, index: int) -> dict[str, tarfile.TarInfo]:
    blob = image.blobs[image.layers[index]["digest"]]
    if image.layers[index]["mediaType"].endswith("gzip"):
        blob = gzip.decompress(blob)
    with tarfile.open(fileobj=io.BytesIO(blob)) as tar:
        return {m.name: m for m in tar.getmembers()}


def test_whiteout_layers_use_the_spec_names() -> None:
    image = ti.whiteout_image()
    add = _layer_members(image, 1)
    assert add["data/owned"].uid == 1000
    assert add["data/owned"].mode == 0o640
    assert add["data/setuid"].mode == 0o4755
    assert add["data/sticky"].mode == 0o1777
    assert add["data/link"].issym()
    assert add["data/link"].linkname == "modified"
    assert add["data/hard"].islnk()
    assert add["data/hard"].linkname == "data/owned"
    assert (add["data/hard"].uid, add["data/hard"].mode) == (1000, 0o640)
    assert add["data/xattr"].pax_headers["SCHILY.xattr.user.pycontainerd"] == "yes"
    delete = _layer_members(image, 2)
    assert "data/.wh.gone" in delete
    assert "etc/.wh.group" in delete
    assert "data/opq/.wh..wh..opq" in delete
    names = list(delete)
    # The opaque marker follows its directory and precedes what the layer keeps there.
    assert names.index("data/opq") < names.index("data/opq/.wh..wh..opq") < names.index("data/opq/new")


def test_multi_platform_index(tmp_path: Path) -> None:
    built = ti.multi_platform_index()
    path = ti.write_oci_archive(tmp_path / "multi.tar", {"docker.io/test/multi:1": built}, gzip_archive=True)
    raw = Path(path).read_bytes()
    assert raw[:2] == b"\x1f\x8b"
    blobs = _members(Path(path))
    (entry,) = json.loads(blobs["index.json"])["manifests"]
    assert entry["mediaType"] == ti.MT_OCI_INDEX
    nested = json.loads(_check_descriptor(entry, blobs))
    platforms = []
    for manifest in nested["manifests"]:
        _check_image(manifest, blobs)
        platforms.append(manifest["platform"])
    assert platforms == [ti.host_platform(), ti.foreign_platform()]
    assert ti.host_platform() != ti.foreign_platform()


def test_docker_archive(tmp_path: Path) -> None:
    image = ti.whiteout_image(docker=True)
    assert image.manifest["mediaType"] == ti.MT_DOCKER_MANIFEST
    assert image.config["mediaType"] == ti.MT_DOCKER_CONFIG
    assert {layer["mediaType"] for layer in image.layers} == {ti.MT_DOCKER_LAYER, ti.MT_DOCKER_LAYER_GZIP}
    path = ti.write_docker_archive(tmp_path / "d.tar", {"test/docker:1": image, "test/docker:2": image})
    files = _members(Path(path))
    (entry,) = json.loads(files["manifest.json"])
    assert entry["RepoTags"] == ["test/docker:1", "test/docker:2"]
    config = files[entry["Config"]]
    assert _sha(config) == image.config["digest"]
    diff_ids = json.loads(config)["rootfs"]["diff_ids"]
    for layer_path, diff_id, desc in zip(entry["Layers"], diff_ids, image.layers, strict=True):
        data = files[layer_path]
        assert _sha(data) == desc["digest"]
        assert _sha(gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data) == diff_id
    top = entry["Layers"][-1].split("/")[0]
    assert json.loads(files["repositories"]) == {"test/docker": {"1": top, "2": top}}


@pytest.mark.parametrize("blobs_first", [False, True])
def test_blob_order_option(tmp_path: Path, blobs_first: bool) -> None:
    image = ti.build_image([ti.Layer([ti.file("a", b"a")])])
    path = ti.write_oci_archive(tmp_path / "o.tar", {"a/b:c": image}, blobs_first=blobs_first)
    with tarfile.open(path) as tar:
        names = tar.getnames()
    assert (names.index("index.json") > names.index("blobs/sha256")) == blobs_first
