"""The OCI spec builder: containerd's default shape, option composition, input validation."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from pycontainerd import oci

ROOTFS = "/srv/rootfs"


def _mount(spec: dict, destination: str) -> dict:
    (found,) = [m for m in spec["mounts"] if m["destination"] == destination]
    return found


def _namespaces(spec: dict) -> list[str]:
    return [ns["type"] for ns in spec["linux"]["namespaces"]]


# --- defaults -----------------------------------------------------------------------------------


def test_default_spec_has_containerds_shape() -> None:
    spec = oci.build(args=["/bin/true"], rootfs=ROOTFS)

    assert spec["ociVersion"] == "1.0.2-dev"
    assert spec["root"] == {"path": ROOTFS, "readonly": False}
    proc = spec["process"]
    assert proc["args"] == ["/bin/true"]
    assert proc["user"] == {"uid": 0, "gid": 0}
    assert proc["cwd"] == "/"
    assert proc["env"] == ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]
    assert proc["terminal"] is False
    assert proc["noNewPrivileges"] is True
    assert proc["rlimits"] == [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}]
    assert "hostname" not in spec
    assert "annotations" not in spec
    assert "cgroupsPath" not in spec["linux"]
    assert "uidMappings" not in spec["linux"]


def test_default_capabilities_are_containerds_fourteen() -> None:
    caps = oci.build(args=["x"], rootfs=ROOTFS)["process"]["capabilities"]

    expected = [
        "CAP_CHOWN",
        "CAP_DAC_OVERRIDE",
        "CAP_FSETID",
        "CAP_FOWNER",
        "CAP_MKNOD",
        "CAP_NET_RAW",
        "CAP_SETGID",
        "CAP_SETUID",
        "CAP_SETFCAP",
        "CAP_SETPCAP",
        "CAP_NET_BIND_SERVICE",
        "CAP_SYS_CHROOT",
        "CAP_KILL",
        "CAP_AUDIT_WRITE",
    ]
    assert set(caps) == {"bounding", "effective", "permitted"}
    for capset in caps.values():
        assert capset == expected


def test_default_namespaces_mounts_and_paths() -> None:
    spec = oci.build(args=["x"], rootfs=ROOTFS)

    assert _namespaces(spec) == ["pid", "ipc", "uts", "mount", "network"]
    assert [m["destination"] for m in spec["mounts"]] == [
        "/proc",
        "/dev",
        "/dev/pts",
        "/dev/shm",
        "/dev/mqueue",
        "/sys",
        "/run",
    ]
    assert _mount(spec, "/proc")["type"] == "proc"
    assert _mount(spec, "/dev/pts")["type"] == "devpts"
    assert "newinstance" in _mount(spec, "/dev/pts")["options"]
    assert _mount(spec, "/sys")["type"] == "sysfs"
    assert "ro" in _mount(spec, "/sys")["options"]
    assert _mount(spec, "/run")["type"] == "tmpfs"
    assert "/proc/kcore" in spec["linux"]["maskedPaths"]
    assert "/sys/firmware" in spec["linux"]["maskedPaths"]
    assert "/proc/sysrq-trigger" in spec["linux"]["readonlyPaths"]
    assert spec["linux"]["resources"] == {"devices": [{"allow": False, "access": "rwm"}]}


def test_spec_is_json_serialisable_and_fresh_each_call() -> None:
    first = oci.build(args=["x"], rootfs=ROOTFS)
    first["mounts"][0]["options"].append("changed")
    first["process"]["capabilities"]["bounding"].clear()
    second = oci.build(args=["x"], rootfs=ROOTFS)

    assert "changed" not in second["mounts"][0]["options"]
    assert len(second["process"]["capabilities"]["bounding"]) == 14
    assert json.loads(json.dumps(second)) == second


def test_rootfs_accepts_pathlike_and_bundle_rootfs() -> None:
    assert oci.build(args=["x"], rootfs=Path("/srv/r/"))["root"]["path"] == "/srv/r"
    assert oci.build(args=["x"], rootfs=oci.BUNDLE_ROOTFS)["root"]["path"] == "rootfs"


# --- options ------------------------------------------------------------------------------------


def test_env_mapping_and_list_merge_over_path() -> None:
    spec = oci.build(args=["x"], rootfs=ROOTFS, env={"A": "1", "PATH": "/bin"})
    assert spec["process"]["env"] == ["PATH=/bin", "A=1"]

    spec = oci.build(args=["x"], rootfs=ROOTFS, env=["A=1", "B=x=y", "A=2"])
    assert spec["process"]["env"] == [oci.DEFAULT_PATH_ENV, "A=2", "B=x=y"]


def test_tty_sets_terminal_and_term_unless_given() -> None:
    assert oci.build(args=["x"], rootfs=ROOTFS, tty=True)["process"]["terminal"] is True
    assert "TERM=xterm" in oci.build(args=["x"], rootfs=ROOTFS, tty=True)["process"]["env"]
    env = oci.build(args=["x"], rootfs=ROOTFS, tty=True, env={"TERM": "dumb"})["process"]["env"]
    assert [e for e in env if e.startswith("TERM=")] == ["TERM=dumb"]


@pytest.mark.parametrize(
    ("user", "expected"),
    [("1000", (1000, 0)), ("1000:100", (1000, 100)), (7, (7, 0)), ((5, 6), (5, 6)), (None, (0, 0))],
)
def test_user_forms(user: object, expected: tuple[int, int]) -> None:
    spec = oci.build(args=["x"], rootfs=ROOTFS, user=user)  # type: ignore[arg-type]
    assert (spec["process"]["user"]["uid"], spec["process"]["user"]["gid"]) == expected


def test_options_compose() -> None:
    spec = oci.build(
        args=["/bin/sh", "-c", "echo hi"],
        rootfs=ROOTFS,
        cwd="/tmp",
        readonly_rootfs=True,
        hostname="box",
        host_network=True,
        resources=oci.Resources(memory=64 << 20, cpus=0.5, pids=32),
        annotations={"a": "b"},
        namespace="ns1",
        container_id="c1",
        mounts=[{"destination": "/data", "type": "bind", "source": "/srv/data", "options": ["rbind", "ro"]}],
    )

    assert spec["process"]["cwd"] == "/tmp"
    assert spec["root"]["readonly"] is True
    assert spec["hostname"] == "box"
    assert "network" not in _namespaces(spec)
    assert _namespaces(spec) == ["pid", "ipc", "uts", "mount"]
    resources = spec["linux"]["resources"]
    assert resources["memory"] == {"limit": 64 << 20}
    assert resources["cpu"] == {"quota": 50_000, "period": 100_000}
    assert resources["pids"] == {"limit": 32}
    assert resources["devices"] == [{"allow": False, "access": "rwm"}]
    assert spec["annotations"] == {"a": "b"}
    assert spec["linux"]["cgroupsPath"] == "/ns1/c1"
    assert _mount(spec, "/data")["source"] == "/srv/data"


def test_explicit_cgroups_path_wins() -> None:
    spec = oci.build(args=["x"], rootfs=ROOTFS, namespace="n", container_id="c", cgroups_path="/custom/c")
    assert spec["linux"]["cgroupsPath"] == "/custom/c"


def test_extra_mount_replaces_default_destination() -> None:
    spec = oci.build(
        args=["x"], rootfs=ROOTFS, mounts=[{"destination": "/run", "type": "bind", "source": "/r"}]
    )
    assert [m["destination"] for m in spec["mounts"]].count("/run") == 1
    assert _mount(spec, "/run")["type"] == "bind"


def test_raw_resources_mapping_is_merged() -> None:
    spec = oci.build(args=["x"], rootfs=ROOTFS, resources={"memory": {"limit": 1 << 20}})
    assert spec["linux"]["resources"] == {
        "devices": [{"allow": False, "access": "rwm"}],
        "memory": {"limit": 1 << 20},
    }


def test_user_namespace_mappings() -> None:
    spec = oci.build(args=["x"], rootfs=ROOTFS, uid_mappings=[(0, 100000, 65536)])

    assert _namespaces(spec)[-1] == "user"
    assert spec["linux"]["uidMappings"] == [{"containerID": 0, "hostID": 100000, "size": 65536}]
    # gid extents default to the uid extents.
    assert spec["linux"]["gidMappings"] == spec["linux"]["uidMappings"]
    assert _mount(spec, "/sys")["type"] == "sysfs"


@dataclass(frozen=True)
class _Extent:
    container_id: int
    host_id: int
    size: int


def test_user_namespace_mapping_forms_and_host_network_sys_bind() -> None:
    spec = oci.build(
        args=["x"],
        rootfs=ROOTFS,
        user="1:2",
        uid_mappings=[_Extent(0, 200000, 10)],
        gid_mappings=[{"containerID": 0, "hostID": 300000, "size": 10}],
        host_network=True,
    )

    assert spec["linux"]["uidMappings"] == [{"containerID": 0, "hostID": 200000, "size": 10}]
    assert spec["linux"]["gidMappings"] == [{"containerID": 0, "hostID": 300000, "size": 10}]
    # sysfs cannot be mounted from a user namespace that does not own the network namespace.
    assert _mount(spec, "/sys")["type"] == "bind"
    assert _mount(spec, "/sys")["source"] == "/sys"


def test_resources_to_spec_for_updates() -> None:
    assert oci.Resources().to_spec() == {}
    assert oci.Resources(cpus=2).to_spec() == {"cpu": {"quota": 200_000, "period": 100_000}}


def test_process_for_exec() -> None:
    proc = oci.process(["/bin/sh"], env={"X": "1"}, cwd="/tmp", user="5:6", tty=True)

    assert proc["args"] == ["/bin/sh"]
    assert proc["env"] == [oci.DEFAULT_PATH_ENV, "X=1", "TERM=xterm"]
    assert proc["cwd"] == "/tmp"
    assert proc["user"] == {"uid": 5, "gid": 6}
    assert proc["terminal"] is True
    assert proc["capabilities"]["effective"] == list(oci.DEFAULT_CAPABILITIES)
    spec = oci.build(args=["/bin/sh"], rootfs=ROOTFS, env={"X": "1"}, cwd="/tmp", user="5:6", tty=True)
    assert proc == spec["process"]


def test_custom_capabilities() -> None:
    proc = oci.process(["x"], capabilities=["CAP_KILL"])
    assert proc["capabilities"] == {
        "bounding": ["CAP_KILL"],
        "effective": ["CAP_KILL"],
        "permitted": ["CAP_KILL"],
    }


# --- validation ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"args": []}, "args must not be empty"),
        ({"args": [""]}, "args\\[0\\]"),
        ({"args": ["a\0b"]}, "NUL"),
        ({"rootfs": "relative/dir"}, "rootfs must be an absolute path"),
        ({"rootfs": ""}, "rootfs must be an absolute path"),
        ({"rootfs": "/srv/../etc"}, "'..'"),
        ({"rootfs": "/"}, "host's root"),
        ({"cwd": "tmp"}, "cwd must be an absolute path"),
        ({"user": "root"}, "numeric"),
        ({"user": "1000:staff"}, "numeric"),
        ({"user": "-1"}, "numeric"),
        ({"user": 2**31}, "uid must be in"),
        ({"user": (1, 2, 3)}, "\\(uid, gid\\)"),
        ({"env": ["NOEQUALS"]}, "KEY=VALUE"),
        ({"env": ["=value"]}, "non-empty key"),
        ({"hostname": ""}, "hostname"),
        ({"hostname": "h" * 65}, "hostname"),
        ({"namespace": "ns"}, "go together"),
        ({"namespace": "a/b", "container_id": "c"}, "single non-empty path component"),
        ({"cgroups_path": "relative"}, "cgroups_path must be an absolute path"),
        ({"mounts": [{"destination": "data"}]}, "mount destination must be an absolute path"),
        ({"capabilities": ["NET_ADMIN"]}, "CAP_NET_ADMIN"),
        ({"annotations": {"": "v"}}, "annotation keys"),
    ],
)
def test_bad_values_raise_value_error(kwargs: dict, message: str) -> None:
    options = {"args": ["/bin/true"], "rootfs": ROOTFS, **kwargs}
    with pytest.raises(ValueError, match=message):
        oci.build(**options)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"args": "/bin/true"}, "args must be a sequence"),
        ({"args": [1]}, "args\\[0\\] must be a str"),
        ({"rootfs": 5}, "rootfs must be a str"),
        ({"user": 1.5}, "user must be"),
        ({"user": True}, "user must be"),
        ({"env": "A=1"}, "env must be a mapping"),
        ({"env": {"A": 1}}, "must be a str"),
        ({"tty": 1}, "tty must be a bool"),
        ({"host_network": "yes"}, "host_network must be a bool"),
        ({"resources": 5}, "resources must be"),
        ({"annotations": ["a"]}, "annotations must be a mapping"),
        ({"mounts": ["/data"]}, "each mount must be a mapping"),
        ({"capabilities": "CAP_KILL"}, "not a single str"),
        ({"uid_mappings": [(0, "1", 1)]}, "must be an int"),
        ({"uid_mappings": [[0, 1, 1]]}, "tuple"),
    ],
)
def test_bad_types_raise_type_error(kwargs: dict, message: str) -> None:
    options = {"args": ["/bin/true"], "rootfs": ROOTFS, **kwargs}
    with pytest.raises(TypeError, match=message):
        oci.build(**options)


@pytest.mark.parametrize(
    ("uid_mappings", "message"),
    [
        ([], "must not be empty"),
        ([(0, 100000, 0)], "has size 0"),
        ([(0, 2**32 - 10, 100)], r"extends past 2\*\*32"),
        ([(-1, 0, 10)], "must not be negative"),
        ([(0, 100000, 10), (5, 200000, 10)], "overlap on the container side"),
        ([(0, 100000, 10), (10, 100005, 10)], "overlap on the host side"),
        ([(1, 100000, 10)], "must map container id 0"),
        ([(i * 2, 100000 + i * 2, 1) for i in range(341)], "limit of 340"),
        ([{"containerID": 0, "hostID": 1}], "lacks 'size'"),
    ],
)
def test_bad_id_mappings(uid_mappings: list, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        oci.build(args=["x"], rootfs=ROOTFS, uid_mappings=uid_mappings)


def test_user_outside_mappings_is_refused() -> None:
    with pytest.raises(ValueError, match="uid 2000 is not mapped"):
        oci.build(args=["x"], rootfs=ROOTFS, user=2000, uid_mappings=[(0, 100000, 1000)])
    with pytest.raises(ValueError, match="gid 7 is not mapped"):
        oci.build(
            args=["x"],
            rootfs=ROOTFS,
            user="0:7",
            uid_mappings=[(0, 100000, 10)],
            gid_mappings=[(0, 100000, 5)],
        )


def test_gid_mappings_need_uid_mappings() -> None:
    with pytest.raises(ValueError, match="without uid_mappings"):
        oci.build(args=["x"], rootfs=ROOTFS, gid_mappings=[(0, 100000, 10)])


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"memory": 0}, ValueError),
        ({"pids": -1}, ValueError),
        ({"cpus": 0.001}, ValueError),
        ({"memory": "1G"}, TypeError),
        ({"cpus": "1"}, TypeError),
        ({"pids": True}, TypeError),
    ],
)
def test_bad_resources(kwargs: dict, error: type[Exception]) -> None:
    with pytest.raises(error):
        oci.Resources(**kwargs)
