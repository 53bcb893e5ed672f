"""Argument parsing, value checks and output helpers of the ``pycontainerd`` command (no daemon)."""

from __future__ import annotations

import argparse
import json
import os
import signal
from pathlib import Path

import pytest

from pycontainerd.cli import _app, _embedded, _output, main


def parse(*argv: str) -> argparse.Namespace:
    return _app.parse(list(argv))


# -- run / exec -----------------------------------------------------------------------------------


def test_run_full_command_line() -> None:
    args = parse(
        "run",
        "--rm",
        "-t",
        "-i",
        "--rootfs",
        "/srv/bb",
        "--env",
        "A=1",
        "-e",
        "B=x=y",
        "--cwd",
        "/tmp",
        "--user",
        "1000:100",
        "--userns",
        "100000:100000:65536",
        "--memory",
        "64M",
        "--cpus",
        "0.5",
        "--hostname",
        "box",
        "c1",
        "--",
        "sh",
        "-c",
        "echo --rm -t",
    )
    assert args.command == "run"
    assert args.rm
    assert args.tty
    assert args.interactive
    assert not args.detach
    assert args.rootfs == "/srv/bb"
    assert args.image is None
    assert args.id == "c1"
    assert args.cmd == ["sh", "-c", "echo --rm -t"]
    assert args.env == ["A=1", "B=x=y"]
    assert args.cwd == "/tmp"
    assert args.user == (1000, 100)
    assert args.userns == (100000, 100000, 65536)
    assert args.memory == 64 << 20
    assert args.cpus == 0.5
    assert args.hostname == "box"


def test_run_command_without_dashes_and_relative_rootfs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    args = parse("run", "--rootfs", "rootfs", "c1", "echo", "hi")
    assert args.rootfs == str(tmp_path / "rootfs")
    assert args.cmd == ["echo", "hi"]
    assert args.user is None
    assert args.cwd is None


def test_run_image_positional() -> None:
    args = parse("run", "docker.io/library/busybox:latest", "c1", "--", "true")
    assert args.image == "docker.io/library/busybox:latest"
    assert args.id == "c1"
    assert args.cmd == ["true"]
    # Without a command the image's own runs; user names are resolved in the image.
    args = parse("run", "--rm", "-u", "app:staff", "busybox", "c1")
    assert (args.image, args.id, args.cmd, args.user) == ("busybox", "c1", [], "app:staff")
    assert parse("run", "-u", "1000", "busybox", "c1").user == "1000"  # the gid comes from the image


def test_images_actions() -> None:
    ls = parse("images", "ls", "--json", "name~=busybox")
    assert (ls.command, ls.images_action, ls.filters, ls.json, ls.snapshotter) == (
        "images", "ls", ["name~=busybox"], True, "overlayfs")
    imp = parse("images", "import", "-q", "--name", "x/y:1", "--platform", "linux/arm64", "--no-unpack", "-")
    assert (imp.file, imp.quiet, imp.name, imp.platform) == ("-", True, "x/y:1", "linux/arm64")
    assert imp.no_unpack
    exp = parse("images", "export", "--platform", "linux/amd64", "--platform", "linux/arm64/v8", "o.tar",
                "a", "b")
    assert (exp.file, exp.names, exp.platform) == ("o.tar", ["a", "b"], ["linux/amd64", "linux/arm64/v8"])
    tag = parse("-n", "ns", "images", "tag", "-f", "a", "b")
    assert (tag.namespace, tag.source, tag.target, tag.force) == ("ns", "a", "b", True)
    rm = parse("images", "rm", "--sync", "a", "b", "--namespace", "ns2")
    assert (rm.names, rm.sync, rm.namespace) == (["a", "b"], True, "ns2")
    assert parse("images", "inspect", "--platform", "arm64", "a").platform == "arm64"


