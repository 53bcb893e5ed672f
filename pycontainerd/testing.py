"""Helpers for testing code that uses containerd: a private daemon and a busybox root filesystem.

Nothing here needs the network: the root filesystem and the image are built
from the ``busybox-static`` Debian package (``/bin/busybox``, statically
linked, so it runs in an otherwise empty rootfs).

* :class:`PrivateContainerd` (from :mod:`pycontainerd.daemon`) runs a private
  containerd with its own root, state and sockets, and removes every task,
  container and shim it started when closed.
* :func:`busybox_rootfs` builds a root filesystem directory.
* :func:`busybox_image_archive` builds an OCI image layout tar of that rootfs,
  for ``ctr images import`` or the Images/Content APIs.
* :func:`purge_namespace` empties (and deletes) one namespace.

Example, a pytest fixture pair and a container run with ``ctr``::

    import json
    import subprocess
    import pytest
    from pycontainerd import oci, testing

    @pytest.fixture(scope="session")
    def daemon():
        with testing.PrivateContainerd() as d:
            yield d

    def test_hello(daemon, tmp_path):
        rootfs = testing.busybox_rootfs(tmp_path / "rootfs")
        spec = tmp_path / "config.json"
        spec.write_text(json.dumps(oci.build(args=["echo", "hello"], rootfs=rootfs)))
        out = subprocess.run(
            ["ctr", "--address", daemon.address, "run", "--rm", "--config", str(spec), "hello"],
            capture_output=True, text=True, check=True,
        ).stdout
        assert out.strip() == "hello"
"""

from __future__ import annotations

import contextlib
import filecmp
import gzip
import hashlib
import io
import json
import os
import platform
import shutil
import struct
import subprocess
import tarfile
import tempfile
from typing import Any

from pycontainerd.daemon import DaemonError, PrivateContainerd, find_shims, purge_namespace

__all__ = [
    "BUSYBOX_IMAGE_NAME",
    "DaemonError",
    "PrivateContainerd",
    "busybox_image_archive",
    "busybox_rootfs",
    "find_shims",
    "purge_namespace",
]

#: The name :func:`busybox_image_archive` gives the image by default.
BUSYBOX_IMAGE_NAME = "docker.io/pycontainerd/busybox:latest"

_BUSYBOX = "/bin/busybox"
_PASSWD = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
_GROUP = "root:x:0:\nnobody:x:65534:\n"
# Directories of a minimal Linux root, and their modes (/tmp is sticky and world-writable).
_DIRS = {
    "bin": 0o755,
    "sbin": 0o755,
    "usr": 0o755,
    "usr/bin": 0o755,
    "usr/sbin": 0o755,
    "etc": 0o755,
    "root": 0o700,
    "tmp": 0o1777,
    "proc": 0o755,
    "sys": 0o755,
    "dev": 0o755,
    "run": 0o755,
    "var": 0o755,
}
_PT_INTERP = 3
_GOARCH = {
    "x86_64": "amd64",
    "amd64": "amd64",
    "aarch64": "arm64",
    "arm64": "arm64",
    "armv7l": "arm",
    "armv6l": "arm",
    "i386": "386",
    "i686": "386",
    "ppc64le": "ppc64le",
    "s390x": "s390x",
    "riscv64": "riscv64",
}
_MT_INDEX = "application/vnd.oci.image.index.v1+json"
_MT_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
_MT_CONFIG = "application/vnd.oci.image.config.v1+json"
_MT_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


def _is_dynamic_elf(path: str) -> bool:
    """Whether the ELF file at ``path`` asks for a program interpreter (is dynamically linked)."""
    with open(path, "rb") as f:
        header = f.read(64)
        if header[:4] != b"\x7fELF":
            raise ValueError(f"{path} is not an ELF executable")
        is64 = header[4] == 2
        endian = "<" if header[5] == 1 else ">"
        if is64:
            phoff, phentsize, phnum = (
                struct.unpack_from(endian + "Q", header, 32)[0],
                *struct.unpack_from(endian + "HH", header, 54),
            )
        else:
            phoff, phentsize, phnum = (
                struct.unpack_from(endian + "I", header, 28)[0],
                *struct.unpack_from(endian + "HH", header, 42),
            )
        for i in range(phnum):
            f.seek(phoff + i * phentsize)
            (p_type,) = struct.unpack(endian + "I", f.read(4))
            if p_type == _PT_INTERP:
                return True
    return False


