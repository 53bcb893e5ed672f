"""FIFO sets against the real kernel: paths, creation, refusal, non-blocking opens, cancel, leaks."""

from __future__ import annotations

import errno
import fcntl
import os
import resource
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from pycontainerd.stdio.fifo import FIFO_MODE, FIFOCancelledError, FIFOPipes, FIFOSet

# Generous upper bound for waits that must succeed; never asserted as a duration.
PATIENCE = 30.0


def fd_count() -> int:
    return len(os.listdir("/proc/self/fd"))


def baseline() -> tuple[int, int]:
    return fd_count(), threading.active_count()


@pytest.fixture
def umask() -> Iterator[None]:
    old = os.umask(0o022)
    yield
    os.umask(old)


def is_fifo(path: str | Path) -> bool:
    return stat.S_ISFIFO(os.lstat(path).st_mode)


# -- paths ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stdin", "terminal", "names"),
    [
        (False, False, ("p-stdout", "p-stderr")),
        (True, False, ("p-stdin", "p-stdout", "p-stderr")),
        (False, True, ("p-stdout",)),
        (True, True, ("p-stdin", "p-stdout")),
    ],
)
def test_path_matrix(tmp_path: Path, stdin: bool, terminal: bool, names: tuple[str, ...]) -> None:
    fifos = FIFOSet.new(tmp_path, "p", stdin=stdin, terminal=terminal)
    assert fifos.paths == tuple(str(tmp_path / n) for n in names)
    assert fifos.stdin == (str(tmp_path / "p-stdin") if stdin else None)
    assert fifos.stdout == str(tmp_path / "p-stdout")
    assert fifos.stderr == (None if terminal else str(tmp_path / "p-stderr"))
    assert fifos.terminal is terminal
    assert os.listdir(tmp_path) == []  # naming creates nothing
    fifos.create()
    assert sorted(os.listdir(tmp_path)) == sorted(names)
    assert all(is_fifo(p) for p in fifos.paths)
    fifos.close()
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("process_id", ["", ".", "..", "a/b", "/abs", "a\0b", "x" * 249])
def test_invalid_process_id(tmp_path: Path, process_id: str) -> None:
    with pytest.raises(ValueError, match="process id"):
        FIFOSet.new(tmp_path, process_id, stdin=True, terminal=False)
    assert os.listdir(tmp_path) == []


def test_longest_valid_process_id(tmp_path: Path) -> None:
    process_id = "x" * (255 - len("-stdout"))
    with FIFOSet.new(tmp_path, process_id, stdin=True, terminal=False) as fifos:
        fifos.create()
        assert all(is_fifo(p) for p in fifos.paths)


@pytest.mark.parametrize("directory", ["relative/dir", "/tmp/a\0b"])
def test_invalid_directory(directory: str) -> None:
    with pytest.raises(ValueError, match="directory"):
        FIFOSet.new(directory, "p", stdin=False, terminal=False)


def test_missing_directory(tmp_path: Path) -> None:
    missing = tmp_path / "missing"
    with pytest.raises(FileNotFoundError) as info:
        FIFOSet.new(missing, "p", stdin=False, terminal=False).create()
    assert info.value.filename == str(missing)


# -- create ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("mask", [0o077, 0o777, 0])
def test_mode_is_exact_under_any_umask(tmp_path: Path, umask: None, mask: int) -> None:
    os.umask(mask)
    with FIFOSet.new(tmp_path, "p", stdin=True, terminal=False) as fifos:
        fifos.create()
        for path in fifos.paths:
            st = os.lstat(path)
            assert stat.S_ISFIFO(st.st_mode)
            assert stat.S_IMODE(st.st_mode) == FIFO_MODE == 0o600
            assert st.st_uid == os.geteuid()


def test_existing_fifo_is_reused(tmp_path: Path) -> None:
    fifos = FIFOSet.new(tmp_path, "p", stdin=True, terminal=False)
    assert fifos.stdin is not None
    os.mkfifo(fifos.stdin, 0o640)
    os.chmod(fifos.stdin, 0o640)
    before = os.lstat(fifos.stdin)
    fifos.create()
    after = os.lstat(fifos.stdin)
    assert (after.st_ino, after.st_dev) == (before.st_ino, before.st_dev)
    assert stat.S_IMODE(after.st_mode) == 0o640  # reused as is, not chmodded
    fifos.create()  # a second create reuses all three
    assert all(is_fifo(p) for p in fifos.paths)
    fifos.close()
    assert os.listdir(tmp_path) == []


