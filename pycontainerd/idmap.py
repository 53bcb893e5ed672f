"""User-namespace ID maps: validation, host-id lookup and an OCI spec's root user.

libcontainerd's ``hostIDFromMap``/``getSpecUser``, made strict:

* moby computes ``ContainerID + Size - 1`` in uint32, so a ``Size == 0``
  mapping wraps around and matches every id; here arithmetic is on Python
  ints and every map is validated first (:func:`validate_mappings`, the
  kernel's own rules for ``/proc/<pid>/uid_map``).
* moby returns 0 (host root) for an id no range maps, which silently sends
  a user-namespaced container's bundle down the root-owned path and gives
  its IO to host root. :func:`host_id_from_map` raises :class:`LookupError`
  instead: an unmapped container root is a broken spec, never root.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterable, Mapping
from typing import Any, Final

#: One past the largest id: ranges must end at or below it.
ID_LIMIT: Final = 2**32
#: The kernel's limit on lines in a uid_map/gid_map (Linux >= 4.15).
MAX_EXTENTS: Final = 340


def _check_int(value: object, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{what} must be an int, not {type(value).__name__}")
    if value < 0:
        raise ValueError(f"{what} must not be negative: {value}")
    return value


@dataclasses.dataclass(frozen=True)
class IDMapping:
    """One extent of a uid or gid map: ``size`` ids from ``container_id`` map to ``host_id`` onwards.

    Attributes:
        container_id: First id inside the user namespace.
        host_id: First id on the host.
        size: Number of ids in the extent.
    """

    container_id: int
    host_id: int
    size: int

    def __post_init__(self) -> None:
        _check_int(self.container_id, "container_id")
        _check_int(self.host_id, "host_id")
        _check_int(self.size, "size")

    @classmethod
    def from_oci(cls, mapping: Mapping[str, Any]) -> IDMapping:
        """Build from an OCI ``linux.uidMappings``/``gidMappings`` entry.

        Args:
            mapping: ``{"containerID": ..., "hostID": ..., "size": ...}``.

        Returns:
            The mapping.

        Raises:
            ValueError: A key is missing or a value is negative.
            TypeError: A value is not an int.
        """
        try:
            return cls(mapping["containerID"], mapping["hostID"], mapping["size"])
        except KeyError as exc:
            raise ValueError(f"ID mapping {dict(mapping)!r} lacks {exc.args[0]!r}") from None


def _coerce(mapping: IDMapping | Mapping[str, Any]) -> IDMapping:
    if isinstance(mapping, IDMapping):
        return mapping
    if isinstance(mapping, Mapping):
        return IDMapping.from_oci(mapping)
    raise TypeError(f"expected an IDMapping or an OCI mapping dict, not {type(mapping).__name__}")


def _check_disjoint(extents: list[IDMapping], side: str) -> None:
    def start(m: IDMapping) -> int:
        return m.container_id if side == "container" else m.host_id

    ordered = sorted(extents, key=start)
    for before, after in itertools.pairwise(ordered):
        if start(before) + before.size > start(after):
            raise ValueError(f"ID mappings {before} and {after} overlap on the {side} side")


def validate_mappings(maps: Iterable[IDMapping | Mapping[str, Any]]) -> tuple[IDMapping, ...]:
    """Check a uid or gid map by the kernel's rules.

    Args:
        maps: :class:`IDMapping` objects or OCI-style dicts (``containerID``, ``hostID``, ``size``).

    Returns:
        The mappings as :class:`IDMapping`, in the given order.

    Raises:
        ValueError: An extent has size 0 or ends past ``2**32`` on either side,
            two extents overlap on either side, or there are more than 340.
        TypeError: An entry has the wrong type.
    """
    extents = [_coerce(m) for m in maps]
    if len(extents) > MAX_EXTENTS:
        raise ValueError(f"{len(extents)} ID mappings exceed the kernel's limit of {MAX_EXTENTS}")
    for m in extents:
        if m.size == 0:
            raise ValueError(f"ID mapping {m} has size 0")
        if m.container_id + m.size > ID_LIMIT or m.host_id + m.size > ID_LIMIT:
            raise ValueError(f"ID mapping {m} extends past 2**32")
    _check_disjoint(extents, "container")
    _check_disjoint(extents, "host")
    return tuple(extents)


def host_id_from_map(id: int, mappings: Iterable[IDMapping | Mapping[str, Any]]) -> int:
    """The host id that container id ``id`` maps to; the first extent containing it wins.

    Args:
        id: A uid or gid inside the user namespace (``0..2**32-1``).
        mappings: The uid or gid map (validated with :func:`validate_mappings`).

    Returns:
        The host id.

    Raises:
        LookupError: No extent contains ``id``. (libcontainerd returns 0, i.e. host
            root, here; an unmapped id must never become root.)
        ValueError: ``id`` is out of range or the map is invalid.
        TypeError: An argument has the wrong type.
    """
    _check_int(id, "id")
    if id >= ID_LIMIT:
        raise ValueError(f"id {id} out of range 0..{ID_LIMIT - 1}")
    for m in validate_mappings(mappings):
        if m.container_id <= id < m.container_id + m.size:
            return m.host_id + (id - m.container_id)
    raise LookupError(f"id {id} is not mapped by any ID mapping")


def spec_user(spec: Mapping[str, Any]) -> tuple[int, int]:
    """The host ``(uid, gid)`` of the container's root, from an OCI runtime spec.

    ``(0, 0)`` unless ``linux.namespaces`` has a ``user`` namespace; then the
    host ids that container uid 0 and gid 0 map to via ``linux.uidMappings``
    and ``linux.gidMappings``. These are what the bundle directory
    (:func:`pycontainerd.bundle.prepare_bundle_dir`) and the runc ``io_uid``/``io_gid``
    options need.

    Args:
        spec: The OCI spec as a dict.

    Returns:
        ``(uid, gid)`` on the host.

    Raises:
        ValueError: A user namespace without uid or gid mappings, or invalid mappings.
        LookupError: The mappings do not map container id 0.
        TypeError: The spec has the wrong shape.
    """
    linux = spec.get("linux") or {}
    if not isinstance(linux, Mapping):
        raise TypeError("spec['linux'] must be a mapping")
    namespaces = linux.get("namespaces") or []
    if not any(isinstance(ns, Mapping) and ns.get("type") == "user" for ns in namespaces):
        return 0, 0
    uid_maps = linux.get("uidMappings") or []
    gid_maps = linux.get("gidMappings") or []
    if not uid_maps or not gid_maps:
        raise ValueError("the spec has a user namespace but no uidMappings/gidMappings")
    return host_id_from_map(0, uid_maps), host_id_from_map(0, gid_maps)


__all__ = ["ID_LIMIT", "MAX_EXTENTS", "IDMapping", "host_id_from_map", "spec_user", "validate_mappings"]
