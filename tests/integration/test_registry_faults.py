"""Faults between pycontainerd and a real registry (a loopback proxy injects them), and bad answers.

Each failure is a typed error; a refusal or bad content leaves nothing behind; a
registry that became unreachable leaves what was downloaded for the next pull.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from _registry import NOTHING, leftovers, upload

import pycontainerd
from pycontainerd import testing_images as ti
from pycontainerd import testing_registry as tr
from pycontainerd.images import BlobMismatchError
from pycontainerd.registry import (
    ManifestTooLargeError,
    RegistryProtocolError,
    RegistryUnavailableError,
    UnsupportedManifestError,
)
from pycontainerd.registry.fetch import MAX_MANIFEST_SIZE


@pytest.fixture(scope="module")
def registry() -> Iterator[tr.PrivateRegistry]:
    with tr.PrivateRegistry() as r:
        yield r


@pytest.fixture
def proxy(registry: tr.PrivateRegistry) -> Iterator[tr.FaultProxy]:
    with tr.FaultProxy(registry.host) as p:
        yield p


@pytest.fixture(scope="module")
def image(registry: tr.PrivateRegistry) -> ti.BuiltImage:
    big = ti.Layer([ti.file("big", bytes(range(256)) * 8192)], gzip=False)  # 2 MiB, uncompressed
    built = ti.build_image([ti.busybox_layer(), big], cmd=["wc", "-c", "/big"])
    upload(registry, "f/img", "1", built)
    return built


def _ref(proxy: tr.FaultProxy) -> str:
    return f"{proxy.host}/f/img:1"


def _layer_gets(proxy: tr.FaultProxy, digest: str) -> list[tuple[int, str]]:
    return [(status, rng) for method, path, status, rng in proxy.log if method == "GET" and digest in path]


def test_cut_mid_layer_resumes_with_range(client: Any, proxy: tr.FaultProxy, image: ti.BuiltImage) -> None:
    big = image.layers[1]
    proxy.faults.append(tr.Fault("GET", f"/blobs/{big['digest']}", cut_after=1 << 20))
    pulled = client.pull(_ref(proxy), plain_http=True)
    assert pulled.target.digest == image.manifest["digest"]
    gets = _layer_gets(proxy, big["digest"])
    assert gets[0] == (200, "")
    assert gets[1][1].startswith("bytes=")
    assert int(gets[1][1][6:-1]) >= 1 << 19
    result = pycontainerd.run([], image=pulled, client=client, capture_output=True)
    assert result.stdout.split()[0] == str(256 * 8192).encode()


def test_503_then_success_and_429_with_retry_after(client: Any, proxy: tr.FaultProxy,
                                                   image: ti.BuiltImage) -> None:
    proxy.faults.append(tr.Fault("GET", "/manifests/", status=503, times=2))
    proxy.faults.append(tr.Fault("GET", f"/blobs/{image.layers[0]['digest']}", status=429,
                                 headers={"Retry-After": "1"}))
    pulled = client.pull(_ref(proxy), plain_http=True, unpack=False)
    assert pulled.target.digest == image.manifest["digest"]
    assert [f.hits for f in proxy.faults] == [2, 1]


def test_flipped_byte_is_a_digest_error_and_leaves_nothing(client: Any, proxy: tr.FaultProxy,
                                                           image: ti.BuiltImage) -> None:
    big = image.layers[1]
    proxy.faults.append(tr.Fault("GET", f"/blobs/{big['digest']}", flip_at=1000))
    with pytest.raises(BlobMismatchError, match=big["digest"]):
        client.pull(_ref(proxy), plain_http=True)
    assert leftovers(client) == NOTHING


def test_always_cut_gives_up_and_the_next_pull_reuses(client: Any, proxy: tr.FaultProxy,
                                                      image: ti.BuiltImage) -> None:
    big = image.layers[1]
    proxy.faults.append(tr.Fault("GET", f"/blobs/{big['digest']}", cut_after=100_000, times=-1))
    with pytest.raises(RegistryUnavailableError, match="connection broke"):
        client.pull(_ref(proxy), plain_http=True, max_concurrent=1)
    assert client.api.images.list() == []
    # The committed base layer and the partial big layer are kept for the next pull.
    ingests = client.api.content.list_statuses()
    assert [s.offset > 0 for s in ingests] == [True]
    proxy.faults.clear()
    proxy.log.clear()
    events: list[Any] = []
    client.pull(_ref(proxy), plain_http=True, progress=events.append)
    assert ("exists", image.layers[0]["digest"]) in {(e.phase.value, e.digest) for e in events}
    (get,) = _layer_gets(proxy, big["digest"])
    assert get[1].startswith("bytes=")
    assert leftovers(client)["leases"] == []
    assert client.api.content.list_statuses() == []


def test_registry_stopped_mid_pull(client: Any, registry: tr.PrivateRegistry, image: ti.BuiltImage) -> None:
    with tr.FaultProxy(registry.host) as proxy:
        big = image.layers[1]
        # The big layer's answer waits; meanwhile the registry goes away.
        proxy.faults.append(tr.Fault("GET", f"/blobs/{big['digest']}", stall=2.0, times=-1))
        stopper = threading.Timer(0.5, registry.stop)
        stopper.start()
        try:
            with pytest.raises(RegistryUnavailableError):
                client.pull(_ref(proxy), plain_http=True, max_concurrent=1)
        finally:
            stopper.join()
            registry.restart()
        proxy.faults.clear()
        pulled = client.pull(_ref(proxy), plain_http=True)
        assert pulled.target.digest == image.manifest["digest"]
        assert client.api.leases.list() == []


def test_connection_refused(client: Any) -> None:
    with pytest.raises(RegistryUnavailableError, match="cannot connect"):
        client.pull(f"127.0.0.1:{tr.free_port()}/x/y:1", plain_http=True)
    assert leftovers(client) == NOTHING


@pytest.mark.parametrize(("fault", "error", "message"), [
    (tr.Fault("GET", "/manifests/", status=200, headers={"Content-Type": ti.MT_OCI_MANIFEST},
              body=b" " * (MAX_MANIFEST_SIZE + 1)), ManifestTooLargeError, "more than"),
    (tr.Fault("GET", "/manifests/", status=200,
              headers={"Content-Type": "application/vnd.docker.distribution.manifest.v1+prettyjws"},
              body=b'{"schemaVersion": 1}'), UnsupportedManifestError, "schema 1"),
    (tr.Fault("GET", "/manifests/", status=400, headers={"Content-Type": "text/html"},
              body=b"<html><body>Bad gateway config</body></html>"), RegistryProtocolError, "text/html"),
    (tr.Fault("GET", "/manifests/", status=302, headers={"Location": "/v2/f/img/manifests/1"}, times=-1),
     RegistryProtocolError, "redirects"),
    (tr.Fault("GET", "/manifests/", stall=2.0, times=-1), RegistryUnavailableError, "timed out"),
])
def test_bad_answers(client: Any, proxy: tr.FaultProxy, image: ti.BuiltImage, fault: tr.Fault,
                     error: type[Exception], message: str) -> None:
    proxy.faults.append(fault)
    with pytest.raises(error, match=message):
        client.pull(_ref(proxy), plain_http=True, timeout=0.5)
    assert leftovers(client) == NOTHING


def test_blob_size_mismatch(client: Any, registry: tr.PrivateRegistry, proxy: tr.FaultProxy) -> None:
    built = ti.build_image([ti.Layer([ti.file("a", b"a" * 1000)], gzip=False)], cmd=["true"])
    upload(registry, "f/size", "1", built)
    # The manifest claims one byte more than the layer has (its digest made to match).
    lying = ti.tampered(built, manifest=lambda m: m["layers"][0].update(size=m["layers"][0]["size"] + 1))
    tr.push_blobs(registry.url, "f/size", {}, [("2", lying.manifest["mediaType"],
                                                 lying.blobs[lying.manifest["digest"]])])
    with pytest.raises(BlobMismatchError, match="descriptor says"):
        client.pull(f"{proxy.host}/f/size:2", plain_http=True)
    assert leftovers(client) == NOTHING


def test_concurrent_overlapping_pulls(client: Any, registry: tr.PrivateRegistry,
                                      image: ti.BuiltImage) -> None:
    base = ti.busybox_layer()
    refs = []
    for n in range(4):
        built = ti.build_image([base, ti.Layer([ti.file("n", str(n).encode())])], cmd=["cat", "/n"])
        upload(registry, f"f/many{n}", "1", built)
        refs.append(f"{registry.host}/f/many{n}:1")
    errors: list[BaseException] = []

    def one(ref: str) -> None:
        try:
            client.pull(ref, plain_http=True)
        except BaseException as err:  # reported below
            errors.append(err)

    threads = [threading.Thread(target=one, args=(ref,)) for ref in refs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    digests = [info.digest for info in client.api.content.list()]
    assert len(digests) == len(set(digests))
    assert digests.count(ti.build_image([base]).layers[0]["digest"]) == 1
    assert client.api.leases.list() == []
    assert client.api.content.list_statuses() == []
    for n, ref in enumerate(refs):
        result = pycontainerd.run([], image=ref, client=client, capture_output=True)
        assert result.stdout == str(n).encode()
