"""The private containerd harness, the busybox helpers and oci.build, against the real daemon.

Tasks are driven with ``ctr`` (containerd's Go client) so these tests check
the harness independently of pycontainerd's own client.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pycontainerd import Client, oci, stdio, testing
from pycontainerd.daemon import DaemonError, PrivateContainerd

CGROUP_V2 = os.path.exists("/sys/fs/cgroup/cgroup.controllers")


def require_local_containerd() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to run containerd")
    if shutil.which("containerd") is None or shutil.which("ctr") is None:
        pytest.skip("needs the containerd and ctr binaries")


@pytest.fixture
def make_daemon(containerd_daemon: object) -> Iterator[Callable[..., PrivateContainerd]]:
    """Private daemons of the test's own (the session's containerd version), closed and checked at the end."""
    require_local_containerd()
    made: list[PrivateContainerd] = []
    binary = getattr(containerd_daemon, "binary", "containerd")

    def make(*args: object, **kwargs: object) -> PrivateContainerd:
        kwargs.setdefault("binary", binary)
        daemon = PrivateContainerd(*args, **kwargs)  # type: ignore[arg-type]
        made.append(daemon)
        return daemon

    yield make
    for daemon in made:
        daemon.close()
        assert testing.find_shims(daemon.address) == []


def ns_name() -> str:
    # Unique: other daemons on this host share containerd's default runc root.
    return f"pcd-d-{uuid.uuid4().hex[:8]}"


def ctr(
    address: str, namespace: str | None, *args: str, check: bool = True
) -> subprocess.CompletedProcess[str]:
    argv = ["ctr", "--address", address]
    if namespace is not None:
        argv += ["--namespace", namespace]
    done = subprocess.run([*argv, *args], capture_output=True, text=True, timeout=120, check=False)
    if check and done.returncode != 0:
        raise AssertionError(f"{' '.join(argv + list(args))} failed ({done.returncode}): {done.stderr}")
    return done


def tasks(address: str, namespace: str) -> dict[str, tuple[int, str]]:
    """ctr tasks list: id -> (pid, status)."""
    rows = [line.split() for line in ctr(address, namespace, "tasks", "list").stdout.splitlines()[1:]]
    return {row[0]: (int(row[1]), row[2]) for row in rows if row}


def run_detached(daemon: PrivateContainerd, namespace: str, container_id: str, rootfs: str) -> int:
    flags = ["-d", "--null-io", "--runc-root", daemon.runc_root, "--rootfs"]
    ctr(daemon.address, namespace, "run", *flags, rootfs, container_id, "/bin/sleep", "1000")
    return tasks(daemon.address, namespace)[container_id][0]


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except FileNotFoundError:
        return False


def mounts_under(path: str) -> list[str]:
    with open("/proc/self/mountinfo") as f:
        points = [line.split()[4] for line in f]
    return [p for p in points if p == path or p.startswith(path + "/")]


def cgroup_dir(controller: str, *parts: str) -> str:
    root = "/sys/fs/cgroup" if CGROUP_V2 else f"/sys/fs/cgroup/{controller}"
    return os.path.join(root, *parts)


# --- start / stop / kill / restart ---------------------------------------------------------------


def test_start_serves_and_stop_ends_it(make_daemon: Callable[..., PrivateContainerd]) -> None:
    daemon = make_daemon()
    assert daemon.pid is None
    assert not daemon.is_serving()
    assert len(os.fsencode(daemon.ttrpc_address)) <= 107

    daemon.start()
    pid = daemon.pid
    assert pid is not None
    assert daemon.is_serving()
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        assert daemon.config_path.encode() in f.read().split(b"\0")
    version = ctr(daemon.address, None, "version").stdout
    assert "Server:" in version
    plugins = ctr(daemon.address, None, "plugins", "list").stdout
    assert "io.containerd.grpc.v1.cri" not in plugins
    assert os.path.isdir(daemon.root)
    assert os.path.isdir(daemon.state)
    assert os.path.getsize(daemon.log_path) > 0

    daemon.stop()
    assert daemon.pid is None
    assert not daemon.is_serving()
    assert not alive(pid)

    daemon.start()
    assert daemon.is_serving()
    assert daemon.pid != pid


def test_start_twice_is_refused(make_daemon: Callable[..., PrivateContainerd]) -> None:
    daemon = make_daemon()
    daemon.start()
    with pytest.raises(DaemonError, match="already running"):
        daemon.start()


def test_failed_start_reports_the_log(make_daemon: Callable[..., PrivateContainerd]) -> None:
    daemon = make_daemon(config_extra="[plugins\n")

    with pytest.raises(DaemonError, match="exited with status") as info:
        daemon.start()

    assert "TOML" in info.value.log_tail
    assert "TOML" in str(info.value)
    assert daemon.pid is None


def test_start_timeout_kills_and_reports_the_log(
    make_daemon: Callable[..., PrivateContainerd], tmp_path: Path
) -> None:
    never_serves = tmp_path / "fake-containerd"
    never_serves.write_text("#!/bin/sh\necho fake daemon up\nexec sleep 1000\n")
    never_serves.chmod(0o755)
    daemon = make_daemon(binary=str(never_serves))

    with pytest.raises(DaemonError, match="did not serve") as info:
        daemon.start(timeout=1)

    assert "fake daemon up" in info.value.log_tail
    assert daemon.pid is None


def test_too_long_base_dir_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="107 bytes"):
        PrivateContainerd(tmp_path / ("x" * 100), safety_net=False)


def test_killed_daemon_restarts_and_finds_its_task(
    make_daemon: Callable[..., PrivateContainerd], rootfs: str
) -> None:
    daemon = make_daemon()
    daemon.start()
    ns = ns_name()
    task_pid = run_detached(daemon, ns, "survivor", rootfs)
    (shim,) = daemon.shim_pids()
    old_pid = daemon.pid

    daemon.kill()
    assert daemon.pid is None
    assert old_pid is not None
    assert not alive(old_pid)
    # A crashed containerd leaves its shims and containers running.
    assert alive(shim)
    assert alive(task_pid)

    daemon.start()
    assert tasks(daemon.address, ns) == {"survivor": (task_pid, "RUNNING")}
    assert daemon.shim_pids() == [shim]

    daemon.restart(kill=True)
    assert tasks(daemon.address, ns) == {"survivor": (task_pid, "RUNNING")}

    # The reconnected daemon still controls the task.
    ctr(daemon.address, ns, "tasks", "kill", "--signal", "SIGKILL", "survivor")
    # Kill only sends the signal: the task is STOPPED once the shim reported the exit.
    deadline = time.monotonic() + 60
    while tasks(daemon.address, ns)["survivor"][1] != "STOPPED" and time.monotonic() < deadline:
        time.sleep(0.02)
    ctr(daemon.address, ns, "tasks", "delete", "survivor")
    ctr(daemon.address, ns, "containers", "delete", "survivor")
    assert not alive(task_pid)


def test_graceful_restart_keeps_tasks(make_daemon: Callable[..., PrivateContainerd], rootfs: str) -> None:
    daemon = make_daemon()
    daemon.start()
    ns = ns_name()
    task_pid = run_detached(daemon, ns, "survivor", rootfs)

    daemon.restart()

    assert daemon.is_serving()
    assert tasks(daemon.address, ns) == {"survivor": (task_pid, "RUNNING")}


# --- cleanup -------------------------------------------------------------------------------------


def test_cleanup_empties_every_namespace_and_keeps_serving(
    make_daemon: Callable[..., PrivateContainerd], rootfs: str
) -> None:
    daemon = make_daemon()
    daemon.start()
    ns1, ns2 = ns_name(), ns_name()
    pids = [run_detached(daemon, ns1, "a", rootfs), run_detached(daemon, ns2, "b", rootfs)]
    ctr(daemon.address, ns1, "containers", "create", "--rootfs", rootfs,
        "no-task", "/bin/true")  # fmt: skip
    run_detached(daemon, ns2, "paused", rootfs)
    ctr(daemon.address, ns2, "tasks", "pause", "paused")
    assert len(daemon.shim_pids()) == 3

    daemon.cleanup()

    assert daemon.is_serving()
    assert daemon.shim_pids() == []
    assert not any(alive(pid) for pid in pids)
    for ns in (ns1, ns2):
        assert tasks(daemon.address, ns) == {}
        assert ctr(daemon.address, ns, "containers", "list", "--quiet").stdout == ""
    assert os.listdir(daemon.runc_root) in ([], [ns1, ns2], [ns2, ns1]) or all(
        os.listdir(os.path.join(daemon.runc_root, ns)) == [] for ns in os.listdir(daemon.runc_root)
    )


def test_close_removes_tasks_shims_mounts_cgroups_and_dirs(
    make_daemon: Callable[..., PrivateContainerd], rootfs: str, tmp_path: Path
) -> None:
    daemon = make_daemon()
    daemon.start()
    ns = ns_name()
    archive = testing.busybox_image_archive(tmp_path / "busybox.tar")
    ctr(daemon.address, ns, "images", "import", archive)
    # An image-based task: its rootfs is an overlay mounted under the daemon's state dir.
    ctr(
        daemon.address,
        ns,
        "run",
        "-d",
        "--null-io",
        testing.BUSYBOX_IMAGE_NAME,
        "from-image",
        "/bin/sleep",
        "1000",
    )
    # A task on the default (shared) runc root, as a plain client would create it.
    ctr(daemon.address, ns, "run", "-d", "--null-io", "--rootfs", rootfs, "shared-root", "/bin/sleep", "1000")
    pids = [pid for pid, _ in tasks(daemon.address, ns).values()]
    shims = daemon.shim_pids()
    assert len(shims) == 2
    assert mounts_under(daemon.base_dir), "the image task should have a rootfs mount under the base dir"
    assert os.path.isdir(cgroup_dir("pids", ns, "from-image"))

    daemon.close()

    assert daemon.pid is None
    assert testing.find_shims(daemon.address) == []
    assert not any(alive(pid) for pid in [*pids, *shims])
    assert mounts_under(daemon.base_dir) == []
    assert not os.path.exists(daemon.base_dir)
    assert not os.path.exists(cgroup_dir("pids", ns))
    assert not os.path.exists(os.path.join("/run/containerd/runc", ns))


def test_close_after_a_crash_still_removes_everything(
    make_daemon: Callable[..., PrivateContainerd], rootfs: str
) -> None:
    daemon = make_daemon()
    daemon.start()
    ns = ns_name()
    task_pid = run_detached(daemon, ns, "orphan", rootfs)
    shims = daemon.shim_pids()
    daemon.kill()

    daemon.close()

    assert not alive(task_pid)
    assert not any(alive(pid) for pid in shims)
    assert not os.path.exists(daemon.base_dir)
    assert not os.path.exists(cgroup_dir("pids", ns))


def test_close_without_a_usable_daemon_ends_shims_by_pid(
    make_daemon: Callable[..., PrivateContainerd], rootfs: str
) -> None:
    daemon = make_daemon()
    daemon.start()
    ns = ns_name()
    task_pid = run_detached(daemon, ns, "orphan", rootfs)
    ctr(daemon.address, ns, "tasks", "pause", "orphan")
    shims = daemon.shim_pids()
    bundle = Path(daemon.state, "io.containerd.runtime.v2.task", ns, "orphan")
    # containerd 1.6/1.7 write the shim's socket to `address`, 2.x to `bootstrap.json`.
    if bundle.joinpath("address").exists():
        shim_socket = bundle.joinpath("address").read_text().strip().removeprefix("unix://")
    else:
        shim_socket = json.loads(bundle.joinpath("bootstrap.json").read_text())["address"].removeprefix("unix://")
    assert os.path.exists(shim_socket)
    daemon.kill()
    # Without its metadata the daemon cannot be brought back to delete the task:
    # cleanup must fall back to killing the shim's process tree and runc delete.
    os.unlink(os.path.join(daemon.root, "io.containerd.metadata.v1.bolt", "meta.db"))

    daemon.close()

    assert not alive(task_pid)
    assert not any(alive(pid) for pid in shims)
    assert not os.path.exists(daemon.base_dir)
    assert not os.path.exists(cgroup_dir("pids", ns, "orphan"))
    # The SIGKILLed shim could not remove its socket (in the shared /run/containerd/s).
    assert not os.path.exists(shim_socket)


def test_two_daemons_side_by_side(make_daemon: Callable[..., PrivateContainerd], rootfs: str) -> None:
    first, second = make_daemon(), make_daemon()
    first.start()
    second.start()
    assert first.address != second.address
    assert first.pid != second.pid
    # The same container id in both. (Not the same namespace too: the default
    # cgroupsPath /<namespace>/<id> is host-global, whatever the daemon.)
    ns1, ns2 = ns_name(), ns_name()
    pid1 = run_detached(first, ns1, "same", rootfs)
    pid2 = run_detached(second, ns2, "same", rootfs)
    assert tasks(first.address, ns1) == {"same": (pid1, "RUNNING")}
    assert tasks(second.address, ns2) == {"same": (pid2, "RUNNING")}
    assert ns2 not in ctr(first.address, None, "namespaces", "list", "--quiet").stdout.split()
    assert ns1 not in ctr(second.address, None, "namespaces", "list", "--quiet").stdout.split()
    second_shims = second.shim_pids()
    assert len(second_shims) == 1
    assert second_shims != first.shim_pids()

    first.close()

    assert not alive(pid1)
    assert second.is_serving()
    assert alive(pid2)
    assert second.shim_pids() == second_shims
    assert tasks(second.address, ns2) == {"same": (pid2, "RUNNING")}


def test_a_daemon_left_running_is_adopted(
    make_daemon: Callable[..., PrivateContainerd], tmp_path: Path
) -> None:
    base = tempfile.mkdtemp(prefix="pcd-", dir="/run") + "/d"
    left = make_daemon(base, safety_net=False)
    left.start()
    pid = left.pid

    adopter = make_daemon(base)

    assert adopter.pid == pid
    assert adopter.is_serving()
    adopter.close()
    assert pid is not None
    assert not alive(pid)
    # The directory was created by a PrivateContainerd, so it goes too.
    assert not os.path.exists(base)
    os.rmdir(os.path.dirname(base))


def test_an_existing_base_dir_is_kept_but_emptied(make_daemon: Callable[..., PrivateContainerd]) -> None:
    base = tempfile.mkdtemp(prefix="pcd-", dir="/run")
    Path(base, "mine").write_text("not the daemon's")
    daemon = make_daemon(base)
    daemon.start()

    daemon.close()

    assert os.listdir(base) == ["mine"]
    shutil.rmtree(base)


def test_context_manager_starts_and_closes(make_daemon: Callable[..., PrivateContainerd]) -> None:
    daemon = make_daemon()
    with daemon as running:
        assert running is daemon
        assert daemon.is_serving()
    assert daemon.pid is None
    assert not os.path.exists(daemon.base_dir)


_ABANDON = """
import json, subprocess, sys
from pycontainerd.daemon import PrivateContainerd
daemon = PrivateContainerd()
daemon.start()
subprocess.run(["ctr", "--address", daemon.address, "-n", sys.argv[2], "run", "-d", "--null-io",
                "--rootfs", sys.argv[1], "abandoned", "/bin/sleep", "1000"], check=True)
