"""Interop with ``ctr`` through a real registry: each side pulls and runs what the other pushed."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import pycontainerd
from pycontainerd import testing_images as ti
from pycontainerd import testing_registry as tr


@pytest.fixture(scope="module")
def registry() -> Iterator[tr.PrivateRegistry]:
    with tr.PrivateRegistry() as r:
        yield r


@pytest.fixture
def ctr(containerd_daemon: Any, containerd_address: str, namespace: str) -> Any:
    binary = getattr(containerd_daemon, "ctr", "ctr")
    runc_root = getattr(containerd_daemon, "runc_root", None)

    def run(*args: str) -> str:
        if args[0] == "run" and runc_root:
            # The private daemon's runc root, so ctr's container leaves nothing in the system's.
            args = ("run", "--runc-root", runc_root, *args[1:])
        done = subprocess.run([binary, "--address", containerd_address, "--namespace", namespace, *args],
                              capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
        assert done.returncode == 0, f"ctr {' '.join(args)}: {done.stderr}"
        return done.stdout

    return run


def _image(text: bytes) -> ti.BuiltImage:
    return ti.build_image([ti.busybox_layer(), ti.Layer([ti.file("m", text)])], cmd=["cat", "/m"])


def _forget(client: Any) -> None:
    for record in client.api.images.list():
        client.delete_image(record.name, sync=True)


def test_pycontainerd_pushes_ctr_pulls_and_runs(client: Any, ctr: Any, registry: tr.PrivateRegistry,
                                                tmp_path: Path) -> None:
    built = _image(b"pushed by pycontainerd\n")
    (local,) = client.import_archive(ti.write_oci_archive(tmp_path / "i.tar", {"docker.io/i/a:1": built}))
    ref = f"{registry.host}/interop/a:1"
    pushed = client.push(local, ref, plain_http=True)
    _forget(client)
    ctr("images", "pull", "--plain-http", ref)
    assert ref in ctr("images", "ls", "-q").split()
    assert client.get_image(ref).target.digest == pushed.digest
    out = ctr("run", "--rm", ref, "interop-a")
    assert out == "pushed by pycontainerd\n"


def test_ctr_pushes_pycontainerd_pulls_and_runs(client: Any, ctr: Any, registry: tr.PrivateRegistry,
                                                tmp_path: Path) -> None:
    built = _image(b"pushed by ctr\n")
    archive = ti.write_oci_archive(tmp_path / "i.tar", {"docker.io/i/b:1": built})
    ctr("images", "import", archive)
    ref = f"{registry.host}/interop/b:1"
    ctr("images", "tag", "docker.io/i/b:1", ref)
    ctr("images", "push", "--plain-http", ref)
    digest = client.get_image(ref).target.digest
    _forget(client)
    pulled = client.pull(ref, plain_http=True)
    assert pulled.target.digest == digest == built.manifest["digest"]
    result = pycontainerd.run([], image=ref, client=client, capture_output=True)
    assert result.stdout == b"pushed by ctr\n"
