"""``pycontainerd images ...`` and ``pycontainerd run IMAGE``, run as real subprocesses."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import struct
import subprocess
import sys
import termios
from pathlib import Path
from typing import Any

import pytest

from pycontainerd import testing_images as ti
from pycontainerd.images.platform import host
from pycontainerd.images.unpack import chain_ids

NAME = "docker.io/test/whiteout:v1"
DOCKER_NAME = "docker.io/test/docker:1"


@pytest.fixture(scope="module")
def whiteout() -> ti.BuiltImage:
    return ti.whiteout_image(entrypoint=["/bin/sh", "-c"], cmd=["cat /data/modified"])


@pytest.fixture(scope="module")
def archives(whiteout: ti.BuiltImage, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    directory = tmp_path_factory.mktemp("cli-images")
    return {
        "oci": ti.write_oci_archive(directory / "w.tar", {NAME: whiteout}),
        "docker": ti.write_docker_archive(
            directory / "d.tar", {"test/docker:1": ti.whiteout_image(docker=True)}
        ),
    }


def _one_error_line(result: subprocess.CompletedProcess[bytes]) -> str:
    err = result.stderr.decode()
    assert result.returncode != 0
    assert err.startswith("pycontainerd: error: "), err
    assert err.count("\n") == 1, err
    return err


def test_import_ls_inspect_tag_rm(cli: Any, archives: dict[str, str], whiteout: ti.BuiltImage) -> None:
    done = cli("images", "import", archives["oci"])
    assert done.returncode == 0, done.stderr
    assert done.stdout.decode().split() == [NAME, whiteout.manifest["digest"]]
    # Not a terminal: one plain line per stored blob on stderr.
    lines = done.stderr.decode().splitlines()
    assert sorted(line.split()[0] for line in lines) == sorted(
        "blobs/sha256/" + digest.split(":", 1)[1] for digest in whiteout.blobs
    )
    (entry,) = json.loads(cli("--json", "images", "ls").stdout)
    assert (entry["name"], entry["digest"], entry["unpacked"]) == (NAME, whiteout.manifest["digest"], True)
    assert entry["size"] == sum(len(blob) for blob in whiteout.blobs.values())
    assert entry["platforms"] == [str(host())]
    table = cli("images", "ls").stdout.decode().splitlines()
    assert table[0].split() == ["NAME", "DIGEST", "SIZE", "PLATFORMS", "UNPACKED"]
    assert table[1].split()[0] == NAME
    assert table[1].split()[-2:] == [str(host()), "yes"]
    inspected = json.loads(cli("images", "inspect", NAME).stdout)
    assert inspected["config"]["entrypoint"] == ["/bin/sh", "-c"]
    assert inspected["config"]["cmd"] == ["cat /data/modified"]
    assert [layer["diff_id"] for layer in inspected["layers"]] == whiteout.diff_ids
    assert [layer["chain_id"] for layer in inspected["layers"]] == chain_ids(whiteout.diff_ids)
    assert cli("images", "tag", NAME, "example.com/pcd/again:2").stdout == b"example.com/pcd/again:2\n"
    assert "already exists" in _one_error_line(cli("images", "tag", NAME, "example.com/pcd/again:2"))
    assert cli("images", "tag", "-f", NAME, "example.com/pcd/again:2").returncode == 0
    assert cli("images", "rm", "--sync", "example.com/pcd/again:2").stdout == b"example.com/pcd/again:2\n"
    assert "not found" in _one_error_line(cli("images", "rm", "example.com/pcd/again:2"))
    assert [e["name"] for e in json.loads(cli("--json", "images", "ls").stdout)] == [NAME]


def test_import_from_stdin_short_names_and_a_bad_archive(cli: Any, archives: dict[str, str],
                                                         tmp_path: Path) -> None:
    done = cli("images", "import", "-q", "-", input=Path(archives["docker"]).read_bytes())
    assert (done.returncode, done.stderr) == (0, b"")
    assert done.stdout.decode().split()[0] == DOCKER_NAME
    # The short docker-style name finds docker.io/test/docker:1.
    run = cli("run", "--rm", "test/docker:1", "c1", "--", "cat", "/data/modified")
    assert (run.returncode, run.stdout) == (0, b"second\n"), run.stderr
    assert json.loads(cli("images", "inspect", "test/docker:1").stdout)["name"] == DOCKER_NAME
    (tmp_path / "bad.tar").write_bytes(b"not a tar at all" * 64)
    assert "tar" in _one_error_line(cli("images", "import", str(tmp_path / "bad.tar")))
    assert [e["name"] for e in json.loads(cli("--json", "images", "ls").stdout)] == [DOCKER_NAME]


@pytest.mark.parametrize("size", [None, (30, 120)], ids=["unsized", "sized"])
def test_import_progress_bars_on_a_terminal(containerd_address: str, namespace: str, archives: dict[str, str],
                                           whiteout: ti.BuiltImage, size: tuple[int, int] | None) -> None:
    controller, terminal = pty.openpty()
    if size is not None:
        fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", size[0], size[1], 0, 0))
    shown = b""
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "pycontainerd", "--address", containerd_address, "--namespace", namespace,
             "images", "import", archives["oci"]],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=terminal,
        )
        os.close(terminal)
        terminal = -1
        while True:
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # EIO: the command has exited and closed the terminal
                break
            if not chunk:
                break
            shown += chunk
        assert proc.wait(timeout=120) == 0, shown
    finally:
        os.close(controller)
        if terminal >= 0:
            os.close(terminal)
    text = shown.decode(errors="replace")
    # tqdm's bars, one per blob (labelled with the start of its digest): 100% once it is stored.
    for digest in whiteout.blobs:
        assert f"{digest.split(':', 1)[1][:19]}: 100%|" in text, text
    assert "B/s" in text, text
    assert "blobs/sha256/" not in text  # the plain lines are for pipes and files


def test_run_image_detach_and_export(cli: Any, client: Any, ctr: Any, other_namespace: str,
                                     archives: dict[str, str], whiteout: ti.BuiltImage,
                                     tmp_path: Path) -> None:
    assert cli("images", "import", "-q", archives["oci"]).returncode == 0
    # No command: the image's own (entrypoint + cmd) runs.
    run = cli("run", "--rm", NAME, "c1")
    assert (run.returncode, run.stdout) == (0, b"second\n"), run.stderr
    # A command replaces the image's Cmd, after its Entrypoint (sh -c).
    run = cli("run", "--rm", "-u", "app", "-w", "/data", NAME, "c2", "--", "id -un; id -u; pwd; exit 3")
    assert (run.returncode, run.stdout) == (3, b"app\n1000\n/data\n"), run.stderr
    run = cli("run", "--rm", "-u", "1000:50", "-e", "A=flag", NAME, "c3", "--", "id -u; id -g; echo $A")
    assert (run.returncode, run.stdout) == (0, b"1000\n50\nflag\n"), run.stderr
    assert "nosuchuser" in _one_error_line(cli("run", "--rm", "-u", "nosuchuser", NAME, "c4", "--", "true"))
    # Detached, then removed with its snapshot.
    started = json.loads(cli("--json", "run", "-d", NAME, "c5", "--", "sleep 60").stdout)
    assert started["id"] == "c5"
    assert started["pid"] > 0
    assert cli("rm", "-f", "c5").returncode == 0
    assert json.loads(cli("--json", "containers").stdout) == []
    # The containers' snapshots went with them; the image's stay.
    assert {info.name for info in client.api.snapshots.list("overlayfs")} == set(chain_ids(whiteout.diff_ids))

    # Export to a file and to stdout; ctr imports it and runs it; pycontainerd re-imports it.
    out = tmp_path / "out.tar"
    assert cli("images", "export", str(out), NAME).returncode == 0
    piped = cli("images", "export", "-", NAME)
    assert piped.returncode == 0
    assert piped.stdout == out.read_bytes()
    ctr("images", "import", str(out), namespace=other_namespace)
    assert ctr("run", "--rm", NAME, "exported", namespace=other_namespace) == "second\n"
    assert cli("images", "rm", "--sync", NAME).returncode == 0
    assert cli("images", "import", "-q", str(out)).returncode == 0
    assert cli("run", "--rm", NAME, "c6", "--", "true").returncode == 0
