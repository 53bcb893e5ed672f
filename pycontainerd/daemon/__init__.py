"""A private containerd for tests and the embedded daemon, and the containerd versions it can run.

* :class:`PrivateContainerd` (:mod:`._private`): the process, its base directory and cleanup;
* :func:`purge_namespace` (:mod:`._purge`): empty a namespace through the client's API;
* :func:`find_shims` (:mod:`._procs`): the shims serving a daemon, found by process;
* :func:`cached_binary`, :func:`binary_version` (:mod:`._binaries`): the 1.6/1.7/2.x matrix;
* :class:`DaemonError`; :mod:`._config` (layout, config.toml) and :mod:`._mounts` (mounts, cgroups).
"""

from __future__ import annotations

from pycontainerd.daemon._binaries import binary_version, cached_binary
from pycontainerd.daemon._errors import DaemonError
from pycontainerd.daemon._private import PrivateContainerd
from pycontainerd.daemon._procs import find_shims
from pycontainerd.daemon._purge import purge_namespace

__all__ = [
    "DaemonError",
    "PrivateContainerd",
    "binary_version",
    "cached_binary",
    "find_shims",
    "purge_namespace",
]
