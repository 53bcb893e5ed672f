"""Our .proto declarations against containerd's wire facts, and the generated code's freshness."""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
from google.protobuf import descriptor_pool, message_factory, timestamp_pb2
from google.protobuf.descriptor import Descriptor, FieldDescriptor

from pycontainerd import typeurl
from pycontainerd._proto.events import task_pb2 as events_task_pb2
from pycontainerd._proto.runc.options import oci_pb2 as runc_pb2
from pycontainerd._proto.services.events.v1 import events_pb2
from pycontainerd._proto.types import event_pb2

ROOT = Path(__file__).resolve().parents[2]
WIRE = ROOT / "tests" / "data" / "wire"
GENERATED = ROOT / "pycontainerd" / "_proto"

# Declared under another name on purpose (the type is embedded, its name never on the wire);
# see protos/README.md.
RENAMED = {"google.rpc.Status": "pycontainerd.rpc.Status"}

_SCALARS = {
    FieldDescriptor.TYPE_STRING: "string",
    FieldDescriptor.TYPE_BOOL: "bool",
    FieldDescriptor.TYPE_UINT32: "uint32",
    FieldDescriptor.TYPE_UINT64: "uint64",
    FieldDescriptor.TYPE_INT32: "int32",
    FieldDescriptor.TYPE_INT64: "int64",
    FieldDescriptor.TYPE_BYTES: "bytes",
    FieldDescriptor.TYPE_DOUBLE: "double",
}


def _import_all() -> None:
    for path in GENERATED.rglob("*_pb2.py"):
        importlib.import_module(".".join(path.relative_to(ROOT).with_suffix("").parts))


def _our_messages() -> dict[str, Descriptor]:
    _import_all()
    pool = descriptor_pool.Default()
    found: dict[str, Descriptor] = {}
    for path in sorted(GENERATED.rglob("*_pb2.py")):
        module = importlib.import_module(".".join(path.relative_to(ROOT).with_suffix("").parts))
        stack = list(pool.FindFileByName(module.DESCRIPTOR.name).message_types_by_name.values())
        while stack:
            desc = stack.pop()
            if desc.GetOptions().map_entry:
                continue
            found[desc.full_name] = desc
            stack.extend(desc.nested_types)
    return found


def _wire_fields(version: str) -> dict[str, dict[str, tuple[int, str]]]:
    path = WIRE / f"proto-fields-{version}.txt"
    table: dict[str, dict[str, tuple[int, str]]] = {}
    for line in path.read_text().splitlines():
        head, _, body = line.partition(": ")
        name, kind = head.rsplit(" ", 1)
        if kind != "(message)":
            continue
        fields: dict[str, tuple[int, str]] = {}
        for item in filter(None, (x.strip() for x in body.split(";"))):
            typ, _, assign = item.rpartition(" ")
            fname, number = assign.split("=")
            fields[fname] = (int(number), typ.strip())
        table[name] = fields
    return table


def _our_type(field: FieldDescriptor) -> str:
    if field.message_type is not None and field.message_type.GetOptions().map_entry:
        key, value = field.message_type.fields_by_name["key"], field.message_type.fields_by_name["value"]
        return f"map<{_our_type(key)},{_our_type(value)}>"
    if field.message_type is not None:
        base = field.message_type.full_name
    elif field.enum_type is not None:
        base = field.enum_type.full_name
    else:
        base = _SCALARS[field.type]
    repeated = field.label == FieldDescriptor.LABEL_REPEATED
    return f"repeated {base}" if repeated else base


def _same_type(ours: str, wire: str) -> bool:
    """Wire types may be relative to the message's package (``types.Metric``, ``Runtime``)."""
    if ours.startswith("map<") or wire.startswith("map<"):
        return ours.replace(" ", "") == wire.replace(" ", "")
    ours_rep, wire_rep = ours.startswith("repeated "), wire.startswith("repeated ")
    if ours_rep != wire_rep:
        return False
    o, w = ours.removeprefix("repeated "), wire.removeprefix("repeated ")
    w = RENAMED.get(w, w)
    return o == w or o.endswith("." + w)


@pytest.mark.parametrize("version", ["v1.6.20", "main"])
def test_declared_fields_match_containerd(version: str) -> None:
    wire = _wire_fields(version)
    ours = _our_messages()
    checked = 0
    for name, desc in ours.items():
        if name not in wire:
            continue
        for field in desc.fields:
            if field.name not in wire[name]:
                continue  # a field of another version (checked against that version's list)
            number, typ = wire[name][field.name]
            assert field.number == number, f"{name}.{field.name}: {field.number} != {number} ({version})"
            assert _same_type(_our_type(field), typ), f"{name}.{field.name}: {_our_type(field)} vs {typ}"
            checked += 1
    assert checked > 200


def test_floor_fields_are_all_declared() -> None:
    """Every field containerd 1.6.20 has in a message we declare is declared too."""
    wire = _wire_fields("v1.6.20")
    for name, desc in _our_messages().items():
        missing = set(wire.get(name, {})) - set(desc.fields_by_name)
        assert not missing, f"{name} lacks {sorted(missing)}"


def test_fields_beyond_the_floor_exist_in_main() -> None:
    """Extra fields are newer containerd's, never invented."""
    floor, main = _wire_fields("v1.6.20"), _wire_fields("main")
    for name, desc in _our_messages().items():
        if name not in floor:
            continue
        extra = set(desc.fields_by_name) - set(floor[name])
        assert extra <= set(main.get(name, {})), f"{name}: {sorted(extra - set(main.get(name, {})))}"


