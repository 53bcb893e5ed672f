"""pycontainerd.aio against a real containerd: the object model, stdio on both transports, signals.

The must-hold list of the sync client, for the asyncio one: byte-exact output
across 2^k±1 sizes on both streams and both transports, stdin EOF, exec, TTY
resize, signals and exit codes, bad input refused before any RPC, sink
failures, reattach, and the error mapping.
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading

import pytest

from pycontainerd import aio, errors, oci, stdio
from pycontainerd.stdio.handoff_io import available as handoff_available

pytestmark = pytest.mark.asyncio

HANG = 120.0  # only bounds a hang
SIZES = [0, 1, (1 << 16) - 1, 1 << 16, (1 << 16) + 1, (1 << 20) + 1]
PATTERN = b"0123456789abcdef\n"


def _expected(n: int) -> bytes:
    return (PATTERN * (n // len(PATTERN) + 1))[:n]


def _spec(rootfs: str, args: list[str], namespace: str, cid: str, **kw: object) -> dict:
    return oci.build(args=args, rootfs=rootfs, namespace=namespace, container_id=cid, **kw)


async def test_errors_are_mapped_and_bad_input_refused_before_any_rpc(aio_client_factory, rootfs):
    async with aio_client_factory() as client:
        assert (await client.version()).version
        with pytest.raises(errors.NotFoundError, match="no such container"):
            await client.load_container("missing")
        with pytest.raises(ValueError, match="container id"):
            await client.load_container("bad id!")
        with pytest.raises(ValueError, match="namespace"):
            client.with_namespace("no/slash")
        with pytest.raises(ValueError, match="bundle dir"):
            await client.new_container("x", _spec(rootfs, ["true"], client.namespace, "x"), bundle_dir="rel")
        with pytest.raises(ValueError, match="invalid signal"):
            await client.api.tasks.kill("x", 99)
        with pytest.raises(TypeError):
            await aio.run("echo hi", rootfs=rootfs, client=client)
        with pytest.raises(ValueError, match="timeout"):
            await aio.run(["true"], rootfs=rootfs, timeout=-1, client=client)
        with pytest.raises(ValueError, match="exactly one"):
            await aio.run(["true"], client=client)
        assert await client.containers() == []
        assert await client.api.tasks.list() == []


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("handoff", [False, True], ids=["fifo", "handoff"])
async def test_byte_exact_output_on_both_streams(aio_client_factory, rootfs, size, handoff):
    if handoff and not handoff_available():
        pytest.skip("pcd-handoff is not built")
    count = size // len(PATTERN) + 1
    script = (f"yes {PATTERN.decode().strip()} | head -n {count} | head -c {size}; "
              f"yes {PATTERN.decode().strip()} | head -n {count} | head -c {size} >&2")
    async with aio_client_factory() as client:
        result = await aio.run(["sh", "-c", script], rootfs=rootfs, capture_output=True, client=client,
                               handoff=handoff)
    assert result.returncode == 0
    assert result.stdout == _expected(size)
    assert result.stderr == _expected(size)


@pytest.mark.parametrize("size", [0, 1, (1 << 16) + 1, (3 << 20) + 7])
async def test_stdin_bytes_reach_eof(aio_client_factory, rootfs, size):
    payload = os.urandom(size)
    async with aio_client_factory() as client:
        result = await aio.run(["sh", "-c", "cat; cat /dev/null >&2"], rootfs=rootfs, stdin=payload,
                               capture_output=True, client=client)
    assert result.returncode == 0
    assert result.stdout == payload


async def test_files_as_sinks_and_a_file_as_source(aio_client_factory, rootfs, tmp_path):
    (tmp_path / "in").write_bytes(b"from a file\n")
    with open(tmp_path / "in", "rb") as src, open(tmp_path / "out", "wb") as out, \
            open(tmp_path / "err", "wb") as err:
        out.write(b"header\n")
        async with aio_client_factory() as client:
            result = await aio.run(["sh", "-c", "cat; echo done >&2"], rootfs=rootfs, stdin=src, stdout=out,
                                   stderr=err, client=client)
    assert result.returncode == 0
    assert (tmp_path / "out").read_bytes() == b"header\nfrom a file\n"
    assert (tmp_path / "err").read_bytes() == b"done\n"


async def test_object_model_exec_signals_and_task_operations(aio_client_factory, rootfs):
    async with aio_client_factory() as client:
        container = await client.new_container("obj", _spec(rootfs, ["sleep", "1000"], client.namespace,
                                                            "obj"))
        task = await container.new_task()
        with pytest.raises(errors.ConflictError):
            await container.new_task()
        assert await task.start() > 0
        assert task.pid in await task.pids()
        assert (await task.stats()).type_url
        await task.update_resources({"pids": {"limit": 100}})
        await task.pause()
        assert (await task.status()).status.value == "paused"
        await task.resume()
        proc = await task.exec("e1", oci.process(["sh", "-c", "echo out; echo err >&2; exit 7"]),
                               stdio=stdio.capture())
        with pytest.raises(errors.ConflictError):
            await task.exec("e1", oci.process(["true"]), stdio=stdio.null())
        await proc.start()
        assert (await proc.wait()).code == 7
        assert (proc.io.stdout_data, proc.io.stderr_data) == (b"out\n", b"err\n")
        assert (await proc.delete()).code == 7
        with pytest.raises(errors.FailedPreconditionError):
            await task.delete()
        with pytest.raises(errors.FailedPreconditionError):
            await container.delete()
        with pytest.raises(ValueError, match="invalid signal"):
            await task.kill("NOSUCHSIGNAL")
        # The init process is pid 1 of its namespace: only SIGKILL ends a sleep there.
        await task.kill(signal.SIGKILL)
        status = await asyncio.wait_for(task.wait(), HANG)
        assert status.code == 128 + signal.SIGKILL
        assert (await task.delete()).code == 128 + signal.SIGKILL
        await container.delete()
        assert not os.path.exists(container.bundle_dir)
        assert await client.containers() == []


async def test_close_stdin_gives_eof(aio_client_factory, rootfs):
    r, w = os.pipe()
    try:
        async with aio_client_factory() as client:
            container = await client.new_container("in", _spec(rootfs, ["cat"], client.namespace, "in"))
            task = await container.new_task(stdio=stdio.capture(r))
            os.close(r)
            r = -1
            await task.start()
            os.write(w, b"some input\n")
            os.close(w)  # the source ends: the pool's stdin job ends, the process gets EOF
            w = -1
            assert (await asyncio.wait_for(task.wait(), HANG)).code == 0
            assert task.io.stdout_data == b"some input\n"
            await task.delete()
            await container.delete()
    finally:
        for fd in (r, w):
            if fd >= 0:
                os.close(fd)


async def test_explicit_close_stdin(aio_client_factory, rootfs):
    r, w = os.pipe()  # never closed by us until the end: only close_stdin() ends the input
    try:
        async with aio_client_factory() as client:
            container = await client.new_container("in2", _spec(rootfs, ["cat"], client.namespace, "in2"))
            task = await container.new_task(stdio=stdio.capture(r))
            await task.start()
            os.write(w, b"partial")
            await asyncio.sleep(0.2)
            await task.close_stdin()
            await task.close_stdin()  # idempotent
            assert (await asyncio.wait_for(task.wait(), HANG)).code == 0
            assert task.io.stdout_data == b"partial"
            await task.delete()
            await container.delete()
    finally:
        os.close(r)
        os.close(w)


async def test_tty_resize(aio_client_factory, rootfs):
    r, w = os.pipe()
    try:
        async with aio_client_factory() as client:
            spec = _spec(rootfs, ["sh", "-c", "read x; stty size"], client.namespace, "tty", tty=True)
            container = await client.new_container("tty", spec)
            task = await container.new_task(stdio=stdio.capture(r))
            await task.start()
            await task.resize(123, 45)
            with pytest.raises(ValueError, match="terminal width"):
                await task.resize(-1, 5)
            os.write(w, b"go\n")
            assert (await asyncio.wait_for(task.wait(), HANG)).code == 0
            assert b"45 123" in (task.io.stdout_data or b"")
            await task.delete()
            await container.delete()
    finally:
        os.close(r)
        os.close(w)


async def test_failing_sink_raises_sink_error_with_the_status(aio_client_factory, rootfs):
    r, w = os.pipe()
    os.close(r)  # nobody reads: every write fails with EPIPE
    try:
        async with aio_client_factory() as client:
            with pytest.raises(errors.SinkError) as info:
                await aio.run(["sh", "-c", "yes | head -c 1000000; exit 4"], rootfs=rootfs, stdout=w,
                              client=client)
            assert info.value.stream == "stdout"
            assert info.value.status is not None
            assert info.value.status.code == 4
            assert await client.containers() == []
    finally:
        os.close(w)


@pytest.mark.parametrize("handoff", [False, True], ids=["fifo", "handoff"])
async def test_detach_then_reattach_delivers_the_rest_once(aio_client_factory, rootfs, tmp_path, handoff):
    if handoff and not handoff_available():
        pytest.skip("pcd-handoff is not built")
    lines = 300_000
    expected = b"".join(b"%d\n" % n for n in range(1, lines + 1))
    async with aio_client_factory() as client:
        spec = _spec(rootfs, ["sh", "-c", f"seq 1 {lines}; exit 7"], client.namespace, "re")
        container = await client.new_container("re", spec)
        out_path = tmp_path / "first"
        with open(out_path, "wb") as out:
            strategy = stdio.streams(stdout=out)
            task = await container.new_task(stdio=stdio.handoff(strategy,
                                                                fallback=False) if handoff else strategy)
            await task.start()
            while os.path.getsize(out_path) < 4096:
                await asyncio.sleep(0.001)
            await task.detach()
        first = out_path.read_bytes()
        again = await container.attach_task(stdio.capture())
        assert again.pid == task.pid
        assert (await asyncio.wait_for(again.wait(), HANG)).code == 7
        second = again.io.stdout_data or b""
        assert first + second == expected
        assert (await again.delete()).code == 7
        await container.delete()


async def test_create_subprocess_exec_streams_and_communicate(aio_client_factory, rootfs):
    async with aio_client_factory() as client:
        proc = await aio.create_subprocess_exec("sh", "-c", "cat; echo err >&2; exit 5", rootfs=rootfs,
                                                stdin=aio.PIPE, stdout=aio.PIPE, stderr=aio.PIPE,
                                                client=client)
        out, err = await asyncio.wait_for(proc.communicate(b"hello\n" * 10000), HANG)
        assert (proc.returncode, out, err) == (5, b"hello\n" * 10000, b"err\n")
        assert await client.containers() == []

        proc = await aio.create_subprocess_exec("sh", "-c", "for i in 1 2 3; do echo line$i; done",
                                                rootfs=rootfs, stdout=aio.PIPE, client=client)
        lines = [line async for line in proc.stdout]
        assert lines == [b"line1\n", b"line2\n", b"line3\n"]
        assert await proc.wait() == 0
        assert await client.containers() == []

        proc = await aio.create_subprocess_exec("sh", "-c", "echo a; echo b >&2", rootfs=rootfs,
                                                stdout=aio.PIPE, stderr=aio.STDOUT, client=client)
        data = await proc.stdout.read()
        assert sorted(data.splitlines()) == [b"a", b"b"]
        assert await proc.wait() == 0

        async with await aio.create_subprocess_exec("sleep", "1000", rootfs=rootfs, client=client) as proc:
            await proc.kill()
        assert await client.containers() == []


async def test_concurrent_runs_use_a_bounded_number_of_threads(aio_client_factory, rootfs):
    threads_before = threading.active_count()
    peak = threads_before

    async def watch() -> None:
        nonlocal peak
        while True:
            peak = max(peak, threading.active_count())
            await asyncio.sleep(0.01)

    async with aio_client_factory() as client:
        watcher = asyncio.ensure_future(watch())
        results = await asyncio.gather(*[
            aio.run(["sh", "-c", f"yes {i} | head -c 200000"], rootfs=rootfs, capture_output=True,
                    client=client,
                    handoff=i % 2 == 0)
            for i in range(30)
        ])
        watcher.cancel()
    for i, result in enumerate(results):
        assert result.stdout == (b"%d\n" % i * 200000)[:200000]
    # The pool's two workers and grpc's own threads, whatever the number of containers.
    assert peak - threads_before <= 8, (threads_before, peak)


async def test_asyncio_stream_writers_as_sinks(aio_client_factory, rootfs):
    import socket

    a, b = socket.socketpair()
    _, writer = await asyncio.open_unix_connection(sock=a)
    reader, peer = await asyncio.open_unix_connection(sock=b)
    size = (1 << 20) + 1
    async with aio_client_factory() as client:
        received = asyncio.ensure_future(reader.readexactly(size + 4))
        result = await aio.run(["sh", "-c", f"yes 0123456789abcdef | head -c {size}; echo err >&2"],
                               rootfs=rootfs, stdout=writer, stderr=writer, client=client)
        assert result.returncode == 0
        data = await asyncio.wait_for(received, HANG)
        # The two streams share the writer: stderr's line lands somewhere between stdout's chunks.
        assert data.replace(b"err\n", b"", 1) == _expected(size)
        # A writer whose peer is gone: the stream is dropped, the run reports a SinkError.
        peer.close()
        writer.close()
        with pytest.raises(errors.SinkError) as info:
            await aio.run(["sh", "-c", "yes | head -c 300000; exit 2"], rootfs=rootfs, stdout=writer,
                          client=client)
        assert info.value.status is not None
        assert info.value.status.code == 2
        assert await client.containers() == []


async def test_run_from_an_image(client, aio_client_factory, tmp_path):
    from pycontainerd import testing_images as ti

    name = "docker.io/test/aio:1"
    image = ti.build_image([ti.busybox_layer()], entrypoint=["/bin/echo", "ep"], cmd=["c1"],
                           env=["PATH=/bin", "A=image"])
    (imported,) = client.import_archive(ti.write_oci_archive(tmp_path / "i.tar", {name: image}))
    snapshots = {info.name for info in client.api.snapshots.list("overlayfs")}
    async with aio_client_factory() as aclient:
        result = await aio.run([], image=name, capture_output=True, client=aclient)
        assert (result.returncode, result.stdout) == (0, b"ep c1\n")
        result = await aio.run(["$A"], image=imported, capture_output=True, client=aclient)
        assert result.stdout == b"ep $A\n"
        with pytest.raises(errors.NotFoundError):
            # --pull never: "missing" would ask Docker Hub, and tests never leave the machine.
            await aio.run(["x"], image="docker.io/test/missing:1", client=aclient, pull="never")
        # Cancelled while the image's container is being prepared: nothing is left either.
        run = asyncio.ensure_future(aio.run(["1000"], image=name, spec_options={"entrypoint": ["sleep"]},
                                            client=aclient))
        await asyncio.sleep(0.05)
        run.cancel()
        with pytest.raises(asyncio.CancelledError):
            await run
        assert await aclient.containers() == []
    # the containers' snapshots went with them
    assert {info.name for info in client.api.snapshots.list("overlayfs")} == snapshots


async def test_new_container_from_an_image_with_spec_options(client, aio_client_factory, tmp_path):
    from pycontainerd import testing_images as ti

    name = "docker.io/test/aio-nc:1"
    image = ti.build_image([ti.busybox_layer()], cmd=["/bin/echo", "from-image"])
    client.import_archive(ti.write_oci_archive(tmp_path / "i.tar", {name: image}))
    async with aio_client_factory() as aclient:
        with pytest.raises(TypeError, match="need image"):
            await aclient.new_container("x", {"process": {}}, args=["true"])
        container = await aclient.new_container("img", image=name, args=["/bin/echo", "override"])
        assert container.info.snapshot_key == "img"
        task = await container.new_task(stdio=stdio.capture())
        await task.start()
        assert (await asyncio.wait_for(task.wait(), HANG)).code == 0
        assert task.io.stdout_data == b"override\n"
        await task.delete()
        await container.delete()
        assert "img" not in {info.name for info in client.api.snapshots.list("overlayfs")}
