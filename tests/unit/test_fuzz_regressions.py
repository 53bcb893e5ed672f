"""Regressions found by the fuzz harnesses (fuzz/, `make fuzz`): each case failed before its fix.

The inputs that found them are also kept in fuzz/corpus/<target>/regress-*, so every
fuzz run replays them; these tests pin the behaviour in the ordinary unit run.
"""

from __future__ import annotations

import argparse
import datetime as _dt

import pytest
from google.protobuf import any_pb2, timestamp_pb2

from pycontainerd import typeurl
from pycontainerd._proto.events import task_pb2
from pycontainerd._proto.services.events.v1 import events_pb2
from pycontainerd.api import events
from pycontainerd.cli import _app

# One past datetime's range either way (years 1..9999), and far beyond it.
OUT_OF_RANGE_SECONDS = [253402300800, -62135596801, 2**62, -(2**62), 2**63 - 1]


@pytest.mark.parametrize("text", ["9" * 400, "9" * 309 + "k", "8388608T", "1" * 20 + "G"])
def test_byte_size_too_large_is_a_usage_error(text: str) -> None:
    # float("9" * 400) is infinity, which int() refused with OverflowError: a traceback.
    with pytest.raises(argparse.ArgumentTypeError, match="less than 8 EiB"):
        _app.byte_size(text)


def test_byte_size_largest_accepted() -> None:
    assert _app.byte_size("8388607T") == 8388607 << 40


def test_memory_flag_too_large_is_one_usage_line() -> None:
    with pytest.raises(_app.UsageError, match="less than 8 EiB"):
        _app.parse(["run", "--rootfs", "/r", "-m", "9" * 400, "c1", "--", "true"])


@pytest.mark.parametrize("seconds", OUT_OF_RANGE_SECONDS)
def test_timestamp_out_of_datetime_range_is_none(seconds: int) -> None:
    assert typeurl.timestamp(timestamp_pb2.Timestamp(seconds=seconds)) is None


def test_timestamp_at_the_range_ends() -> None:
    last = typeurl.timestamp(timestamp_pb2.Timestamp(seconds=253402300799))
    assert last == _dt.datetime(9999, 12, 31, 23, 59, 59, tzinfo=_dt.timezone.utc)
    first = typeurl.timestamp(timestamp_pb2.Timestamp(seconds=-62135596800 + 1))
    assert first == _dt.datetime(1, 1, 1, 0, 0, 1, tzinfo=_dt.timezone.utc)


@pytest.mark.parametrize("seconds", OUT_OF_RANGE_SECONDS)
def test_envelope_with_out_of_range_timestamp_still_decodes(seconds: int) -> None:
    # The envelope's timestamp was converted outside decode_envelope's guard, so one
    # corrupt event raised OverflowError and ended the subscription.
    envelope = events_pb2.Envelope(namespace="ns", topic="/tasks/exit")
    envelope.timestamp.seconds = seconds
    envelope.event.CopyFrom(typeurl.pack(task_pb2.TaskExit(container_id="c1", id="c1", pid=7, exit_status=3)))
    event = events.decode_envelope(envelope)
    assert isinstance(event, events.TaskExit)
    assert event.timestamp is None
    assert (event.container_id, event.pid, event.exit_status) == ("c1", 7, 3)


def test_exit_time_out_of_range_decodes_as_unknown() -> None:
    exit_msg = task_pb2.TaskExit(container_id="c1", id="c1", pid=7)
    exit_msg.exited_at.seconds = 2**62
    envelope = events_pb2.Envelope(namespace="ns", topic="/tasks/exit", event=typeurl.pack(exit_msg))
    event = events.decode_envelope(envelope)
    assert isinstance(event, events.TaskExit)
    assert event.exited_at is None


def test_json_nested_past_the_recursion_limit_is_a_value_error() -> None:
    # json raised RecursionError, which unpack_json's documented ValueError did not cover.
    value = any_pb2.Any(type_url=typeurl.SPEC_URL, value=b"[" * 100_000)
    with pytest.raises(ValueError, match="nested too deeply"):
        typeurl.unpack_json(value)
    with pytest.raises(ValueError, match="nested too deeply"):
        typeurl.unpack_value(value)
