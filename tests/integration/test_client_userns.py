"""User namespaces: the bundle under `.uid.gid` dirs, stdio through them, files owned by the mapped ids."""

from __future__ import annotations

import os
import shutil
import stat
import tempfile

import pytest

from pycontainerd import oci, stdio

HANG = 120
UID = GID = 100000
SIZE = 65536


@pytest.fixture
def userns_base(rootfs):
    """A traversable base dir holding a rootfs owned by the remapped root and a 0700 dir."""
    base = tempfile.mkdtemp(prefix="pcd-userns-")
    os.chmod(base, 0o755)
    try:
        root = os.path.join(base, "rootfs")
        shutil.copytree(rootfs, root, symlinks=True)
        for dirpath, dirnames, filenames in os.walk(root):
            for name in [dirpath, *(os.path.join(dirpath, n) for n in dirnames + filenames)]:
                os.lchown(name, UID, GID)
        os.mkdir(os.path.join(base, "private"), 0o700)
        data = os.path.join(base, "data")
        os.mkdir(data)
        os.chmod(data, 0o777)
        yield base
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_userns_container_bundle_and_file_ownership(client, userns_base):
    base = userns_base
    cid = "uns"
    spec = oci.build(
        # reopening the stdio pipes by path works only if the shim chowned them to io_uid/io_gid
        args=[
            "sh",
            "-c",
            "id -u; id -g; touch /data/by-root; cat /proc/self/uid_map; echo reopened >/dev/stdout; cat",
        ],
        rootfs=os.path.join(base, "rootfs"),
        namespace=client.namespace,
        container_id=cid,
        uid_mappings=[(0, UID, SIZE)],
        mounts=[
            {
                "destination": "/data",
                "type": "bind",
                "source": os.path.join(base, "data"),
                "options": ["rbind", "rw"],
            }
        ],
    )
    container = client.new_container(cid, spec, state_dir=os.path.join(base, "private"))
    # /private is 0700: the remapped root could not traverse it, so it and everything below is suffixed
    suffix = f".{UID}.{GID}"
    expected = os.path.join(base, f"private{suffix}", f"{client.namespace}{suffix}", f"{cid}{suffix}")
    assert container.bundle_dir == expected
    walk = os.path.join(base, f"private{suffix}")
    for part in ("", f"{client.namespace}{suffix}", f"{cid}{suffix}"):
        walk = os.path.join(walk, part) if part else walk
        st = os.lstat(walk)
        assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (UID, GID, 0o700), walk
    assert os.listdir(os.path.join(base, "private")) == []  # the original was left alone
    assert stat.S_IMODE(os.stat(os.path.join(base, "private")).st_mode) == 0o700

    payload = b"through the remapped pipes\n"
    r, w = os.pipe()
    task = container.new_task(stdio=stdio.capture(r))
    info = task.status()
    assert info.stdout == os.path.join(expected, f"{cid}-stdout")
    assert info.stdin == os.path.join(expected, f"{cid}-stdin")
    exited = task.wait()
    task.start()
    proc = task.exec(
        "user", oci.process(["touch", "/data/by-user"], user=(1000, 1000)), stdio=stdio.capture()
    )
    pexit = proc.wait()
    proc.start()
    assert pexit.result(HANG).code == 0
    proc.delete()
    os.write(w, payload)  # only now does the init's cat get input, then EOF
    os.close(w)
    assert exited.result(HANG).code == 0
    os.close(r)
    out = task.io.stdout_data.decode()
    lines = out.splitlines()
    assert lines[:2] == ["0", "0"]
    assert lines[2].split() == ["0", str(UID), str(SIZE)]
    assert lines[3] == "reopened"
    assert out.endswith(payload.decode())
    st = os.stat(os.path.join(base, "data", "by-root"))
    assert (st.st_uid, st.st_gid) == (UID, GID)
    st = os.stat(os.path.join(base, "data", "by-user"))
    assert (st.st_uid, st.st_gid) == (UID + 1000, GID + 1000)
    task.delete()
    container.delete()
    assert not os.path.exists(expected)


def test_userns_with_traversable_parents_keeps_the_plain_path(client, userns_base):
    base = userns_base
    open_dir = os.path.join(base, "open")
    os.mkdir(open_dir, 0o755)
    os.chmod(open_dir, 0o755)
    spec = oci.build(
        args=["true"],
        rootfs=os.path.join(base, "rootfs"),
        namespace=client.namespace,
        container_id="plain",
        uid_mappings=[(0, UID, SIZE)],
    )
    container = client.new_container("plain", spec, bundle_dir=os.path.join(open_dir, "plain"))
    # every parent is traversable; only the missing leaf is created (suffixed, owned by the remapped root)
    assert container.bundle_dir == os.path.join(open_dir, f"plain.{UID}.{GID}")
    task = container.new_task(stdio=stdio.capture())
    exited = task.wait()
    task.start()
    assert exited.result(HANG).code == 0
    task.delete()
    container.delete()