def test_regular_file_is_refused_and_rolled_back(tmp_path: Path) -> None:
    fifos = FIFOSet.new(tmp_path, "p", stdin=True, terminal=False)
    (tmp_path / "p-stdout").write_bytes(b"keep me")
    with pytest.raises(FileExistsError) as info:
        fifos.create()
    assert info.value.filename == fifos.stdout
    # The stdin FIFO this call made is gone again; the file is untouched.
    assert os.listdir(tmp_path) == ["p-stdout"]
    assert (tmp_path / "p-stdout").read_bytes() == b"keep me"


def test_rollback_keeps_reused_fifos(tmp_path: Path) -> None:
    fifos = FIFOSet.new(tmp_path, "p", stdin=True, terminal=False)
    assert fifos.stdin is not None
    assert fifos.stderr is not None
    os.mkfifo(fifos.stdin)
    os.mkdir(fifos.stderr)
    with pytest.raises(FileExistsError) as info:
        fifos.create()
    assert info.value.filename == fifos.stderr
    # stdout (made by this call) is removed; stdin existed before, so it stays.
    assert sorted(os.listdir(tmp_path)) == ["p-stderr", "p-stdin"]


@pytest.mark.parametrize("dangling", [False, True])
def test_symlink_is_refused(tmp_path: Path, dangling: bool) -> None:
    target = tmp_path / "target"
    if not dangling:
        os.mkfifo(target, 0o644)
        os.chmod(target, 0o644)
    fifos = FIFOSet.new(tmp_path, "p", stdin=False, terminal=True)
    os.symlink(target, fifos.stdout)
    with pytest.raises(FileExistsError) as info:
        fifos.create()
    assert info.value.filename == fifos.stdout
    assert os.path.islink(fifos.stdout)
    if dangling:
        assert not os.path.lexists(target)  # nothing was created through the link
    else:
        assert stat.S_IMODE(os.lstat(target).st_mode) == 0o644  # not chmodded through the link
    fifos.close()
    assert os.path.islink(fifos.stdout)  # close() removes FIFOs only


def test_symlinked_directory_is_refused(tmp_path: Path) -> None:
    """The FIFO directory itself swapped for a symlink: nothing is made in the victim."""
    victim = tmp_path / "victim"
    victim.mkdir()
    link = tmp_path / "bundle"
    os.symlink(victim, link)
    fifos = FIFOSet.new(link, "p", stdin=True, terminal=False)
    with pytest.raises(OSError, match="symbolic links") as created:
        fifos.create()
    assert created.value.errno == errno.ELOOP
    assert created.value.filename == str(link)
    with pytest.raises(OSError, match="symbolic links"):
        fifos.open()
    assert os.listdir(victim) == []


def test_symlinked_parent_is_refused(tmp_path: Path) -> None:
    """A directory ABOVE the FIFO directory swapped for a symlink: O_NOFOLLOW alone would follow it."""
    victim = tmp_path / "victim"
    (victim / "c1").mkdir(parents=True)
    os.symlink(victim, tmp_path / "ns")
    fifos = FIFOSet.new(tmp_path / "ns" / "c1", "p", stdin=True, terminal=False)
    with pytest.raises(OSError, match="symbolic links") as info:
        fifos.open()
    assert info.value.errno == errno.ELOOP
    assert os.listdir(victim / "c1") == []


# -- close -----------------------------------------------------------------------------------------


def test_close_removes_exactly_its_paths_and_is_idempotent(tmp_path: Path) -> None:
    other = FIFOSet.new(tmp_path, "other", stdin=False, terminal=True)
    other.create()
    (tmp_path / "unrelated").write_text("x")
    fifos = FIFOSet.new(tmp_path, "p", stdin=True, terminal=False)
    fifos.create()
    assert fifos.stdin is not None
    os.unlink(fifos.stdin)  # an already missing path is fine
    fifos.close()
    fifos.close()
    assert sorted(os.listdir(tmp_path)) == ["other-stdout", "unrelated"]


def test_context_manager_closes(tmp_path: Path) -> None:
    with FIFOSet.new(tmp_path, "p", stdin=True, terminal=False) as fifos:
        fifos.create()
        assert len(os.listdir(tmp_path)) == 3
    assert os.listdir(tmp_path) == []
    with pytest.raises(ValueError, match="closed"):
        fifos.create()


def test_from_paths_close_removes_fifos_then_empty_parents(tmp_path: Path) -> None:
    empty_dir = tmp_path / "a"
    busy_dir = tmp_path / "b"
    empty_dir.mkdir()
    busy_dir.mkdir()
    os.mkfifo(empty_dir / "x-stdin")
    os.mkfifo(empty_dir / "x-stdout")
    (busy_dir / "x-stderr").write_text("not a fifo")
    fifos = FIFOSet.from_paths(
        stdin=str(empty_dir / "x-stdin"),
        stdout=str(empty_dir / "x-stdout"),
        stderr=str(busy_dir / "x-stderr"),
        terminal=False,
    )
    fifos.close()
    fifos.close()
    assert not empty_dir.exists()
    assert (busy_dir / "x-stderr").read_text() == "not a fifo"


