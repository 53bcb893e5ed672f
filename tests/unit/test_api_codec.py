"""The pure halves of every api/ call: requests built from Python values, responses converted back.

No channel and no server: each builder's message is checked field by field, and each
converter is fed a message built here. These are the functions a blocking and an asyncio
client share.
"""

from __future__ import annotations

import datetime as _dt
import json
import signal

import pytest
from google.protobuf import timestamp_pb2

from pycontainerd import typeurl
from pycontainerd._proto.health.v1 import health_pb2
from pycontainerd._proto.runc.options import oci_pb2 as runc_pb2
from pycontainerd._proto.services.containers.v1 import containers_pb2
from pycontainerd._proto.services.content.v1 import content_pb2
from pycontainerd._proto.services.events.v1 import events_pb2
from pycontainerd._proto.services.leases.v1 import leases_pb2
from pycontainerd._proto.services.snapshots.v1 import snapshots_pb2
from pycontainerd._proto.services.tasks.v1 import tasks_pb2
from pycontainerd._proto.types.task import task_pb2
from pycontainerd.api import containers, content, diff, events, health, images, leases, namespaces, snapshots
from pycontainerd.api import tasks as tasks_api
from pycontainerd.api.health import ServingStatus
from pycontainerd.api.leases import EXPIRE_LABEL, LeaseResource
from pycontainerd.api.snapshots import SnapshotKind
from pycontainerd.api.types import (
    Descriptor,
    ExitStatus,
    Mount,
    RuncCheckpointOptions,
    RuncOptions,
    Status,
)

GO_ZERO = timestamp_pb2.Timestamp(seconds=-62135596800)
EPOCH_2023 = _dt.datetime(2023, 11, 14, 22, 13, 20, tzinfo=_dt.timezone.utc)
DESCRIPTOR = Descriptor("application/vnd.oci.image.layer.v1.tar", "sha256:" + "a" * 64, 42, {"k": "v"})


# -- tasks --------------------------------------------------------------------------------------------


def test_create_task_request_carries_every_field_and_packs_options_with_a_bare_url() -> None:
    request = tasks_api.create_request(
        "c1",
        rootfs=[Mount("overlay", "overlay", "", ("lowerdir=/l",))],
        stdin="/b/c1-stdin",
        stdout="/b/c1-stdout",
        stderr="/b/c1-stderr",
        checkpoint=DESCRIPTOR,
        options=RuncOptions(io_uid=1000, io_gid=1000),
        runtime_path="/usr/bin/shim",
    )
    assert (request.container_id, request.stdin, request.stdout, request.stderr) == (
        "c1",
        "/b/c1-stdin",
        "/b/c1-stdout",
        "/b/c1-stderr",
    )
    assert [(m.type, list(m.options)) for m in request.rootfs] == [("overlay", ["lowerdir=/l"])]
    assert request.checkpoint.digest == DESCRIPTOR.digest
    assert request.options.type_url == "containerd.runc.v1.Options"
    assert runc_pb2.Options.FromString(request.options.value) == runc_pb2.Options(io_uid=1000, io_gid=1000)
    assert request.runtime_path == "/usr/bin/shim"


def test_create_task_request_leaves_unset_optional_fields_absent() -> None:
    request = tasks_api.create_request("c1")
    assert not request.HasField("options")
    assert not request.HasField("checkpoint")
    assert not request.terminal


@pytest.mark.parametrize(
    ("given", "number"), [("KILL", 9), (signal.SIGTERM, 15), ("sigusr1", signal.SIGUSR1)]
)
def test_kill_request_sends_the_signal_number(given: object, number: int) -> None:
    request = tasks_api.kill_request("c1", given, exec_id="e1", all=True)
    assert (request.container_id, request.exec_id, request.signal, request.all) == ("c1", "e1", number, True)


@pytest.mark.parametrize("bad", [0, 65, "NOPE"])
def test_kill_request_refuses_what_the_shim_would_truncate(bad: object) -> None:
    with pytest.raises(ValueError, match="invalid signal"):
        tasks_api.kill_request("c1", bad)


def test_resize_pty_request_refuses_sizes_beyond_16_bits() -> None:
    assert tasks_api.resize_pty_request("c1", 80, 24).width == 80
    with pytest.raises(ValueError, match="invalid terminal"):
        tasks_api.resize_pty_request("c1", 65536, 24)


