"""api.diff against a real containerd: layers applied to snapshots, layers computed from snapshots."""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import subprocess
import tarfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from pycontainerd import errors
from pycontainerd.api.diff import LAYER_MEDIA_TYPE, LAYER_MEDIA_TYPE_GZIP
from pycontainerd.api.types import Descriptor, Mount
from pycontainerd.client import Client

SNAPSHOTTERS = ["overlayfs", "native"]


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@pytest.fixture
def leased(client: Client) -> Iterator[Client]:
    """The test's client with every call under one lease, so nothing is garbage collected mid-test."""
    with client.api.leases.lease() as lease:
        yield client.with_lease(lease.id)


@contextlib.contextmanager
def mounted(mounts: Sequence[Mount], target: Path) -> Iterator[Path]:
    """Mount a snapshot's (single) mount at ``target`` with mount(8), as a runtime would."""
    assert len(mounts) == 1, mounts
    m = mounts[0]
    target.mkdir(exist_ok=True)
    command = ["mount"] if m.type == "bind" else ["mount", "-t", m.type]
    subprocess.run([*command, "-o", ",".join(m.options), m.source, str(target)], check=True)
    try:
        yield target
    finally:
        subprocess.run(["umount", str(target)], check=True)


def layer_tar() -> bytes:
    """A small layer: a directory, an executable file and a symlink."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        directory = tarfile.TarInfo("etc")
        directory.type, directory.mode = tarfile.DIRTYPE, 0o755
        tar.addfile(directory)
        body = b"#!/bin/sh\necho layer\n"
        script = tarfile.TarInfo("etc/hello.sh")
        script.size, script.mode = len(body), 0o750
        tar.addfile(script, io.BytesIO(body))
        link = tarfile.TarInfo("etc/link")
        link.type, link.linkname = tarfile.SYMTYPE, "hello.sh"
        tar.addfile(link)
    return buf.getvalue()


def check_layer_files(root: Path) -> None:
    assert (root / "etc" / "hello.sh").read_bytes() == b"#!/bin/sh\necho layer\n"
    assert (root / "etc" / "hello.sh").stat().st_mode & 0o777 == 0o750
    assert (root / "etc" / "link").readlink() == Path("hello.sh")


@pytest.mark.parametrize("snapshotter", SNAPSHOTTERS)
@pytest.mark.parametrize("compressed", [False, True], ids=["tar", "tar+gzip"])
def test_apply_layer_to_a_snapshot(
    leased: Client, snapshotter: str, compressed: bool, tmp_path: Path
) -> None:
    tar = layer_tar()
    blob, media_type = (gzip.compress(tar), LAYER_MEDIA_TYPE_GZIP) if compressed else (tar, LAYER_MEDIA_TYPE)
    desc = leased.api.content.write("layer", blob, expected=sha256(blob), media_type=media_type)
    mounts = leased.api.snapshots.prepare(snapshotter, "unpack")

    applied = leased.api.diff.apply(desc, mounts)

    # What was applied is the uncompressed layer: its digest is the layer's diff ID.
    assert (applied.media_type, applied.digest, applied.size) == (LAYER_MEDIA_TYPE, sha256(tar), len(tar))
    with mounted(mounts, tmp_path / "root") as root:
        check_layer_files(root)


@pytest.mark.parametrize("snapshotter", SNAPSHOTTERS)
def test_diff_of_two_snapshots_is_a_layer_blob(leased: Client, snapshotter: str, tmp_path: Path) -> None:
    snapshots, diff, content = leased.api.snapshots, leased.api.diff, leased.api.content
    base = layer_tar()
    base_desc = content.write("base-layer", base, media_type=LAYER_MEDIA_TYPE)
    diff.apply(base_desc, snapshots.prepare(snapshotter, "base-active"))
    snapshots.commit(snapshotter, "base", "base-active")

    top = snapshots.prepare(snapshotter, "top", parent="base")
    with mounted(top, tmp_path / "top") as root:
        (root / "etc" / "added.txt").write_text("new in top")
        (root / "etc" / "link").unlink()
    lower = snapshots.view(snapshotter, "base-view", parent="base")

    layer = diff.diff(lower, top, labels={"made-by": "pycontainerd"})

    assert layer.media_type == LAYER_MEDIA_TYPE_GZIP
    blob = content.read(layer.digest)
    assert (sha256(blob), len(blob)) == (layer.digest, layer.size)
    uncompressed = gzip.decompress(blob)
    with tarfile.open(fileobj=io.BytesIO(uncompressed)) as tar:
        members = {m.name: m for m in tar.getmembers()}
        added = tar.extractfile(members["etc/added.txt"])
        assert added is not None
        assert added.read() == b"new in top"
    assert "etc/.wh.link" in members  # the deletion, as an OCI whiteout
    assert "etc/hello.sh" not in members  # unchanged files are not in the layer
    labels = content.info(layer.digest).labels
    assert labels["made-by"] == "pycontainerd"
    assert labels["containerd.io/uncompressed"] == sha256(uncompressed)

    # The computed layer re-applied on the base reproduces the top snapshot.
    replay = snapshots.prepare(snapshotter, "replay", parent="base")
    applied = diff.apply(layer, replay)
    assert applied.digest == sha256(uncompressed)
    with mounted(replay, tmp_path / "replay") as root:
        assert (root / "etc" / "added.txt").read_text() == "new in top"
        assert not (root / "etc" / "link").is_symlink()
        assert (root / "etc" / "hello.sh").exists()


def test_diff_uncompressed_media_type(leased: Client, tmp_path: Path) -> None:
    top = leased.api.snapshots.prepare("native", "fresh")
    with mounted(top, tmp_path / "fresh") as root:
        (root / "file").write_text("content")
    layer = leased.api.diff.diff([], top, media_type=LAYER_MEDIA_TYPE, ref="uncompressed-diff")
    assert layer.media_type == LAYER_MEDIA_TYPE
    with tarfile.open(fileobj=io.BytesIO(leased.api.content.read(layer.digest))) as tar:
        file = tar.extractfile("file")
        assert file is not None
        assert file.read() == b"content"


def test_refusals(leased: Client) -> None:
    diff = leased.api.diff
    mounts = leased.api.snapshots.prepare("native", "target")
    missing = Descriptor(LAYER_MEDIA_TYPE, sha256(b"never written"), 13)
    with pytest.raises(errors.NotFoundError):
        diff.apply(missing, mounts)
    junk = b"this is not a tar archive" * 40
    not_a_tar = leased.api.content.write("junk", junk, media_type=LAYER_MEDIA_TYPE)
    with pytest.raises(errors.ContainerdError, match="tar"):
        diff.apply(not_a_tar, mounts)
    with pytest.raises(errors.UnimplementedError):
        diff.diff([], mounts, media_type="text/plain")