def test_from_paths_empty_strings_mean_absent(tmp_path: Path) -> None:
    fifos = FIFOSet.from_paths(stdin="", stdout=str(tmp_path / "o"), stderr="", terminal=True)
    assert (fifos.stdin, fifos.stderr) == (None, None)
    assert fifos.paths == (str(tmp_path / "o"),)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"stdin": None, "stdout": "", "stderr": None},
        {"stdin": "rel/in", "stdout": "/x/o", "stderr": None},
        {"stdin": None, "stdout": "/x/o", "stderr": "/x/\0e"},
        {"stdin": "/x/o", "stdout": "/x/o", "stderr": None},
    ],
)
def test_from_paths_validation(kwargs: dict[str, str | None]) -> None:
    with pytest.raises(ValueError, match=r"stdin|stdout|stderr|distinct"):
        FIFOSet.from_paths(terminal=False, **kwargs)  # type: ignore[arg-type]


# -- open ------------------------------------------------------------------------------------------


def open_in_worker(fifos: FIFOSet) -> FIFOPipes:
    """Call fifos.open() in a worker: the test fails (not hangs) if it blocks."""
    result: list[FIFOPipes] = []
    worker = threading.Thread(target=lambda: result.append(fifos.open()), daemon=True)
    worker.start()
    worker.join(PATIENCE)
    assert not worker.is_alive(), "FIFOSet.open() blocked with no peer"
    return result[0]


