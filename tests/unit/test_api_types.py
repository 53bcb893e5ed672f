"""The typed runc options: the same fields as the wire messages, and lossless both ways."""

from __future__ import annotations

import dataclasses

import pytest
from google.protobuf import descriptor

from pycontainerd import typeurl
from pycontainerd._proto.runc.options import oci_pb2 as runc_pb2
from pycontainerd._proto.services.containers.v1 import containers_pb2
from pycontainerd.api._any import pack
from pycontainerd.api.types import Container, RuncCheckpointOptions, RuncOptions, decode_any

_PYTHON_TYPE = {
    descriptor.FieldDescriptor.TYPE_BOOL: bool,
    descriptor.FieldDescriptor.TYPE_STRING: str,
    descriptor.FieldDescriptor.TYPE_UINT32: int,
}

FULL_OPTIONS = RuncOptions(
    no_pivot_root=True,
    no_new_keyring=True,
    shim_cgroup="/shim",
    io_uid=100000,
    io_gid=100001,
    binary_name="crun",
    root="/run/pcd-runc",
    criu_path="/usr/sbin/criu",
    systemd_cgroup=True,
    criu_image_path="/img",
    criu_work_path="/work",
    task_api_address="/run/task.sock",
    task_api_version=3,
)
FULL_CHECKPOINT = RuncCheckpointOptions(
    exit=True,
    open_tcp=True,
    external_unix_sockets=True,
    terminal=True,
    file_locks=True,
    empty_namespaces=("network", "ipc"),
    cgroups_mode="soft",
    image_path="/img",
    work_path="/work",
    parent_path="/parent",
)


@pytest.mark.parametrize(
    ("cls", "message"), [(RuncOptions, runc_pb2.Options), (RuncCheckpointOptions, runc_pb2.CheckpointOptions)]
)
def test_dataclass_fields_are_the_message_fields(cls: type, message: type) -> None:
    wire = [(f.name, f.type, f.label == descriptor.FieldDescriptor.LABEL_REPEATED)
            for f in message.DESCRIPTOR.fields]
    ours = [f.name for f in dataclasses.fields(cls)]
    assert ours == [name for name, _, _ in wire]
    defaults = cls()
    for name, kind, repeated in wire:
        value = getattr(defaults, name)
        assert value == (() if repeated else _PYTHON_TYPE[kind]()), name


@pytest.mark.parametrize("value", [FULL_OPTIONS, FULL_CHECKPOINT, RuncOptions(), RuncCheckpointOptions()])
def test_round_trip_through_an_any_is_lossless(value: RuncOptions | RuncCheckpointOptions) -> None:
    packed = pack(value)
    assert packed.type_url == type(value.to_proto()).DESCRIPTOR.full_name
    assert not packed.type_url.startswith("type.googleapis.com/")
    assert decode_any(packed) == value
    assert type(value).from_proto(value.to_proto()) == value


def test_bare_type_urls() -> None:
    assert pack(RuncOptions()).type_url == "containerd.runc.v1.Options"
    assert pack(RuncCheckpointOptions()).type_url == "containerd.runc.v1.CheckpointOptions"


def test_pack_keeps_a_ready_any_and_packs_a_message() -> None:
    ready = typeurl.pack(runc_pb2.Options(root="/r"))
    assert pack(ready) is ready
    assert pack(runc_pb2.Options(root="/r")) == ready
    assert pack(RuncOptions(root="/r")) == ready


def test_other_runc_messages_stay_messages() -> None:
    details = decode_any(typeurl.pack(runc_pb2.ProcessDetails(exec_id="e1")))
    assert details == runc_pb2.ProcessDetails(exec_id="e1")


def test_a_container_record_carries_typed_runc_options() -> None:
    record = containers_pb2.Container(id="c1")
    record.runtime.name = "io.containerd.runc.v2"
    record.runtime.options.CopyFrom(pack(FULL_OPTIONS))
    assert Container.from_proto(record).runtime.options == FULL_OPTIONS
    record.runtime.ClearField("options")
    assert Container.from_proto(record).runtime.options is None
