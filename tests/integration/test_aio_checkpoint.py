"""pycontainerd.aio checkpoint and restore: the sync client's cases (test_client_checkpoint.py and
test_api_tasks.py's checkpoint), for the asyncio client.

As in the sync tests, CRIU is not assumed: a fabricated checkpoint directory is
refused by the shim at Start (the runc shim restores at Start, not Create), and
what is asserted is pycontainerd's part: the blob uploaded and deleted again once
the task is created (or the call cancelled), the typed error at start, no FIFO
and no task left behind. ``Task.checkpoint`` either works (CRIU usable) or fails
with the shim's mapped error, and the task keeps running either way.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess

import pytest

from pycontainerd import errors, oci, stdio
from pycontainerd.api.types import Status

pytestmark = pytest.mark.asyncio

HANG = 120.0


def _criu_works() -> bool:
    criu = shutil.which("criu")
    if criu is None:
        return False
    return subprocess.run([criu, "check"], capture_output=True, timeout=60, check=False).returncode == 0


async def test_restore_from_checkpoint_dir_uploads_and_cleans_up(client, aio_client_factory, rootfs,
                                                                  tmp_path):
    checkpoint = tmp_path / "checkpoint"
    checkpoint.mkdir()
    (checkpoint / "inventory.img").write_bytes(b"not a real criu image")
    async with aio_client_factory() as aclient:
        container = await aclient.new_container("restore", oci.build(args=["sleep", "100"], rootfs=rootfs))
        task = await container.new_task(stdio=stdio.capture(), checkpoint_dir=str(checkpoint))
        assert client.api.content.list() == []
        with pytest.raises(errors.ContainerdError):
            await task.start(timeout=60)
        assert os.listdir(container.bundle_dir) == []
        with pytest.raises(errors.NotFoundError):
            await aclient.api.tasks.get("restore")
        await container.delete()


async def test_checkpoint_dir_is_checked_before_any_rpc(client, aio_client_factory, rootfs, tmp_path):
    async with aio_client_factory() as aclient:
        container = await aclient.new_container("restore-bad", oci.build(args=["true"], rootfs=rootfs))
        with pytest.raises(ValueError, match="not a directory"):
            await container.new_task(checkpoint_dir=str(tmp_path / "missing"))
        with pytest.raises(ValueError, match="absolute"):
            await container.new_task(checkpoint_dir="relative/dir")
        with pytest.raises(errors.NotFoundError):
            await aclient.api.tasks.get("restore-bad")
        assert client.api.content.list() == []
        await container.delete()


@pytest.mark.parametrize("delay", [0.0, 0.02, 0.2])
async def test_cancelled_restore_leaves_no_blob_task_or_fifo(client, aio_client_factory, rootfs, tmp_path,
                                                             delay):
    # Big enough that the upload is still under way after the shortest delays.
    checkpoint = tmp_path / "checkpoint"
    checkpoint.mkdir()
    with open(checkpoint / "pages-1.img", "wb") as f:
        f.truncate(64 << 20)
    async with aio_client_factory() as aclient:
        container = await aclient.new_container("restore-cancel",
                                                oci.build(args=["sleep", "100"], rootfs=rootfs))
        creating = asyncio.ensure_future(
            container.new_task(stdio=stdio.capture(), checkpoint_dir=str(checkpoint)))
        await asyncio.sleep(delay)
        creating.cancel()
        try:
            task = await asyncio.wait_for(creating, HANG)
        except asyncio.CancelledError:
            pass
        else:  # it finished before the cancel arrived: clean up the created task as a user would
            await task.delete()
        assert client.api.content.list() == []
        assert client.api.content.list_statuses() == []
        with pytest.raises(errors.NotFoundError):
            await aclient.api.tasks.get("restore-cancel")
        assert os.listdir(container.bundle_dir) == []
        await container.delete()


async def test_checkpoint_works_or_fails_mapped_and_the_task_keeps_running(aio_client_factory, rootfs,
                                                                            tmp_path):
    image_dir = tmp_path / "criu"
    async with aio_client_factory() as aclient:
        container = await aclient.new_container("ckpt", oci.build(args=["sleep", "100"], rootfs=rootfs))
        task = await container.new_task()
        await task.start()
        with pytest.raises(ValueError, match="absolute"):
            await task.checkpoint("relative/dir")
        if _criu_works():
            await task.checkpoint(str(image_dir))
            assert os.listdir(image_dir)
        else:
            with pytest.raises(errors.ContainerdError) as info:
                await task.checkpoint(str(image_dir))
            assert not isinstance(info.value, errors.UnavailableError)
            assert "criu" in info.value.details.lower() or "checkpoint" in info.value.details.lower()
        # Paused around the checkpoint, resumed after it (exit=False) whatever the outcome.
        assert (await task.status()).status is Status.RUNNING
        await task.kill(9)
        await asyncio.wait_for(task.wait(), HANG)
        await task.delete()
        await container.delete()