def test_exec_request_sends_the_process_as_oci_json() -> None:
    process = {"args": ["sh"], "cwd": "/"}
    request = tasks_api.exec_request("c1", "e1", process, stdout="/b/e1-stdout", terminal=True)
    assert request.spec.type_url == typeurl.PROCESS_URL
    assert json.loads(request.spec.value) == process
    assert (request.exec_id, request.stdout, request.terminal) == ("e1", "/b/e1-stdout", True)


def test_update_request_sends_a_mapping_as_linux_resources_and_a_typed_value_packed() -> None:
    as_json = tasks_api.update_request("c1", resources={"memory": {"limit": 1 << 26}}, annotations={"a": "b"})
    assert as_json.resources.type_url == typeurl.LINUX_RESOURCES_URL
    assert json.loads(as_json.resources.value) == {"memory": {"limit": 1 << 26}}
    assert dict(as_json.annotations) == {"a": "b"}
    packed = tasks_api.update_request("c1", resources=RuncOptions(root="/r"))
    assert packed.resources.type_url == "containerd.runc.v1.Options"
    assert not tasks_api.update_request("c1").HasField("resources")


def test_checkpoint_request_packs_typed_checkpoint_options() -> None:
    request = tasks_api.checkpoint_request(
        "c1", parent_checkpoint="sha256:p", options=RuncCheckpointOptions(exit=True, image_path="/img")
    )
    assert request.parent_checkpoint == "sha256:p"
    assert request.options.type_url == "containerd.runc.v1.CheckpointOptions"
    assert runc_pb2.CheckpointOptions.FromString(request.options.value).image_path == "/img"


def test_get_result_names_the_container_that_containerd_1_6_leaves_empty() -> None:
    response = tasks_pb2.GetResponse(
        process=task_pb2.Process(id="e1", pid=7, status=task_pb2.STOPPED, exit_status=3, exited_at=GO_ZERO)
    )
    info = tasks_api.get_result(response, "c1")
    assert (info.container_id, info.exec_id, info.pid, info.status) == ("c1", "e1", 7, Status.STOPPED)
    assert (info.exit_status, info.exited_at) == (3, None)


def test_list_result_uses_the_process_id_as_the_container_of_an_init_process() -> None:
    response = tasks_pb2.ListTasksResponse(tasks=[task_pb2.Process(id="c1", pid=5, status=task_pb2.RUNNING)])
    [info] = tasks_api.list_result(response)
    assert (info.container_id, info.exec_id, info.status) == ("c1", "", Status.RUNNING)


def test_list_pids_result_reads_the_exec_id_from_runc_details() -> None:
    response = tasks_pb2.ListPidsResponse(
        processes=[
            task_pb2.ProcessInfo(pid=1, info=typeurl.pack(runc_pb2.ProcessDetails(exec_id="e1"))),
            task_pb2.ProcessInfo(pid=2),
        ]
    )
    first, second = tasks_api.list_pids_result(response)
    assert (first.pid, first.exec_id) == (1, "e1")
    assert (second.pid, second.exec_id, second.info) == (2, None, None)


def test_wait_and_delete_results() -> None:
    when = timestamp_pb2.Timestamp(seconds=1700000000)
    assert tasks_api.wait_result(tasks_pb2.WaitResponse(exit_status=137, exited_at=when)) == ExitStatus(
        137, EPOCH_2023
    )
    assert tasks_api.wait_result(tasks_pb2.WaitResponse(exit_status=0, exited_at=GO_ZERO)) == ExitStatus(
        0, None
    )
    deleted = tasks_api.delete_result(tasks_pb2.DeleteResponse(id="e1", pid=9, exit_status=1, exited_at=when))
    assert (deleted.id, deleted.pid, deleted.exit) == ("e1", 9, ExitStatus(1, EPOCH_2023))
    assert tasks_api.pid_result(tasks_pb2.StartResponse(pid=12)) == 12


# -- containers ---------------------------------------------------------------------------------------


def test_create_container_request() -> None:
    spec = {"ociVersion": "1.0.2", "process": {"args": ["true"]}}
    request = containers.create_request(
        "c1",
        spec=spec,
        runtime_options=RuncOptions(binary_name="runc"),
        labels={"app": "web"},
        extensions={"ext": RuncCheckpointOptions(exit=True)},
    )
    record = request.container
    assert (record.id, record.runtime.name, dict(record.labels)) == (
        "c1",
        "io.containerd.runc.v2",
        {"app": "web"},
    )
    assert record.spec.type_url == typeurl.SPEC_URL
    assert json.loads(record.spec.value) == spec
    assert record.runtime.options.type_url == "containerd.runc.v1.Options"
    assert record.extensions["ext"].type_url == "containerd.runc.v1.CheckpointOptions"


