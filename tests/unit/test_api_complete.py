"""Every RPC of every generated stub has a wrapper method (after Temporal's test_all_grpc_calls_present)."""

from __future__ import annotations

import importlib
import inspect
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from pycontainerd._grpc import Connection
from pycontainerd.api import API
from pycontainerd.api.health import HealthStub

ROOT = Path(__file__).resolve().parents[2]
GENERATED = ROOT / "pycontainerd" / "_proto"


class CallCollectingChannel(grpc.Channel):
    """Records the method paths a stub registers; never sends anything."""

    def __init__(self) -> None:
        self.methods: list[str] = []

    def _record(self, method: str, *args: Any, **kwargs: Any) -> object:
        self.methods.append(method)
        return object()

    def unary_unary(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return self._record(method)

    def unary_stream(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return self._record(method)

    def stream_unary(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return self._record(method)

    def stream_stream(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return self._record(method)

    def subscribe(self, *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError

    def unsubscribe(self, *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError

    def close(self) -> None:
        pass


def _stub_classes() -> Iterator[type]:
    for path in sorted(GENERATED.rglob("*_pb2_grpc.py")):
        module = importlib.import_module(".".join(path.relative_to(ROOT).with_suffix("").parts))
        for name, obj in vars(module).items():
            if name.endswith("Stub") and inspect.isclass(obj) and obj.__module__ == module.__name__:
                yield obj
    yield HealthStub


def snake(rpc: str) -> str:
    """``ListPids`` -> ``list_pids``, ``CloseIO`` -> ``close_io``, ``ResizePty`` -> ``resize_pty``."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", rpc).lower()


def _rpcs(stub_class: type) -> list[str]:
    channel = CallCollectingChannel()
    stub_class(channel)
    return [m.rsplit("/", 1)[1] for m in channel.methods]


@pytest.fixture
def api(tmp_path: Path) -> Iterator[API]:
    conn = Connection(str(tmp_path / "never-dialled.sock"))
    yield API(conn)
    conn.close()


def test_snake_names() -> None:
    assert [snake(x) for x in ("ListPids", "CloseIO", "ResizePty", "Version", "ListStream")] == [
        "list_pids",
        "close_io",
        "resize_pty",
        "version",
        "list_stream",
    ]


def test_every_stub_has_a_service_and_every_rpc_a_method(api: API) -> None:
    by_stub = {type(service.stub): (name, service) for name, service in api.services().items()}
    stubs = list(_stub_classes())
    assert len(stubs) >= 7
    missing: list[str] = []
    for stub_class in stubs:
        if stub_class not in by_stub:
            missing.append(f"{stub_class.__module__}.{stub_class.__name__}: no API attribute")
            continue
        name, service = by_stub[stub_class]
        rpcs = _rpcs(stub_class)
        assert rpcs, stub_class
        for rpc in rpcs:
            method = getattr(service, snake(rpc), None)
            if not callable(method):
                missing.append(f"api.{name}.{snake(rpc)} (for {stub_class.__name__}.{rpc})")
    assert not missing, "RPCs without a wrapper:\n" + "\n".join(missing)


def test_core_services_are_present(api: API) -> None:
    for name in ("tasks", "containers", "events", "namespaces", "version", "introspection", "health"):
        assert name in api.services()
    assert {"wait_future", "wait"} <= set(dir(api.tasks))
