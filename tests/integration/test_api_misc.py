"""Version, namespaces, introspection, health, daemon faults and interop with ctr, on a real containerd."""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest

from pycontainerd import errors, oci
from pycontainerd.api.health import ServingStatus
from pycontainerd.api.types import Status
from pycontainerd.client import Client

CTR = shutil.which("ctr")


def test_version_is_the_daemons(client: Client, containerd_daemon: Any) -> None:
    version = client.version()
    assert version.version
    if not hasattr(containerd_daemon, "restart"):
        pytest.skip("external daemon: its binary is unknown")
    # Debian's builds: 1.6 and 1.7 report the package's upstream version and revision;
    # 2.1 reports "2.1.9+unknown" and an empty revision (built without VCS stamps), while
    # `containerd --version` prints the package version. The release numbers agree.
    if containerd_daemon.version < (2,):
        assert version.revision
    release = tuple(int(n) for n in re.match(r"v?(\d+)\.(\d+)\.(\d+)", version.version).groups())
    assert release == containerd_daemon.version[:3]
    printed = subprocess.run(
        [containerd_daemon.binary, "--version"], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    assert ".".join(map(str, release)) in printed


def test_health_and_introspection(client: Client) -> None:
    assert client.api.health.check() is ServingStatus.SERVING
    assert client.api.health.is_serving(timeout=30)
    plugins = client.api.introspection.plugins()
    by_id = {(p.type, p.id): p for p in plugins}
    task = by_id[("io.containerd.runtime.v2", "task")]
    assert task.ok
    assert any(p.os == "linux" for p in task.platforms)
    only = client.api.introspection.plugins(["type==io.containerd.runtime.v2"])
    assert {p.type for p in only} == {"io.containerd.runtime.v2"}
    assert len(client.api.introspection.server().uuid) == 36


def test_namespaces_crud_and_refusals(client: Client, rootfs: str) -> None:
    api = client.api.namespaces
    name = f"pcd-ns-{uuid.uuid4().hex[:8]}"
    created = api.create(name, {"owner": "tests", "tmp": "1"})
    assert (created.name, created.labels) == (name, {"owner": "tests", "tmp": "1"})
    assert api.get(name).labels == {"owner": "tests", "tmp": "1"}
    assert name in [n.name for n in api.list()]
    assert api.update(name, {"owner": "pcd", "tmp": ""}).labels == {"owner": "pcd"}
    assert api.update(name, {"only": "this"}, replace=True).labels == {"only": "this"}
    with pytest.raises(errors.AlreadyExistsError):
        api.create(name)
    # A namespace holding a container cannot be deleted: a real FailedPrecondition.
    scoped = client.with_namespace(name)
    scoped.api.containers.create("holder", spec=oci.build(args=["true"], rootfs=rootfs))
    with pytest.raises(errors.FailedPreconditionError):
        api.delete(name)
    scoped.api.containers.delete("holder")
    api.delete(name)
    assert name not in [n.name for n in api.list()]
    with pytest.raises(errors.NotFoundError):
        api.delete(name)
    with pytest.raises(ValueError, match="namespace"):
        api.create("bad..name")


def test_calls_without_a_valid_namespace_are_refused(client: Client) -> None:
    with pytest.raises(errors.InvalidArgumentError):
        client.api.containers.list(metadata=[("containerd-namespace", "bad..ns")])


def test_dead_daemon_is_unavailable_and_wait_is_connection_lost(
    client: Client, rootfs: str, private_daemon: Any
) -> None:
    cid = f"m-{uuid.uuid4().hex[:8]}"
    spec = oci.build(args=["sleep", "1000"], rootfs=rootfs, namespace=client.namespace, container_id=cid)
    client.api.containers.create(cid, spec=spec)
    client.api.tasks.create(cid)
    client.api.tasks.start(cid)
    waiting = client.api.tasks.wait_future(cid)
    private_daemon.kill()
    try:
        lost = waiting.exception(60)
        assert isinstance(lost, errors.ConnectionLostError), repr(lost)
        with pytest.raises(errors.UnavailableError) as info:
            client.version()
        assert private_daemon.address in info.value.details
        assert not client.api.health.is_serving()
    finally:
        private_daemon.start()
    client.connection.connect(timeout=60)
    assert client.api.tasks.get(cid).status is Status.RUNNING  # the task outlived the daemon
    again = client.api.tasks.wait_future(cid)
    client.api.tasks.kill(cid, signal.SIGKILL)
    assert again.result(60).code == 137
    client.api.tasks.delete(cid)
    client.api.containers.delete(cid)


def _ctr(address: str, namespace: str, *args: str) -> str:
    assert CTR is not None
    result = subprocess.run(
        [CTR, "--address", address, "--namespace", namespace, *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.skipif(CTR is None, reason="needs the ctr binary (Debian package containerd)")
def test_ctr_sees_and_kills_our_task(client: Client, rootfs: str, containerd_address: str) -> None:
    cid = f"py-{uuid.uuid4().hex[:8]}"
    spec = oci.build(args=["sleep", "1000"], rootfs=rootfs, namespace=client.namespace, container_id=cid)
    client.api.containers.create(cid, spec=spec, labels={"made-by": "pycontainerd"})
    pid = client.api.tasks.create(cid)
    waiting = client.api.tasks.wait_future(cid)
    client.api.tasks.start(cid)
    assert cid in _ctr(containerd_address, client.namespace, "containers", "ls", "-q").split()
    listed = _ctr(containerd_address, client.namespace, "tasks", "ls")
    assert any(line.split()[:3] == [cid, str(pid), "RUNNING"] for line in listed.splitlines())
    assert "pycontainerd" in _ctr(containerd_address, client.namespace, "containers", "info", cid)
    _ctr(containerd_address, client.namespace, "tasks", "kill", "--signal", "SIGKILL", cid)
    assert waiting.result(60).code == 137
    client.api.tasks.delete(cid)
    client.api.containers.delete(cid)


@pytest.mark.skipif(CTR is None, reason="needs the ctr binary (Debian package containerd)")
def test_we_wait_for_and_delete_a_ctr_container(client: Client, rootfs: str, containerd_address: str,
                                                tmp_path: Path) -> None:
    cid = f"ctr-{uuid.uuid4().hex[:8]}"
    _ctr(
        containerd_address,
        client.namespace,
        "run",
        "--detach",
        # Not ctr's default /run/containerd/fifo: this task is deleted by us, not by
        # ctr, so nobody would remove its FIFOs there.
        "--fifo-dir",
        str(tmp_path),
        "--env",
        "PATH=/bin",
        "--rootfs",
        rootfs,
        cid,
        "sleep",
        "1000",
    )
    container = client.api.containers.get(cid)
    assert container.runtime.name.startswith("io.containerd.runc.")
    assert container.spec["process"]["args"] == ["sleep", "1000"]
    info = client.api.tasks.get(cid)
    assert info.status is Status.RUNNING
    waiting = client.api.tasks.wait_future(cid)
    client.api.tasks.kill(cid, signal.SIGKILL)
    assert waiting.result(60).code == 137
    assert client.api.tasks.delete(cid).pid == info.pid
    client.api.containers.delete(cid)
    assert cid not in _ctr(containerd_address, client.namespace, "containers", "ls", "-q").split()