def test_declared_rpcs_exist_in_containerd() -> None:
    path = WIRE / "rpcs-v1.6.20.txt"
    rpcs = set()
    for line in path.read_text().splitlines():
        m = re.match(r"(\S+): rpc (\w+)\((?:stream )?(\S+)\) returns \((?:stream )?(\S+)\)", line)
        assert m, line
        rpcs.add((m[1], m[2]))
    _import_all()
    declared = set()
    for module_path in GENERATED.rglob("*_pb2.py"):
        module = importlib.import_module(".".join(module_path.relative_to(ROOT).with_suffix("").parts))
        for service in module.DESCRIPTOR.services_by_name.values():
            for method in service.methods:
                declared.add((service.full_name, method.name))
    assert declared, "no services generated"
    assert declared <= rpcs, sorted(declared - rpcs)


def test_both_envelope_names_are_one_wire_format() -> None:
    old = events_pb2.Envelope(namespace="n", topic="/tasks/exit")
    old.timestamp.seconds = 5
    old.event.CopyFrom(typeurl.pack(events_task_pb2.TaskExit(container_id="c", exit_status=3)))
    new = event_pb2.Envelope.FromString(old.SerializeToString())
    assert event_pb2.Envelope.DESCRIPTOR.full_name == "containerd.types.Envelope"
    assert events_pb2.Envelope.DESCRIPTOR.full_name == "containerd.services.events.v1.Envelope"
    assert (new.namespace, new.topic, new.timestamp.seconds, new.event.type_url) == (
        "n",
        "/tasks/exit",
        5,
        "containerd.events.TaskExit",
    )
    assert events_pb2.Envelope.FromString(new.SerializeToString()) == old


def test_bare_type_urls_and_oci_json() -> None:
    packed = typeurl.pack(runc_pb2.Options(binary_name="runc", io_uid=5))
    assert packed.type_url == "containerd.runc.v1.Options"
    assert typeurl.unpack(packed) == runc_pb2.Options(binary_name="runc", io_uid=5)
    google = packed.__class__(type_url="type.googleapis.com/containerd.runc.v1.Options", value=packed.value)
    assert typeurl.unpack(google).io_uid == 5
    spec = typeurl.pack_spec({"ociVersion": "1.0.2", "process": {"args": ["sh"]}})
    assert spec.type_url == "types.containerd.io/opencontainers/runtime-spec/1/Spec"
    assert typeurl.unpack_value(spec) == {"ociVersion": "1.0.2", "process": {"args": ["sh"]}}
    assert typeurl.pack_process({}).type_url.endswith("/1/Process")
    assert typeurl.pack_resources({}).type_url.endswith("/1/LinuxResources")
    with pytest.raises(typeurl.UnknownTypeError):
        typeurl.unpack(packed.__class__(type_url="example.com/Nope"))


def test_cgroup_metrics_type_urls() -> None:
    _import_all()
    pool = descriptor_pool.Default()
    for name in ("io.containerd.cgroups.v1.Metrics", "io.containerd.cgroups.v2.Metrics"):
        cls = message_factory.GetMessageClass(pool.FindMessageTypeByName(name))
        assert typeurl.pack(cls()).type_url == name


def test_unset_timestamps_decode_as_none() -> None:
    assert typeurl.timestamp(None) is None
    assert typeurl.timestamp(timestamp_pb2.Timestamp(seconds=-62135596800)) is None
    assert typeurl.timestamp(timestamp_pb2.Timestamp()) is None
    when = typeurl.timestamp(timestamp_pb2.Timestamp(seconds=1700000000, nanos=5000))
    assert when is not None
    assert when.timestamp() == 1700000000.000005
    assert typeurl.from_datetime(when) == timestamp_pb2.Timestamp(seconds=1700000000, nanos=5000)
    exit_event = events_task_pb2.TaskExit()
    assert typeurl.field_timestamp(exit_event, "exited_at") is None


def test_generated_code_never_imports_stdlib_types() -> None:
    for path in GENERATED.rglob("*.py"):
        assert not re.search(r"^from types import|^import types\b", path.read_text(), re.M), path


def test_runtime_floors_match_the_generator() -> None:
    text = (ROOT / "pyproject.toml").read_text()
    gen = (ROOT / "tools" / "gen_protos.py").read_text()
    pinned = re.search(r'GRPCIO_TOOLS_VERSION = "([\d.]+)"', gen)
    assert pinned
    assert f'"grpcio-tools=={pinned[1]}"' in text
    protobuf_versions = {
        m
        for p in GENERATED.rglob("*_pb2.py")
        for m in re.findall(r"Protobuf Python Version: ([\d.]+)", p.read_text())
    }
    grpc_versions = {
        m
        for p in GENERATED.rglob("*_pb2_grpc.py")
        for m in re.findall(r"GRPC_GENERATED_VERSION = '([\d.]+)'", p.read_text())
    }
    assert grpc_versions == {pinned[1]}
    assert len(protobuf_versions) == 1
    assert f'"grpcio>={pinned[1]}"' in text
    assert re.search(rf'"protobuf>={re.escape(protobuf_versions.pop())}(,<\d+)?"', text)


def test_regenerating_changes_nothing() -> None:
    script = (ROOT / "tools" / "gen_protos.py").read_text()
    pinned = re.search(r'GRPCIO_TOOLS_VERSION = "([\d.]+)"', script)
    assert pinned
    try:
        have = metadata.version("grpcio-tools")
    except metadata.PackageNotFoundError:
        pytest.skip("grpcio-tools is not installed (pip install -e '.[dev]')")
    if have != pinned[1]:
        pytest.skip(f"grpcio-tools {have} installed, generator pinned to {pinned[1]}")
    result = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "gen_protos.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
