"""Stdio of tasks and execs against a real containerd: byte-exact output, stdin EOF, exec drain, TTY."""

from __future__ import annotations

import concurrent.futures
import hashlib
import os
import random
import select
import threading

import pytest

from pycontainerd import errors, oci, stdio
from pycontainerd.api.types import Status

SOAK_ENV = "PYCONTAINERD_SOAK"
HANG = 120  # seconds: only bounds a hang, never asserted as a duration

# 2^k - 1, 2^k, 2^k + 1 up to 64 MiB (+1), and 0
BOUNDARY_SIZES = sorted({max(0, (1 << k) + d) for k in range(27) for d in (-1, 0, 1)} | {0})
BLOB_SIZE = max(BOUNDARY_SIZES)


def _soak_enabled(config: pytest.Config) -> bool:
    return os.environ.get(SOAK_ENV) == "1" or "soak" in (config.getoption("markexpr", "") or "")


def _spec(rootfs: str, args: list[str], client, cid: str, **kw) -> dict:
    return oci.build(args=args, rootfs=rootfs, namespace=client.namespace, container_id=cid, **kw)


def _run_task(client, rootfs, cid, args, io, **kw):
    container = client.new_container(cid, _spec(rootfs, args, client, cid, **kw))
    task = container.new_task(stdio=io)
    exited = task.wait()
    task.start()
    status = exited.result(HANG)
    return container, task, status


@pytest.fixture(scope="module")
def blobs(tmp_path_factory) -> tuple[str, memoryview, memoryview]:
    """Two random 64 MiB + 1 files (stdout and stderr payloads), served read-only at /data."""
    directory = tmp_path_factory.mktemp("payload")
    rng = random.Random(0x5EED)
    data = []
    for name in ("out.bin", "err.bin"):
        payload = rng.randbytes(BLOB_SIZE)
        (directory / name).write_bytes(payload)
        data.append(memoryview(payload))
    return str(directory), data[0], data[1]


def _data_mount(directory: str) -> dict:
    return {"destination": "/data", "type": "bind", "source": directory, "options": ["rbind", "ro"]}


def _sha(data) -> str:
    return hashlib.sha256(data).hexdigest()