def test_open_returns_at_once_without_peer(tmp_path: Path) -> None:
    fifos = FIFOSet.new(tmp_path, "p", stdin=True, terminal=False)
    pipes = open_in_worker(fifos)
    try:
        assert pipes.fifos is fifos
        assert pipes.stdin is not None
        assert pipes.stderr is not None
        assert not pipes.stdin.done
        for end in (pipes.stdout, pipes.stderr):
            assert end.done
            fd = end.fileno(timeout=0)
            flags = fcntl.fcntl(fd, fcntl.F_GETFL)
            assert flags & os.O_ACCMODE == os.O_RDONLY
            assert flags & os.O_NONBLOCK
            assert fcntl.fcntl(fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC
            assert stat.S_ISFIFO(os.fstat(fd).st_mode)
        with pytest.raises(TimeoutError):
            pipes.stdin.fileno(timeout=0)
    finally:
        pipes.close()
    assert os.listdir(tmp_path) == []


def test_terminal_set_has_no_stderr_end(tmp_path: Path) -> None:
    with FIFOSet.new(tmp_path, "p", stdin=False, terminal=True).open() as pipes:
        assert pipes.stdin is None
        assert pipes.stderr is None
        assert pipes.stdout.done


def test_stdin_completes_when_reader_opens(tmp_path: Path) -> None:
    fifos = FIFOSet.new(tmp_path, "p", stdin=True, terminal=True)
    assert fifos.stdin is not None
    with fifos.open() as pipes:
        assert pipes.stdin is not None
        reader = os.open(fifos.stdin, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        try:
            fd = pipes.stdin.fileno(timeout=PATIENCE)
            assert fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE == os.O_WRONLY
            assert fcntl.fcntl(fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC
            assert os.write(fd, b"hello") == 5
            assert os.read(reader, 16) == b"hello"
        finally:
            os.close(reader)
        pipes.cancel()  # cancel() leaves an end that is already open alone
        assert pipes.stdin.fileno(timeout=0) == fd


def test_reader_already_present_completes_stdin(tmp_path: Path) -> None:
    # Reattach: the shim already holds its reader on the stdin FIFO.
    stdin = tmp_path / "p-stdin"
    os.mkfifo(stdin)
    shim_reader = os.open(stdin, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        fifos = FIFOSet.from_paths(
            stdin=str(stdin), stdout=str(tmp_path / "p-stdout"), stderr=None, terminal=True
        )
        with fifos.open() as pipes:
            assert pipes.stdin is not None
            fd = pipes.stdin.fileno(timeout=PATIENCE)
            os.write(fd, b"x")
            assert os.read(shim_reader, 1) == b"x"
    finally:
        os.close(shim_reader)
    assert not tmp_path.exists()  # the reattach closer removed the emptied directory


def test_stdout_reads_what_a_writer_sends(tmp_path: Path) -> None:
    with FIFOSet.new(tmp_path, "p", stdin=False, terminal=False).open() as pipes:
        writer = os.open(pipes.fifos.stdout, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        os.write(writer, b"out")
        os.close(writer)
        fd = pipes.stdout.fileno()
        assert os.read(fd, 16) == b"out"
        assert os.read(fd, 16) == b""  # the writer connected and left: EOF


def test_cancel_without_peer_leaks_nothing(tmp_path: Path) -> None:
    before = baseline()
    pipes = FIFOSet.new(tmp_path, "p", stdin=True, terminal=False).open()
    assert pipes.stdin is not None
    assert threading.active_count() == before[1] + 1  # the pending opener
    pipes.cancel()
    assert threading.active_count() == before[1]
    with pytest.raises(FIFOCancelledError) as info:
        pipes.stdin.fileno()
    assert info.value.errno == errno.ECANCELED
    assert isinstance(info.value, OSError)
    assert info.value.filename == pipes.fifos.stdin
    pipes.close()
    assert baseline() == before
    assert os.listdir(tmp_path) == []


def test_cancel_wakes_a_waiting_fileno(tmp_path: Path) -> None:
    errors: list[BaseException] = []
    started = threading.Event()
    with FIFOSet.new(tmp_path, "p", stdin=True, terminal=True).open() as pipes:
        stdin = pipes.stdin
        assert stdin is not None

        def wait() -> None:
            started.set()
            try:
                stdin.fileno()
            except BaseException as exc:
                errors.append(exc)

        waiter = threading.Thread(target=wait, daemon=True)
        waiter.start()
        started.wait()
        pipes.cancel()
        waiter.join(PATIENCE)
        assert not waiter.is_alive()
    assert len(errors) == 1
    assert isinstance(errors[0], FIFOCancelledError)


def test_close_is_idempotent(tmp_path: Path) -> None:
    before = baseline()
    pipes = FIFOSet.new(tmp_path, "p", stdin=True, terminal=False).open()
    pipes.close()
    pipes.close()
    assert baseline() == before
    with pytest.raises(ValueError, match="closed"):
        pipes.stdout.fileno()
    assert pipes.stdin is not None
    with pytest.raises(FIFOCancelledError):
        pipes.stdin.fileno()


def test_open_cancel_close_cycles_leak_nothing(tmp_path: Path) -> None:
    before = baseline()
    for i in range(100):
        fifos = FIFOSet.new(tmp_path, f"p{i % 3}", stdin=True, terminal=i % 2 == 0)
        pipes = fifos.open()
        if i % 4 == 0:
            pipes.close()  # close without an explicit cancel
        else:
            pipes.cancel()
            pipes.close()
    assert baseline() == before
    assert os.listdir(tmp_path) == []


def free_fd_limit(free: int) -> int:
    """An RLIMIT_NOFILE soft limit leaving exactly ``free`` unused fd numbers."""
    limit = 0
    while free > 0 or limit == 0:
        try:
            fcntl.fcntl(limit, fcntl.F_GETFD)
        except OSError:
            free -= 1
        limit += 1
    return limit


def test_failure_part_way_through_open_rolls_back(tmp_path: Path) -> None:
    existing = tmp_path / "p-stdin"
    os.mkfifo(existing)  # reused by open(), removed with the others on failure
    before = baseline()
    fifos = FIFOSet.new(tmp_path, "p", stdin=True, terminal=False)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    # Three free fds: stdin and stdout are opened, stderr's open hits EMFILE.
    resource.setrlimit(resource.RLIMIT_NOFILE, (free_fd_limit(3), hard))
    try:
        with pytest.raises(OSError, match="Too many open files") as info:
            fifos.open()
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert info.value.errno == errno.EMFILE
    assert baseline() == before
    assert os.listdir(tmp_path) == []


def test_cancel_after_fifo_was_unlinked(tmp_path: Path) -> None:
    # The opener waits on the inode (O_PATH handle), so cancel works without the path.
    before = baseline()
    pipes = FIFOSet.new(tmp_path, "p", stdin=True, terminal=True).open()
    pipes.fifos.close()
    assert os.listdir(tmp_path) == []
    pipes.cancel()
    assert threading.active_count() == before[1]
    pipes.close()
    assert baseline() == before


def open_reader(path: str, out: list[int]) -> None:
    out.append(os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC))


def test_cancel_racing_a_peer(tmp_path: Path) -> None:
    # Whichever wins, the end is either open for writing or cancelled, and nothing leaks.
    before = baseline()
    for _ in range(200):
        pipes = FIFOSet.new(tmp_path, "p", stdin=True, terminal=True).open()
        assert pipes.stdin is not None
        assert pipes.fifos.stdin is not None
        readers: list[int] = []
        peer = threading.Thread(target=open_reader, args=(pipes.fifos.stdin, readers))
        peer.start()
        pipes.cancel()
        peer.join()
        assert threading.active_count() == before[1]
        try:
            fd = pipes.stdin.fileno(timeout=0)
        except FIFOCancelledError:
            pass
        else:
            assert fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE == os.O_WRONLY
        pipes.close()
        for fd in readers:
            os.close(fd)
    assert baseline() == before
    assert os.listdir(tmp_path) == []
