"""Checkpoint restore: the directory travels through the content store to Tasks/Create.

CRIU cannot run on every machine (``criu check`` fails on some kernels), so
the restore of a fabricated checkpoint is refused by the shim when the task
starts (the runc shim restores at Start, not Create); what is asserted is
pycontainerd's part: the blob uploaded and deleted again once the task is
created, the typed error at start, no FIFO and no task left behind.
"""

from __future__ import annotations

import os

import pytest

from pycontainerd import errors, oci, stdio


def test_restore_from_checkpoint_dir_uploads_and_cleans_up(client, rootfs, tmp_path):
    checkpoint = tmp_path / "checkpoint"
    checkpoint.mkdir()
    (checkpoint / "inventory.img").write_bytes(b"not a real criu image")
    container = client.new_container("restore", oci.build(args=["sleep", "100"], rootfs=rootfs))
    task = container.new_task(stdio=stdio.capture(), checkpoint_dir=str(checkpoint))
    assert client.api.content.list() == []
    with pytest.raises(errors.ContainerdError):
        task.start(timeout=60)
    assert os.listdir(container.bundle_dir) == []
    with pytest.raises(errors.NotFoundError):
        client.api.tasks.get("restore")
    container.delete()


def test_checkpoint_dir_must_exist(client, rootfs, tmp_path):
    container = client.new_container("restore-bad", oci.build(args=["true"], rootfs=rootfs))
    with pytest.raises(ValueError, match="not a directory"):
        container.new_task(checkpoint_dir=str(tmp_path / "missing"))
    with pytest.raises(ValueError, match="absolute"):
        container.new_task(checkpoint_dir="relative/dir")
    container.delete()