def test_global_options_before_and_after_the_command(monkeypatch: pytest.MonkeyPatch) -> None:
    args = parse("--address", "/a.sock", "-n", "ns1", "ps", "--json")
    assert (args.address, args.namespace, args.json, args.command) == ("/a.sock", "ns1", True, "ps")
    args = parse("ps", "--address", "/b.sock", "--namespace", "ns2")
    assert (args.address, args.namespace, args.json) == ("/b.sock", "ns2", False)
    assert parse("--embedded", "tasks").command == "ps"  # alias
    assert parse("ls").command == "containers"


def test_exec() -> None:
    args = parse("exec", "-t", "-i", "c1", "e1", "--", "sh")
    assert (args.id, args.exec_id, args.cmd, args.tty, args.interactive) == ("c1", "e1", ["sh"], True, True)


def test_kill_and_others() -> None:
    args = parse("kill", "-s", "KILL", "--all", "c1", "c2")
    assert (args.signal, args.all, args.ids) == (signal.SIGKILL, True, ["c1", "c2"])
    assert parse("kill", "c1").signal == signal.SIGTERM
    assert parse("kill", "-s", "sigint", "c1").signal == signal.SIGINT
    assert parse("kill", "-s", "9", "c1").signal == 9
    assert parse("rm", "-f", "a", "b").force
    assert parse("daemon", "stop", "--purge").purge
    assert parse("rootfs", "busybox", "/tmp/x").dir == "/tmp/x"
    bench = parse("bench", "--quick", "--", "--sections", "latency")
    assert bench.quick
    assert bench.bench_args == ["--sections", "latency"]


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["run", "--rootfs", "/r", "bad id", "--", "true"], "invalid id"),
        (["run", "--rootfs", "/r", "c1"], "no command"),
        (["run", "c1", "--", "true"], "--rootfs"),
        (["run", "--rootfs", "/r", "--memory", "lots", "c1", "--", "true"], "invalid size"),
        (["run", "--rootfs", "/r", "--memory", "0", "c1", "--", "true"], "at least 1 byte"),
        (["run", "--rootfs", "/r", "--cpus", "0", "c1", "--", "true"], "CPU"),
        (["run", "--rootfs", "/r", "--user", "root", "c1", "--", "true"], "uid"),
        (["run", "--rootfs", "/r", "--user", "root", "c1", "--", "true"], "names need an IMAGE"),
        (["exec", "-u", "app", "c1", "e1", "--", "true"], "names need an IMAGE"),
        (["run", "-u", "a b", "busybox", "c1"], "invalid uid"),
        (["run", "-u", f"{2**31}", "busybox", "c1"], "invalid uid"),
        (["images"], "required"),
        (["images", "nope"], "invalid choice"),
        (["images", "export", "out.tar"], "required"),
        (["images", "import", "--platform", "linux//x", "a.tar"], "invalid platform"),
        (["images", "tag", "a"], "required"),
        (["run", "--rootfs", "/r", "--user", "1:x", "c1", "--", "true"], "gid"),
        (["run", "--rootfs", "/r", "--userns", "1:2", "c1", "--", "true"], "HOST_UID:HOST_GID:SIZE"),
        (["run", "--rootfs", "/r", "--userns", "1:2:0", "c1", "--", "true"], "size"),
        (["run", "--rootfs", "/r", "--env", "NOEQUALS", "c1", "--", "true"], "KEY=VALUE"),
        (["run", "--rootfs", "/r", "--cwd", "rel", "c1", "--", "true"], "absolute"),
        (["run", "--rootfs", "/r", "--hostname", "a b", "c1", "--", "true"], "hostname"),
        (["run", "--rootfs", "/r", "-d", "--rm", "c1", "--", "true"], "--rm"),
        (["run", "--rootfs", "/r", "-d", "-i", "c1", "--", "true"], "-d"),
        (["run", "--rootfs", "/r", "c1", "sh", "-c", "true"], "after '--'"),
        (["exec", "c1", "--", "true"], "EXEC_ID"),
        (["kill", "-s", "65", "c1"], "invalid signal"),
        (["kill", "-s", "NOTASIGNAL", "c1"], "invalid signal"),
        (["kill"], "required"),
        (["rm"], "required"),
        (["daemon", "restart"], "invalid choice"),
        (["-n", "bad/ns", "ps"], "invalid id"),
        (["nonsense"], "invalid choice"),
    ],
)
def test_usage_errors(argv: list[str], needle: str) -> None:
    with pytest.raises(_app.UsageError, match=None) as info:
        _app.parse(argv)
    assert needle in str(info.value)
    assert "\n" not in str(info.value)


