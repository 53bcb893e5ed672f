"""atheris harness: turning event envelopes into typed events (``pycontainerd.api.events``).

The input is an ``Envelope`` as it arrives on the wire from ``Events/Subscribe``.
Whatever the envelope holds (no payload, an unknown type, a payload that does not
parse, out-of-range timestamps, fields of a newer daemon), ``decode_envelope``
must return an ``Event`` and never raise: one corrupt event must not end the
subscription. Seeds are real envelopes of every event type pycontainerd decodes.
Run by scripts/fuzz (``make fuzz``).
"""

from __future__ import annotations

import atheris
from _oracle import expect, fuzz
from google.protobuf import message

with atheris.instrument_imports():
    from pycontainerd import typeurl
    from pycontainerd._proto.services.events.v1 import events_pb2
    from pycontainerd.api import events


def test_one_input(data: bytes) -> None:
    try:
        envelope = events_pb2.Envelope.FromString(data)
    except message.DecodeError:
        return  # not an envelope: grpc's concern, not the decoder's
    event = events.decode_envelope(envelope)
    expect(isinstance(event, events.Event), f"decoded to {type(event)}")
    expect(event.namespace == envelope.namespace, f"namespace {event.namespace!r}")
    expect(event.topic == envelope.topic, f"topic {event.topic!r}")
    if isinstance(event, events.RawEvent):
        expect(event.error, "a raw event without the reason")
    else:
        name = typeurl.type_name(envelope.event.type_url)
        expect(name == "containerd.events." + type(event).__name__, f"{name} decoded as {type(event)}")


if __name__ == "__main__":
    fuzz(test_one_input)
