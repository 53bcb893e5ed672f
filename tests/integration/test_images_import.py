"""Client.import_archive and the image records, against the real daemon.

The archives come from :mod:`pycontainerd.testing_images`; what lands in the
daemon is checked through its own API: image records, GC labels on the blobs
(as containerd's client sets them), no lease left, and containerd's garbage
collector keeping exactly what the image needs.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest

from pycontainerd import errors
from pycontainerd import testing_images as ti
from pycontainerd.images import Image, NoMatchingPlatformError
from pycontainerd.images.unpack import chain_ids

NAME = "docker.io/test/whiteout:v1"


@pytest.fixture(scope="module")
def whiteout() -> ti.BuiltImage:
    return ti.whiteout_image(entrypoint=["/bin/sh", "-c"], cmd=["echo hi"], labels={"a": "b"})


@pytest.fixture(scope="module")
def oci_archive(whiteout: ti.BuiltImage, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return Path(ti.write_oci_archive(tmp_path_factory.mktemp("img") / "w.tar", {NAME: whiteout}))


def _gc(client: Any) -> None:
    # A synchronous lease delete runs containerd's garbage collector before it returns.
    lease = client.api.leases.create()
    client.api.leases.delete(lease.id, sync=True)


def _blobs(client: Any) -> dict[str, dict[str, str]]:
    return {info.digest: dict(info.labels) for info in client.api.content.list()}


def test_import_oci_archive_without_unpack(client: Any, oci_archive: Path, whiteout: ti.BuiltImage) -> None:
    (image,) = client.import_archive(oci_archive, unpack=False)
    assert isinstance(image, Image)
    assert image.name == NAME
    assert image.target.digest == whiteout.manifest["digest"]
    assert image.target.media_type == ti.MT_OCI_MANIFEST
    assert image.target.size == whiteout.manifest["size"]
    assert client.api.leases.list() == []
    assert client.api.content.list_statuses() == []
    config = image.config()
    assert config.entrypoint == ("/bin/sh", "-c")
    assert config.cmd == ("echo hi",)
    assert config.labels == {"a": "b"}
    assert config.diff_ids == tuple(whiteout.diff_ids)
    assert [layer.digest for layer in image.layers()] == [layer["digest"] for layer in whiteout.layers]
    assert image.size() == whiteout.manifest["size"] + whiteout.config["size"] + sum(
        layer["size"] for layer in whiteout.layers
    )
    assert not image.is_unpacked()
    # The GC labels containerd's client sets: the manifest names its config and layers.
    labels = _blobs(client)[whiteout.manifest["digest"]]
    assert labels["containerd.io/gc.ref.content.config"] == whiteout.config["digest"]
    for n, layer in enumerate(whiteout.layers):
        assert labels[f"containerd.io/gc.ref.content.l.{n}"] == layer["digest"]
    # After the lease is gone and the collector ran, everything the image needs is there.
    _gc(client)
    assert set(_blobs(client)) == set(whiteout.blobs)
    assert client.get_image(NAME) == image


def test_import_unpacks_and_gc_keeps_the_snapshots(client: Any, oci_archive: Path,
                                                   whiteout: ti.BuiltImage) -> None:
    (image,) = client.import_archive(oci_archive)
    chain = chain_ids(whiteout.diff_ids)
    assert image.is_unpacked("overlayfs")
    assert image.chain_id() == chain[-1]
    blobs = _blobs(client)
    assert blobs[whiteout.config["digest"]]["containerd.io/gc.ref.snapshot.overlayfs"] == chain[-1]
    for layer, diff_id in zip(whiteout.layers, whiteout.diff_ids, strict=True):
        assert blobs[layer["digest"]]["containerd.io/uncompressed"] == diff_id
    _gc(client)
    snapshots = {info.name: info for info in client.api.snapshots.list("overlayfs")}
    assert set(snapshots) == set(chain)
    assert snapshots[chain[1]].parent == chain[0]
    assert all(info.kind.value == "committed" for info in snapshots.values())
    assert client.api.leases.list() == []
    # Deleting the image lets the collector take everything.
    client.delete_image(NAME, sync=True)
    assert client.api.content.list() == []
    assert client.api.snapshots.list("overlayfs") == []


def test_import_twice_is_idempotent(client: Any, oci_archive: Path, whiteout: ti.BuiltImage) -> None:
    (first,) = client.import_archive(oci_archive)
    before_blobs = {info.digest: info for info in client.api.content.list()}
    before_snapshots = {info.name: info.created_at for info in client.api.snapshots.list("overlayfs")}
    with open(oci_archive, "rb") as f:
        (second,) = client.import_archive(f)
    assert second.target == first.target
    assert second.created_at == first.created_at
    assert {info.name: info.created_at for info in client.api.snapshots.list("overlayfs")} == before_snapshots
    after = {info.digest: info for info in client.api.content.list()}
    assert set(after) >= set(whiteout.blobs)
    for digest in whiteout.blobs:
        assert after[digest].created_at == before_blobs[digest].created_at, "a blob was rewritten"
        assert after[digest].labels == before_blobs[digest].labels
    assert [i.name for i in client.list_images()] == [NAME]
    assert client.api.leases.list() == []


def test_import_from_a_gzip_stream(client: Any, whiteout: ti.BuiltImage, tmp_path: Path) -> None:
    path = ti.write_oci_archive(tmp_path / "w.tar.gz", {NAME: whiteout}, gzip_archive=True, blobs_first=True)
    # A non-seekable stream: the archive is read front to back once.
    with open(path, "rb") as raw:
        stream = io.BufferedReader(raw)
        (image,) = client.import_archive(stream, unpack=False)
    assert image.target.digest == whiteout.manifest["digest"]


def test_import_docker_archive(client: Any, whiteout: ti.BuiltImage, tmp_path: Path) -> None:
    docker = ti.whiteout_image(docker=True)
    path = ti.write_docker_archive(tmp_path / "d.tar", {"test/docker:1": docker, "busybox:2": docker})
    images = client.import_archive(path)
    assert [i.name for i in images] == ["docker.io/test/docker:1", "docker.io/library/busybox:2"]
    assert images[0].target.digest == images[1].target.digest
    assert images[0].target.media_type == ti.MT_DOCKER_MANIFEST
    manifest = images[0].manifest()
    assert manifest.config.digest == docker.config["digest"]
    # The layer media types come from the bytes (gzip or plain), as containerd's importer does.
    assert [layer.media_type for layer in manifest.layers] == [layer["mediaType"] for layer in docker.layers]
    assert images[0].is_unpacked()


def test_name_option(client: Any, oci_archive: Path) -> None:
    (image,) = client.import_archive(oci_archive, name="example.com/renamed:1", unpack=False)
    assert image.name == "example.com/renamed:1"
    assert [i.name for i in client.list_images()] == ["example.com/renamed:1"]


def test_multi_platform_index_keeps_the_host_platform(client: Any, tmp_path: Path) -> None:
    built = ti.multi_platform_index()
    path = ti.write_oci_archive(tmp_path / "m.tar", {"docker.io/test/multi:1": built})
    (image,) = client.import_archive(path)
    assert image.target.media_type == ti.MT_OCI_INDEX
    host, foreign = built.images
    assert image.manifest().descriptor.digest == host.manifest["digest"]
    assert [str(p) for p in image.platforms()] == sorted(
        [f"linux/{host.platform['architecture']}", f"linux/{foreign.platform['architecture']}"]
    )
    index_labels = _blobs(client)[built.index["digest"]]
    assert index_labels == {"containerd.io/gc.ref.content.m.0": host.manifest["digest"]}
    _gc(client)
    remaining = set(_blobs(client))
    assert set(host.blobs) <= remaining
    assert not (set(foreign.blobs) - set(host.blobs)) & remaining


def test_multi_platform_index_other_platform(client: Any, tmp_path: Path) -> None:
    built = ti.multi_platform_index()
    foreign = built.images[1]
    path = ti.write_oci_archive(tmp_path / "m.tar", {"docker.io/test/multi:1": built})
    arch = foreign.platform["architecture"]
    (image,) = client.import_archive(path, platform=f"linux/{arch}", unpack=False)
    assert image.manifest(f"linux/{arch}").descriptor.digest == foreign.manifest["digest"]


def test_no_matching_platform_lists_the_offer(client: Any, tmp_path: Path) -> None:
    built = ti.multi_platform_index()
    path = ti.write_oci_archive(tmp_path / "m.tar", {"docker.io/test/multi:1": built})
    with pytest.raises(NoMatchingPlatformError) as caught:
        client.import_archive(path, platform="linux/s390x")
    assert caught.value.wanted == "linux/s390x"
    assert caught.value.available == sorted(
        f"linux/{image.platform['architecture']}" for image in built.images
    )
    assert "linux/s390x" in str(caught.value)
    assert client.list_images() == []
    assert client.api.leases.list() == []
    assert client.api.content.list() == []


def test_tag_get_list_delete(client: Any, oci_archive: Path) -> None:
    (image,) = client.import_archive(oci_archive, unpack=False)
    tagged = client.tag(NAME, "docker.io/test/other:2")
    assert tagged.target == image.target
    assert sorted(i.name for i in client.list_images()) == ["docker.io/test/other:2", NAME]
    assert [i.name for i in client.list_images("name==docker.io/test/other:2")] == ["docker.io/test/other:2"]
    with pytest.raises(errors.AlreadyExistsError):
        client.tag(NAME, "docker.io/test/other:2")
    client.delete_image("docker.io/test/other:2")
    with pytest.raises(errors.NotFoundError):
        client.get_image("docker.io/test/other:2")
    with pytest.raises(errors.NotFoundError):
        client.delete_image("docker.io/test/other:2")


def test_progress_reports_every_file_once_done(client: Any, oci_archive: Path,
                                               whiteout: ti.BuiltImage) -> None:
    sizes = {"blobs/sha256/" + digest.split(":", 1)[1]: len(data) for digest, data in whiteout.blobs.items()}
    for again in (False, True):
        calls: list[tuple[str, int, int]] = []
        client.import_archive(oci_archive, progress=lambda *call: calls.append(call))  # noqa: B023
        finished = [(name, size) for name, done, size in calls if done == size]
        # Exactly one final call per blob, also on the second import, which skips them all.
        assert sorted(finished) == sorted(sizes.items())
        for name, size in sizes.items():
            done = [d for n, d, _ in calls if n == name]
            assert done == sorted(done)
            assert all(0 < d <= size for d in done)
        if again:
            # Every blob was in the store: refused before any byte was read.
            assert [c for c in calls if c[1] < c[2]] == []
