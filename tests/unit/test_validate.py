"""Client-side input checks that run before any RPC or filesystem change."""

from __future__ import annotations

import os

import pytest

from pycontainerd import _validate, oci


@pytest.mark.parametrize(("w", "h"), [(0, 0), (80, 24), (65535, 65535)])
def test_terminal_size_accepts(w, h):
    assert _validate.terminal_size(w, h) == (w, h)


@pytest.mark.parametrize(("w", "h"), [(-1, 24), (80, -100), (65536, 24), (80, 4294967296)])
def test_terminal_size_rejects(w, h):
    with pytest.raises(ValueError, match="invalid terminal"):
        _validate.terminal_size(w, h)


@pytest.mark.parametrize(("w", "h"), [(80.0, 24), ("80", 24), (True, 24)])
def test_terminal_size_type(w, h):
    with pytest.raises(TypeError):
        _validate.terminal_size(w, h)


@pytest.mark.parametrize(
    "path", ["relative/dir", "./x", "/a/../b", "/a/./b", "/a\0b", "", "/" + "x" * 256, "/" + "a/" * 2100]
)
def test_absolute_path_rejects(path):
    with pytest.raises(ValueError, match="path"):
        _validate.absolute_path(path)


def test_absolute_path_normalises_slashes():
    assert _validate.absolute_path("/a//b/") == "/a/b"


def test_no_symlinks(tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "link").symlink_to(real)
    (tmp_path / "file").write_text("")
    _validate.no_symlinks(str(real / "missing" / "deeper"))
    with pytest.raises(ValueError, match="symlink"):
        _validate.no_symlinks(str(tmp_path / "link" / "bundle"))
    with pytest.raises(ValueError, match="symlink"):
        _validate.no_symlinks(str(tmp_path / "link"))
    with pytest.raises(ValueError, match="not a directory"):
        _validate.no_symlinks(str(tmp_path / "file" / "bundle"))
    assert os.listdir(real) == []


@pytest.mark.parametrize(
    "name", ["io.containerd.runc.v2", "io.containerd.runc.v1", "io.containerd.kata.v2", "/usr/bin/shim"]
)
def test_runtime_name_accepts(name):
    assert _validate.runtime_name(name) == name


@pytest.mark.parametrize(
    "name", ["runc", "io.containerd.runc", "containerd.runc.v2", "", "rel/shim", "io.containerd..v2"]
)
def test_runtime_name_rejects(name):
    with pytest.raises(ValueError, match="runtime"):
        _validate.runtime_name(name)


def test_labels():
    assert _validate.labels({"a": "b"}) == {"a": "b"}
    with pytest.raises(ValueError, match="empty"):
        _validate.labels({"": "x"})
    with pytest.raises(ValueError, match="4096"):
        _validate.labels({"k": "v" * 4096})
    with pytest.raises(TypeError):
        _validate.labels({"k": 1})
    with pytest.raises(TypeError):
        _validate.labels([("k", "v")])


def _userns_spec(**kw):
    return oci.build(args=["true"], rootfs="/srv/rootfs", **kw)


def test_spec_root():
    assert _validate.spec_root(_userns_spec()) == (0, 0)
    assert _validate.spec_root(_userns_spec(uid_mappings=[(0, 100000, 65536)])) == (100000, 100000)
    assert _validate.spec_root(
        _userns_spec(uid_mappings=[(0, 100000, 65536)], gid_mappings=[(0, 200000, 10)])
    ) == (100000, 200000)


@pytest.mark.parametrize(
    "linux",
    [
        # unmapped root (libcontainerd would silently use host root here)
        {
            "namespaces": [{"type": "user"}],
            "uidMappings": [{"containerID": 1, "hostID": 1000, "size": 5}],
            "gidMappings": [{"containerID": 0, "hostID": 1000, "size": 5}],
        },
        # size 0: moby's uint32 arithmetic wraps this to "matches everything"
        {
            "namespaces": [{"type": "user"}],
            "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 0}],
            "gidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}],
        },
        # overlap on the container side
        {
            "namespaces": [{"type": "user"}],
            "uidMappings": [
                {"containerID": 0, "hostID": 1000, "size": 10},
                {"containerID": 5, "hostID": 5000, "size": 10},
            ],
            "gidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}],
        },
        # beyond 2**32
        {
            "namespaces": [{"type": "user"}],
            "uidMappings": [{"containerID": 0, "hostID": 2**32 - 10, "size": 100}],
            "gidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}],
        },
        # user namespace without maps, maps without user namespace
        {"namespaces": [{"type": "user"}]},
        {"namespaces": [], "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}]},
    ],
)
def test_spec_root_rejects(linux):
    with pytest.raises(ValueError, match=r"mapping|map|namespace|extent|size|range|overlap"):
        _validate.spec_root({"linux": linux})
