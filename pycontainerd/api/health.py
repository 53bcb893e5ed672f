"""The standard gRPC health check (``/grpc.health.v1.Health/Check``) that containerd serves.

The stub is built here by hand: the request and response messages are declared in a
private proto package (wire-identical), because declaring ``grpc.health.v1`` would collide
with grpcio-health-checking in the process-wide descriptor pool. See protos/README.md.
"""

from __future__ import annotations

import enum
from typing import Any

import grpc

from pycontainerd import errors
from pycontainerd._grpc import HEALTH_CHECK, Metadata, Service, health_check_method
from pycontainerd._proto.health.v1 import health_pb2

__all__ = ["HealthService", "HealthStub", "ServingStatus"]

CHECK_METHOD = HEALTH_CHECK


class HealthStub:
    """A client stub for ``grpc.health.v1.Health``, shaped like a generated one.

    Args:
        channel: The channel to call on.
    """

    def __init__(self, channel: grpc.Channel) -> None:
        self.Check: Any = health_check_method(channel)


class ServingStatus(enum.Enum):
    """What Health/Check reports."""

    UNKNOWN = 0
    SERVING = 1
    NOT_SERVING = 2
    SERVICE_UNKNOWN = 3


def check_request(service: str = "") -> Any:
    """A ``HealthCheckRequest`` (``service=""``: the whole server)."""
    return health_pb2.HealthCheckRequest(service=service)


def check_result(response: Any) -> ServingStatus:
    """The status a ``HealthCheckResponse`` reports; a value this client does not know is UNKNOWN."""
    try:
        return ServingStatus(response.status)
    except ValueError:
        return ServingStatus.UNKNOWN


class HealthService(Service):
    """Readiness of the daemon."""

    _stub_factory = HealthStub

    def check(
        self,
        service: str = "",
        *,
        wait_for_ready: bool = False,
        timeout: float | None = None,
        metadata: Metadata = (),
    ) -> ServingStatus:
        """Ask whether the daemon (``service=""``) or one of its services is serving.

        Args:
            service: The service name, ``""`` for the whole server.
            wait_for_ready: Wait (up to ``timeout``) for the socket to accept instead of
                failing fast: use this to wait for a daemon that is starting.
            timeout: Deadline in seconds.
            metadata: Extra gRPC metadata.

        Returns:
            The serving status.

        Raises:
            UnavailableError: The daemon cannot be reached (without ``wait_for_ready``).
            DeadlineExceededError: ``wait_for_ready`` and the timeout expired.
        """
        request = check_request(service)
        response = self._conn.unary(
            self.stub.Check, request, timeout=timeout, metadata=metadata, wait_for_ready=wait_for_ready
        )
        return check_result(response)

    def is_serving(self, *, timeout: float | None = None) -> bool:
        """Whether the daemon answers SERVING within ``timeout``; never raises for a dead daemon."""
        try:
            return self.check(wait_for_ready=timeout is not None, timeout=timeout) is ServingStatus.SERVING
        except (errors.UnavailableError, errors.DeadlineExceededError):
            return False