def test_update_container_request_masks_exactly_the_fields_passed() -> None:
    request = containers.update_request("c1", labels={"a": "b"}, snapshot_key="k")
    assert list(request.update_mask.paths) == ["labels", "snapshotkey"]
    assert (dict(request.container.labels), request.container.snapshot_key) == ({"a": "b"}, "k")
    # An empty label set is a change (remove them all), not "nothing passed".
    assert list(containers.update_request("c1", labels={}).update_mask.paths) == ["labels"]
    with pytest.raises(ValueError, match="at least one field"):
        containers.update_request("c1")


def test_container_results_decode_spec_and_runc_options() -> None:
    record = containers.create_request(
        "c1", spec={"ociVersion": "1.0.2"}, runtime_options=RuncOptions(root="/r")
    )
    got = containers.container_result(containers_pb2.GetContainerResponse(container=record.container))
    assert (got.id, got.spec, got.runtime.options) == ("c1", {"ociVersion": "1.0.2"}, RuncOptions(root="/r"))
    listed = containers.list_result(containers_pb2.ListContainersResponse(containers=[record.container]))
    assert [c.id for c in listed] == ["c1"]


# -- namespaces, images, leases, snapshots, diff ---------------------------------------------------------


def test_namespace_update_request_masks_each_label_unless_replacing() -> None:
    request = namespaces.update_request("ns", {"a": "1", "b": ""})
    assert sorted(request.update_mask.paths) == ["labels.a", "labels.b"]
    assert not namespaces.update_request("ns", {"a": "1"}, replace=True).HasField("update_mask")


def test_namespace_create_request_checks_the_identifier_rule() -> None:
    assert namespaces.create_request("ns-1", {"a": "b"}).namespace.name == "ns-1"
    with pytest.raises(ValueError, match="namespace"):
        namespaces.create_request("bad/ns")


def test_image_update_paths_and_request() -> None:
    assert images.update_paths(target=DESCRIPTOR) == ["target"]
    assert images.update_paths(labels={}) == ["labels"]
    assert images.update_paths(fieldpaths=["labels.a"]) == ["labels.a"]
    with pytest.raises(ValueError, match="needs a target"):
        images.update_paths()
    request = images.update_request("img", target=DESCRIPTOR, labels={"a": "b"}, paths=["labels"])
    assert list(request.update_mask.paths) == ["labels"]
    assert request.image.target.digest == DESCRIPTOR.digest


def test_lease_create_request_sets_the_expiry_label_from_now() -> None:
    request = leases.create_request("l1", labels={"a": "b"}, expire=_dt.timedelta(hours=1), now=EPOCH_2023)
    assert dict(request.labels) == {"a": "b", EXPIRE_LABEL: "2023-11-14T23:13:20Z"}
    generated = leases.create_request()
    assert generated.id
    assert EXPIRE_LABEL not in generated.labels


def test_lease_resource_requests_and_results() -> None:
    resource = LeaseResource.snapshot("overlayfs", "k")
    request = leases.add_resource_request("l1", resource)
    assert (request.id, request.resource.id, request.resource.type) == ("l1", "k", "snapshots/overlayfs")
    response = leases_pb2.ListResourcesResponse(
        resources=[leases_pb2.Resource(id="sha256:x", type="content")]
    )
    assert leases.list_resources_result(response) == [LeaseResource.content("sha256:x")]


def test_snapshot_requests_and_results() -> None:
    assert list(snapshots.update_request("overlayfs", "k", labels={"a": "b"}).update_mask.paths) == ["labels"]
    batch = snapshots.list_batch(
        snapshots_pb2.ListSnapshotsResponse(info=[snapshots_pb2.Info(name="k", kind=snapshots_pb2.COMMITTED)])
    )
    assert [(i.name, i.kind) for i in batch] == [("k", SnapshotKind.COMMITTED)]
    assert snapshots.usage_result(snapshots_pb2.UsageResponse(size=10, inodes=2)).size == 10


def test_diff_request_sets_the_epoch_only_when_given() -> None:
    assert not diff.diff_request([], []).HasField("source_date_epoch")
    request = diff.diff_request([Mount("bind", "/a")], [], source_date_epoch=EPOCH_2023)
    assert request.source_date_epoch.seconds == 1700000000
    assert [m.source for m in request.left] == ["/a"]


