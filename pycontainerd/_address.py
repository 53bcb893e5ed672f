"""Which containerd a client talks to when it is not told: the documented order.

1. the ``address`` argument (``Client(address)``, ``--address``);
2. ``$CONTAINERD_ADDRESS``;
3. the system daemon's socket, ``/run/containerd/containerd.sock``
   (``$PYCONTAINERD_SYSTEM_ADDRESS`` names another), when something accepts on it;
4. the embedded private daemon's socket (``pycontainerd daemon start``; see
   :func:`embedded_dir`), when something accepts on it;
5. otherwise the system socket: the connection error then says how to start
   a daemon.

The library and the command line resolve addresses the same way (the command
line can also start the embedded daemon on demand: ``--embedded``,
``PYCONTAINERD_EMBEDDED=1``).
"""

from __future__ import annotations

import os
import socket

__all__ = [
    "ENV_EMBEDDED_DIR",
    "ENV_SYSTEM_ADDRESS",
    "SYSTEM_ADDRESS",
    "accepts",
    "default_address",
    "embedded_address",
    "embedded_dir",
    "system_address",
]

#: Where a system containerd listens (containerd's default).
SYSTEM_ADDRESS = "/run/containerd/containerd.sock"
#: Names another system socket (tests, or a machine whose containerd listens elsewhere).
ENV_SYSTEM_ADDRESS = "PYCONTAINERD_SYSTEM_ADDRESS"
#: Overrides the embedded daemon's directory (tests use a temporary one).
ENV_EMBEDDED_DIR = "PYCONTAINERD_EMBEDDED_DIR"


def embedded_dir() -> str:
    """The embedded daemon's directory.

    ``$PYCONTAINERD_EMBEDDED_DIR`` when set; for root ``/run/pycontainerd/.embedded``
    (the leading dot keeps it apart from the namespaces' bundle dirs); for other
    users ``$XDG_RUNTIME_DIR/pycontainerd/embedded``, else ``/tmp/pycontainerd-<uid>/embedded``.
    """
    override = os.environ.get(ENV_EMBEDDED_DIR)
    if override:
        return os.path.abspath(override)
    if os.geteuid() == 0:
        return "/run/pycontainerd/.embedded"
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and os.path.isabs(runtime):
        return os.path.join(runtime, "pycontainerd", "embedded")
    return f"/tmp/pycontainerd-{os.getuid()}/embedded"


def embedded_address() -> str:
    """The embedded daemon's gRPC socket path (whether or not it runs)."""
    return os.path.join(embedded_dir(), "containerd.sock")


def system_address() -> str:
    """The system daemon's socket: ``$PYCONTAINERD_SYSTEM_ADDRESS``, else :data:`SYSTEM_ADDRESS`."""
    return os.environ.get(ENV_SYSTEM_ADDRESS) or SYSTEM_ADDRESS


def accepts(path: str) -> bool:
    """Whether something accepts connections on the unix socket ``path`` now (no data is sent)."""
    if not os.path.exists(path):
        return False
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC) as sock:
        sock.settimeout(1.0)
        try:
            sock.connect(path)
        except OSError:
            return False
    return True


def default_address() -> str:
    """The address steps 2-5 of the module docstring give (no ``address`` argument)."""
    from_env = os.environ.get("CONTAINERD_ADDRESS")
    if from_env:
        return from_env
    system = system_address()
    if accepts(system):
        return system
    embedded = embedded_address()
    if accepts(embedded):
        return embedded
    return system