def _busybox() -> str:
    path = _BUSYBOX if os.path.exists(_BUSYBOX) else shutil.which("busybox")
    if path is None:
        raise FileNotFoundError(2, "busybox not found; install the busybox-static package", _BUSYBOX)
    if _is_dynamic_elf(path):
        raise RuntimeError(
            f"{path} is dynamically linked and cannot run in an empty rootfs; install busybox-static"
        )
    return path


def _applets(busybox: str) -> list[str]:
    """Applet paths relative to the root (``bin/sh``, ``usr/bin/env``, ...)."""
    done = subprocess.run([busybox, "--list-full"], capture_output=True, text=True, check=False)
    if done.returncode == 0 and done.stdout.strip():
        return sorted({line.strip().lstrip("/") for line in done.stdout.splitlines() if line.strip()})
    # Builds without --list-full: put every applet in bin/.
    done = subprocess.run([busybox, "--list"], capture_output=True, text=True, check=True)
    return sorted({"bin/" + line.strip() for line in done.stdout.splitlines() if line.strip()})


def _write_if_changed(path: str, content: str, mode: int) -> None:
    with contextlib.suppress(OSError), open(path) as f:
        if f.read() == content and os.stat(path).st_mode & 0o7777 == mode:
            return
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w") as f:
        f.write(content)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def _symlink(target: str, path: str) -> None:
    with contextlib.suppress(OSError):
        if os.readlink(path) == target:
            return
    tmp = f"{path}.{os.getpid()}.tmp"
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp)
    os.symlink(target, tmp)
    os.replace(tmp, path)


def busybox_rootfs(dest: str | os.PathLike[str]) -> str:
    """Build (or refresh) a busybox root filesystem in directory ``dest``.

    The rootfs has ``/bin/busybox`` (copied from the host's static busybox),
    one symlink per applet in the directories busybox names (``/bin/sh``,
    ``/usr/bin/env``, ...), ``/etc/passwd`` and ``/etc/group`` with ``root`` and
    ``nobody``, and empty ``/tmp``, ``/proc``, ``/sys``, ``/dev``, ``/run``,
    ``/root``, ``/var``. Calling it again on the same directory changes only
    what differs, so it is cheap and safe to share between test sessions.

    Args:
        dest: The rootfs directory; created (with parents) if missing.

    Returns:
        The absolute path of the rootfs.

    Raises:
        FileNotFoundError: busybox is not installed.
        RuntimeError: The installed busybox is dynamically linked (not busybox-static).
    """
    busybox = _busybox()
    root = os.path.abspath(os.fspath(dest))
    os.makedirs(root, mode=0o755, exist_ok=True)
    for name, mode in _DIRS.items():
        path = os.path.join(root, name)
        os.makedirs(path, exist_ok=True)
        # Explicit chmod: makedirs' mode is filtered by the umask and skips existing dirs.
        os.chmod(path, mode)
    target = os.path.join(root, "bin", "busybox")
    if not (os.path.isfile(target) and filecmp.cmp(busybox, target, shallow=False)):
        tmp = f"{target}.{os.getpid()}.tmp"
        shutil.copyfile(busybox, tmp)
        os.chmod(tmp, 0o755)
        os.replace(tmp, target)
    for applet in _applets(busybox):
        if applet == "bin/busybox" or ".." in applet.split("/"):
            continue
        parent = os.path.join(root, os.path.dirname(applet))
        os.makedirs(parent, mode=0o755, exist_ok=True)
        _symlink("/bin/busybox", os.path.join(root, applet))
    _write_if_changed(os.path.join(root, "etc", "passwd"), _PASSWD, 0o644)
    _write_if_changed(os.path.join(root, "etc", "group"), _GROUP, 0o644)
    return root


def _platform() -> dict[str, str]:
    machine = platform.machine()
    arch = _GOARCH.get(machine, machine)
    out = {"architecture": arch, "os": "linux"}
    if machine.startswith("armv"):
        out["variant"] = "v" + machine[4]
    return out