# -- content -----------------------------------------------------------------------------------------


def test_write_stream_messages() -> None:
    stat = content.write_stat_request("ref", total=5, expected="sha256:e")
    assert (stat.action, stat.ref, stat.total, stat.expected) == (content_pb2.STAT, "ref", 5, "sha256:e")
    data = content.write_data_request(3, b"lo")
    assert (data.action, data.offset, data.data) == (content_pb2.WRITE, 3, b"lo")
    commit = content.write_commit_request(5, expected="sha256:e", labels={"a": "b"})
    assert (commit.action, commit.offset, commit.total, dict(commit.labels)) == (
        content_pb2.COMMIT,
        5,
        5,
        {"a": "b"},
    )


@pytest.mark.parametrize("offset", [0, 1, 127, 128, 300, 1 << 31, (1 << 63) - 1])
@pytest.mark.parametrize("size", [0, 1, 127, 128, 1 << 20])
def test_write_data_message_is_the_protobuf_encoding(offset: int, size: int) -> None:
    data = bytes(range(256)) * (size // 256) + bytes(size % 256)
    message = content.write_data_message(offset, data)
    assert message == content.write_data_request(offset, data).SerializeToString()
    parsed = content_pb2.WriteContentRequest.FromString(message)
    assert (parsed.action, parsed.offset, parsed.data) == (content_pb2.WRITE, offset, data)
    assert content.write_data_message(offset, memoryview(b"ab" + data + b"cd")[2:-2]) == message


def test_write_answers() -> None:
    assert content.write_stat_offset(content_pb2.WriteContentResponse(action=content_pb2.STAT, offset=4)) == 4
    assert content.write_committed_digest(content_pb2.WriteContentResponse(action=content_pb2.WRITE)) is None
    committed = content_pb2.WriteContentResponse(action=content_pb2.COMMIT, digest="sha256:d")
    assert content.write_committed_digest(committed) == "sha256:d"


@pytest.mark.parametrize(
    ("ref", "data", "chunk_size", "error"),
    [
        ("", b"x", 1, ValueError),
        ("r", "text", 1, TypeError),
        ("r", b"x", 0, ValueError),
        ("r", b"x", content.MAX_CHUNK_SIZE + 1, ValueError),
    ],
)
def test_check_write_refuses_what_cannot_succeed(
    ref: str, data: object, chunk_size: int, error: type
) -> None:
    with pytest.raises(error):
        content.check_write(ref, data, chunk_size)


def test_content_list_batch_and_read_chunk() -> None:
    batch = content.list_batch(
        content_pb2.ListContentResponse(info=[content_pb2.Info(digest="sha256:d", size=3)])
    )
    assert [(i.digest, i.size) for i in batch] == [("sha256:d", 3)]
    assert content.read_chunk(content_pb2.ReadContentResponse(offset=0, data=b"abc")) == b"abc"


# -- events, health --------------------------------------------------------------------------------------


def test_subscribe_request_scopes_every_filter_to_the_namespace() -> None:
    scoped = events.subscribe_request(["topic==/tasks/exit", "topic==/tasks/oom"], namespace="my ns")
    assert list(scoped.filters) == [
        'namespace=="my ns",topic==/tasks/exit',
        'namespace=="my ns",topic==/tasks/oom',
    ]
    assert list(events.subscribe_request([], namespace="ns").filters) == ["namespace==ns"]
    assert list(events.subscribe_request(["topic==/x"], namespace=None).filters) == ["topic==/x"]


def test_publish_request_and_metadata() -> None:
    request = events.publish_request("/app/x", runc_pb2.ProcessDetails(exec_id="e"))
    assert isinstance(request, events_pb2.PublishRequest)
    assert (request.topic, request.event.type_url) == ("/app/x", "containerd.runc.v1.ProcessDetails")
    assert events.publish_metadata("other", [("k", "v")]) == (("containerd-namespace", "other"), ("k", "v"))
    assert events.publish_metadata(None, [("k", "v")]) == (("k", "v"),)
    with pytest.raises(ValueError, match="namespace"):
        events.publish_metadata("bad/ns")


@pytest.mark.parametrize(
    ("status", "expected"),
    [(1, ServingStatus.SERVING), (2, ServingStatus.NOT_SERVING), (9, ServingStatus.UNKNOWN)],
)
def test_health_check_result(status: int, expected: ServingStatus) -> None:
    assert health.check_result(health_pb2.HealthCheckResponse(status=status)) is expected
    assert health.check_request("svc").service == "svc"