def _file_sha(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            h.update(chunk)
    return h.hexdigest()


def _plan(runs: int, seed: int) -> list[tuple[int, int, int]]:
    """(stdout size, stderr size, exit code) per run; every boundary size appears on both streams."""
    rng = random.Random(seed)
    outs = BOUNDARY_SIZES[:]
    errs = BOUNDARY_SIZES[:]
    rng.shuffle(outs)
    rng.shuffle(errs)
    plan = []
    for i in range(runs):
        out = (
            outs[i]
            if i < len(outs)
            else rng.choice([rng.randrange(1 << 16), rng.randrange(1 << 20), rng.choice(BOUNDARY_SIZES[:45])])
        )
        err = errs[i] if i < len(errs) else rng.choice([rng.randrange(1 << 12), rng.randrange(1 << 18), 0])
        plan.append((out, err, rng.randrange(256)))
    return plan


def _byte_exact(client, rootfs, blobs, tmp_path, runs: int, seed: int) -> None:
    directory, out_blob, err_blob = blobs
    plan = _plan(runs, seed)
    workers = 2
    hosts = []
    for w in range(workers):
        cid = f"exec-host-{w}"
        container = client.new_container(
            cid, _spec(rootfs, ["sleep", "100000"], client, cid, mounts=[_data_mount(directory)])
        )
        task = container.new_task()
        task.start()
        hosts.append((container, task))
    expected_out = {}
    expected_err = {}
    lock = threading.Lock()

    def expect(cache, blob, size):
        with lock:
            if size not in cache:
                cache[size] = _sha(blob[:size])
            return cache[size]

    def one(i: int) -> str | None:
        out_size, err_size, code = plan[i]
        cmd = f"head -c {out_size} /data/out.bin; head -c {err_size} /data/err.bin >&2; exit {code}"
        to_files = i % 4 in (1, 3)
        if to_files:
            out_path, err_path = tmp_path / f"o{i}", tmp_path / f"e{i}"
            out_f, err_f = open(out_path, "wb"), open(err_path, "wb")  # noqa: SIM115
            io = stdio.streams(stdout=out_f, stderr=err_f)
        else:
            io = stdio.capture()
        try:
            if i % 2 == 0:
                cid = f"run-{i}"
                container = client.new_container(
                    cid, _spec(rootfs, ["sh", "-c", cmd], client, cid, mounts=[_data_mount(directory)])
                )
                proc = container.new_task(stdio=io)
            else:
                container = None
                proc = hosts[i % workers][1].exec(
                    f"x{i}", oci.process(["sh", "-c", cmd]), stdio=io, drain_timeout=HANG
                )
            exited = proc.wait()
            proc.start()
            status = exited.result(HANG)
            assert proc.delete().code == code
            if container is not None:
                container.delete()
        finally:
            if to_files:
                out_f.close()
                err_f.close()
        if to_files:
            got_out, got_err = _file_sha(str(out_path)), _file_sha(str(err_path))
            os.unlink(out_path)
            os.unlink(err_path)
        else:
            got_out, got_err = _sha(proc.io.stdout_data), _sha(proc.io.stderr_data)
        problems = []
        if status.code != code:
            problems.append(f"exit {status.code} != {code}")
        if got_out != expect(expected_out, out_blob, out_size):
            problems.append(f"stdout of {out_size} bytes differs")
        if got_err != expect(expected_err, err_blob, err_size):
            problems.append(f"stderr of {err_size} bytes differs")
        kind = "task" if i % 2 == 0 else "exec"
        return f"run {i} ({kind}, seed {seed}): " + "; ".join(problems) if problems else None

    try:
        with concurrent.futures.ThreadPoolExecutor(workers) as pool:
            failures = [f for f in pool.map(one, range(runs)) if f]
    finally:
        for container, task in hosts:
            task.force_delete()
            container.delete()
    assert not failures, "\n".join(failures[:20])


def test_byte_exact_output_and_exit_code(client, rootfs, blobs, tmp_path):
    _byte_exact(client, rootfs, blobs, tmp_path, runs=300, seed=20240601)


@pytest.mark.soak
def test_byte_exact_output_soak(client, rootfs, blobs, tmp_path, request):
    if not _soak_enabled(request.config):
        pytest.skip(f"soak test: run with -m soak or {SOAK_ENV}=1")
    runs = int(os.environ.get("PYCONTAINERD_SOAK_RUNS", "3000"))
    _byte_exact(client, rootfs, blobs, tmp_path, runs=runs, seed=random.randrange(1 << 30))


# -- stdin ------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 10, 16 << 20])
def test_cat_stdin_exact(client, rootfs, size):
    payload = random.Random(size).randbytes(size)
    repeats = 15 if size < 1024 else 1  # the empty/short stdin EOF race (containerd#4489)
    for i in range(repeats):
        container, task, status = _run_task(client, rootfs, f"cat-{i}", ["cat"], stdio.capture(payload))
        assert status.code == 0
        assert task.io.stdout_data == payload
        assert task.delete().code == 0
        container.delete()


def test_exec_cat_stdin_exact(client, rootfs):
    container = client.new_container("host", _spec(rootfs, ["sleep", "1000"], client, "host"))
    task = container.new_task()
    task.start()
    for i, size in enumerate([0, 1, 4097, 3 << 20]):
        payload = os.urandom(size)
        proc = task.exec(f"cat{i}", oci.process(["cat"]), stdio=stdio.capture(payload))
        exited = proc.wait()
        proc.start()
        assert exited.result(HANG).code == 0
        assert proc.io.stdout_data == payload
        proc.delete()
    task.force_delete()
    container.delete()


def _read_until(fd: int, want: bytes, buf: bytearray) -> None:
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    while want not in buf:
        assert poller.poll(HANG * 1000), f"nothing more arrived; have {bytes(buf)!r}"
        chunk = os.read(fd, 65536)
        assert chunk, f"EOF before {want!r}; have {bytes(buf)!r}"
        buf += chunk


def _read_to_eof(fd: int, buf: bytearray) -> None:
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    while True:
        assert poller.poll(HANG * 1000)
        chunk = os.read(fd, 65536)
        if not chunk:
            return
        buf += chunk


def test_closing_client_stdin_end_is_not_eof_close_stdin_is(client, rootfs):
    got: dict[str, stdio.DirectIO] = {}
    container = client.new_container(
        "attach", _spec(rootfs, ["sh", "-c", "cat; echo done"], client, "attach")
    )
    task = container.new_task(stdio=stdio.attach(lambda dio: got.setdefault("dio", dio), stdin=True))
    exited = task.wait()
    task.start()
    dio = got["dio"]
    assert dio.stdin is not None
    assert dio.stdout is not None
    assert dio.stderr is not None
    os.write(dio.stdin.fileno(timeout=HANG), b"hello\n")
    out = bytearray()
    _read_until(dio.stdout.fileno(), b"hello\n", out)
    dio.stdin.close()  # the client's write end only: the shim still holds its own writer
    # settle: cat must still be waiting for input
    poller = select.poll()
    poller.register(dio.stdout.fileno(), select.POLLIN)
    assert poller.poll(500) == [], f"output after closing only the client end: {bytes(out)!r}"
    assert not exited.done()
    assert task.status().status is Status.RUNNING
    task.close_stdin()  # CloseIO: now cat gets EOF
    _read_to_eof(dio.stdout.fileno(), out)
    assert bytes(out) == b"hello\ndone\n"
    assert exited.result(HANG).code == 0
    task.close_stdin()  # idempotent
    task.delete()
    container.delete()


def test_close_stdin_before_start_is_delivered_after(client, rootfs):
    r, w = os.pipe()
    os.write(w, b"early\n")
    os.close(w)  # the source is at EOF before the process even starts
    try:
        container, task, status = _run_task(client, rootfs, "early", ["cat"], stdio.capture(r))
    finally:
        os.close(r)
    assert status.code == 0
    assert task.io.stdout_data == b"early\n"
    task.delete()
    container.delete()


def test_no_stdin_and_no_stderr_fifos_when_not_needed(client, rootfs):
    container = client.new_container("matrix", _spec(rootfs, ["sleep", "1000"], client, "matrix"))
    task = container.new_task(stdio=stdio.capture())
    task.start()
    info = task.status()
    assert info.stdin == ""
    assert info.stdout == os.path.join(container.bundle_dir, "matrix-stdout")
    assert info.stderr == os.path.join(container.bundle_dir, "matrix-stderr")
    assert sorted(os.listdir(container.bundle_dir)) == ["matrix-stderr", "matrix-stdout"]
    proc = task.exec("t1", oci.process(["true"], tty=True), stdio=stdio.capture(b""))
    exited = proc.wait()
    proc.start()
    pinfo = proc.status()
    assert (pinfo.stdin, pinfo.stderr, pinfo.terminal) == (
        os.path.join(container.bundle_dir, "t1-stdin"),
        "",
        True,
    )
    assert "t1-stderr" not in os.listdir(container.bundle_dir)
    exited.result(HANG)
    proc.delete()
    task.force_delete()
    assert os.listdir(container.bundle_dir) == []
    container.delete()


# -- exec -------------------------------------------------------------------------------


def test_exec_output_and_exit_code(client, rootfs):
    container = client.new_container("ex", _spec(rootfs, ["sleep", "1000"], client, "ex"))
    task = container.new_task()
    task.start()
    for i, (out, code) in enumerate([(0, 0), (1, 1), (65537, 42), (1 << 21, 255)]):
        cmd = f"head -c {out} /dev/zero | tr '\\0' o; echo -n err >&2; exit {code}"
        proc = task.exec(f"e{i}", oci.process(["sh", "-c", cmd]), stdio=stdio.capture())
        exited = proc.wait()
        assert proc.start() > 0
        status = exited.result(HANG)
        assert status.code == code
        assert proc.io.stdout_data == b"o" * out
        assert proc.io.stderr_data == b"err"
        assert proc.delete().code == code
        with pytest.raises(errors.NotFoundError):
            proc.status()
    task.force_delete()
    container.delete()


def test_exec_missing_binary_is_typed_and_leaves_no_fifo(client, rootfs):
    container = client.new_container("nobin", _spec(rootfs, ["sleep", "1000"], client, "nobin"))
    task = container.new_task()
    task.start()
    proc = task.exec("missing", oci.process(["/nonexistent"]), stdio=stdio.capture(b"in"))
    assert sorted(os.listdir(container.bundle_dir)) == ["missing-stderr", "missing-stdin", "missing-stdout"]
    with pytest.raises(errors.ContainerdError, match="nonexistent"):
        proc.start()
    assert os.listdir(container.bundle_dir) == []
    with pytest.raises(errors.NotFoundError):
        client.api.tasks.get("nobin", "missing")
    assert task.status().status is Status.RUNNING
    # the exec id is free again
    proc = task.exec("missing", oci.process(["true"]), stdio=stdio.capture())
    exited = proc.wait()
    proc.start()
    assert exited.result(HANG).code == 0
    proc.delete()
    task.force_delete()
    container.delete()


def test_exec_background_child_holding_stdout_gets_bounded_drain(client, rootfs):
    container = client.new_container("bg", _spec(rootfs, ["sleep", "1000"], client, "bg"))
    task = container.new_task()
    task.start()
    proc = task.exec(
        "bg",
        oci.process(["sh", "-c", "sleep 30 & echo ok; exit 3"]),
        stdio=stdio.capture(),
        drain_timeout=1.0,
    )
    exited = proc.wait()
    proc.start()
    with pytest.raises(errors.DrainTimeoutError) as info:
        exited.result(HANG)
    assert info.value.status is not None
    assert info.value.status.code == 3
    assert proc.io.stdout_data == b"ok\n"
    # the exit itself was known at once: a plain Wait RPC has it
    assert client.api.tasks.wait("bg", "bg", timeout=HANG).code == 3
    assert proc.delete().code == 3
    # without a drain limit the same wait would still be pending: a second exec shows it
    proc2 = task.exec(
        "bg2", oci.process(["sh", "-c", "sleep 30 & echo ok"]), stdio=stdio.capture(), drain_timeout=None
    )
    exited2 = proc2.wait()
    proc2.start()
    assert client.api.tasks.wait("bg", "bg2", timeout=HANG).code == 0
    assert not exited2.done()
    task.force_delete()  # kills the background sleeps: the output reaches EOF
    assert exited2.result(HANG).code == 0
    assert proc2.io.stdout_data == b"ok\n"
    container.delete()


# -- TTY --------------------------------------------------------------------------------


def test_tty_init_and_exec_get_a_terminal(client, rootfs):
    script = "test -t 0 && test -t 1 && test -t 2 && tty"
    container, task, status = _run_task(
        client, rootfs, "tty", ["sh", "-c", script], stdio.capture(), tty=True
    )
    assert status.code == 0
    assert task.io.stdout_data.startswith(b"/dev/pts/")
    assert task.io.stdout_data.endswith(b"\r\n")
    assert task.io.stderr_data is None or task.io.stderr_data == b""
    task.delete()
    container.delete()
    container = client.new_container("tty2", _spec(rootfs, ["sleep", "1000"], client, "tty2"))
    task = container.new_task()
    task.start()
    proc = task.exec("t", oci.process(["sh", "-c", script], tty=True), stdio=stdio.capture())
    exited = proc.wait()
    proc.start()
    assert exited.result(HANG).code == 0
    assert proc.io.stdout_data.startswith(b"/dev/pts/")
    proc.delete()
    proc = task.exec("n", oci.process(["sh", "-c", "test -t 1"]), stdio=stdio.capture())
    exited = proc.wait()
    proc.start()
    assert exited.result(HANG).code == 1  # no terminal without tty
    proc.delete()
    task.resize(80, 24)  # a no-op for a running process without a terminal (shim behaviour)
    task.force_delete()
    container.delete()


def _resize_roundtrip(proc, exited, writer: int) -> bytes:
    proc.resize(100, 40)
    os.write(writer, b"go\n")  # only now does the process run stty
    status = exited.result(HANG)
    assert status.code == 0
    return proc.io.stdout_data


def test_tty_resize_reaches_the_terminal(client, rootfs):
    r, w = os.pipe()
    container = client.new_container(
        "rs", _spec(rootfs, ["sh", "-c", "read line; stty size"], client, "rs", tty=True)
    )
    task = container.new_task(stdio=stdio.capture(r))
    exited = task.wait()
    task.start()
    try:
        out = _resize_roundtrip(task, exited, w)
    finally:
        os.close(w)
    assert out.endswith(b"40 100\r\n"), out
    task.delete()
    os.close(r)
    container.delete()
    r2, w2 = os.pipe()
    container = client.new_container("rs2", _spec(rootfs, ["sleep", "1000"], client, "rs2"))
    task = container.new_task()
    task.start()
    proc = task.exec(
        "rs", oci.process(["sh", "-c", "read line; stty size"], tty=True), stdio=stdio.capture(r2)
    )
    exited = proc.wait()
    proc.start()
    try:
        out = _resize_roundtrip(proc, exited, w2)
    finally:
        os.close(w2)
        os.close(r2)
    assert out.endswith(b"40 100\r\n"), out
    proc.delete()
    task.force_delete()
    container.delete()


def test_tty_large_output_complete(client, rootfs):
    make = "head -c 1048576 /dev/zero | tr '\\0' x"
    container, task, status = _run_task(client, rootfs, "big", ["sh", "-c", make], stdio.capture(), tty=True)
    assert status.code == 0
    assert task.io.stdout_data == b"x" * (1 << 20)
    task.delete()
    container.delete()
    container = client.new_container("bige", _spec(rootfs, ["sleep", "1000"], client, "bige"))
    task = container.new_task()
    task.start()
    for i in range(5):  # containerd TestContainerExecLargeOutputWithTTY
        proc = task.exec(f"s{i}", oci.process(["seq", "-s", " ", "200000"], tty=True), stdio=stdio.capture())
        exited = proc.wait()
        proc.start()
        assert exited.result(HANG).code == 0
        data = proc.io.stdout_data
        assert data.endswith(b"199999 200000\r\n"), data[-40:]
        assert data == " ".join(str(n) for n in range(1, 200001)).encode() + b"\r\n"
        proc.delete()
        proc = task.exec(f"x{i}", oci.process(["sh", "-c", make], tty=True), stdio=stdio.capture())
        exited = proc.wait()
        proc.start()
        assert exited.result(HANG).code == 0
        assert proc.io.stdout_data == b"x" * (1 << 20)
        proc.delete()
    task.force_delete()
    container.delete()


def test_fifo_names_follow_fifo_id(client, rootfs):
    container = client.new_container("named", _spec(rootfs, ["sh", "-c", "cat; echo e >&2"], client, "named"))
    task = container.new_task(stdio=stdio.capture(b"x"), fifo_id="init")
    assert sorted(os.listdir(container.bundle_dir)) == ["init-stderr", "init-stdin", "init-stdout"]
    assert task.status().stdout == os.path.join(container.bundle_dir, "init-stdout")
    exited = task.wait()
    task.start()
    assert exited.result(HANG).code == 0
    assert (task.io.stdout_data, task.io.stderr_data) == (b"x", b"e\n")
    task.delete()
    assert os.listdir(container.bundle_dir) == []
    with pytest.raises(ValueError, match="fifo_id"):
        container.new_task(fifo_id="../x")
    container.delete()

