"""ID maps: validation by the kernel's rules, strict host-id lookup, an OCI spec's root user."""

from __future__ import annotations

from typing import Any

import pytest

from pycontainerd.idmap import IDMapping, host_id_from_map, spec_user, validate_mappings

M = IDMapping


def test_mapping_is_frozen_and_checks_types() -> None:
    m = M(0, 100000, 65536)
    with pytest.raises(AttributeError):
        m.size = 1  # type: ignore[misc]
    with pytest.raises(TypeError):
        M(0, 1, True)
    with pytest.raises(TypeError):
        M(0, "1", 1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="negative"):
        M(-1, 0, 1)


@pytest.mark.parametrize(
    "maps",
    [
        [],
        [M(0, 100000, 65536)],
        [M(0, 1000, 1), M(1, 100000, 65535)],
        [M(0, 0, 2**32)],  # the identity map, as the initial namespace has
        [M(2**32 - 1, 0, 1), M(0, 2**32 - 1, 1)],  # extents ending exactly at 2**32
        [M(i, 1000 + i, 1) for i in range(340)],
        [{"containerID": 0, "hostID": 100000, "size": 10}],
    ],
)
def test_valid_mappings(maps: list[Any]) -> None:
    assert all(isinstance(m, IDMapping) for m in validate_mappings(maps))


@pytest.mark.parametrize(
    ("maps", "match"),
    [
        ([M(0, 100000, 0)], "size 0"),
        ([M(2**32 - 1, 0, 2)], "past 2"),
        ([M(0, 2**32 - 1, 2)], "past 2"),
        ([M(0, 2**32, 1)], "past 2"),
        ([M(0, 1000, 10), M(9, 2000, 10)], "overlap on the container side"),
        ([M(0, 1000, 10), M(100, 1009, 10)], "overlap on the host side"),
        ([M(5, 1000, 10), M(0, 2000, 10)], "overlap on the container side"),  # unsorted input
        ([M(0, 1000, 1), M(0, 2000, 1)], "overlap on the container side"),
        ([M(i, 1000 + i, 1) for i in range(341)], "340"),
        ([{"containerID": 0, "hostID": 1}], "lacks 'size'"),
    ],
)
def test_invalid_mappings(maps: list[Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        validate_mappings(maps)


def test_invalid_mapping_type() -> None:
    with pytest.raises(TypeError):
        validate_mappings([(0, 1, 1)])  # type: ignore[list-item]


def test_host_id_from_map() -> None:
    maps = [M(0, 100000, 1000), M(1000, 500000, 10)]
    assert host_id_from_map(0, maps) == 100000
    assert host_id_from_map(999, maps) == 100999
    assert host_id_from_map(1000, maps) == 500000
    assert host_id_from_map(1009, maps) == 500009
    oci = [{"containerID": 0, "hostID": 100000, "size": 1000}]
    assert host_id_from_map(5, oci) == 100005


@pytest.mark.parametrize("container_id", [1010, 2**32 - 1])
def test_unmapped_id_is_an_error_not_root(container_id: int) -> None:
    with pytest.raises(LookupError, match="not mapped"):
        host_id_from_map(container_id, [M(0, 100000, 1000), M(1000, 500000, 10)])
    with pytest.raises(LookupError):
        host_id_from_map(0, [])


def test_no_wraparound() -> None:
    # moby: ContainerID + Size - 1 in uint32 wraps for Size == 0 and matches every id.
    with pytest.raises(ValueError, match="size 0"):
        host_id_from_map(5, [M(0, 100000, 0)])
    # The last ids of the range map without overflow.
    assert host_id_from_map(2**32 - 1, [M(2**32 - 10, 10, 10)]) == 19


@pytest.mark.parametrize("bad", [-1, 2**32])
def test_host_id_from_map_range(bad: int) -> None:
    with pytest.raises(ValueError, match="id"):
        host_id_from_map(bad, [M(0, 0, 2**32)])


def userns_spec(**linux: Any) -> dict[str, Any]:
    return {"linux": {"namespaces": [{"type": "pid"}, {"type": "user"}], **linux}}


def test_spec_user_without_userns() -> None:
    assert spec_user({}) == (0, 0)
    assert spec_user({"linux": {}}) == (0, 0)
    assert spec_user({"linux": {"namespaces": [{"type": "pid"}, {"type": "mount"}]}}) == (0, 0)
    # Mappings without a user namespace do not apply.
    assert spec_user({"linux": {"uidMappings": [{"containerID": 0, "hostID": 7, "size": 1}]}}) == (0, 0)


def test_spec_user_with_userns() -> None:
    spec = userns_spec(
        uidMappings=[{"containerID": 0, "hostID": 100000, "size": 65536}],
        gidMappings=[
            {"containerID": 1, "hostID": 300000, "size": 10},
            {"containerID": 0, "hostID": 200000, "size": 1},
        ],
    )
    assert spec_user(spec) == (100000, 200000)


@pytest.mark.parametrize(
    "linux",
    [
        {},
        {"uidMappings": [{"containerID": 0, "hostID": 1, "size": 1}]},
        {"gidMappings": [{"containerID": 0, "hostID": 1, "size": 1}]},
        {"uidMappings": [], "gidMappings": []},
    ],
)
def test_spec_user_userns_without_mappings(linux: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="no uidMappings/gidMappings"):
        spec_user(userns_spec(**linux))


def test_spec_user_root_unmapped() -> None:
    spec = userns_spec(
        uidMappings=[{"containerID": 1, "hostID": 100000, "size": 10}],
        gidMappings=[{"containerID": 0, "hostID": 100000, "size": 10}],
    )
    with pytest.raises(LookupError):
        spec_user(spec)


def test_spec_user_invalid_mappings() -> None:
    spec = userns_spec(
        uidMappings=[{"containerID": 0, "hostID": 100000, "size": 0}],
        gidMappings=[{"containerID": 0, "hostID": 100000, "size": 10}],
    )
    with pytest.raises(ValueError, match="size 0"):
        spec_user(spec)