# Every parsed command line the tests above use, and a few more shapes of global options.
SAME_EITHER_WAY = [
    ["run", "--rm", "-t", "-i", "--rootfs", "/srv/bb", "--env", "A=1", "-e", "B=x", "--user", "1:2", "c1"],
    ["-a", "/a.sock", "-n", "ns1", "--timeout", "5", "run", "--rm", "--rootfs", "/r", "c1", "sh"],
    ["--address=/a.sock", "--json", "run", "-d", "--rootfs", "/r", "--namespace", "ns2", "c1", "sleep"],
    ["-n", "run", "run", "--rootfs", "/r", "c1", "true"],  # a namespace named like the command
    ["--embedded", "tasks"],
    ["ls"],
    ["ps", "--address", "/b.sock", "--namespace", "ns2"],
    ["exec", "-t", "-i", "c1", "e1"],
    ["kill", "-s", "KILL", "--all", "c1", "c2"],
    ["rm", "-f", "a", "b"],
    ["daemon", "stop", "--purge"],
    ["rootfs", "busybox", "/tmp/x"],
    ["bench", "--quick", "--", "--sections", "latency"],
    ["run", "--rm", "-u", "app", "busybox", "c1"],
    ["images", "ls", "--json"],
    ["-n", "ns", "images", "import", "-q", "--platform", "linux/arm64", "a.tar"],
    ["images", "export", "--platform", "linux/amd64", "-", "a", "b"],
]


@pytest.mark.parametrize("argv", SAME_EITHER_WAY)
def test_the_fast_parse_is_the_full_parse(argv: list[str]) -> None:
    fast = _app._parse_fast(argv)
    assert fast is not None, "the one-command parser should have served this"
    assert vars(fast) == vars(_app.build_parser().parse_args(argv))


@pytest.mark.parametrize(
    "argv",
    [
        ["run", "-h"],
        ["run", "--he"],
        ["run", "-ith"],
        ["--help"],
        ["--addr", "/a.sock", "ps"],  # an abbreviated option: its value is taken for the command
        ["nonsense"],
        [],
        ["run", "--rootfs", "/r", "--memory", "lots", "c1"],  # errors come from the full parser
        ["--json", "frobnicate", "run"],
    ],
)
def test_the_fast_parse_leaves_help_doubt_and_errors_to_the_full_parser(argv: list[str]) -> None:
    assert _app._parse_fast(argv) is None


def test_the_usage_error_of_a_predicted_command_is_the_full_parsers() -> None:
    argv = ["run", "--rootfs", "/r", "--bogus", "c1", "--", "true"]
    with pytest.raises(_app.UsageError) as fast:
        _app.parse(argv)
    with pytest.raises(_app.UsageError) as full:
        _app.build_parser().parse_args(argv[:-2])
    assert str(fast.value) == str(full.value)
    assert "unrecognized arguments: --bogus" in str(fast.value)


def test_main_usage_error_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--rootfs", "/r", "--memory", "x", "c1", "--", "true"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1
    assert err.startswith("pycontainerd: error: argument --memory")


def test_main_help_and_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    assert "run" in capsys.readouterr().out
    assert main(["run", "--help"]) == 0
    assert "IMAGE: an image name" in capsys.readouterr().out
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("pycontainerd ")
    assert main([]) == 2


def test_main_missing_socket_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--address", str(tmp_path / "none.sock"), "ps"]) == 1
    err = capsys.readouterr().err
    assert (
        err == f"pycontainerd: error: containerd socket {tmp_path / 'none.sock'} does not exist: "
        "is containerd running?\n"
    )


