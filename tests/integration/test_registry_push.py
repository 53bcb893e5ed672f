"""Pushes to a real registry on loopback, and round trips through it."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _registry import NOTHING, leftovers

import pycontainerd
from pycontainerd import testing_images as ti
from pycontainerd import testing_registry as tr
from pycontainerd.api.types import Descriptor
from pycontainerd.images import MissingBlobError


@pytest.fixture(scope="module")
def registry() -> Iterator[tr.PrivateRegistry]:
    with tr.PrivateRegistry() as r:
        yield r


def _built(text: bytes) -> ti.BuiltImage:
    top = ti.Layer([ti.file("msg", text)], gzip=True)
    return ti.build_image([ti.busybox_layer(), top], cmd=["cat", "/msg"])


def _manifest(registry: tr.PrivateRegistry, repository: str, reference: str) -> tuple[str, bytes]:
    request = urllib.request.Request(f"{registry.url}/v2/{repository}/manifests/{reference}",
                                     headers={"Accept": ti.MT_OCI_MANIFEST + ", " + ti.MT_OCI_INDEX})
    with urllib.request.urlopen(request) as answer:
        return answer.headers["Docker-Content-Digest"], answer.read()


def test_import_push_delete_pull_run(client: Any, registry: tr.PrivateRegistry, tmp_path: Path) -> None:
    built = _built(b"round trip\n")
    name = "docker.io/test/round:1"
    (image,) = client.import_archive(ti.write_oci_archive(tmp_path / "i.tar", {name: built}))
    ref = f"{registry.host}/test/round:1"
    events: list[Any] = []
    root = client.push(image, ref, plain_http=True, progress=events.append)
    assert root.digest == built.manifest["digest"]
    assert _manifest(registry, "test/round", "1")[0] == built.manifest["digest"]
    uploaded = {e.digest for e in events if e.phase.value == "done"}
    assert {layer["digest"] for layer in built.layers} <= uploaded
    # Pushing again sends nothing: every blob exists.
    again: list[Any] = []
    client.push(image, ref, plain_http=True, progress=again.append)
    assert {e.phase.value for e in again if e.digest in {lay["digest"] for lay in built.layers}} == {"exists"}
    client.delete_image(name)
    for record in client.api.images.list():
        client.delete_image(record.name)
    assert leftovers(client) == NOTHING
    pulled = client.pull(ref, plain_http=True)
    assert pulled.target.digest == built.manifest["digest"]
    result = pycontainerd.run([], image=ref, client=client, capture_output=True)
    assert (result.returncode, result.stdout) == (0, b"round trip\n")


def test_cross_repository_mount(client: Any, registry: tr.PrivateRegistry, tmp_path: Path) -> None:
    built = _built(b"mounted\n")
    (image,) = client.import_archive(ti.write_oci_archive(tmp_path / "i.tar", {"docker.io/test/m:1": built}),
                                     unpack=False)
    client.push(image, f"{registry.host}/test/source:1", plain_http=True)
    events: list[Any] = []
    client.push(image, f"{registry.host}/test/dest:1", plain_http=True, progress=events.append)
    phases = {e.digest: e.phase.value for e in events if e.phase.value in ("mounted", "done", "exists")}
    for layer in built.layers:
        assert phases[layer["digest"]] == "mounted"
    assert _manifest(registry, "test/dest", "1")[0] == built.manifest["digest"]


def test_chunked_upload(client: Any, registry: tr.PrivateRegistry, tmp_path: Path) -> None:
    built = _built(b"chunked\n" * 50000)
    (image,) = client.import_archive(ti.write_oci_archive(tmp_path / "i.tar", {"docker.io/test/c:1": built}),
                                     unpack=False)
    events: list[Any] = []
    client.push(image, f"{registry.host}/test/chunked:1", plain_http=True, chunk_size=4096,
                progress=events.append)
    base = built.layers[0]
    uploading = [e.offset for e in events if e.digest == base["digest"] and e.phase.value == "uploading"]
    # One PATCH of 4096 bytes at a time: progress in steps of it, up to the whole layer.
    assert uploading[:2] == [4096, 8192]
    assert uploading[-1] == base["size"]
    for record in client.api.images.list():
        client.delete_image(record.name)
    pulled = client.pull(f"{registry.host}/test/chunked:1", plain_http=True)
    assert pulled.target.digest == built.manifest["digest"]


def _store_index(client: Any, index: ti.BuiltIndex, name: str) -> Any:
    """Put every blob of ``index`` in the store (as a pull of all platforms would) and name it."""
    with client.api.leases.lease() as lease:
        leased = client.with_lease(lease.id)
        for digest, data in index.blobs.items():
            leased.api.content.write(f"test-{digest}", data, expected=digest,
                                     labels={"containerd.io/gc.root": "test"})
        target = index.index
        client.api.images.create(name, Descriptor(target["mediaType"], target["digest"], target["size"]))
    return client.get_image(name)


def test_multi_platform_index_push_pull(client: Any, registry: tr.PrivateRegistry) -> None:
    index = ti.multi_platform_index(cmd=["echo", "both"])
    image = _store_index(client, index, "docker.io/test/multi:1")
    ref = f"{registry.host}/test/multi:1"
    root = client.push(image, ref, plain_http=True)
    assert root.digest == index.index["digest"]
    digest, data = _manifest(registry, "test/multi", "1")
    assert digest == index.index["digest"]
    assert len(json.loads(data)["manifests"]) == 2
    for built in index.images:
        assert _manifest(registry, "test/multi", built.manifest["digest"])[0] == built.manifest["digest"]
    for record in client.api.images.list():
        client.delete_image(record.name)
    for info in client.api.content.list():
        client.api.content.delete(info.digest)
    pulled = client.pull(ref, plain_http=True)
    result = pycontainerd.run([], image=pulled, client=client, capture_output=True)
    assert result.stdout == b"both\n"
    # Only the host's manifest came along: a full push needs platform= now.
    with pytest.raises(MissingBlobError):
        client.push(pulled, f"{registry.host}/test/multi2:1", plain_http=True)
    host = ti.host_platform()
    root = client.push(pulled, f"{registry.host}/test/multi2:1", plain_http=True,
                       platform=f"{host['os']}/{host['architecture']}")
    assert root.digest == index.images[0].manifest["digest"]
