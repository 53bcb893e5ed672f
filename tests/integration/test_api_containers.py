"""api.containers against a real containerd: records, filters, updates and refusals."""

from __future__ import annotations

import contextlib
import uuid

import pytest

from pycontainerd import errors, oci
from pycontainerd.api.types import RuncOptions
from pycontainerd.client import Client


def _id() -> str:
    return f"c-{uuid.uuid4().hex[:10]}"


def test_create_get_list_update_delete(client: Client, rootfs: str) -> None:
    cid = _id()
    spec = oci.build(args=["true"], rootfs=rootfs, namespace=client.namespace, container_id=cid)
    options = RuncOptions(binary_name="runc", io_uid=0)
    created = client.api.containers.create(
        cid, spec=spec, labels={"app": "web", "tier": "1"}, runtime_options=options
    )
    assert created.id == cid
    assert created.runtime.name == "io.containerd.runc.v2"
    assert created.runtime.options == options
    assert created.spec == spec
    assert created.created_at is not None
    assert created.snapshotter == ""

    got = client.api.containers.get(cid)
    assert (got.labels, got.spec, got.created_at) == ({"app": "web", "tier": "1"}, spec, created.created_at)

    other = _id()
    client.api.containers.create(other, spec=spec, labels={"app": "db"})
    assert {c.id for c in client.api.containers.list()} == {cid, other}
    assert [c.id for c in client.api.containers.list(['labels."app"==web'])] == [cid]
    assert {c.id for c in client.api.containers.list_stream()} == {cid, other}
    assert [c.id for c in client.api.containers.list_stream(["id==" + other])] == [other]

    updated = client.api.containers.update(cid, labels={"app": "web2"}, image="example.com/img:1")
    assert (updated.labels, updated.image) == ({"app": "web2"}, "example.com/img:1")
    assert updated.updated_at is not None
    assert created.updated_at is not None
    assert updated.updated_at > created.updated_at
    assert updated.spec == spec  # untouched fields are kept
    new_spec = dict(spec, hostname="renamed")
    assert client.api.containers.update(cid, spec=new_spec).spec["hostname"] == "renamed"
    with pytest.raises(ValueError, match="at least one field"):
        client.api.containers.update(cid)

    client.api.containers.delete(cid)
    client.api.containers.delete(other)
    with pytest.raises(errors.NotFoundError):
        client.api.containers.get(cid)
    assert client.api.containers.list() == []


def test_refusals(client: Client, rootfs: str) -> None:
    cid = _id()
    spec = oci.build(args=["true"], rootfs=rootfs)
    with pytest.raises(errors.NotFoundError) as missing:
        client.api.containers.get("missing")
    assert "missing" in missing.value.details
    assert isinstance(missing.value, LookupError)
    with pytest.raises(errors.NotFoundError):
        client.api.containers.delete("missing")
    client.api.containers.create(cid, spec=spec)
    with pytest.raises(errors.AlreadyExistsError):
        client.api.containers.create(cid, spec=spec)
    with pytest.raises(errors.InvalidArgumentError) as empty:
        client.api.containers.create("", spec=spec)
    assert isinstance(empty.value, ValueError)
    with pytest.raises(errors.InvalidArgumentError):
        client.api.containers.create("bad..id", spec=spec)
    client.api.containers.delete(cid)


def test_namespaces_isolate_containers(client: Client, rootfs: str) -> None:
    cid = _id()
    client.api.containers.create(cid, spec=oci.build(args=["true"], rootfs=rootfs))
    other = client.with_namespace(client.namespace + "-other")
    try:
        assert other.api.containers.list() == []
        with pytest.raises(errors.NotFoundError):
            other.api.containers.get(cid)
    finally:
        client.api.containers.delete(cid)
        with contextlib.suppress(errors.NotFoundError):  # reads do not create the namespace
            other.api.namespaces.delete(other.namespace)
