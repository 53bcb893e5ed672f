"""Emptying containerd namespaces through pycontainerd's own API (no ctr).

Nothing here raises for a step that fails: every failure becomes one message
in the returned list, so the caller decides whether a leftover matters.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Callable
from typing import Any

from pycontainerd import errors
from pycontainerd.api import API
from pycontainerd.api.types import Status
from pycontainerd.client import Client
from pycontainerd.daemon._config import DEFAULT_RUNC_ROOT
from pycontainerd.daemon._mounts import cgroup_roots

__all__ = ["purge_all_tasks", "purge_namespace", "purge_tasks_and_containers", "remove_namespace_dirs"]

# The snapshotters a namespace's leftovers can be in (those the private daemon loads).
_SNAPSHOTTERS = ("overlayfs", "native")
_TIMEOUT = 60.0


def _try(problems: list[str], what: str, action: Callable[..., object], *args: Any, **kwargs: Any) -> bool:
    try:
        action(*args, **kwargs)
    except (errors.ContainerdError, ValueError) as exc:
        problems.append(f"{what}: {exc}")
        return False
    return True


def _force_delete_task(api: API, task_id: str) -> None:
    # Like ctr tasks rm --force: SIGKILL every process, wait for the exit, delete.
    with contextlib.suppress(errors.NotFoundError):  # already exited: still something to delete
        api.tasks.kill(task_id, signal.SIGKILL, all=True)
    api.tasks.wait(task_id, timeout=_TIMEOUT)
    api.tasks.delete(task_id)


def _delete_container(api: API, container_id: str) -> None:
    # Its snapshot goes too, as with ctr containers rm.
    info = api.containers.get(container_id)
    api.containers.delete(container_id)
    if info.snapshotter and info.snapshot_key:
        with contextlib.suppress(errors.ContainerdError):
            api.snapshots.remove(info.snapshotter, info.snapshot_key)


def purge_tasks_and_containers(client: Client, namespace: str) -> list[str]:
    """Force-delete every task (resuming paused ones first), then every container, of ``namespace``.

    Returns:
        One message per failed step.
    """
    api = client.with_namespace(namespace).api
    problems: list[str] = []
    try:
        tasks = api.tasks.list()
    except errors.ContainerdError as exc:
        return [f"list tasks in {namespace}: {exc}"]
    for task in tasks:
        task_id = task.container_id or task.id
        if task.status in (Status.PAUSED, Status.PAUSING):
            # A frozen task cannot die: the SIGKILL of a forced delete would wait forever.
            _try(problems, f"resume task {namespace}/{task_id}", api.tasks.resume, task_id)
        _try(problems, f"delete task {namespace}/{task_id}", _force_delete_task, api, task_id)
    try:
        containers = api.containers.list()
    except errors.ContainerdError as exc:
        return [*problems, f"list containers in {namespace}: {exc}"]
    for container in containers:
        _try(problems, f"delete container {namespace}/{container.id}",
             _delete_container, api, container.id)
    return problems


def purge_all_tasks(client: Client) -> tuple[list[str], list[str]]:
    """:func:`purge_tasks_and_containers` in every namespace.

    Returns:
        The namespaces seen, and one message per failed step.
    """
    try:
        namespaces = [n.name for n in client.api.namespaces.list()]
    except errors.ContainerdError as exc:
        return [], [f"list namespaces: {exc}"]
    problems: list[str] = []
    for namespace in namespaces:
        problems += purge_tasks_and_containers(client, namespace)
    return namespaces, problems


def _purge_snapshots(api: API, namespace: str, snapshotter: str) -> list[str]:
    problems: list[str] = []
    try:
        snapshots = [(s.name, s.parent) for s in api.snapshots.list(snapshotter)]
    except errors.ContainerdError:
        return []  # that snapshotter is not loaded
    while snapshots:
        parents = {parent for _, parent in snapshots}
        leaves = [key for key, _ in snapshots if key not in parents]
        # Children go before their parents; stop when a pass removes nothing.
        removed = [key for key in leaves if _try(problems, f"delete snapshot {namespace}/{key}",
                                                   api.snapshots.remove, snapshotter, key)]
        if not removed:
            break
        snapshots = [(key, parent) for key, parent in snapshots if key not in removed]
    return problems


def purge_namespace(address: str, namespace: str, *, delete: bool = True) -> list[str]:
    """Remove everything in one containerd namespace, and by default the namespace.

    Tasks are force-deleted (paused ones resumed first), then containers (with
    their snapshots), images, leases, remaining snapshots and content blobs;
    finally the namespace, runc's per-namespace directory and the namespace's
    parent cgroup (containerd's default cgroupsPath is ``/<namespace>/<id>``).
    Nothing raises: every failure is collected.

    Args:
        address: The daemon's gRPC socket path.
        namespace: The namespace to empty.
        delete: Also delete the namespace itself.

    Returns:
        One message per failed step (empty when everything went).
    """
    client = Client(address, timeout=_TIMEOUT)
    try:
        problems = purge_tasks_and_containers(client, namespace)
        if not delete:
            return problems
        api = client.with_namespace(namespace).api
        try:
            for image in api.images.list():
                _try(problems, f"delete image {namespace}/{image.name}",
                     api.images.delete, image.name, sync=True)
        except errors.ContainerdError as exc:
            problems.append(f"list images in {namespace}: {exc}")
        try:
            for lease in api.leases.list():
                _try(problems, f"delete lease {namespace}/{lease.id}",
                     api.leases.delete, lease.id, sync=True)
        except errors.ContainerdError as exc:
            problems.append(f"list leases in {namespace}: {exc}")
        for snapshotter in _SNAPSHOTTERS:
            problems += _purge_snapshots(api, namespace, snapshotter)
        try:
            for blob in api.content.list():
                _try(problems, f"delete blob {blob.digest}",
                     api.content.delete, blob.digest)
        except errors.ContainerdError as exc:
            problems.append(f"list content in {namespace}: {exc}")
        if _try(problems, f"delete namespace {namespace}", client.api.namespaces.delete, namespace):
            remove_namespace_dirs(namespace)
        return problems
    finally:
        client.close()


def remove_namespace_dirs(namespace: str, keep: frozenset[str] = frozenset(), *,
                          cgroups: bool = True) -> None:
    """Rmdir what a namespace leaves outside containerd: runc's state dir, the parent cgroups.

    Only empty directories (and cgroups without processes or children) go, so
    another daemon's state is never touched.

    Args:
        namespace: The namespace.
        keep: Cgroup paths that existed before this daemon ran (left alone).
        cgroups: Also the namespace's parent cgroups (containerd's default cgroupsPath
            ``/<namespace>/<id>`` leaves ``/<namespace>`` behind in every hierarchy).
    """
    with contextlib.suppress(OSError):
        os.rmdir(os.path.join(DEFAULT_RUNC_ROOT, namespace))
    for root in cgroup_roots() if cgroups else ():
        path = os.path.join(root, namespace)
        if path not in keep:
            with contextlib.suppress(OSError):
                os.rmdir(path)
