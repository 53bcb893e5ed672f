"""Images imported by pycontainerd are ordinary containerd images, and the other way round.

Checked with the ``ctr`` that matches the daemon: ``ctr run`` runs what
pycontainerd imported; pycontainerd runs what ``ctr images import`` imported;
both unpack the whiteout image to the same tree and label the same blobs the
same way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from _image_tree import snapshot_view, tree

import pycontainerd
from pycontainerd import testing_images as ti
from pycontainerd.client import Client

NAME = "docker.io/test/whiteout:v1"


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    image = ti.whiteout_image(entrypoint=["/bin/sh", "-c"], cmd=["cat /data/modified"])
    return Path(ti.write_oci_archive(tmp_path_factory.mktemp("interop") / "w.tar", {NAME: image}))


def _gc(client: Any) -> None:
    lease = client.api.leases.create()
    client.api.leases.delete(lease.id, sync=True)


def test_ctr_runs_what_pycontainerd_imported(client: Any, ctr: Any, archive: Path) -> None:
    client.import_archive(archive)
    _gc(client)
    assert NAME in ctr("images", "ls", "-q").split()
    assert ctr("run", "--rm", NAME, "interop1") == "second\n"
    assert ctr("run", "--rm", NAME, "interop2", "/bin/sh", "-c", "ls /data/opq") == "new\n"


def test_pycontainerd_runs_what_ctr_imported(client: Any, ctr: Any, archive: Path) -> None:
    ctr("images", "import", str(archive))
    image = client.get_image(NAME)
    assert image.is_unpacked()
    result = pycontainerd.run([], image=image, client=client, capture_output=True)
    assert (result.returncode, result.stdout) == (0, b"second\n")


def test_docker_archive_gives_ctr_s_manifest(client: Any, ctr: Any, tmp_path: Path,
                                             other_namespace: str) -> None:
    path = ti.write_docker_archive(tmp_path / "d.tar", {"test/docker:1": ti.whiteout_image(docker=True)})
    (ours,) = client.import_archive(path)
    ctr("images", "import", path, namespace=other_namespace)
    with Client(client.address, namespace=other_namespace) as theirs:
        assert theirs.get_image("docker.io/test/docker:1").target == ours.target


def test_same_tree_and_labels_as_ctr(client: Any, ctr: Any, archive: Path, other_namespace: str) -> None:
    (ours,) = client.import_archive(archive)
    ctr("images", "import", str(archive), namespace=other_namespace)
    with Client(client.address, namespace=other_namespace) as theirs_client:
        theirs = theirs_client.get_image(NAME)
        assert theirs.target == ours.target
        assert theirs.chain_id() == ours.chain_id()
        with snapshot_view(client, "overlayfs", ours.chain_id(), "view-ours") as root:
            our_tree = tree(root)
        with snapshot_view(theirs_client, "overlayfs", theirs.chain_id(), "view-theirs") as root:
            their_tree = tree(root)
        assert our_tree == their_tree
        assert "data/gone" not in our_tree
        # The same blobs survive the collector, with the same labels.
        _gc(client)
        _gc(theirs_client)
        ours_blobs = {b.digest: dict(b.labels) for b in client.api.content.list()}
        theirs_blobs = {b.digest: dict(b.labels) for b in theirs_client.api.content.list()}
        assert ours_blobs == theirs_blobs
        our_snapshots = {s.name: s.parent for s in client.api.snapshots.list("overlayfs")}
        assert our_snapshots == {s.name: s.parent for s in theirs_client.api.snapshots.list("overlayfs")}
