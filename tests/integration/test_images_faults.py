"""Faults during an import: the daemon killed mid-blob, an unpacker that died mid-layer."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path
from typing import Any

import pytest

from pycontainerd import errors
from pycontainerd import testing_images as ti
from pycontainerd.images import BlobMismatchError
from pycontainerd.images.unpack import chain_ids

NAME = "docker.io/test/faults:1"


class _KillAt(io.RawIOBase):
    """A file that kills the daemon once the reader passes ``offset`` (a crash mid-import)."""

    def __init__(self, path: Path, offset: int, daemon: Any) -> None:
        self._file = open(path, "rb")  # noqa: SIM115 - closed by close()
        self._offset = offset
        self._daemon = daemon
        self.killed = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        n = self._file.readinto(buffer)
        if not self.killed and self._file.tell() > self._offset:
            self.killed = True
            self._daemon.kill()
        return n

    def close(self) -> None:
        self._file.close()
        super().close()


@pytest.fixture(scope="module")
def image() -> ti.BuiltImage:
    # A 4 MiB plain layer: several Write messages, so the kill lands inside it.
    big = ti.Layer([ti.file("big", os.urandom(4 << 20))], gzip=False)
    return ti.build_image([ti.busybox_layer(), big])


def test_daemon_killed_during_an_import(private_daemon: Any, client: Any, image: ti.BuiltImage,
                                        tmp_path: Path) -> None:
    path = Path(ti.write_oci_archive(tmp_path / "f.tar", {NAME: image}))
    big = image.layers[1]
    with tarfile.open(path) as tar:
        members = {m.name: m for m in tar.getmembers()}
    member = members["blobs/sha256/" + big["digest"].split(":", 1)[1]]
    before_big = [name for name, m in members.items() if m.isfile() and m.offset < member.offset
                  and name.startswith("blobs/")]
    reader = _KillAt(path, member.offset_data + member.size // 2, private_daemon)
    try:
        with pytest.raises(errors.ContainerdError):
            client.import_archive(io.BufferedReader(reader, 1 << 16))
    finally:
        reader.close()
        private_daemon.start()
        # The channel saw the socket refuse; wait until it reconnects.
        client.connection.connect()
    assert reader.killed
    assert client.list_images() == []
    committed = {info.digest: info.created_at for info in client.api.content.list()}
    assert {"sha256:" + name.rsplit("/", 1)[1] for name in before_big} <= set(committed)
    assert big["digest"] not in committed
    # The daemon kept the upload of the big layer it had begun (how many bytes it had
    # stored when it died varies; the re-import resumes from there).
    (partial,) = client.api.content.list_statuses()
    assert partial.ref.endswith(big["digest"])
    assert partial.offset < big["size"]

    (imported,) = client.import_archive(path)
    assert imported.is_unpacked()
    after = {info.digest: info.created_at for info in client.api.content.list()}
    for digest, created in committed.items():
        assert after[digest] == created, f"{digest} was written again"
    assert client.api.content.list_statuses() == []
    assert client.api.content.read(big["digest"]) == image.blobs[big["digest"]]
    # The lease the killed import could not delete went with the re-run's success.
    assert client.api.leases.list() == []


def test_daemon_killed_during_unpack_leaves_no_extract_snapshot_after_the_next_import(
    private_daemon: Any, client: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pycontainerd.api.diff import DiffService

    built = ti.build_image([ti.busybox_layer(), ti.Layer([ti.file("b", b"b\n")], gzip=False)])
    path = ti.write_oci_archive(tmp_path / "u.tar", {NAME: built})
    real_apply = DiffService.apply
    applied: list[str] = []

    def apply_then_die(self: DiffService, diff: Any, mounts: Any, **kwargs: Any) -> Any:
        applied.append(diff.digest)
        if len(applied) == 2:
            # The second layer's extract snapshot is prepared: the daemon dies before applying it.
            private_daemon.kill()
        return real_apply(self, diff, mounts, **kwargs)

    monkeypatch.setattr(DiffService, "apply", apply_then_die)
    try:
        with pytest.raises(errors.ContainerdError):
            client.import_archive(path)
    finally:
        private_daemon.start()
        monkeypatch.setattr(DiffService, "apply", real_apply)
    client.connection.connect(timeout=30)  # past the channel's reconnect backoff
    chain = chain_ids(built.diff_ids)
    left = {info.name: info for info in client.api.snapshots.list("overlayfs")}
    (extract,) = [name for name in left if name.startswith("extract-")]
    assert extract.endswith(" " + chain[1])
    assert left[extract].kind.value == "active"
    assert chain[0] in left  # the base layer was committed before the kill
    assert client.list_images() == []
    assert len(client.api.leases.list()) == 1  # the killed import's, which it could not delete

    (image,) = client.import_archive(path)
    assert image.is_unpacked()
    assert {info.name for info in client.api.snapshots.list("overlayfs")} == set(chain)
    assert client.api.leases.list() == []


def test_next_unpack_removes_a_dead_unpacker_s_extract_snapshot(client: Any, tmp_path: Path) -> None:
    built = ti.build_image([ti.busybox_layer(), ti.Layer([ti.file("a", b"a")])])
    path = ti.write_oci_archive(tmp_path / "u.tar", {NAME: built})
    (image,) = client.import_archive(path, unpack=False)
    chain = chain_ids(built.diff_ids)
    # What an unpacker killed inside Diff.Apply of the base layer leaves: an extract
    # snapshot held by a lease nobody will delete.
    lease = client.api.leases.create()
    stale = f"extract-1-deadbeef {chain[0]}"
    client.with_lease(lease.id).api.snapshots.prepare("overlayfs", stale)
    unrelated = f"extract-2-cafe sha256:{'1' * 64}"
    client.with_lease(lease.id).api.snapshots.prepare("overlayfs", unrelated)
    image.unpack()
    names = {info.name for info in client.api.snapshots.list("overlayfs")}
    assert names == {*chain, unrelated}


def _leave_partial_ingest(client: Any, ref: str, data: bytes, total: int, expected: str) -> None:
    """What a writer that died mid-blob leaves: an ingest holding ``data``, not committed."""
    from pycontainerd.api.content import write_data_request, write_stat_request

    requests = iter([write_stat_request(ref, total=total, expected=expected), write_data_request(0, data)])
    # The request stream ends without a COMMIT: the daemon keeps the ingest as it is.
    for _ in client.api.content.stub.Write(requests):
        pass


def test_a_partial_upload_is_resumed(client: Any, image: ti.BuiltImage, tmp_path: Path) -> None:
    path = ti.write_oci_archive(tmp_path / "r.tar", {NAME: image})
    big = image.layers[1]
    blob = image.blobs[big["digest"]]
    ref = "pycontainerd-import-" + big["digest"]
    half = len(blob) // 2
    # Resuming trusts the bytes the daemon holds, as containerd's client does. Planting
    # wrong ones shows the import sent only the rest: the digest check at commit fails.
    _leave_partial_ingest(client, ref, bytes(half), big["size"], big["digest"])
    (status,) = client.api.content.list_statuses()
    assert (status.ref, status.offset) == (ref, half)
    with pytest.raises(BlobMismatchError):
        client.import_archive(path)
    # The failed upload was aborted; with the right first half the import completes.
    assert client.api.content.list_statuses() == []
    _leave_partial_ingest(client, ref, blob[:half], big["size"], big["digest"])
    (imported,) = client.import_archive(path)
    assert client.api.content.read(big["digest"]) == blob
    assert client.api.content.list_statuses() == []
    assert imported.is_unpacked()
