"""Packing and unpacking ``google.protobuf.Any`` the way containerd expects.

containerd resolves an Any by its ``type_url`` and, in 1.6, only by the *bare* message
name (``containerd.runc.v1.Options``), not by protobuf's default
``type.googleapis.com/containerd.runc.v1.Options``. :func:`pack` therefore always emits bare
names. OCI runtime-spec values travel as JSON under containerd's own URLs
(:data:`SPEC_URL`, :data:`PROCESS_URL`, :data:`LINUX_RESOURCES_URL`).

Decoding accepts both spellings of a proto URL. Timestamps that are absent or hold Go's
zero time (``seconds == -62135596800``, which containerd 1.6 sends for "never") decode
as ``None``.
"""

from __future__ import annotations

import datetime as _dt
import json
from collections.abc import Mapping
from typing import Any

from google.protobuf import any_pb2, descriptor_pool, message, message_factory, timestamp_pb2

__all__ = [
    "LINUX_RESOURCES_URL",
    "PROCESS_URL",
    "SPEC_URL",
    "WINDOWS_RESOURCES_URL",
    "UnknownTypeError",
    "from_datetime",
    "is_json_url",
    "pack",
    "pack_json",
    "pack_process",
    "pack_resources",
    "pack_spec",
    "timestamp",
    "type_name",
    "unpack",
    "unpack_json",
    "unpack_value",
]

_OCI_PREFIX = "types.containerd.io/opencontainers/runtime-spec/1/"
SPEC_URL = _OCI_PREFIX + "Spec"
PROCESS_URL = _OCI_PREFIX + "Process"
LINUX_RESOURCES_URL = _OCI_PREFIX + "LinuxResources"
WINDOWS_RESOURCES_URL = _OCI_PREFIX + "WindowsResources"

_GOOGLE_PREFIX = "type.googleapis.com/"
# Go's time.Time{} as a protobuf Timestamp: 0001-01-01T00:00:00Z.
_GO_ZERO_SECONDS = -62135596800


class UnknownTypeError(LookupError):
    """An Any's type URL names no message known to this process (nor an OCI JSON type)."""


def pack(msg: message.Message) -> any_pb2.Any:
    """Wrap a proto message in an Any with a bare type URL (its full name).

    Args:
        msg: Any generated message, e.g. ``runc Options``.

    Returns:
        ``Any(type_url=msg.DESCRIPTOR.full_name, value=msg.SerializeToString())``.
    """
    return any_pb2.Any(type_url=msg.DESCRIPTOR.full_name, value=msg.SerializeToString(deterministic=True))


def pack_json(type_url: str, value: Mapping[str, Any]) -> any_pb2.Any:
    """Wrap a JSON-serialisable mapping in an Any under ``type_url``.

    Args:
        type_url: One of the OCI URLs (:data:`SPEC_URL`, ...).
        value: The document, e.g. an OCI runtime spec dict.

    Returns:
        The Any holding compact UTF-8 JSON.
    """
    data = json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
    return any_pb2.Any(type_url=type_url, value=data)


def pack_spec(spec: Mapping[str, Any]) -> any_pb2.Any:
    """An OCI runtime spec (``Container.spec``) as containerd stores it."""
    return pack_json(SPEC_URL, spec)


def pack_process(process: Mapping[str, Any]) -> any_pb2.Any:
    """An OCI process (``ExecProcessRequest.spec``)."""
    return pack_json(PROCESS_URL, process)


def pack_resources(resources: Mapping[str, Any]) -> any_pb2.Any:
    """OCI Linux resources (``UpdateTaskRequest.resources``)."""
    return pack_json(LINUX_RESOURCES_URL, resources)


def is_json_url(type_url: str) -> bool:
    """Whether ``type_url`` names one of the JSON-encoded OCI types."""
    return type_url.startswith(_OCI_PREFIX)


def type_name(type_url: str) -> str:
    """The message full name a proto type URL refers to (bare or ``type.googleapis.com/``)."""
    if type_url.startswith(_GOOGLE_PREFIX):
        return type_url[len(_GOOGLE_PREFIX) :]
    return type_url


def unpack(value: any_pb2.Any) -> message.Message:
    """Decode a proto Any into a message of the class registered for its type.

    The message must be declared in a module imported in this process (pycontainerd's
    generated modules are imported by the :mod:`pycontainerd.api` modules that use them).

    Args:
        value: The Any.

    Returns:
        The decoded message.

    Raises:
        UnknownTypeError: No message with that name is known.
        google.protobuf.message.DecodeError: The bytes do not parse as that message.
    """
    name = type_name(value.type_url)
    try:
        descriptor = descriptor_pool.Default().FindMessageTypeByName(name)
    except KeyError:
        raise UnknownTypeError(f"unknown Any type URL {value.type_url!r}") from None
    cls = message_factory.GetMessageClass(descriptor)
    msg = cls()
    msg.ParseFromString(value.value)
    return msg


def unpack_json(value: any_pb2.Any) -> Any:
    """Decode a JSON-encoded Any (an OCI spec, process or resources).

    Raises:
        ValueError: The value is not valid UTF-8 JSON, or nests deeper than the
            interpreter's recursion limit lets ``json`` decode.
    """
    try:
        return json.loads(value.value)
    except RecursionError as err:
        raise ValueError(f"{value.type_url}: JSON nested too deeply to decode") from err


def unpack_value(value: any_pb2.Any) -> Any:
    """Decode an Any of either kind: JSON types to Python objects, protos to messages.

    Raises:
        UnknownTypeError: The type URL is neither an OCI JSON type nor a known message.
    """
    if is_json_url(value.type_url):
        return unpack_json(value)
    return unpack(value)


def timestamp(ts: timestamp_pb2.Timestamp | None) -> _dt.datetime | None:
    """Convert a Timestamp to an aware UTC datetime, or ``None`` when unset.

    Unset means: absent (pass ``None``, e.g. ``msg.x if msg.HasField("x") else None``),
    Go's zero time (``seconds == -62135596800``), or the all-zero message that a Go
    ``nil`` timestamp decodes to. A value outside the years 1 to 9999 is ``None`` too:
    no valid Timestamp lies there and no datetime can hold it, and one corrupt field
    must not make a whole listing or event stream fail.
    """
    if ts is None:
        return None
    if ts.seconds == _GO_ZERO_SECONDS or (ts.seconds == 0 and ts.nanos == 0):
        return None
    base = _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)
    try:
        return base + _dt.timedelta(seconds=ts.seconds, microseconds=ts.nanos // 1000)
    except OverflowError:
        return None


def field_timestamp(msg: message.Message, field: str) -> _dt.datetime | None:
    """:func:`timestamp` of ``msg.<field>``, ``None`` when the field is not set."""
    return timestamp(getattr(msg, field)) if msg.HasField(field) else None


def from_datetime(value: _dt.datetime) -> timestamp_pb2.Timestamp:
    """A Timestamp for an aware datetime (naive datetimes are taken as UTC)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=_dt.timezone.utc)
    delta = value - _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)
    seconds = delta.days * 86400 + delta.seconds
    return timestamp_pb2.Timestamp(seconds=seconds, nanos=delta.microseconds * 1000)
