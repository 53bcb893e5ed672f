"""api.images against a real containerd: image records pointing at written content."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from pycontainerd import errors
from pycontainerd.api.types import Descriptor
from pycontainerd.client import Client

MANIFEST = "application/vnd.oci.image.manifest.v1+json"


@pytest.fixture
def leased(client: Client) -> Iterator[Client]:
    """The test's client with every call under one lease, so nothing is garbage collected mid-test."""
    with client.api.leases.lease() as lease:
        yield client.with_lease(lease.id)


def write_manifest(client: Client, tag: str) -> Descriptor:
    body = json.dumps({"schemaVersion": 2, "mediaType": MANIFEST, "annotations": {"tag": tag}}).encode()
    return client.api.content.write(f"manifest-{tag}", body, media_type=MANIFEST)


def test_create_get_list_update_delete(leased: Client) -> None:
    images = leased.api.images
    target = write_manifest(leased, "one")
    name = "example.com/pcd/test:one"

    created = images.create(name, target, labels={"a": "1"})
    assert created.name == name
    assert created.target == target
    assert dict(created.labels) == {"a": "1"}
    assert created.created_at is not None

    got = images.get(name)
    assert (got.name, got.target, dict(got.labels)) == (name, target, {"a": "1"})
    assert got.created_at == created.created_at
    assert [i.name for i in images.list()] == [name]
    assert [i.name for i in images.list([f"name=={name}"])] == [name]
    assert images.list(["name==example.com/pcd/test:other"]) == []

    relabelled = images.update(name, labels={"b": "2"}, fieldpaths=["labels.b"])
    assert dict(relabelled.labels) == {"a": "1", "b": "2"}
    replaced = images.update(name, labels={"c": "3"})
    assert dict(replaced.labels) == {"c": "3"}

    other = write_manifest(leased, "two")
    retargeted = images.update(name, target=other)
    assert retargeted.target == other
    assert dict(retargeted.labels) == {"c": "3"}
    assert images.get(name).target == other

    images.delete(name)
    with pytest.raises(errors.NotFoundError):
        images.get(name)
    with pytest.raises(errors.NotFoundError):
        images.delete(name)
    assert images.list() == []


def test_refusals(leased: Client) -> None:
    images = leased.api.images
    target = write_manifest(leased, "dup")
    images.create("example.com/pcd/dup:1", target)
    with pytest.raises(errors.AlreadyExistsError):
        images.create("example.com/pcd/dup:1", target)
    with pytest.raises(errors.InvalidArgumentError):
        images.create("example.com/pcd/bad:1", Descriptor(MANIFEST, "not-a-digest", 1))
    with pytest.raises(errors.NotFoundError):
        images.update("example.com/pcd/missing:1", labels={"a": "b"})
    with pytest.raises(ValueError, match="update"):
        images.update("example.com/pcd/dup:1")


def test_image_holds_its_content_until_deleted_with_sync(client: Client) -> None:
    with client.api.leases.lease(sync=True) as lease:
        target = write_manifest(client.with_lease(lease.id), "gc")
        client.api.images.create("example.com/pcd/gc:1", target)
    # The lease is gone and a collection has run; only the image kept the blob alive.
    assert client.api.content.info(target.digest).size == target.size
    client.api.images.delete("example.com/pcd/gc:1", sync=True)
    with pytest.raises(errors.NotFoundError):
        client.api.content.info(target.digest)
