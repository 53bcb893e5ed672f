"""api.snapshots against a real containerd: snapshots prepared, mounted, written, committed, viewed."""

from __future__ import annotations

import contextlib
import errno
import re
import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from pycontainerd import errors
from pycontainerd.api.snapshots import SnapshotKind
from pycontainerd.api.types import Mount
from pycontainerd.client import Client

SNAPSHOTTERS = ["overlayfs", "native"]
MIB = 1 << 20


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


def is_containerd_1_6(client: Client) -> bool:
    return re.match(r"v?1\.6\.", client.version().version) is not None


@pytest.mark.parametrize("snapshotter", SNAPSHOTTERS)
def test_prepare_write_commit_view(leased: Client, snapshotter: str, tmp_path: Path) -> None:
    snapshots = leased.api.snapshots

    base_mounts = snapshots.prepare(snapshotter, "base-active", labels={"stage": "active"})
    assert [m.type for m in base_mounts] == ["bind"]
    assert "rw" in base_mounts[0].options
    assert snapshots.mounts(snapshotter, "base-active") == base_mounts
    with mounted(base_mounts, tmp_path / "base") as root:
        (root / "base.txt").write_bytes(b"b" * MIB)
    active = snapshots.stat(snapshotter, "base-active")
    assert (active.name, active.kind, active.parent) == ("base-active", SnapshotKind.ACTIVE, "")
    assert dict(active.labels) == {"stage": "active"}
    usage = snapshots.usage(snapshotter, "base-active")
    assert usage.size >= MIB
    assert usage.inodes >= 2

    snapshots.commit(snapshotter, "base", "base-active", labels={"stage": "committed"})
    committed = snapshots.stat(snapshotter, "base")
    assert (committed.kind, dict(committed.labels)) == (SnapshotKind.COMMITTED, {"stage": "committed"})
    with pytest.raises(errors.NotFoundError):
        snapshots.stat(snapshotter, "base-active")
    assert snapshots.usage(snapshotter, "base").size >= MIB

    child_mounts = snapshots.prepare(snapshotter, "child", parent="base")
    assert [m.type for m in child_mounts] == ["overlay" if snapshotter == "overlayfs" else "bind"]
    with mounted(child_mounts, tmp_path / "child") as root:
        assert (root / "base.txt").read_bytes() == b"b" * MIB
        (root / "child.txt").write_text("child")
    assert snapshots.stat(snapshotter, "child").parent == "base"

    view_mounts = snapshots.view(snapshotter, "base-view", parent="base")
    assert "ro" in view_mounts[0].options
    with mounted(view_mounts, tmp_path / "view") as root:
        assert (root / "base.txt").stat().st_size == MIB
        assert not (root / "child.txt").exists()
        with pytest.raises(OSError, match="Read-only file system") as refused:
            (root / "new.txt").write_text("x")
        assert refused.value.errno == errno.EROFS
    assert snapshots.stat(snapshotter, "base-view").kind is SnapshotKind.VIEW

    listed = {(i.name, i.kind, i.parent) for i in snapshots.list(snapshotter)}
    assert listed == {
        ("base", SnapshotKind.COMMITTED, ""),
        ("child", SnapshotKind.ACTIVE, "base"),
        ("base-view", SnapshotKind.VIEW, "base"),
    }
    assert {i.name for i in snapshots.list(snapshotter, ["parent==base"])} == {"child", "base-view"}
    assert [i.name for i in snapshots.list(snapshotter, ['labels."stage"==committed'])] == ["base"]

    updated = snapshots.update(snapshotter, "base", labels={"extra": "1"}, fieldpaths=["labels.extra"])
    assert dict(updated.labels) == {"stage": "committed", "extra": "1"}
    replaced = snapshots.update(snapshotter, "base", labels={"only": "1"})
    assert dict(replaced.labels) == {"only": "1"}

    with pytest.raises(errors.FailedPreconditionError):
        snapshots.remove(snapshotter, "base")  # it has children
    for key in ("child", "base-view", "base"):
        snapshots.remove(snapshotter, key)
    assert snapshots.list(snapshotter) == []


@pytest.mark.parametrize("snapshotter", SNAPSHOTTERS)
def test_refusals(leased: Client, snapshotter: str) -> None:
    snapshots = leased.api.snapshots
    snapshots.prepare(snapshotter, "active")
    with pytest.raises(errors.AlreadyExistsError):
        snapshots.prepare(snapshotter, "active")
    with pytest.raises(errors.NotFoundError):
        snapshots.prepare(snapshotter, "orphan", parent="no-such-parent")
    with pytest.raises(errors.NotFoundError):
        snapshots.view(snapshotter, "orphan-view", parent="no-such-parent")
    snapshots.commit(snapshotter, "done", "active")
    with pytest.raises(errors.FailedPreconditionError):
        snapshots.mounts(snapshotter, "done")
    with pytest.raises(errors.FailedPreconditionError):
        snapshots.commit(snapshotter, "again", "done")
    with pytest.raises(errors.NotFoundError):
        snapshots.stat(snapshotter, "missing")
    with pytest.raises(errors.NotFoundError):
        snapshots.remove(snapshotter, "missing")
    with pytest.raises(errors.InvalidArgumentError):
        snapshots.update(snapshotter, "done", labels={}, fieldpaths=["name"])
    # The daemon sends this refusal mid-stream without a status class (1.6: Unknown).
    with pytest.raises(errors.ContainerdError, match="parse error"):
        snapshots.list(snapshotter, ["=="])
    snapshots.remove(snapshotter, "done")


def test_unknown_snapshotter(client: Client) -> None:
    with pytest.raises(errors.InvalidArgumentError, match="no-such-snapshotter"):
        client.api.snapshots.stat("no-such-snapshotter", "key")


@pytest.mark.parametrize("snapshotter", SNAPSHOTTERS)
def test_cleanup(client: Client, snapshotter: str) -> None:
    # containerd 1.6 wraps every snapshotter in a metadata layer without a Cleanup step.
    if is_containerd_1_6(client):
        with pytest.raises(errors.UnimplementedError):
            client.api.snapshots.cleanup(snapshotter)
    else:
        with contextlib.suppress(errors.UnimplementedError):
            client.api.snapshots.cleanup(snapshotter)
