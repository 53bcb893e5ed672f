"""The pure parts of pycontainerd.images: platforms, names, chain IDs, GC labels, specs, layer lookups."""

from __future__ import annotations

import hashlib
import io
import json
import os
import stat
import tarfile
from pathlib import Path
from typing import Any

import pytest

from pycontainerd import oci
from pycontainerd.api.types import Descriptor
from pycontainerd.images import ImageConfig, UnsafePathError
from pycontainerd.images import mediatypes as mt
from pycontainerd.images.archive import (
    CHUNK_SIZE,
    ArchiveContents,
    ArchiveFile,
    MemberReader,
    docker_manifests,
    familiar_reference,
    normalize_reference,
    read_archive,
    reference_tag,
    safe_name,
)
from pycontainerd.images.platform import Platform, parse
from pycontainerd.images.rootfs_files import layer_dirs, read_from_layers
from pycontainerd.images.spec import image_spec, resolve_user
from pycontainerd.images.unpack import chain_ids
from pycontainerd.images.walk import child_gc_labels


@pytest.mark.parametrize(
    ("want", "have", "matches"),
    [
        ("linux/amd64", Platform("linux", "amd64"), True),
        ("linux/amd64", Platform("linux", "x86_64"), True),
        ("linux/arm64", Platform("linux", "arm64", "v8"), True),
        ("linux/arm64/v8", Platform("linux", "arm64"), True),
        ("linux/arm/v7", Platform("linux", "arm", "v6"), False),
        ("linux/arm", Platform("linux", "arm", "v7"), True),
        ("linux/amd64", Platform("windows", "amd64"), False),
        ("arm64", Platform("linux", "aarch64"), True),
    ],
)
def test_platform_matching(want: str, have: Platform, matches: bool) -> None:
    assert parse(want).matches(have) is matches


@pytest.mark.parametrize("bad", ["", "linux/", "a/b/c/d", "/amd64"])
def test_platform_parse_rejects(bad: str) -> None:
    with pytest.raises(ValueError, match="platform"):
        parse(bad)


@pytest.mark.parametrize(
    ("ref", "full"),
    [
        ("busybox", "docker.io/library/busybox:latest"),
        ("busybox:1", "docker.io/library/busybox:1"),
        ("test/img:2", "docker.io/test/img:2"),
        ("localhost:5000/x:y", "localhost:5000/x:y"),
        ("example.com/a/b", "example.com/a/b:latest"),
    ],
)
def test_normalize_reference(ref: str, full: str) -> None:
    assert normalize_reference(ref) == full


@pytest.mark.parametrize(
    ("full", "familiar", "tag"),
    [
        ("docker.io/library/busybox:latest", "busybox:latest", "latest"),
        ("docker.io/test/img:2", "test/img:2", "2"),
        ("localhost:5000/x:y", "localhost:5000/x:y", "y"),
        ("example.com/a/b@sha256:" + "0" * 64, "example.com/a/b@sha256:" + "0" * 64, ""),
        ("example.com:5000/a/b:1@sha256:" + "0" * 64, "example.com:5000/a/b:1@sha256:" + "0" * 64, "1"),
    ],
)
def test_familiar_reference_and_tag(full: str, familiar: str, tag: str) -> None:
    # What export writes as docker's RepoTags and the OCI ref.name; import reads them back.
    assert familiar_reference(full) == familiar
    assert reference_tag(full) == tag
    if tag and "@" not in full:
        assert normalize_reference(familiar) == full


