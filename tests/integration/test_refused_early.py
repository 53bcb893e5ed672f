"""Inputs refused before anything exists: a typed error, and no container, task, FIFO or directory left.

Each of these used to reach the daemon, fail late, or leave something behind.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pycontainerd import errors, oci, stdio
from pycontainerd._run import run
from pycontainerd.client import Client
from pycontainerd.container import default_state_dir
from pycontainerd.stdio import HandoffUnavailableError


def nothing_left(client) -> None:
    assert client.containers() == []
    assert client.api.tasks.list() == []
    ns_dir = Path(default_state_dir()) / client.namespace
    assert not ns_dir.exists(), sorted(os.listdir(ns_dir))


def test_env_key_with_equals_is_refused(client, rootfs):
    with pytest.raises(ValueError, match="env key"):
        run(["env"], rootfs=rootfs, env={"A=B": "x"}, client=client)
    nothing_left(client)


def test_args_as_a_string_is_refused(client, rootfs):
    with pytest.raises(TypeError, match="sequence of str"):
        run("echo hi", rootfs=rootfs, client=client)  # type: ignore[arg-type]
    nothing_left(client)


@pytest.mark.parametrize("args", [[""], ["sh", "a\0b"], "sh", [], [b"sh"]])
def test_bad_raw_exec_args_never_reach_the_daemon(client, rootfs, args):
    spec = oci.build(args=["sleep", "600"], rootfs=rootfs, namespace=client.namespace, container_id="host")
    container = client.new_container("host", spec)
    task = container.new_task()
    task.start()
    before = sorted(os.listdir(container.bundle_dir))
    raw = dict(oci.process(["true"]), args=args)
    with pytest.raises((ValueError, TypeError)):
        task.exec("e", raw, stdio=stdio.capture())
    with pytest.raises(errors.NotFoundError):
        client.api.tasks.get("host", "e")
    assert sorted(os.listdir(container.bundle_dir)) == before  # no FIFO made
    task.kill(9)
    task.wait().result(60)
    task.delete()
    container.delete()


@pytest.mark.parametrize("bad", [math.nan, -1, "5", True])
def test_bad_timeouts_are_refused_before_anything(client, rootfs, bad):
    with pytest.raises((ValueError, TypeError)):
        run(["true"], rootfs=rootfs, timeout=bad, client=client)
    nothing_left(client)


def test_infinite_timeouts_mean_no_limit(containerd_address, namespace, rootfs):
    with Client(containerd_address, namespace=namespace, timeout=math.inf) as client:
        assert client.version().version
        result = run(["sh", "-c", "echo ok"], rootfs=rootfs, timeout=math.inf, capture_output=True,
                     client=client)  # fmt: skip
        assert (result.returncode, result.stdout) == (0, b"ok\n")
        spec = oci.build(args=["true"], rootfs=rootfs, namespace=namespace, container_id="c")
        container = client.new_container("c", spec)
        task = container.new_task()
        with pytest.raises(ValueError, match="NaN"):
            task.wait(drain_timeout=math.nan)
        exited = task.wait(drain_timeout=math.inf)
        task.start()
        assert exited.result(60).code == 0
        task.delete()
        container.delete()
    with pytest.raises(ValueError, match="NaN"):
        Client(containerd_address, namespace=namespace, timeout=math.nan)


@pytest.mark.parametrize("which", ["stdout", "stderr", "stdin"])
def test_closed_file_objects_are_refused_before_anything(client, rootfs, tmp_path, which):
    f = open(tmp_path / "f", "wb" if which != "stdin" else "w+b")  # noqa: SIM115
    f.close()
    with pytest.raises(ValueError, match="closed file"):
        run(["cat"], rootfs=rootfs, client=client, **{which: f})
    nothing_left(client)
    with pytest.raises(ValueError, match="closed file"):
        stdio.streams(**{which: f})


@pytest.mark.parametrize("case", ["stdin", "tty"])
def test_handoff_true_with_stdin_or_tty_is_refused_before_anything(client, rootfs, case):
    kwargs = {"stdin": b"x"} if case == "stdin" else {"tty": True}
    with pytest.raises(HandoffUnavailableError):
        run(["cat"], rootfs=rootfs, handoff=True, client=client, **kwargs)
    nothing_left(client)


def test_oversized_spec_leaves_no_directory(client, rootfs):
    spec = oci.build(args=["true"], rootfs=rootfs, namespace=client.namespace, container_id="big")
    spec["annotations"] = {"padding": "x" * (17 << 20)}
    with pytest.raises(errors.ResourceExhaustedError):
        client.new_container("big", spec)
    nothing_left(client)


def test_cli_run_with_the_id_of_a_running_container(containerd_address, namespace, client, rootfs):
    def cli(*args: str) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run([sys.executable, "-m", "pycontainerd", "--address", containerd_address,
                               "--namespace", namespace, *args], capture_output=True, timeout=60,
                              stdin=subprocess.DEVNULL)  # fmt: skip

    assert cli("run", "-d", "--rootfs", rootfs, "web", "--", "sleep", "600").returncode == 0
    (web,) = client.containers()
    bundle = web.bundle_dir
    before = sorted(os.listdir(bundle))
    again = cli("run", "--rm", "--rootfs", rootfs, "web", "--", "true")
    assert again.returncode != 0
    assert b"web" in again.stderr
    assert sorted(os.listdir(bundle)) == before, "the running container's bundle was touched"
    assert web.task().status().status.name == "RUNNING"
    assert cli("kill", "-s", "KILL", "web").returncode == 0
    web.task().wait().result(60)
    assert cli("rm", "web").returncode == 0
    nothing_left(client)
