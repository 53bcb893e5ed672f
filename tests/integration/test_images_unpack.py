"""Unpacking images into snapshots: chain IDs, skipped snapshots, diff-ID checks, cleanup."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from _image_tree import snapshot_view, tree
from _leftovers import NOTHING, leftovers

from pycontainerd import testing_images as ti
from pycontainerd.images import DiffIDMismatchError, SnapshotterError
from pycontainerd.images.unpack import chain_ids

NAME = "docker.io/test/whiteout:v1"


@pytest.fixture(scope="module")
def whiteout() -> ti.BuiltImage:
    return ti.whiteout_image()


def _archive(tmp_path: Path, image: ti.BuiltImage | ti.BuiltIndex, name: str = NAME) -> str:
    return ti.write_oci_archive(tmp_path / "image.tar", {name: image})


def test_unpacked_tree_applies_whiteouts_and_opaque_dirs(client: Any, whiteout: ti.BuiltImage,
                                                         tmp_path: Path) -> None:
    (image,) = client.import_archive(_archive(tmp_path, whiteout))
    with snapshot_view(client, "overlayfs", image.chain_id(), "view-test") as root:
        files = tree(root)
    assert "data/gone" not in files
    assert "etc/group" not in files
    assert not any(".wh." in path for path in files)
    assert sorted(p for p in files if p.startswith("data/opq/")) == ["data/opq/new"]
    assert files["data/opq"][:2] == ("dir", "0o750")
    assert files["data/modified"][:4] == ("file", "0o600", 0, 0)
    assert files["data/owned"][:4] == ("file", "0o640", 1000, 1000)
    assert files["data/hard"][5] == files["data/owned"][5]  # one inode
    assert files["data/setuid"][1] == "0o4755"
    assert files["data/sticky"][1] == "0o1777"
    assert files["data/link"] == ("symlink", 0, 0, "modified")
    assert files["data/abslink"] == ("symlink", 0, 0, "/etc/passwd")
    assert files["data/xattr"][6] == (("user.pycontainerd", b"yes"),)
    assert files["home/app"][:4] == ("dir", "0o700", 1000, 1000)
    assert files["bin/sh"] == ("symlink", 0, 0, "/bin/busybox")
    assert not [s.name for s in client.api.snapshots.list("overlayfs") if s.name.startswith("extract-")]


def test_existing_snapshots_are_skipped(client: Any, whiteout: ti.BuiltImage, tmp_path: Path) -> None:
    base = ti.build_image([ti.busybox_layer()])
    client.import_archive(_archive(tmp_path, base, "docker.io/test/base:1"))
    (base_snapshot,) = client.api.snapshots.list("overlayfs")
    (image,) = client.import_archive(_archive(tmp_path, whiteout))
    snapshots = {info.name: info for info in client.api.snapshots.list("overlayfs")}
    assert set(snapshots) == set(chain_ids(whiteout.diff_ids))
    # The shared base layer was not applied again.
    assert snapshots[base_snapshot.name].created_at == base_snapshot.created_at
    assert image.unpack() == image.chain_id()
    assert {info.name: info.created_at for info in client.api.snapshots.list("overlayfs")} == {
        name: info.created_at for name, info in snapshots.items()
    }


def test_unpack_later_and_into_a_missing_snapshotter(client: Any, whiteout: ti.BuiltImage,
                                                     tmp_path: Path) -> None:
    (image,) = client.import_archive(_archive(tmp_path, whiteout), unpack=False)
    assert client.api.snapshots.list("overlayfs") == []
    with pytest.raises(SnapshotterError, match="nosuch"):
        image.is_unpacked("nosuch")
    with pytest.raises(SnapshotterError):
        image.unpack("nosuch")
    assert image.unpack() == image.chain_id()
    assert image.is_unpacked()
    labels = client.api.content.info(whiteout.config["digest"]).labels
    assert labels["containerd.io/gc.ref.snapshot.overlayfs"] == image.chain_id()
    assert client.api.leases.list() == []


def test_import_into_a_missing_snapshotter_writes_nothing(client: Any, whiteout: ti.BuiltImage,
                                                          tmp_path: Path) -> None:
    with pytest.raises(SnapshotterError):
        client.import_archive(_archive(tmp_path, whiteout), snapshotter="nosuch")
    assert leftovers(client) == NOTHING


def test_diff_id_mismatch_commits_nothing(client: Any, whiteout: ti.BuiltImage, tmp_path: Path) -> None:
    wrong = "sha256:" + "0" * 64

    def break_top_diff_id(config: dict[str, Any]) -> None:
        config["rootfs"]["diff_ids"][-1] = wrong

    bad = ti.tampered(whiteout, config=break_top_diff_id)
    with pytest.raises(DiffIDMismatchError) as caught:
        client.import_archive(_archive(tmp_path, bad))
    assert caught.value.expected == wrong
    assert caught.value.actual == whiteout.diff_ids[-1]
    assert leftovers(client) == NOTHING
