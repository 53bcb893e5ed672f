"""Containers that run from an image: WithImageConfig semantics checked inside the running container."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import pycontainerd
from pycontainerd import errors, stdio
from pycontainerd import testing_images as ti
from pycontainerd.images.unpack import chain_ids

NAME = "docker.io/test/config:1"
_PASSWD = (b"root:x:0:0:root:/root:/bin/sh\n"
           b"app:x:1000:1001:app:/home/app:/bin/sh\n"
           b"nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")
_GROUP = b"root:x:0:\napp:x:1001:\nstaff:x:50:app,other\naudio:x:63:app\nnobody:x:65534:\n"


@pytest.fixture(scope="module")
def users_layer() -> ti.Layer:
    return ti.Layer([ti.directory("etc"), ti.file("etc/passwd", _PASSWD), ti.file("etc/group", _GROUP),
                     ti.directory("work")])


@pytest.fixture(scope="module")
def base_layer() -> ti.Layer:
    return ti.busybox_layer()


def _import(client: Any, tmp_path: Path, layers: list[ti.Layer], name: str = NAME, **config: Any) -> Any:
    image = ti.build_image(layers, **config)
    (imported,) = client.import_archive(ti.write_oci_archive(tmp_path / "i.tar", {name: image}))
    return imported


def _snapshot_names(client: Any) -> set[str]:
    return {info.name for info in client.api.snapshots.list("overlayfs")}


def _run(client: Any, image: Any, **options: Any) -> tuple[int, str]:
    container = client.new_container("c1", image=image, **options)
    try:
        task = container.new_task(stdio=stdio.capture())
        try:
            exited = task.wait()
            task.start()
            status = exited.result()
        finally:
            task.delete()
    finally:
        container.delete()
    out = task.io.stdout_data or b""
    return status.code, out.decode()


@pytest.fixture
def configured(client: Any, tmp_path: Path, base_layer: ti.Layer, users_layer: ti.Layer) -> Any:
    return _import(
        client, tmp_path, [base_layer, users_layer],
        entrypoint=["/bin/echo", "ep"], cmd=["c1", "c2"],
        env=["PATH=/bin:/usr/bin", "A=image", "B=image"], working_dir="/work", user="app",
    )


def test_entrypoint_and_cmd(client: Any, configured: Any) -> None:
    assert _run(client, configured) == (0, "ep c1 c2\n")
    assert _run(client, configured, args=["a1"]) == (0, "ep a1\n")
    assert _run(client, configured, entrypoint=["/bin/echo", "new"]) == (0, "new\n")
    assert _run(client, configured, entrypoint=["/bin/echo", "new"], args=["a1"]) == (0, "new a1\n")


def test_cmd_only_image(client: Any, tmp_path: Path, base_layer: ti.Layer) -> None:
    image = _import(client, tmp_path, [base_layer], cmd=["echo", "from", "cmd"])
    assert _run(client, image) == (0, "from cmd\n")
    assert _run(client, image, args=["echo", "args"]) == (0, "args\n")


def test_env_working_dir_and_user_from_the_image(client: Any, configured: Any) -> None:
    script = ["sh", "-c", 'echo "$PATH|$A|$B|$C"; pwd; id -u; id -g; id -G']
    code, out = _run(client, configured, entrypoint=script, env={"B": "explicit", "C": "c"})
    assert code == 0
    assert out.splitlines() == ["/bin:/usr/bin|image|explicit|c", "/work", "1000", "1001", "1001 50 63"]
    code, out = _run(client, configured, entrypoint=["pwd"], cwd="/tmp")
    assert out == "/tmp\n"


@pytest.mark.parametrize(
    ("user", "expected"),
    [
        ("0", "0 0 0"),
        ("1000", "1000 1001 1001 50 63"),  # the gid and groups of uid 1000 in /etc/passwd, /etc/group
        ("app:staff", "1000 50 50 63"),
        ("nobody", "65534 65534 65534"),
        ("4242:4343", "4242 4343 4343"),  # ids the image does not know are fine
        ((7, 8), "7 8 8"),
    ],
)
def test_user_by_name_and_id(client: Any, configured: Any, user: Any, expected: str) -> None:
    script = ["sh", "-c", 'echo "$(id -u) $(id -g) $(id -G)"']
    assert _run(client, configured, entrypoint=script, user=user) == (0, expected + "\n")


def test_user_files_are_read_once_per_image(client: Any, configured: Any,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from pycontainerd.api.snapshots import SnapshotsService

    views: list[str] = []
    real_view = SnapshotsService.view

    def counting_view(self: SnapshotsService, snapshotter: str, key: str, **kwargs: Any) -> Any:
        views.append(key)
        return real_view(self, snapshotter, key, **kwargs)

    monkeypatch.setattr(SnapshotsService, "view", counting_view)
    shell = {"entrypoint": ["sh", "-c"]}
    assert _run(client, configured, args=["id -un"], **shell) == (0, "app\n")
    assert _run(client, configured, args=["id -un"], user="nobody", **shell) == (0, "nobody\n")
    assert _run(client, configured, args=["id -G"], **shell) == (0, "1001 50 63\n")
    # One view for the first container; the image's /etc/passwd and /etc/group were kept.
    assert len(views) == 1
    assert _snapshot_names(client) == set(chain_ids(configured.config().diff_ids))


def test_unknown_user_creates_nothing(client: Any, configured: Any) -> None:
    with pytest.raises(ValueError, match="ghost"):
        client.new_container("c1", image=configured, user="ghost")
    assert client.api.containers.list() == []
    assert _snapshot_names(client) == set(chain_ids(configured.config().diff_ids))
    assert client.api.leases.list() == []


def test_container_record_snapshot_and_delete(client: Any, configured: Any) -> None:
    container = client.new_container("c1", image=configured.name, args=["true"])
    info = client.api.containers.get("c1")
    assert (info.image, info.snapshotter, info.snapshot_key) == (NAME, "overlayfs", "c1")
    snapshot = client.api.snapshots.stat("overlayfs", "c1")
    assert snapshot.parent == configured.chain_id()
    assert snapshot.kind.value == "active"
    assert client.api.leases.list() == []
    with pytest.raises(errors.ConflictError):
        client.new_container("c1", image=configured, args=["true"])
    container.delete()
    with pytest.raises(errors.NotFoundError):
        client.api.snapshots.stat("overlayfs", "c1")


def test_image_unpacked_on_demand_and_custom_snapshot_key(client: Any, tmp_path: Path,
                                                          base_layer: ti.Layer) -> None:
    built = ti.build_image([base_layer], cmd=["true"])
    path = ti.write_oci_archive(tmp_path / "i.tar", {NAME: built})
    (image,) = client.import_archive(path, unpack=False)
    container = client.new_container("c1", image=image, snapshot="my-key")
    assert image.is_unpacked()
    assert client.api.snapshots.stat("overlayfs", "my-key").parent == image.chain_id()
    container.delete()
    with pytest.raises(errors.NotFoundError):
        client.api.snapshots.stat("overlayfs", "my-key")


def test_deleting_the_image_of_a_running_container(client: Any, configured: Any) -> None:
    container = client.new_container("c1", image=configured, entrypoint=["sh", "-c", "read x; echo $x"])
    task = container.new_task(stdio=stdio.capture(b"still here\n"))
    try:
        exited = task.wait()
        client.delete_image(NAME, sync=True)
        # containerd allows it: the container's snapshot (and its parents) stay.
        assert client.api.snapshots.stat("overlayfs", "c1").parent == configured.chain_id()
        task.start()
        assert exited.result().code == 0
    finally:
        task.delete()
    assert task.io.stdout_data == b"still here\n"
    container.delete()
    lease = client.api.leases.create()
    client.api.leases.delete(lease.id, sync=True)
    assert client.api.snapshots.list("overlayfs") == []
    assert client.api.content.list() == []


def test_run_with_image(client: Any, configured: Any) -> None:
    result = pycontainerd.run(["x", "y"], image=NAME, client=client, capture_output=True)
    assert (result.returncode, result.stdout) == (0, b"ep x y\n")
    result = pycontainerd.run([], image=configured, client=client, capture_output=True,
                              env={"A": "run"}, spec_options={"entrypoint": ["sh", "-c", "echo $A $(pwd)"]})
    assert result.stdout == b"run /work\n"
    assert client.api.containers.list() == []
    assert _snapshot_names(client) == set(chain_ids(configured.config().diff_ids))
    with pytest.raises(ValueError, match="exactly one"):
        pycontainerd.run(["true"], client=client)
    with pytest.raises(ValueError, match="exactly one"):
        pycontainerd.run(["true"], image=NAME, rootfs="/", client=client)


def test_readme_images_example_runs_as_written(containerd_address: str, namespace: str,
                                               tmp_path: Path) -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    block = readme.split("Images (`pycontainerd.images`", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    assert 'namespace="demo"' in block
    code = block.replace('namespace="demo"', f"namespace={namespace!r}")
    env = dict(os.environ, CONTAINERD_ADDRESS=containerd_address)
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "docker.io/demo/busybox:1 ('/bin/sh',) True",
        "0 b'uid=1000(app) gid=1000\\n'",
    ]
    assert (tmp_path / "export.tar").stat().st_size > 0
