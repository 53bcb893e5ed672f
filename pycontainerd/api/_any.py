"""Packing request values into ``google.protobuf.Any`` the way containerd resolves them.

Every service that sends an Any (runtime options, checkpoint options, extensions, event
payloads) packs it here, so a typed value (:class:`~pycontainerd.api.types.RuncOptions`)
and a generated message both travel under a bare type URL.
"""

from __future__ import annotations

from google.protobuf import any_pb2, message

from pycontainerd import typeurl
from pycontainerd.api.types import RuncCheckpointOptions, RuncOptions

__all__ = ["Packable", "pack"]

#: What a request field of type Any accepts.
Packable = RuncOptions | RuncCheckpointOptions | message.Message | any_pb2.Any


def pack(value: Packable) -> any_pb2.Any:
    """``value`` as an Any: a ready Any unchanged, anything else packed with a bare type URL."""
    if isinstance(value, any_pb2.Any):
        return value
    if isinstance(value, (RuncOptions, RuncCheckpointOptions)):
        return typeurl.pack(value.to_proto())
    return typeurl.pack(value)