out = subprocess.run(["ctr", "--address", daemon.address, "-n", sys.argv[2], "tasks", "ls"],
                     capture_output=True, text=True, check=True).stdout
print(json.dumps({"base": daemon.base_dir, "address": daemon.address, "daemon": daemon.pid,
                  "task": int(out.splitlines()[1].split()[1]), "shims": daemon.shim_pids()}))
"""


def test_safety_net_cleans_up_when_the_owner_forgets(rootfs: str) -> None:
    require_local_containerd()
    ns = ns_name()

    done = subprocess.run(
        [sys.executable, "-c", _ABANDON, rootfs, ns], capture_output=True, text=True, timeout=300, check=True
    )

    left = json.loads(done.stdout.splitlines()[-1])
    assert len(left["shims"]) == 1
    assert not alive(left["daemon"])
    assert not alive(left["task"])
    assert testing.find_shims(left["address"]) == []
    assert not os.path.exists(left["base"])
    assert not os.path.exists(cgroup_dir("pids", ns))


# --- the session fixtures ------------------------------------------------------------------------


def test_session_daemon_serves(containerd_address: str) -> None:
    assert ctr(containerd_address, None, "version").returncode == 0


def test_namespace_fixture_is_unique_and_purged_afterwards(containerd_address: str, namespace: str) -> None:
    assert namespace.startswith("pcd-test-")
    assert namespace not in ctr(containerd_address, None, "namespaces", "list", "--quiet").stdout.split()
    testing.purge_namespace(containerd_address, namespace)  # idempotent on an absent namespace


def test_client_fixture_is_bound_to_the_test_namespace(client: Any, namespace: str) -> None:
    assert client.namespace == namespace
    assert client.version().version


def test_purge_namespace_removes_everything(containerd_address: str, rootfs: str, tmp_path: Path) -> None:
    ns = ns_name()
    ctr(containerd_address, ns, "images", "import", testing.busybox_image_archive(tmp_path / "i.tar"))
    ctr(
        containerd_address,
        ns,
        "run",
        "-d",
        "--null-io",
        testing.BUSYBOX_IMAGE_NAME,
        "img",
        "/bin/sleep",
        "1000",
    )
    ctr(containerd_address, ns, "run", "-d", "--null-io", "--rootfs", rootfs, "dir", "/bin/sleep", "1000")
    ctr(containerd_address, ns, "tasks", "pause", "dir")
    ctr(containerd_address, ns, "leases", "create")

    errors = testing.purge_namespace(containerd_address, ns)

    assert errors == []
    assert ns not in ctr(containerd_address, None, "namespaces", "list", "--quiet").stdout.split()
    assert testing.find_shims(containerd_address, ns) == []
    assert not os.path.exists(cgroup_dir("pids", ns))


# --- busybox helpers -----------------------------------------------------------------------------


def test_busybox_rootfs_layout_and_idempotence(tmp_path: Path) -> None:
    root = testing.busybox_rootfs(tmp_path / "rootfs")

    assert root == str(tmp_path / "rootfs")
    assert os.readlink(os.path.join(root, "bin", "sh")) == "/bin/busybox"
    assert os.access(os.path.join(root, "bin", "busybox"), os.X_OK)
    with open(os.path.join(root, "etc", "passwd")) as f:
        assert [line.split(":")[0] for line in f] == ["root", "nobody"]
    assert os.stat(os.path.join(root, "tmp")).st_mode & 0o7777 == 0o1777
    for name in ("proc", "sys", "dev"):
        assert os.path.isdir(os.path.join(root, name))
    before = {p: os.lstat(p).st_mtime_ns for p in map(str, Path(root).rglob("*"))}

    os.unlink(os.path.join(root, "bin", "sh"))
    assert testing.busybox_rootfs(root) == root

    assert os.readlink(os.path.join(root, "bin", "sh")) == "/bin/busybox"
    after = {p: os.lstat(p).st_mtime_ns for p in map(str, Path(root).rglob("*"))}
    changed = {p for p in before if before[p] != after.get(p)}
    assert changed <= {os.path.join(root, "bin", "sh"), os.path.join(root, "bin")}


def test_busybox_image_archive_is_reproducible_and_imports(
    containerd_address: str, namespace: str, tmp_path: Path
) -> None:
    archive = testing.busybox_image_archive(tmp_path / "a.tar")
    again = testing.busybox_image_archive(tmp_path / "b.tar")
    assert Path(archive).read_bytes() == Path(again).read_bytes()

    ctr(containerd_address, namespace, "images", "import", archive)

    assert (
        testing.BUSYBOX_IMAGE_NAME in ctr(containerd_address, namespace, "images", "list", "--quiet").stdout
    )
    ctr(containerd_address, namespace, "images", "check")
    out = ctr(containerd_address, namespace, "run", "--rm", testing.BUSYBOX_IMAGE_NAME, "img",
              "/bin/sh", "-c", "echo $PATH; cat /etc/group")  # fmt: skip
    assert out.stdout.splitlines() == [oci.DEFAULT_PATH_ENV[len("PATH=") :], "root:x:0:", "nobody:x:65534:"]


# --- oci.build against runc ----------------------------------------------------------------------


def run_spec(address: str, namespace: str, container_id: str, spec: dict, tmp_path: Path) -> str:
    """Run ``spec`` under runc and return its stdout.

    Through this client, not ``ctr run``: ctr's copy of the output can end before the
    shim has forwarded the last bytes (a fresh Debian 12 check lost every line after
    the third with 1.7's ctr), and the spec is what these tests are about.
    """
    with Client(address, namespace=namespace) as client:
        container = client.new_container(container_id, spec)
        try:
            task = container.new_task(stdio=stdio.capture())
            exited = task.wait()
            task.start()
            exited.result(60)
            out = task.io.stdout_data
            task.delete()
        finally:
            container.delete()
    return out.decode()


def test_oci_build_spec_runs_with_its_options(
    containerd_address: str, namespace: str, rootfs: str, tmp_path: Path
) -> None:
    spec = oci.build(
        args=[
            "/bin/sh",
            "-c",
            "hostname; echo $GREETING; id -u; id -g; pwd; touch /x || echo ro; cat /proc/1/status",
        ],
        rootfs=rootfs,
        env={"GREETING": "hello there"},
        hostname="pcd-box",
        user="65534:65534",
        cwd="/tmp",
        readonly_rootfs=True,
        namespace=namespace,
        container_id="spec1",
    )

    lines = run_spec(containerd_address, namespace, "spec1", spec, tmp_path).splitlines()

    assert lines[:6] == ["pcd-box", "hello there", "65534", "65534", "/tmp", "ro"]
    status = dict(line.split(":\t", 1) for line in lines[6:] if ":\t" in line)
    # Default capabilities: 14 of them (bits 0,1,3,4,5,6,7,8,10,13,18,27,29,31), not all.
    assert int(status["CapBnd"], 16) == sum(
        1 << bit for bit in (0, 1, 3, 4, 5, 6, 7, 8, 10, 13, 18, 27, 29, 31)
    )
    assert status["NoNewPrivs"].strip() == "1"


def test_oci_build_resources_reach_the_cgroup(
    containerd_address: str, namespace: str, rootfs: str, tmp_path: Path
) -> None:
    spec = oci.build(
        args=["/bin/sleep", "1000"],
        rootfs=rootfs,
        resources=oci.Resources(memory=32 << 20, cpus=0.5, pids=20),
        namespace=namespace,
        container_id="limited",
    )
    config = tmp_path / "limited.json"
    config.write_text(json.dumps(spec))
    ctr(containerd_address, namespace, "run", "-d", "--null-io", "--config", str(config), "limited")

    if CGROUP_V2:
        memory = Path(cgroup_dir("memory", namespace, "limited", "memory.max")).read_text()
        cpu = Path(cgroup_dir("cpu", namespace, "limited", "cpu.max")).read_text().split()
        pids = Path(cgroup_dir("pids", namespace, "limited", "pids.max")).read_text()
        assert cpu == ["50000", "100000"]
    else:
        memory = Path(cgroup_dir("memory", namespace, "limited", "memory.limit_in_bytes")).read_text()
        quota = Path(cgroup_dir("cpu", namespace, "limited", "cpu.cfs_quota_us")).read_text()
        pids = Path(cgroup_dir("pids", namespace, "limited", "pids.max")).read_text()
        assert int(quota) == 50000
    assert int(memory) == 32 << 20
    assert int(pids) == 20


def test_oci_build_host_network_shares_the_hosts_interfaces(
    containerd_address: str, namespace: str, rootfs: str, tmp_path: Path
) -> None:
    args = ["/bin/sh", "-c", "ls /sys/class/net"]
    isolated = run_spec(containerd_address, namespace, "isolated",
                        oci.build(args=args, rootfs=rootfs), tmp_path)  # fmt: skip
    shared = run_spec(containerd_address, namespace, "shared",
                      oci.build(args=args, rootfs=rootfs, host_network=True), tmp_path)  # fmt: skip

    assert isolated.split() == ["lo"]
    assert sorted(shared.split()) == sorted(os.listdir("/sys/class/net"))


def test_oci_build_user_namespace(containerd_address: str, namespace: str, tmp_path: Path) -> None:
    host_root = 200000
    # The mapped root must own the rootfs and be able to reach it.
    base = tempfile.mkdtemp(prefix="pcd-userns-")
    try:
        os.chmod(base, 0o711)
        root = testing.busybox_rootfs(os.path.join(base, "rootfs"))
        for dirpath, dirnames, filenames in os.walk(root):
            for name in [dirpath, *(os.path.join(dirpath, n) for n in dirnames + filenames)]:
                os.lchown(name, host_root, host_root)
        spec = oci.build(
            args=["/bin/sh", "-c", "id -u; cat /proc/self/uid_map"],
            rootfs=root,
            uid_mappings=[(0, host_root, 65536)],
        )

        out = run_spec(containerd_address, namespace, "userns", spec, tmp_path).split()

        assert out == ["0", "0", str(host_root), "65536"]
    finally:
        shutil.rmtree(base)
