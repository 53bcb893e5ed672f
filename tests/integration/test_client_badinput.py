"""Bad input is refused with a clear typed error before any RPC, and nothing is created.

"Before any RPC" is checked with a client whose socket does not exist: any call it made
would raise UnavailableError instead of the ValueError/TypeError expected here.
"""

from __future__ import annotations

import copy
import os

import pytest

from pycontainerd import errors, oci, stdio
from pycontainerd.client import Client
from pycontainerd.stdio import ProcessIO
from pycontainerd.task import Task

BAD_IDS = ["", ".", "..", "/", "a/b", "../x", "a" * 77, "-x", "x-", "a..b", "a b", "a\0b"]


@pytest.fixture
def dead_client(tmp_path):
    with Client(str(tmp_path / "no-such.sock"), namespace="pcd-dead", connect_timeout=1) as c:
        yield c


@pytest.fixture
def state_dir(tmp_path):
    path = tmp_path / "state"
    path.mkdir()
    return str(path)


def _tree(path):
    return sorted(os.path.join(d, n) for d, dirs, files in os.walk(path) for n in dirs + files)


def _spec(rootfs, **kw):
    return oci.build(args=["sleep", "1000"], rootfs=rootfs, **kw)


def _userns_spec(rootfs, uid_maps, gid_maps=None, userns=True):
    spec = _spec(rootfs)
    linux = spec["linux"]
    if userns:
        linux["namespaces"].append({"type": "user"})
    linux["uidMappings"] = uid_maps
    linux["gidMappings"] = gid_maps if gid_maps is not None else copy.deepcopy(uid_maps)
    return spec


def _m(c, h, s):
    return {"containerID": c, "hostID": h, "size": s}


def _bad_container_calls(rootfs, tmp_path):
    real = tmp_path / "real"
    real.mkdir(exist_ok=True)
    link = tmp_path / "link"
    if not link.exists():
        link.symlink_to(real)
    calls = [(f"id {bad!r}", {"id": bad}) for bad in BAD_IDS]
    calls += [
        ("relative bundle", {"bundle_dir": "relative/bundle"}),
        ("dotdot bundle", {"bundle_dir": str(tmp_path / "x" / ".." / "bundle")}),
        ("symlinked bundle", {"bundle_dir": str(link / "bundle")}),
        ("symlinked leaf", {"bundle_dir": str(link)}),
        ("relative state dir", {"state_dir": "state"}),
        ("runtime", {"runtime": "runc"}),
        ("label", {"labels": {"": "x"}}),
        ("id map size 0", {"spec": _userns_spec(rootfs, [_m(0, 100000, 0)])}),
        ("root unmapped", {"spec": _userns_spec(rootfs, [_m(1, 100000, 100)])}),
        ("overlap", {"spec": _userns_spec(rootfs, [_m(0, 100000, 100), _m(50, 300000, 100)])}),
        ("wraps 2^32", {"spec": _userns_spec(rootfs, [_m(0, 2**32 - 5, 100)])}),
        ("maps without userns", {"spec": _userns_spec(rootfs, [_m(0, 100000, 100)], userns=False)}),
        ("userns without maps", {"spec": _userns_spec(rootfs, [], [])}),
        ("spec not a mapping", {"spec": ["not", "a", "spec"]}),
    ]
    return calls


def _new_container(client, rootfs, state_dir, **kw):
    kw.setdefault("id", "ok")
    kw.setdefault("spec", _spec(rootfs))
    if "bundle_dir" not in kw:
        kw.setdefault("state_dir", state_dir)
    return client.new_container(kw.pop("id"), kw.pop("spec"), **kw)


def test_bad_container_input_refused_and_nothing_created(client, dead_client, rootfs, state_dir, tmp_path):
    before = _tree(str(tmp_path))
    for what, kw in _bad_container_calls(rootfs, tmp_path):
        before = _tree(str(tmp_path))
        for c in (dead_client, client):
            with pytest.raises((ValueError, TypeError)) as info:
                _new_container(c, rootfs, state_dir, **kw)
            assert not isinstance(info.value, errors.ContainerdError), (what, info.value)
            assert str(info.value), what
        assert _tree(str(tmp_path)) == before, what
    assert client.containers() == []
    assert not os.listdir(tmp_path / "real")
    for bad in BAD_IDS:
        for c in (dead_client, client):
            with pytest.raises(ValueError, match="container id"):
                c.load_container(bad)


def test_bad_process_input_refused_before_any_rpc(dead_client, client, rootfs, state_dir):
    container = client.new_container("live", _spec(rootfs), state_dir=state_dir)
    task = container.new_task()
    task.start()
    bundle = sorted(os.listdir(container.bundle_dir))
    dead = Task(dead_client, "live", ProcessIO(None, None), bundle_dir=container.bundle_dir)
    for t in (dead, task):
        for bad in BAD_IDS:
            with pytest.raises((ValueError, TypeError), match="exec id"):
                t.exec(bad, oci.process(["true"]), stdio=stdio.capture(b"x"))
        for spec in ({}, {"args": []}, ["true"]):
            with pytest.raises(ValueError, match="process_spec"):
                t.exec("fine", spec, stdio=stdio.capture())  # type: ignore[arg-type]
        for sig in (0, 65, -1, "SIG42", "NOPE", "", True, None, 2.0):
            with pytest.raises((ValueError, TypeError)):
                t.kill(sig)  # type: ignore[arg-type]
        for w, h in ((-1, 24), (80, -1), (65536, 24), (80, 65536), (2**32, 1)):
            with pytest.raises(ValueError, match="terminal"):
                t.resize(w, h)
        with pytest.raises((ValueError, TypeError)):
            t.resize(80.5, 24)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="drain_timeout"):
            t.wait(drain_timeout=-1)
    assert sorted(os.listdir(container.bundle_dir)) == bundle
    assert task.status().status.value == "running"
    with pytest.raises(errors.NotFoundError):
        client.api.tasks.get("live", "fine")
    task.force_delete()
    container.delete()


def test_bad_stdio_arguments(rootfs):
    for bad in (-1, True, "path", 3.5, object()):
        with pytest.raises((ValueError, TypeError)):
            stdio.streams(stdout=bad)  # type: ignore[arg-type]
        with pytest.raises((ValueError, TypeError)):
            stdio.streams(stdin=bad)  # type: ignore[arg-type]
    with pytest.raises((ValueError, TypeError)):
        stdio.capture(stdin="text")  # type: ignore[arg-type]
