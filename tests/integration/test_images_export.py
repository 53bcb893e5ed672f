"""Client.export_archive against the real daemon: ctr imports and runs what pycontainerd exports.

Also: pycontainerd re-imports its own export to the same target (from a file and from a
pipe while it is being written), only the selected platforms are written, and a failed
export leaves no file.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
import threading
from pathlib import Path
from typing import Any

import pytest

from pycontainerd import testing_images as ti
from pycontainerd.client import Client
from pycontainerd.images import MissingBlobError, NoMatchingPlatformError, Platform
from pycontainerd.images.platform import host

NAME = "docker.io/test/whiteout:v1"
DOCKER_TAG = "test/docker:1"
DOCKER_NAME = "docker.io/test/docker:1"
MULTI = "example.com/pcd/multi:1"


@pytest.fixture(scope="module")
def whiteout() -> ti.BuiltImage:
    return ti.whiteout_image(entrypoint=["/bin/sh", "-c"], cmd=["cat /data/modified"])


@pytest.fixture(scope="module")
def archives(whiteout: ti.BuiltImage, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    directory = tmp_path_factory.mktemp("export")
    docker = ti.whiteout_image(docker=True, cmd=["echo", "docker"])
    return {
        "oci": ti.write_oci_archive(directory / "w.tar", {NAME: whiteout}),
        "docker": ti.write_docker_archive(directory / "d.tar", {DOCKER_TAG: docker}),
        "multi": ti.write_oci_archive(directory / "m.tar", {MULTI: ti.multi_platform_index()}),
    }


def _files(path: str | Path) -> dict[str, bytes]:
    out = {}
    with tarfile.open(path) as tar:
        for member in tar:
            if member.isfile():
                f = tar.extractfile(member)
                assert f is not None
                out[member.name] = f.read()
    return out


def test_export_then_ctr_imports_and_runs_it(client: Any, ctr: Any, other_namespace: str,
                                             archives: dict[str, str], tmp_path: Path) -> None:
    (ours,) = client.import_archive(archives["oci"])
    (docker,) = client.import_archive(archives["docker"])
    out = tmp_path / "export.tar"
    client.export_archive([NAME, docker], out)
    assert [p.name for p in tmp_path.iterdir()] == ["export.tar"]  # no temporary file left
    files = _files(out)
    blobs = {name for name in files if name.startswith("blobs/")}
    for name in blobs:
        assert name == "blobs/sha256/" + hashlib.sha256(files[name]).hexdigest()
    needed = {ours.target.digest, ours.manifest().config.digest, *(d.digest for d in ours.layers()),
              docker.target.digest, docker.manifest().config.digest, *(d.digest for d in docker.layers())}
    assert blobs == {"blobs/sha256/" + d.split(":", 1)[1] for d in needed}
    index = json.loads(files["index.json"])
    assert [m["annotations"]["io.containerd.image.name"] for m in index["manifests"]] == [NAME, DOCKER_NAME]
    assert [m["annotations"]["org.opencontainers.image.ref.name"] for m in index["manifests"]] == ["v1", "1"]
    assert json.loads(files["oci-layout"]) == {"imageLayoutVersion": "1.0.0"}
    entries = json.loads(files["manifest.json"])
    tags = sorted(tag for entry in entries for tag in entry["RepoTags"])
    assert tags == ["test/docker:1", "test/whiteout:v1"]
    for entry in entries:
        assert entry["Config"] in files
        assert len(entry["Layers"]) == 3
        assert all(layer in files for layer in entry["Layers"])

    ctr("images", "import", str(out), namespace=other_namespace)
    listed = ctr("images", "ls", "-q", namespace=other_namespace).split()
    assert sorted(listed) == sorted([NAME, DOCKER_NAME])
    assert ctr("run", "--rm", NAME, "exported", namespace=other_namespace) == "second\n"
    assert ctr("run", "--rm", DOCKER_NAME, "exported2", namespace=other_namespace) == "docker\n"
    with Client(client.address, namespace=other_namespace) as theirs:
        assert theirs.get_image(NAME).target.digest == ours.target.digest
        assert theirs.get_image(DOCKER_NAME).target.digest == docker.target.digest


def test_export_round_trips_through_pycontainerd(client: Any, other_namespace: str,
                                                 archives: dict[str, str]) -> None:
    (image,) = client.import_archive(archives["multi"])
    with Client(client.address, namespace=other_namespace) as theirs:
        # Into a stream...
        sink = io.BytesIO()
        client.export_archive([image], sink)
        sink.seek(0)
        (again,) = theirs.import_archive(sink)
        assert (again.name, again.target) == (MULTI, image.target)
        offered = sorted([host(), Platform.from_json(ti.foreign_platform())])
        assert again.platforms() == image.platforms() == offered
        assert again.is_unpacked()
        theirs.delete_image(MULTI, sync=True)
        # ...and through a pipe, imported while it is being written (neither side seeks).
        read_fd, write_fd = os.pipe()
        failures: list[BaseException] = []

        def export() -> None:
            try:
                with open(write_fd, "wb") as pipe:
                    client.export_archive([MULTI], pipe)
            except BaseException as exc:  # reported by the test's thread
                failures.append(exc)

        writer = threading.Thread(target=export)
        writer.start()
        try:
            with open(read_fd, "rb") as pipe:
                (piped,) = theirs.import_archive(pipe)
        finally:
            writer.join()
        assert failures == []
        assert piped.target == image.target
        assert piped.is_unpacked()


def test_only_the_selected_platforms_are_written(client: Any, ctr: Any, archives: dict[str, str],
                                                 tmp_path: Path) -> None:
    # ctr keeps every platform's blobs with --all-platforms (pycontainerd keeps one).
    ctr("images", "import", "--all-platforms", archives["multi"])
    image = client.get_image(MULTI)
    foreign = Platform.from_json(ti.foreign_platform())
    host_manifest, foreign_manifest = image.manifest(), image.manifest(foreign)

    manifests = {host_manifest.descriptor.digest, foreign_manifest.descriptor.digest}

    def manifests_in(path: Path) -> set[str]:
        blobs = {"sha256:" + name.rsplit("/", 1)[1] for name in _files(path) if name.startswith("blobs/")}
        return blobs & manifests

    client.export_archive([image], tmp_path / "host.tar")
    assert manifests_in(tmp_path / "host.tar") == {host_manifest.descriptor.digest}
    client.export_archive([image], tmp_path / "both.tar", platforms=[str(host()), str(foreign)])
    both = tmp_path / "both.tar"
    assert manifests_in(both) == {host_manifest.descriptor.digest, foreign_manifest.descriptor.digest}
    # Docker's manifest.json names the first platform's manifest.
    (entry,) = json.loads(_files(both)["manifest.json"])
    assert entry["Config"] == "blobs/sha256/" + host_manifest.config.digest.split(":", 1)[1]


def test_failed_exports_leave_no_file(client: Any, archives: dict[str, str], tmp_path: Path) -> None:
    (image,) = client.import_archive(archives["oci"], unpack=False)
    with pytest.raises(NoMatchingPlatformError, match=str(host())):
        client.export_archive([image], tmp_path / "x.tar", platforms=["linux/mips64le"])
    client.api.content.delete(image.layers()[1].digest)
    with pytest.raises(MissingBlobError):
        client.export_archive([NAME], tmp_path / "x.tar")
    with pytest.raises(ValueError, match="at least one"):
        client.export_archive([], tmp_path / "x.tar")
    assert list(tmp_path.iterdir()) == []
