"""Pulls from a real registry on loopback (Debian's docker-registry), plain HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from _leftovers import NOTHING, leftovers
from _registry import upload

import pycontainerd
from pycontainerd import errors
from pycontainerd import testing_images as ti
from pycontainerd import testing_registry as tr
from pycontainerd.images import NoMatchingPlatformError
from pycontainerd.registry import InvalidReferenceError, RegistryNotFoundError


@pytest.fixture(scope="module")
def registry() -> Iterator[tr.PrivateRegistry]:
    with tr.PrivateRegistry() as r:
        yield r


@pytest.fixture(scope="module")
def hello() -> ti.BuiltImage:
    top = ti.Layer([ti.file("hello", b"hello from the registry\n")], gzip=True)
    return ti.build_image([ti.busybox_layer(), top], cmd=["cat", "/hello"])


def test_pull_by_tag_and_run(client: Any, registry: tr.PrivateRegistry, hello: ti.BuiltImage) -> None:
    upload(registry, "test/hello", "v1", hello)
    events: list[Any] = []
    ref = f"{registry.host}/test/hello:v1"
    image = client.pull(ref, plain_http=True, progress=events.append)
    assert image.name == ref
    assert image.target.digest == hello.manifest["digest"]
    assert image.is_unpacked()
    assert client.api.leases.list() == []
    phases = {(e.phase.value, e.digest) for e in events}
    for layer in hello.layers:
        assert ("done", layer["digest"]) in phases
        assert ("unpacked", layer["digest"]) in phases
    result = pycontainerd.run([], image=ref, client=client, capture_output=True)
    assert (result.returncode, result.stdout) == (0, b"hello from the registry\n")
    # A second pull downloads nothing.
    again: list[Any] = []
    client.pull(ref, plain_http=True, progress=again.append)
    assert not [e for e in again if e.phase.value == "downloading"]


def test_pull_by_digest(client: Any, registry: tr.PrivateRegistry, hello: ti.BuiltImage) -> None:
    upload(registry, "test/hello", "v1", hello)
    ref = f"{registry.host}/test/hello@{hello.manifest['digest']}"
    image = client.pull(ref, plain_http=True, unpack=False)
    assert image.name == ref
    assert not image.is_unpacked()
    assert image.config().cmd == ("cat", "/hello")


def test_pull_multi_platform_index(client: Any, registry: tr.PrivateRegistry) -> None:
    index = ti.multi_platform_index(cmd=["echo", "multi"])
    upload(registry, "test/multi", "1", index)
    ref = f"{registry.host}/test/multi:1"
    image = client.pull(ref, plain_http=True)
    assert image.target.digest == index.index["digest"]
    assert image.manifest().descriptor.digest == index.images[0].manifest["digest"]
    result = pycontainerd.run([], image=image, client=client, capture_output=True)
    assert result.stdout == b"multi\n"
    foreign = ti.foreign_platform()
    other = client.pull(ref, plain_http=True, platform=f"{foreign['os']}/{foreign['architecture']}")
    manifest = other.manifest(f"{foreign['os']}/{foreign['architecture']}")
    assert manifest.descriptor.digest == index.images[1].manifest["digest"]
    with pytest.raises(NoMatchingPlatformError, match="offers"):
        client.pull(ref, plain_http=True, platform="linux/s390x")


def test_run_pulls_missing_once(client: Any, registry: tr.PrivateRegistry, hello: ti.BuiltImage) -> None:
    upload(registry, "test/hello", "run", hello)
    ref = f"{registry.host}/test/hello:run"
    options = {"plain_http": True}
    with pytest.raises(errors.NotFoundError):
        pycontainerd.run([], image=ref, client=client, pull="never")
    result = pycontainerd.run([], image=ref, client=client, capture_output=True, pull_options=options)
    assert result.stdout == b"hello from the registry\n"
    first = client.get_image(ref).updated_at
    pycontainerd.run([], image=ref, client=client, capture_output=True, pull_options=options)
    assert client.get_image(ref).updated_at == first  # "missing": not pulled again
    pycontainerd.run([], image=ref, client=client, capture_output=True, pull="always", pull_options=options)
    assert client.get_image(ref).updated_at != first


@pytest.mark.asyncio
async def test_aio_run_pulls_like_the_sync_run(client: Any, aio_client_factory: Any,
                                               registry: tr.PrivateRegistry, hello: ti.BuiltImage) -> None:
    from pycontainerd import aio

    upload(registry, "test/hello", "aio", hello)
    ref = f"{registry.host}/test/hello:aio"
    options = {"plain_http": True}
    async with aio_client_factory() as aclient:
        with pytest.raises(errors.NotFoundError):
            await aio.run([], image=ref, client=aclient, pull="never")
        with pytest.raises(ValueError, match="pull must be one of"):
            await aio.run([], image=ref, client=aclient, pull="sometimes")
        result = await aio.run([], image=ref, client=aclient, capture_output=True, pull_options=options)
        assert result.stdout == b"hello from the registry\n"
        first = client.get_image(ref).updated_at
        await aio.run([], image=ref, client=aclient, capture_output=True, pull_options=options)
        assert client.get_image(ref).updated_at == first  # "missing": not pulled again
        await aio.run([], image=ref, client=aclient, capture_output=True, pull="always", pull_options=options)
        assert client.get_image(ref).updated_at != first
        assert await aclient.containers() == []


def test_unknown_tag_is_not_found_and_leaves_nothing(client: Any, registry: tr.PrivateRegistry) -> None:
    with pytest.raises(RegistryNotFoundError, match=r"MANIFEST_UNKNOWN|NAME_UNKNOWN") as info:
        client.pull(f"{registry.host}/test/none:nope", plain_http=True)
    assert isinstance(info.value, errors.NotFoundError)
    assert leftovers(client) == NOTHING


@pytest.mark.parametrize(("ref", "rule"), [
    ("127.0.0.1:1/Upper:1", "must be lowercase"),
    ("a:b:c", "invalid reference format"),
    ("x@sha256:123", "invalid digest format"),
    ("", "at least one component"),
])
def test_bad_reference(client: Any, ref: str, rule: str) -> None:
    with pytest.raises(InvalidReferenceError, match=rule):
        client.pull(ref)
    assert client.api.leases.list() == []
