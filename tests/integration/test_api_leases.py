"""api.leases against a real containerd: leases hold resources back from garbage collection."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from pycontainerd import errors
from pycontainerd.api.leases import EXPIRE_LABEL, LeaseResource
from pycontainerd.client import Client


def collect_garbage(client: Client) -> None:
    """Run a synchronous garbage collection (deleting a lease with sync=True triggers one)."""
    client.api.leases.delete(client.api.leases.create().id, sync=True)


def test_create_list_delete(client: Client) -> None:
    leases = client.api.leases
    lease = leases.create("lease-one", labels={"purpose": "test"})
    assert lease.id == "lease-one"
    assert dict(lease.labels) == {"purpose": "test"}
    assert lease.created_at is not None
    generated = leases.create()
    assert re.fullmatch(r"[0-9]+-[A-Za-z0-9_-]{4}", generated.id)
    assert {x.id for x in leases.list()} == {"lease-one", generated.id}
    assert [x.id for x in leases.list(['labels."purpose"==test'])] == ["lease-one"]
    assert [x.id for x in leases.list([f"id=={generated.id}"])] == [generated.id]
    with pytest.raises(errors.AlreadyExistsError):
        leases.create("lease-one")
    leases.delete("lease-one")
    leases.delete(generated.id, sync=True)
    assert leases.list() == []
    with pytest.raises(errors.NotFoundError):
        leases.delete("lease-one")


def test_expiry_label(client: Client) -> None:
    before = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    lease = client.api.leases.create(expire=dt.timedelta(hours=2))
    expires = dt.datetime.strptime(lease.labels[EXPIRE_LABEL], "%Y-%m-%dT%H:%M:%SZ").replace(
        tzinfo=dt.timezone.utc
    )
    assert before + dt.timedelta(hours=2) <= expires <= before + dt.timedelta(hours=2, minutes=1)
    client.api.leases.delete(lease.id)


def test_calls_with_the_lease_header_add_their_resources(client: Client) -> None:
    with client.api.leases.lease() as lease:
        leased = client.with_lease(lease.id)
        blob = leased.api.content.write("held-blob", b"held by the lease")
        leased.api.snapshots.prepare("native", "held-snapshot")
        resources = client.api.leases.list_resources(lease.id)
        assert LeaseResource.content(blob.digest) in resources
        assert LeaseResource.snapshot("native", "held-snapshot") in resources
        collect_garbage(client)
        assert client.api.content.info(blob.digest).size == blob.size
        assert client.api.snapshots.stat("native", "held-snapshot").name == "held-snapshot"
    assert client.api.leases.list() == []
    collect_garbage(client)
    with pytest.raises(errors.NotFoundError):
        client.api.content.info(blob.digest)
    with pytest.raises(errors.NotFoundError):
        client.api.snapshots.stat("native", "held-snapshot")


def test_add_list_delete_resource(client: Client) -> None:
    leases = client.api.leases
    holder = leases.create("holder")
    with leases.lease() as temporary:
        blob = client.with_lease(temporary.id).api.content.write("moved", b"moves between leases")
        leases.add_resource("holder", LeaseResource.content(blob.digest))
        leases.add_resource("holder", LeaseResource.ingest("some-ref"))
    collect_garbage(client)
    # Only "holder" references the blob now.
    assert client.api.content.info(blob.digest).digest == blob.digest
    assert sorted(leases.list_resources(holder.id), key=lambda r: r.type) == [
        LeaseResource.content(blob.digest),
        LeaseResource.ingest("some-ref"),
    ]
    leases.delete_resource(holder.id, LeaseResource.content(blob.digest))
    assert leases.list_resources(holder.id) == [LeaseResource.ingest("some-ref")]
    collect_garbage(client)
    with pytest.raises(errors.NotFoundError):
        client.api.content.info(blob.digest)
    leases.delete(holder.id)


def test_resource_refusals(client: Client) -> None:
    leases = client.api.leases
    with pytest.raises(errors.NotFoundError):
        leases.add_resource("no-such-lease", LeaseResource.content("sha256:" + "0" * 64))
    with leases.lease() as lease:
        with pytest.raises(errors.UnimplementedError):
            leases.add_resource(lease.id, LeaseResource(id="x", type="no-such-type"))
        assert leases.list_resources(lease.id) == []


def test_lease_context_manager_cleans_up(client: Client) -> None:
    leases = client.api.leases
    with leases.lease(labels={"k": "v"}) as lease:
        assert lease.labels["k"] == "v"
        assert EXPIRE_LABEL in lease.labels
        assert [x.id for x in leases.list()] == [lease.id]
    assert leases.list() == []

    with pytest.raises(KeyError, match="from the block"), leases.lease() as failing:
        raise KeyError("from the block")
    assert failing.id not in {x.id for x in leases.list()}

    with leases.lease() as deleted_inside:
        leases.delete(deleted_inside.id)
    assert leases.list() == []