def _layer_tar(rootfs: str) -> bytes:
    """A reproducible tar of ``rootfs``: sorted entries, owner 0:0, mtime 0."""

    def normalise(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        info.mtime = 0
        return info

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in sorted(os.listdir(rootfs)):
            # add() recurses in sorted order (Python >= 3.7).
            tar.add(os.path.join(rootfs, name), arcname=name, filter=normalise)
    return buf.getvalue()


def _blob(blobs: dict[str, bytes], data: bytes) -> tuple[str, int]:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    blobs[digest] = data
    return digest, len(data)


def _json_bytes(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def busybox_image_archive(dest: str | os.PathLike[str], *, name: str = BUSYBOX_IMAGE_NAME) -> str:
    """Write an OCI image layout tar of a busybox rootfs (one gzip layer) to ``dest``.

    The archive holds ``oci-layout``, ``index.json`` and the manifest, config
    and layer blobs under ``blobs/sha256/``, with correct digests and sizes;
    ``ctr images import`` accepts it. The index entry is named through both the
    ``io.containerd.image.name`` annotation (``name``) and the OCI
    ``org.opencontainers.image.ref.name`` annotation (the tag). The image runs
    ``/bin/sh`` with containerd's default ``PATH``, for the host's platform. The
    output is byte-for-byte reproducible for the same busybox.

    Args:
        dest: The archive file to write (replaced atomically).
        name: The image reference to record, e.g. ``docker.io/library/busybox:latest``.

    Returns:
        The absolute path of the archive.

    Raises:
        FileNotFoundError: busybox is not installed.
        RuntimeError: The installed busybox is dynamically linked.
    """
    path = os.path.abspath(os.fspath(dest))
    with tempfile.TemporaryDirectory(prefix="pcd-image-") as work:
        layer_tar = _layer_tar(busybox_rootfs(os.path.join(work, "rootfs")))
    blobs: dict[str, bytes] = {}
    # mtime=0 and no file name keep the gzip stream reproducible.
    layer_digest, layer_size = _blob(blobs, gzip.compress(layer_tar, mtime=0))
    plat = _platform()
    config = {
        **plat,
        "config": {
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "Cmd": ["/bin/sh"],
            "WorkingDir": "/",
        },
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(layer_tar).hexdigest()]},
        "history": [{"created_by": "pycontainerd.testing.busybox_image_archive"}],
    }
    config_digest, config_size = _blob(blobs, _json_bytes(config))
    manifest = {
        "schemaVersion": 2,
        "mediaType": _MT_MANIFEST,
        "config": {"mediaType": _MT_CONFIG, "digest": config_digest, "size": config_size},
        "layers": [{"mediaType": _MT_LAYER, "digest": layer_digest, "size": layer_size}],
    }
    manifest_digest, manifest_size = _blob(blobs, _json_bytes(manifest))
    tag = name.rsplit(":", 1)[1] if ":" in name.rsplit("/", 1)[-1] else "latest"
    index = {
        "schemaVersion": 2,
        "mediaType": _MT_INDEX,
        "manifests": [
            {
                "mediaType": _MT_MANIFEST,
                "digest": manifest_digest,
                "size": manifest_size,
                "platform": plat,
                "annotations": {"io.containerd.image.name": name, "org.opencontainers.image.ref.name": tag},
            }
        ],
    }
    files = [
        ("oci-layout", _json_bytes({"imageLayoutVersion": "1.0.0"})),
        ("index.json", _json_bytes(index)),
        *((f"blobs/sha256/{digest.split(':', 1)[1]}", data) for digest, data in sorted(blobs.items())),
    ]
    tmp = f"{path}.{os.getpid()}.tmp"
    with tarfile.open(tmp, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for dirname in ("blobs", "blobs/sha256"):
            info = tarfile.TarInfo(dirname)
            info.type = tarfile.DIRTYPE
            info.mode = 0o755
            tar.addfile(info)
        for filename, data in files:
            info = tarfile.TarInfo(filename)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    os.replace(tmp, path)
    return path
