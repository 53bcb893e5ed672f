"""One multi-layer, multi-platform image through each mode of a real registry on loopback.

Plain HTTP, TLS with the session's own CA, htpasswd Basic auth over TLS, and the Bearer
token flow: pycontainerd pushes the index it imported, forgets everything, pulls it back
for the host's platform, and runs it. Only the host's manifest and layers come along.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from _leftovers import NOTHING, leftovers
from _registry import store_index

import pycontainerd
from pycontainerd import testing_images as ti
from pycontainerd import testing_registry as tr

USER, PASSWORD = "tester", "m0des-Pa55"
MODES: dict[str, dict[str, Any]] = {
    "plain": {},
    "tls": {"tls": True},
    "basic": {"tls": True, "auth": "basic", "users": {USER: PASSWORD}},
    "token": {"auth": "token", "users": {USER: PASSWORD}},
}


@pytest.fixture(scope="module", params=list(MODES))
def registry(request: pytest.FixtureRequest) -> Iterator[tr.PrivateRegistry]:
    with tr.PrivateRegistry(**MODES[request.param]) as r:
        yield r


@pytest.fixture(scope="module")
def index() -> ti.BuiltIndex:
    host = ti.build_image([
        ti.busybox_layer(),
        ti.Layer([ti.file("etc/one", b"1")], gzip=True),
        ti.Layer([ti.file("etc/two", b"2")], gzip=False),
    ], cmd=["sh", "-c", "cat /etc/one /etc/two"])
    foreign = ti.build_image([ti.Layer([ti.file("platform", b"foreign\n")])], platform=ti.foreign_platform())
    return ti.build_index([host, foreign])


def _options(registry: tr.PrivateRegistry) -> dict[str, Any]:
    options: dict[str, Any] = {"ca_file": registry.ca_file} if registry.tls else {"plain_http": True}
    if registry.auth is not None:
        options["auth"] = (USER, PASSWORD)
    return options


def _forget(client: Any) -> None:
    for record in client.api.images.list():
        client.delete_image(record.name)
    for info in client.api.content.list():  # store_index pinned them with gc.root
        client.api.content.delete(info.digest)


def test_push_pull_run_in_each_mode(client: Any, registry: tr.PrivateRegistry, index: ti.BuiltIndex) -> None:
    local = store_index(client, index, "docker.io/t/modes:1")
    ref = f"{registry.host}/t/modes:1"
    host, foreign = index.images
    root = client.push(local, ref, **_options(registry))  # the whole index, both platforms
    assert root.digest == index.index["digest"]
    _forget(client)
    assert leftovers(client) == NOTHING

    events: list[Any] = []
    pulled = client.pull(ref, progress=events.append, **_options(registry))
    assert pulled.target.digest == index.index["digest"]
    assert pulled.manifest().descriptor.digest == host.manifest["digest"]
    assert pulled.is_unpacked()
    stored = {info.digest for info in client.api.content.list()}
    assert {layer["digest"] for layer in host.layers} <= stored
    assert not {layer["digest"] for layer in foreign.layers} & stored
    downloaded = {e.digest for e in events if e.phase.value == "done"}
    assert {layer["digest"] for layer in host.layers} <= downloaded
    assert client.api.leases.list() == []

    result = pycontainerd.run([], image=ref, client=client, capture_output=True)
    assert (result.returncode, result.stdout) == (0, b"12")
    # run(pull="missing") finds the image and asks the registry for nothing.
    again = pycontainerd.run([], image=ref, client=client, capture_output=True,
                             pull_options={"progress": events.append, **_options(registry)})
    assert again.stdout == b"12"
    assert len([e for e in events if e.phase.value == "resolved"]) == 1
