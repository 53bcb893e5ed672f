"""``pycontainerd pull``, ``push``, ``login`` and ``logout`` against a real registry on loopback."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import pycontainerd
from pycontainerd import testing_images as ti
from pycontainerd import testing_registry as tr

USER, PASSWORD = "clitester", "cli-pa55"


@pytest.fixture(scope="module")
def registry() -> Iterator[tr.PrivateRegistry]:
    with tr.PrivateRegistry(auth="token", users={USER: PASSWORD}) as r:
        yield r


def _cli(address: str, namespace: str, *args: str, input: bytes | None = None,
         env: dict[str, str] | None = None) -> subprocess.CompletedProcess[bytes]:
    argv = [sys.executable, "-m", "pycontainerd", "--address", address, "--namespace", namespace, *args]
    return subprocess.run(argv, input=input, capture_output=True, timeout=120, env=env,
                          stdin=None if input is not None else subprocess.DEVNULL)


def test_push_pull_login_logout(client: Any, containerd_address: str, namespace: str,
                                registry: tr.PrivateRegistry, tmp_path: Path) -> None:
    built = ti.build_image([ti.busybox_layer(), ti.Layer([ti.file("m", b"cli\n")])], cmd=["cat", "/m"])
    archive = ti.write_oci_archive(tmp_path / "i.tar", {"docker.io/t/cli:1": built})
    client.import_archive(archive, unpack=False)
    ref = f"{registry.host}/t/cli:1"
    env = {**os.environ, "DOCKER_CONFIG": str(tmp_path / "docker")}
    denied = _cli(containerd_address, namespace, "push", "--plain-http", "docker.io/t/cli:1", ref, env=env)
    assert denied.returncode == 1
    assert denied.stderr.decode().count("\n") == 1
    assert b"pycontainerd: error:" in denied.stderr
    pushed = _cli(containerd_address, namespace, "push", "--plain-http", "-u", USER, "--password-stdin",
                  "docker.io/t/cli:1", ref, input=PASSWORD.encode() + b"\n", env=env)
    assert pushed.returncode == 0, pushed.stderr
    assert pushed.stdout.decode().split() == [ref, built.manifest["digest"]]
    assert PASSWORD.encode() not in pushed.stderr + pushed.stdout
    login = _cli(containerd_address, namespace, "login", "-u", USER, "--password-stdin", registry.host,
                 input=PASSWORD.encode(), env=env)
    assert login.returncode == 0, login.stderr
    config = tmp_path / "docker" / "config.json"
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    assert registry.host in json.loads(config.read_text())["auths"]
    for record in client.api.images.list():
        client.delete_image(record.name, sync=True)
    pulled = _cli(containerd_address, namespace, "pull", "--plain-http", ref, env=env)
    assert pulled.returncode == 0, pulled.stderr
    assert pulled.stdout.decode().split() == [ref, built.manifest["digest"]]
    lines = pulled.stderr.decode().splitlines()
    assert f"{built.layers[1]['digest'][7:19]}: done" in lines
    result = pycontainerd.run([], image=ref, client=client, capture_output=True, pull="never")
    assert result.stdout == b"cli\n"
    assert _cli(containerd_address, namespace, "logout", registry.host, env=env).returncode == 0
    assert json.loads(config.read_text())["auths"] == {}
    bad = _cli(containerd_address, namespace, "pull", "--plain-http", "Not/Valid:ref", env=env)
    assert bad.returncode == 1
    assert b"must be lowercase" in bad.stderr


def test_readme_registry_example_runs_as_written(containerd_address: str, namespace: str, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    block = readme.split("<!-- registry-example -->\n```python\n", 1)[1].split("```", 1)[0]
    monkeypatch.setenv("CONTAINERD_ADDRESS", containerd_address)
    monkeypatch.setenv("CONTAINERD_NAMESPACE", namespace)
    monkeypatch.chdir(tmp_path)
    exec(compile(block, "README.md", "exec"), {})


def test_run_pulls_a_missing_image_and_only_then(client: Any, containerd_address: str, namespace: str,
                                                 tmp_path: Path) -> None:
    built = ti.build_image([ti.busybox_layer(), ti.Layer([ti.file("m", b"ran\n")])], cmd=["cat", "/m"])
    archive = ti.write_oci_archive(tmp_path / "i.tar", {"docker.io/t/run:1": built})
    client.import_archive(archive, unpack=False)
    with tr.PrivateRegistry() as registry:
        ref = f"{registry.host}/t/run:1"
        client.push("docker.io/t/run:1", ref, plain_http=True)
        client.delete_image("docker.io/t/run:1", sync=True)
        never = _cli(containerd_address, namespace, "run", "--rm", "--pull", "never", ref, "r0")
        assert never.returncode == 125, never.stderr
        assert never.stderr.decode().count("\n") == 1
        first = _cli(containerd_address, namespace, "run", "--rm", "--plain-http", ref, "r1")
        assert (first.returncode, first.stdout) == (0, b"ran\n"), first.stderr
        assert f"{built.layers[1]['digest'][7:19]}: done" in first.stderr.decode().splitlines()
        registry.stop()  # "missing" must not ask the registry for a local image
        second = _cli(containerd_address, namespace, "run", "--rm", "--plain-http", ref, "r2")
        assert (second.returncode, second.stdout, second.stderr) == (0, b"ran\n", b"")
        always = _cli(containerd_address, namespace, "run", "--rm", "--pull", "always", "--plain-http",
                      ref, "r3")
        assert always.returncode == 125
        assert b"pycontainerd: error:" in always.stderr
    assert client.containers() == []