def test_main_image_needs_the_daemon(capsys: pytest.CaptureFixture[str]) -> None:
    # An image is looked up in containerd, so a missing socket is what fails (run's status 125).
    assert main(["--address", "/nonexistent.sock", "run", "busybox", "c1", "--", "true"]) == 125
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "/nonexistent.sock does not exist" in err


def test_main_invalid_address(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--address", "relative.sock", "ps"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "absolute" in err


def test_main_embedded_and_address_conflict(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--embedded", "--address", "/x.sock", "ps"]) == 2
    assert "--embedded" in capsys.readouterr().err


# -- value checks ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1", 1),
        ("512k", 512 << 10),
        ("64M", 64 << 20),
        ("64MiB", 64 << 20),
        ("1.5G", 3 << 29),
        ("2gb", 2 << 30),
        ("1T", 1 << 40),
    ],
)
def test_byte_size(text: str, value: int) -> None:
    assert _app.byte_size(text) == value


@pytest.mark.parametrize("text", ["", "x", "-1", "0", "1Q", "1.2.3M"])
def test_byte_size_rejects(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        _app.byte_size(text)


def test_identifier_rules() -> None:
    assert _app.identifier("a.b_c-1") == "a.b_c-1"
    for bad in ("", "-a", "a..b", "a/b", "x" * 77, "a b"):
        with pytest.raises(argparse.ArgumentTypeError):
            _app.identifier(bad)


def test_user_and_userns() -> None:
    assert _app.user("5") == (5, 0)
    assert _app.user("5:6") == (5, 6)
    assert _app.userns("1:2:3") == (1, 2, 3)
    with pytest.raises(argparse.ArgumentTypeError):
        _app.user(str(2**31))


# -- output ------------------------------------------------------------------------------------------


def test_format_table() -> None:
    text = _output.format_table(["ID", "PID", "STATUS"], [("a", 1, "RUNNING"), ("long-id", None, "STOPPED")])
    assert text == "ID       PID  STATUS\na        1    RUNNING\nlong-id  -    STOPPED\n"


def test_json_default_handles_datetimes_and_enums(capsys: pytest.CaptureFixture[str]) -> None:
    import datetime as dt

    from pycontainerd.api.types import Status

    _output.print_json(
        {"t": dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc), "s": Status.RUNNING}, compact=True
    )
    assert json.loads(capsys.readouterr().out) == {"t": "2024-01-02T03:04:05Z", "s": "running"}


def test_error_line_collapses_newlines(capsys: pytest.CaptureFixture[str]) -> None:
    _output.error_line("first\n  second\tthird")
    assert capsys.readouterr().err == "pycontainerd: error: first second third\n"


# -- embedded daemon paths -----------------------------------------------------------------------------


def test_embedded_dir_override(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(_embedded.ENV_DIR, str(tmp_path / "emb"))
    assert _embedded.base_dir() == str(tmp_path / "emb")
    assert _embedded.address() == str(tmp_path / "emb" / "containerd.sock")
    assert _embedded.is_embedded_address(str(tmp_path / "emb" / "containerd.sock"))
    status = _embedded.status()
    assert not status.running
    assert status.pid is None
    assert not os.path.exists(tmp_path / "emb")  # status never creates anything
    assert _embedded.stop() is False


def test_embedded_default_dir_never_collides_with_a_namespace(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(_embedded.ENV_DIR, raising=False)
    name = os.path.basename(_embedded.base_dir())
    if os.geteuid() == 0:
        assert name.startswith(".")  # no containerd namespace can start with a dot


@pytest.mark.parametrize(("command", "usage"), [
    ("run", "usage: pycontainerd run [OPTIONS] (IMAGE | --rootfs DIR) ID [--] [CMD [ARG...]]"),
    ("exec", "usage: pycontainerd exec [OPTIONS] ID EXEC_ID [--] CMD [ARG...]"),
])
def test_usage_line_shows_the_command_after_double_dash(capsys: pytest.CaptureFixture[str], command: str,
                                                        usage: str) -> None:
    with pytest.raises(SystemExit):
        _app.build_parser().parse_args([command, "--help"])
    first = capsys.readouterr().out.splitlines()[0]
    assert first == usage
    assert "[[" not in first