def test_read_archive_reports_progress_per_file(tmp_path: Path) -> None:
    big, small = os.urandom(CHUNK_SIZE * 2 + 5), b"small"
    path = tmp_path / "a.tar"
    with tarfile.open(path, "w") as tar:
        for name, data in (("oci-layout", b"{}"), ("blobs/sha256/" + "a" * 64, big), ("x/layer.tar", small)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    calls: list[tuple[str, int, int]] = []

    def store(reader: MemberReader, expected: str | None) -> str:
        if expected is None:  # read it all
            return "sha256:" + hashlib.sha256(b"".join(reader.chunks())).hexdigest()
        next(reader.chunks())  # one chunk, then "already there"
        return expected

    with open(path, "rb") as f:
        contents = read_archive(f, store, lambda *call: calls.append(call))
    assert set(contents.files) == {"blobs/sha256/" + "a" * 64, "x/layer.tar"}
    assert calls == [
        ("blobs/sha256/" + "a" * 64, CHUNK_SIZE, len(big)),
        ("blobs/sha256/" + "a" * 64, len(big), len(big)),  # done, though not every byte was read
        ("x/layer.tar", 5, 5),  # read in one chunk: only the final call
    ]


@pytest.mark.parametrize("name", ["../x", "/x", "a/../../x", "a/..", ".", ""])
def test_safe_name_refuses(name: str) -> None:
    with pytest.raises(UnsafePathError):
        safe_name(name)


def test_safe_name_cleans() -> None:
    assert safe_name("./blobs//sha256/ab") == "blobs/sha256/ab"
    assert safe_name("a/./b//c/") == "a/b/c"


def test_chain_ids_follow_the_image_spec() -> None:
    d = ["sha256:" + c * 64 for c in "abc"]
    one = "sha256:" + hashlib.sha256(f"{d[0]} {d[1]}".encode()).hexdigest()
    two = "sha256:" + hashlib.sha256(f"{one} {d[2]}".encode()).hexdigest()
    assert chain_ids(d) == [d[0], one, two]
    assert chain_ids([]) == []


def test_child_gc_labels_number_per_key() -> None:
    config = Descriptor(mt.OCI_CONFIG, "sha256:c", 1)
    layers = [Descriptor(mt.OCI_LAYER_GZIP, f"sha256:{n}", 1) for n in range(3)]
    assert child_gc_labels([config, *layers]) == {
        "containerd.io/gc.ref.content.config": "sha256:c",
        "containerd.io/gc.ref.content.l.0": "sha256:0",
        "containerd.io/gc.ref.content.l.1": "sha256:1",
        "containerd.io/gc.ref.content.l.2": "sha256:2",
    }
    manifests = [Descriptor(mt.OCI_MANIFEST, "sha256:m", 1), Descriptor(mt.OCI_INDEX, "sha256:i", 1)]
    assert child_gc_labels(manifests) == {
        "containerd.io/gc.ref.content.m.0": "sha256:m",
        "containerd.io/gc.ref.content.0": "sha256:i",
    }


def test_docker_manifest_is_serialised_like_containerd() -> None:
    contents = ArchiveContents(docker_manifest=json.dumps(
        [{"Config": "c.json", "RepoTags": ["busybox:1"], "Layers": ["l/layer.tar", "g/layer.tar"]}]
    ).encode())
    contents.files = {
        "c.json": ArchiveFile("c.json", "sha256:cc", 10),
        "l/layer.tar": ArchiveFile("l/layer.tar", "sha256:ll", 20, b"plain"),
        "g/layer.tar": ArchiveFile("g/layer.tar", "sha256:gg", 30, b"\x1f\x8b\x08"),
    }
    (image,) = docker_manifests(contents)
    assert image.names == ["docker.io/library/busybox:1"]
    assert image.manifest == (
        b'{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json",'
        b'"config":{"mediaType":"application/vnd.docker.container.image.v1+json","digest":"sha256:cc","size":10},'
        b'"layers":[{"mediaType":"application/vnd.docker.image.rootfs.diff.tar","digest":"sha256:ll","size":20},'
        b'{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","digest":"sha256:gg","size":30}]}'
    )


_PASSWD = b"root:x:0:0::/root:/bin/sh\napp:x:1000:1001::/home/app:/bin/sh\n# comment\n"
_GROUP = b"root:x:0:\napp:x:1001:\nstaff:x:50:app,x\nwheel:x:10:root\n"


def _files(path: str) -> bytes | None:
    return {"/etc/passwd": _PASSWD, "/etc/group": _GROUP}.get(path)


@pytest.mark.parametrize(
    ("user", "expected"),
    [
        ("", (0, 0, [10])),
        ("app", (1000, 1001, [50])),
        ("1000", (1000, 1001, [50])),
        ("app:staff", (1000, 50, [])),
        ("1000:7", (1000, 7, [50])),
        ("4242", (4242, 0, [])),
    ],
)
def test_resolve_user(user: str, expected: tuple[int, int, list[int]]) -> None:
    assert resolve_user(user, _files) == expected


def test_resolve_user_errors() -> None:
    with pytest.raises(ValueError, match="ghost"):
        resolve_user("ghost", _files)
    with pytest.raises(ValueError, match="nogroup"):
        resolve_user("app:nogroup", _files)
    with pytest.raises(ValueError, match="cannot be read"):
        resolve_user("app", None)
    assert resolve_user("7:8", None) == (7, 8, [])


def test_image_spec_follows_with_image_config() -> None:
    config = ImageConfig(entrypoint=("/ep",), cmd=("c",), env=("PATH=/x", "A=1"), working_dir="/w",
                         user="7:8")
    spec = image_spec(config, env={"A": "2", "B": "3"})
    process: dict[str, Any] = spec["process"]
    assert process["args"] == ["/ep", "c"]
    assert process["env"] == ["PATH=/x", "A=2", "B=3"]
    assert process["cwd"] == "/w"
    assert process["user"] == {"uid": 7, "gid": 8}
    assert spec["root"]["path"] == oci.BUNDLE_ROOTFS
    assert image_spec(config, args=["x"])["process"]["args"] == ["/ep", "x"]
    assert image_spec(config, entrypoint=["/new"])["process"]["args"] == ["/new"]
    assert image_spec(config, entrypoint=["/new"], args=["x"])["process"]["args"] == ["/new", "x"]
    bare = image_spec(ImageConfig(cmd=("sh",)))
    assert bare["process"]["env"] == [oci.DEFAULT_PATH_ENV]
    assert bare["process"]["cwd"] == "/"
    with pytest.raises(ValueError, match="no Entrypoint or Cmd"):
        image_spec(ImageConfig())


def test_layer_dirs() -> None:
    from pycontainerd.api.types import Mount

    overlay = Mount("overlay", "overlay", "", ("index=off", "lowerdir=/a:/b:/c"))
    assert layer_dirs([overlay]) == ["/a", "/b", "/c"]
    assert layer_dirs([Mount("bind", "/s", "", ("ro", "rbind"))]) == ["/s"]
    assert layer_dirs([Mount("ext4", "/dev/x", "", ())]) is None


@pytest.mark.skipif(os.geteuid() != 0, reason="whiteouts (mknod 0/0) and trusted xattrs need root")
def test_read_from_layers_honours_whiteouts_and_opaque_dirs(tmp_path: Path) -> None:
    top, middle, base = (tmp_path / n for n in ("top", "middle", "base"))
    for layer in (top, middle, base):
        (layer / "etc").mkdir(parents=True)
    (base / "etc" / "passwd").write_bytes(b"base")
    (base / "etc" / "group").write_bytes(b"base group")
    (base / "etc" / "hosts").write_bytes(b"base hosts")
    (middle / "etc" / "passwd").write_bytes(b"middle")
    os.mknod(top / "etc" / "group", stat.S_IFCHR | 0o600, 0)
    (top / "opq").mkdir()
    (base / "opq").mkdir()
    (base / "opq" / "f").write_bytes(b"hidden")
    os.setxattr(top / "opq", "trusted.overlay.opaque", b"y")
    dirs = [str(top), str(middle), str(base)]
    assert read_from_layers(dirs, "/etc/passwd") == b"middle"
    assert read_from_layers(dirs, "/etc/group") is None
    assert read_from_layers(dirs, "/etc/hosts") == b"base hosts"
    assert read_from_layers(dirs, "/opq/f") is None
    assert read_from_layers(dirs, "/nope") is None
    assert read_from_layers(dirs, "/../etc/passwd") is None
