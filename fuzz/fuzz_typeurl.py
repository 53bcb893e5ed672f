"""atheris harness: decoding ``google.protobuf.Any`` and Timestamps (``pycontainerd.typeurl``).

containerd hands back Anys in container records, task options and events, and
Timestamps everywhere. The input is the wire form of an Any (its type URL
often replaced by one this process knows, with or without the
``type.googleapis.com/`` prefix, so that decoding gets past the lookup) or of a
Timestamp; its first byte says which. The decoders may raise only what they document: ``UnknownTypeError``,
``DecodeError`` for bytes that are not the message, ``ValueError`` for JSON
that is not; :func:`typeurl.timestamp` returns an aware datetime or ``None``.
Run by scripts/fuzz (``make fuzz``).
"""

from __future__ import annotations

import contextlib
import datetime as _dt

import atheris
from _oracle import expect, fuzz
from google.protobuf import any_pb2, message, timestamp_pb2

with atheris.instrument_imports():
    from pycontainerd import typeurl
    from pycontainerd.api import events, tasks  # noqa: F401 - registers the message types

_KNOWN = [
    "containerd.runc.v1.Options",
    "containerd.events.TaskExit",
    "containerd.events.TaskCreate",
    "containerd.events.ContainerCreate",
    "containerd.v1.types.Process",
    "google.protobuf.Timestamp",
    typeurl.SPEC_URL,
    typeurl.PROCESS_URL,
    typeurl.LINUX_RESOURCES_URL,
]


def _check_any(value: any_pb2.Any) -> None:
    oci = value.type_url.startswith("types.containerd.io/opencontainers/runtime-spec/1/")
    expect(typeurl.is_json_url(value.type_url) == oci, f"is_json_url({value.type_url!r})")
    name = typeurl.type_name(value.type_url)
    expect(value.type_url.endswith(name), f"type_name({value.type_url!r}) = {name!r}")
    with contextlib.suppress(typeurl.UnknownTypeError, message.DecodeError, ValueError):
        typeurl.unpack_value(value)


def _check_timestamp(ts: timestamp_pb2.Timestamp) -> None:
    when = typeurl.timestamp(ts)
    aware = isinstance(when, _dt.datetime) and when.tzinfo is not None
    expect(when is None or aware, f"timestamp {when!r}")


def test_one_input(data: bytes) -> None:
    kind, rest = (data[0] % 3, data[1:]) if data else (0, b"")
    try:
        if kind == 2:
            _check_timestamp(timestamp_pb2.Timestamp.FromString(rest))
            return
        value = any_pb2.Any.FromString(rest)
    except message.DecodeError:
        return
    if kind == 1 and value.type_url:
        # Aim at a type this process knows: the URL's first byte picks it.
        url = _KNOWN[ord(value.type_url[0]) % len(_KNOWN)]
        value.type_url = ("type.googleapis.com/" if len(value.type_url) % 2 else "") + url
    _check_any(value)


if __name__ == "__main__":
    fuzz(test_one_input)
