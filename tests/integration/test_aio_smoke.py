"""pycontainerd.aio against a real containerd: a first smoke test."""

from __future__ import annotations

import pytest

from pycontainerd import aio

pytestmark = pytest.mark.asyncio


async def test_run_capture(containerd_address, namespace, rootfs):
    async with aio.Client(containerd_address, namespace=namespace) as client:
        result = await aio.run(["sh", "-c", "echo out; echo err >&2; exit 3"], rootfs=rootfs,
                               capture_output=True, client=client)
        assert (result.returncode, result.stdout, result.stderr) == (3, b"out\n", b"err\n")
        assert await client.containers() == []
