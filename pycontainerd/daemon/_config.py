"""A private containerd's layout under its base directory, and the config it is started with."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

__all__ = [
    "DEFAULT_RUNC_ROOT",
    "OWNED_MARKER",
    "SHARED_DIRS",
    "SHARED_STATE",
    "TASK_STATE",
    "Layout",
    "render_config",
]

_TTRPC_SUFFIX = ".ttrpc"
# CRI needs networking (CNI) and its own config; NRI (1.7) would listen on the
# shared /var/run/nri/nri.sock. The 2.x CRI plugin names are listed too:
# unknown names in disabled_plugins are ignored.
_DISABLED_PLUGINS = (
    "io.containerd.grpc.v1.cri",
    "io.containerd.nri.v1.nri",
    "io.containerd.cri.v1.images",
    "io.containerd.cri.v1.runtime",
    "io.containerd.podsandbox.controller.v1.podsandbox",
    "io.containerd.grpc.v1.sandbox-controllers",
    "io.containerd.tracing.processor.v1.otlp",
)
#: Fixed, shared paths of containerd 1.6/1.7 (shim sockets, default runc root, ctr FIFOs).
SHARED_STATE = "/run/containerd"
SHARED_DIRS = ("s", "runc", "fifo")
#: Where runc keeps its state when a task's runc options name no root.
DEFAULT_RUNC_ROOT = "/run/containerd/runc"
#: The runtime v2 task state dir (bundles) under the daemon's state dir.
TASK_STATE = "io.containerd.runtime.v2.task"
#: Marks a base dir this package created, so whoever closes the daemon (perhaps an
#: adopting object in another process) removes the directory itself too.
OWNED_MARKER = ".pycontainerd-owned"


@dataclass(frozen=True)
class Layout:
    """The paths of a private containerd under its base directory."""

    base: str

    @property
    def address(self) -> str:
        return os.path.join(self.base, "containerd.sock")

    @property
    def ttrpc_address(self) -> str:
        return self.address + _TTRPC_SUFFIX

    @property
    def root(self) -> str:
        return os.path.join(self.base, "root")

    @property
    def state(self) -> str:
        return os.path.join(self.base, "state")

    @property
    def temp(self) -> str:
        return os.path.join(self.base, "tmp")

    @property
    def opt(self) -> str:
        return os.path.join(self.base, "opt")

    @property
    def runc_root(self) -> str:
        return os.path.join(self.base, "runc")

    @property
    def config_path(self) -> str:
        return os.path.join(self.base, "config.toml")

    @property
    def log_path(self) -> str:
        return os.path.join(self.base, "containerd.log")

    @property
    def pid_path(self) -> str:
        return os.path.join(self.base, "containerd.pid")

    def entries(self) -> tuple[str, ...]:
        return (
            self.address,
            self.ttrpc_address,
            self.root,
            self.state,
            self.temp,
            self.opt,
            self.runc_root,
            self.config_path,
            self.log_path,
            self.pid_path,
        )


def _toml_string(value: str) -> str:
    # A JSON string is a valid TOML basic string for everything a path can hold
    # except lone surrogates, which json.dumps escapes as \udXXX (also rejected by TOML).
    if any(0xD800 <= ord(ch) <= 0xDFFF for ch in value):
        raise ValueError(f"path is not valid UTF-8: {value!r}")
    return json.dumps(value)


def render_config(layout: Layout, log_level: str, extra: str, major: int = 1) -> str:
    disabled = ", ".join(_toml_string(name) for name in _DISABLED_PLUGINS)
    # containerd 2.x reads version 2 configs but migrates them at every start (and
    # logs a warning); the keys written here mean the same in both versions.
    config_version = 3 if major >= 2 else 2
    return f"""# Written by pycontainerd.daemon.PrivateContainerd; rewritten at every start.
version = {config_version}
root = {_toml_string(layout.root)}
state = {_toml_string(layout.state)}
temp = {_toml_string(layout.temp)}
disabled_plugins = [{disabled}]

[grpc]
  address = {_toml_string(layout.address)}

[ttrpc]
  address = {_toml_string(layout.ttrpc_address)}

[debug]
  address = ""
  level = {_toml_string(log_level)}

[metrics]
  address = ""

[plugins]
  [plugins."io.containerd.internal.v1.opt"]
    path = {_toml_string(layout.opt)}
{extra}"""

