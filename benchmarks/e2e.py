#!/usr/bin/env python3
"""End-to-end benchmarks through containerd: pycontainerd against containerd's own ``ctr``.

Everything runs against a private containerd started for the run
(:class:`pycontainerd.daemon.PrivateContainerd`, removed afterwards with every
shim it started) on a busybox rootfs, in one fresh namespace. In every
repetition the tools run one after the other in a rotating order; the tables
show medians over ``--repeat`` repetitions and the ratios to ``ctr``.

1. **stdout throughput**: the container runs ``dd if=/dev/zero bs=1M count=N``
   and its stdout goes to ``/dev/null``, a file, or a pipe drained by ``dd``:
   * ``pycontainerd``: ``stdio.streams`` (the native splice pump), in this process;
   * ``ctr``: ``ctr run --rm`` with its stdout on the sink (Go's 32 KiB copy loop);
   * ``python-loop``: ``stdio.attach`` with a pure-Python poll + ``os.read``/``os.write``
     loop (64 KiB reads), in this process.
   Wall time covers create, start, the stream, the wait and the delete. Client
   CPU is user+system time: of this process (``getrusage(RUSAGE_SELF)`` deltas)
   for pycontainerd, of the ``ctr`` child (``wait4`` rusage) for ctr; shown per GiB.
2. **stdin throughput**: ``dd`` writes N bytes into a pipe that feeds the
   container's stdin (``cat >/dev/null`` inside), for the same three tools.
3. **lifecycle latency** of ``/bin/true`` (create, start, wait, delete): the
   in-process API vs ``ctr run --rm`` vs the ``pycontainerd run --rm`` command
   (``sys.executable -m pycontainerd``, with the package's bytecode compiled first,
   as an installed package has it). ``--cli-baseline DIR`` adds the same command
   run from another copy of the package (``DIR/pycontainerd``, native parts built:
   an older commit), alternating with the others, to compare a change under the
   same load.
4. **concurrency**: ``--containers`` containers started at once and waited:
   threads in this process vs as many parallel ``ctr run --rm``.
5. **memory**: peak RSS growth of a fresh client process while streaming
   ``--rss-size`` bytes (VmHWM after ``clear_refs``, minus VmRSS before).

Usage::

    python benchmarks/e2e.py                 # full: 2 GiB streams, 5 repeats, 4 GiB RSS stream
    python benchmarks/e2e.py --quick         # 256 MiB, 5 repeats (3 for streams), 1 GiB RSS stream
    python benchmarks/e2e.py --sections stdout --sinks null   # one row (scripts/demo.py uses this)
    python benchmarks/e2e.py --sections latency --cli-baseline /tmp/old   # a change's effect on latency

Writes ``benchmarks/results/e2e.md`` and ``e2e.png`` (``--out DIR``; ``--no-write``
to only print). Needs root, containerd, ctr, runc and busybox-static.
"""

from __future__ import annotations

import argparse
import compileall
import contextlib
import datetime as _dt
import json
import os
import resource
import select
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from _common import machine  # noqa: E402

import pycontainerd  # noqa: E402
from pycontainerd import oci, stdio  # noqa: E402
from pycontainerd.daemon import PrivateContainerd  # noqa: E402
from pycontainerd.testing import busybox_rootfs  # noqa: E402

MIB = 1 << 20
GIB = 1 << 30
TOOLS = ("pycontainerd", "ctr", "python-loop")
SINKS = ("null", "file", "pipe")
SECTIONS = ("stdout", "stdin", "latency", "concurrency", "memory")
PY_CHUNK = 64 * 1024


# -- measurement primitives --------------------------------------------------------------------------


@dataclass
class Sample:
    """One measured run."""

    wall: float
    cpu: float
    nbytes: int = 0
    rss: int = 0
    lost: int = 0


def self_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def spawn_wait(argv: list[str], **kwargs: Any) -> tuple[int, float, int]:
    """Run argv; return (exit status, its CPU seconds, its peak RSS in bytes) from wait4."""
    proc = subprocess.Popen(argv, **kwargs)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, usage.ru_utime + usage.ru_stime, usage.ru_maxrss * 1024


class Progress:
    """One status line per measurement on stderr (rewritten in place on a terminal)."""

    def __init__(self, total: int, quiet: bool = False) -> None:
        self.total = total
        self.done = 0
        self.quiet = quiet
        self.tty = sys.stderr.isatty()
        self.started = time.monotonic()

    def step(self, text: str) -> None:
        self.done += 1
        if self.quiet:
            return
        elapsed = time.monotonic() - self.started
        line = f"[{self.done:3d}/{self.total}] {elapsed:6.1f}s  {text}"
        if self.tty:
            sys.stderr.write("\r\033[K" + line)
        else:
            sys.stderr.write(line + "\n")
        sys.stderr.flush()

    def finish(self) -> None:
        if self.tty and not self.quiet:
            sys.stderr.write("\n")


# -- sinks and sources -------------------------------------------------------------------------------


@dataclass
class Delivered:
    """What reached a sink: the byte count once the sink is closed (``None``: not countable, /dev/null)."""

    nbytes: int | None = None


@contextlib.contextmanager
def sink(kind: str, workdir: Path, delivered: Delivered) -> Iterator[int]:
    """A destination fd; after the block, ``delivered.nbytes`` is what reached it (file, pipe)."""
    if kind == "null":
        fd = os.open(os.devnull, os.O_WRONLY | os.O_CLOEXEC)
        try:
            yield fd
        finally:
            os.close(fd)
        return
    if kind == "file":
        path = workdir / "sink.bin"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        try:
            yield fd
        finally:
            os.close(fd)
            delivered.nbytes = path.stat().st_size
            path.unlink()
        return
    read_end, write_end = os.pipe2(os.O_CLOEXEC)
    consumer = subprocess.Popen(
        ["dd", "of=/dev/null", "bs=1M"], stdin=read_end, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    os.close(read_end)
    try:
        yield write_end
    finally:
        os.close(write_end)
        _, err = consumer.communicate(timeout=120)
        delivered.nbytes = int(err.split(b" bytes")[-2].split()[-1]) if b" bytes" in err else -1


@contextlib.contextmanager
def source(nbytes: int) -> Iterator[int]:
    """A pipe whose read end yields ``nbytes`` zero bytes (written by ``dd``, 1 MiB per write)."""
    read_end, write_end = os.pipe2(os.O_CLOEXEC)
    producer = subprocess.Popen(
        ["dd", "if=/dev/zero", "bs=1M", f"count={nbytes // MIB}", "status=none"],
        stdout=write_end,
        stdin=subprocess.DEVNULL,
    )
    os.close(write_end)
    try:
        yield read_end
    finally:
        os.close(read_end)
        producer.kill()
        producer.wait()


# -- the pure-Python copy loop (the baseline the native pump replaces) --------------------------------


def python_copy(pairs: list[tuple[int, int]]) -> int:
    """Copy every (non-blocking src, dst) pair to EOF with poll + os.read/os.write; return bytes."""
    poller = select.poll()
    dsts = dict(pairs)
    for src in dsts:
        poller.register(src, select.POLLIN)
    total = 0
    while dsts:
        for fd, _ in poller.poll():
            try:
                data = os.read(fd, PY_CHUNK)
            except BlockingIOError:
                continue
            if not data:
                poller.unregister(fd)
                del dsts[fd]
                continue
            view = memoryview(data)
            while view:
                view = view[os.write(dsts[fd], view) :]
            total += len(data)
    return total


def python_feed(src: int, dst: int) -> int:
    total = 0
    while True:
        data = os.read(src, PY_CHUNK)
        if not data:
            return total
        view = memoryview(data)
        while view:
            view = view[os.write(dst, view) :]
        total += len(data)


# -- the benchmark driver ------------------------------------------------------------------------------


class Bench:
    """Runs containers with each tool on one daemon, namespace and rootfs."""

    def __init__(self, address: str, namespace: str, rootfs: str, workdir: Path, ctr: str = "ctr",
                 cli_baseline: str | None = None) -> None:
        self.address = address
        self.cli_baseline = cli_baseline
        self.ctr_binary = ctr
        self.namespace = namespace
        self.rootfs = rootfs
        self.workdir = workdir
        self.client = pycontainerd.Client(address, namespace=namespace)
        self.client.version()
        self.devnull = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)

    def close(self) -> None:
        self.client.close()
        os.close(self.devnull)

    def new_id(self, prefix: str) -> str:
        return f"{prefix}-{uuid.uuid4().hex[:10]}"

    def ctr(self, *args: str) -> list[str]:
        return [self.ctr_binary, "--address", self.address, "--namespace", self.namespace, *args]

    def _container(self, cid: str, args: list[str]) -> Any:
        spec = oci.build(args=args, rootfs=self.rootfs, namespace=self.namespace, container_id=cid)
        return self.client.new_container(cid, spec)

    # one container run through the API, with a given Stdio; `after_create` may start copy threads
    def api_run(
        self,
        args: list[str],
        io: stdio.Stdio,
        after_create: Callable[[Any], Callable[[], None]] | None = None,
    ) -> int:
        cid = self.new_id("api")
        container = self._container(cid, args)
        try:
            task = container.new_task(stdio=io)
            try:
                exited = task.wait()
                join = after_create(task) if after_create else None
                task.start()
                status = exited.result()
                if join is not None:
                    join()
            finally:
                task.delete()
        finally:
            container.delete()
        return status.code

    # -- stdout --------------------------------------------------------------------------------
    def dd_args(self, nbytes: int) -> list[str]:
        return ["/bin/dd", "if=/dev/zero", "bs=1M", f"count={nbytes // MIB}"]

    def stdout(self, tool: str, kind: str, nbytes: int) -> Sample:
        delivered = Delivered()
        with sink(kind, self.workdir, delivered) as fd:
            start, cpu = time.perf_counter(), self_cpu()
            if tool == "ctr":
                code, cpu_used, _ = spawn_wait(
                    self.ctr(
                        "run", "--rm", "--rootfs", self.rootfs, self.new_id("ctr"), *self.dd_args(nbytes)
                    ),
                    stdin=subprocess.DEVNULL,
                    stdout=fd,
                    stderr=subprocess.DEVNULL,
                )
            elif tool == "pycontainerd":
                code = self.api_run(self.dd_args(nbytes), stdio.streams(stdout=fd, stderr=self.devnull))
                cpu_used = self_cpu() - cpu
            else:
                code = self._python_stdout(nbytes, fd)
                cpu_used = self_cpu() - cpu
            wall = time.perf_counter() - start
        if code != 0:
            raise RuntimeError(f"{tool} stdout run exited with {code}")
        lost = 0 if delivered.nbytes is None else nbytes - delivered.nbytes
        if lost:
            sys.stderr.write(
                f"\nWARNING: {tool} delivered {delivered.nbytes} of {nbytes} bytes into the {kind}\n"
            )
        return Sample(wall, cpu_used, nbytes, lost=lost)

    def _python_stdout(self, nbytes: int, fd: int) -> int:
        ends: dict[str, Any] = {}
        copied: list[int] = []

        def grab(direct: stdio.DirectIO) -> None:
            ends["io"] = direct

        def start_copy(task: Any) -> Callable[[], None]:
            direct = ends["io"]
            pairs = [(direct.stdout.fileno(), fd), (direct.stderr.fileno(), self.devnull)]
            thread = threading.Thread(target=lambda: copied.append(python_copy(pairs)), daemon=True)
            thread.start()
            return thread.join

        code = self.api_run(self.dd_args(nbytes), stdio.attach(grab), start_copy)
        if not copied or copied[0] < nbytes:
            raise RuntimeError(f"python loop copied {copied} bytes, expected at least {nbytes}")
        return code

    # -- stdin ---------------------------------------------------------------------------------
    def stdin(self, tool: str, nbytes: int) -> Sample:
        args = ["/bin/sh", "-c", "cat >/dev/null"]
        with source(nbytes) as src:
            start, cpu = time.perf_counter(), self_cpu()
            if tool == "ctr":
                code, cpu_used, _ = spawn_wait(
                    self.ctr("run", "--rm", "--rootfs", self.rootfs, self.new_id("ctr"), *args),
                    stdin=src,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            elif tool == "pycontainerd":
                code = self.api_run(args, stdio.streams(stdin=src, stdout=self.devnull, stderr=self.devnull))
                cpu_used = self_cpu() - cpu
            else:
                code = self._python_stdin(args, src)
                cpu_used = self_cpu() - cpu
            wall = time.perf_counter() - start
        if code != 0:
            raise RuntimeError(f"{tool} stdin run exited with {code}")
        return Sample(wall, cpu_used, nbytes)

    def _python_stdin(self, args: list[str], src: int) -> int:
        ends: dict[str, Any] = {}

        def grab(direct: stdio.DirectIO) -> None:
            ends["io"] = direct

        def start_copy(task: Any) -> Callable[[], None]:
            direct = ends["io"]

            def feed() -> None:
                with contextlib.suppress(BrokenPipeError):
                    python_feed(src, direct.stdin.fileno())
                task.close_stdin()

            outputs = [(direct.stdout.fileno(), self.devnull), (direct.stderr.fileno(), self.devnull)]
            threads = [
                threading.Thread(target=feed, daemon=True),
                threading.Thread(target=python_copy, args=(outputs,), daemon=True),
            ]
            for thread in threads:
                thread.start()
            return lambda: [t.join() for t in threads] and None

        return self.api_run(args, stdio.attach(grab, stdin=True), start_copy)

    # -- latency -------------------------------------------------------------------------------
    def latency(self, tool: str) -> Sample:
        start, cpu = time.perf_counter(), self_cpu()
        if tool == "api":
            code = self.api_run(["/bin/true"], stdio.streams(stdout=self.devnull, stderr=self.devnull))
            cpu_used = self_cpu() - cpu
        elif tool == "ctr":
            code, cpu_used, _ = spawn_wait(
                self.ctr("run", "--rm", "--rootfs", self.rootfs, self.new_id("ctr"), "/bin/true"),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        else:
            # -m puts the working directory first on sys.path: each variant imports the package
            # of its own directory (this checkout's, or the baseline's), found the same way.
            cwd = self.cli_baseline if tool == "cli-baseline" else str(HERE.parent)
            code, cpu_used, _ = spawn_wait(
                [
                    sys.executable,
                    "-m",
                    "pycontainerd",
                    "--address",
                    self.address,
                    "--namespace",
                    self.namespace,
                    "run",
                    "--rm",
                    "--rootfs",
                    self.rootfs,
                    self.new_id("cli"),
                    "--",
                    "/bin/true",
                ],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                cwd=cwd,
            )
        wall = time.perf_counter() - start
        if code != 0:
            raise RuntimeError(f"{tool} lifecycle exited with {code}")
        return Sample(wall, cpu_used)

    # -- concurrency ---------------------------------------------------------------------------
    def concurrency(self, tool: str, count: int) -> Sample:
        start, cpu = time.perf_counter(), self_cpu()
        if tool == "api":
            barrier = threading.Barrier(count + 1)
            errors: list[BaseException] = []

            def one() -> None:
                barrier.wait()
                try:
                    if self.api_run(["/bin/true"], stdio.streams(stdout=self.devnull, stderr=self.devnull)):
                        raise RuntimeError("non-zero exit")
                except BaseException as exc:
                    errors.append(exc)

            threads = [threading.Thread(target=one, daemon=True) for _ in range(count)]
            for thread in threads:
                thread.start()
            start, cpu = time.perf_counter(), self_cpu()
            barrier.wait()
            for thread in threads:
                thread.join()
            if errors:
                raise RuntimeError(f"{len(errors)} of {count} containers failed: {errors[0]}")
            cpu_used = self_cpu() - cpu
        else:
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            procs = [
                subprocess.Popen(
                    self.ctr("run", "--rm", "--rootfs", self.rootfs, self.new_id("ctr"), "/bin/true"),
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
                for _ in range(count)
            ]
            codes = [p.wait() for p in procs]
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu_used = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
            if any(codes):
                raise RuntimeError(f"ctr runs failed: {codes}")
        return Sample(time.perf_counter() - start, cpu_used)

    # -- memory --------------------------------------------------------------------------------
    def memory(self, tool: str, nbytes: int) -> Sample:
        if tool == "ctr":
            code, cpu_used, rss = spawn_wait(
                self.ctr("run", "--rm", "--rootfs", self.rootfs, self.new_id("ctr"), *self.dd_args(nbytes)),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            if code:
                raise RuntimeError(f"ctr exited with {code}")
            return Sample(0.0, cpu_used, nbytes, rss)
        out = subprocess.run(
            [
                sys.executable,
                __file__,
                "--child-rss",
                tool,
                "--address",
                self.address,
                "--namespace",
                self.namespace,
                "--rootfs",
                self.rootfs,
                "--rss-size",
                str(nbytes),
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        data = json.loads(out)
        return Sample(data["wall"], data["cpu"], nbytes, data["growth"])


def _status_kib(field_name: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field_name + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"{field_name} not in /proc/self/status")


def child_rss(args: argparse.Namespace) -> int:
    """In a fresh process: warm up, reset the peak RSS, stream, report the growth as JSON."""
    bench = Bench(args.address, args.namespace, args.rootfs, Path(tempfile.gettempdir()))
    try:
        run = bench.stdout
        run(args.child_rss, "null", 8 * MIB)  # warm-up: every code path, thread and buffer exists now
        baseline = _status_kib("VmRSS")
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # resets VmHWM to the current RSS
        sample = run(args.child_rss, "null", args.rss_size)
        peak = _status_kib("VmHWM")
    finally:
        bench.close()
    print(
        json.dumps(
            {
                "baseline": baseline,
                "peak": peak,
                "growth": max(0, peak - baseline),
                "wall": sample.wall,
                "cpu": sample.cpu,
            }
        )
    )
    return 0


# -- running the plan -----------------------------------------------------------------------------------


@dataclass
class Results:
    """Every sample, keyed by (section, case, tool)."""

    samples: dict[tuple[str, str, str], list[Sample]] = field(default_factory=dict)

    def add(self, section: str, case: str, tool: str, sample: Sample) -> None:
        self.samples.setdefault((section, case, tool), []).append(sample)

    def median(self, section: str, case: str, tool: str, what: Callable[[Sample], float]) -> float | None:
        values = [what(s) for s in self.samples.get((section, case, tool), [])]
        return statistics.median(values) if values else None

    def paired_ratio(self, section: str, case: str, tool: str, other: str) -> float | None:
        """The median over repetitions of ``tool``'s wall time over ``other``'s in the same repetition.

        Each repetition runs the tools back to back, so a pair shares the machine's
        load of the moment: steadier than a ratio of medians while the load changes.
        """
        ours = self.samples.get((section, case, tool), [])
        theirs = self.samples.get((section, case, other), [])
        ratios = [a.wall / b.wall for a, b in zip(ours, theirs, strict=False) if b.wall]
        return statistics.median(ratios) if ratios else None


def rotations(tools: tuple[str, ...], repeat: int) -> Iterator[tuple[int, tuple[str, ...]]]:
    """Each repetition runs every tool once; the order rotates so no tool always goes first."""
    for rep in range(repeat):
        shift = rep % len(tools)
        yield rep, tools[shift:] + tools[:shift]


def latency_tools(opts: argparse.Namespace) -> tuple[str, ...]:
    return ("api", "ctr", "cli", *(("cli-baseline",) if opts.cli_baseline else ()))


def plan_size(opts: argparse.Namespace) -> int:
    n = 0
    if "stdout" in opts.sections:
        n += len(opts.sinks) * opts.stream_repeat * len(TOOLS)
    if "stdin" in opts.sections:
        n += opts.stream_repeat * len(TOOLS)
    if "latency" in opts.sections:
        n += opts.latency_repeat * len(latency_tools(opts))
    if "concurrency" in opts.sections:
        n += opts.repeat * 2
    if "memory" in opts.sections:
        n += 3
    return n


def gib_s(s: Sample) -> float:
    return s.nbytes / GIB / s.wall


def cpu_per_gib(s: Sample) -> float:
    return s.cpu / (s.nbytes / GIB)


def run_plan(bench: Bench, opts: argparse.Namespace, progress: Progress) -> Results:
    results = Results()
    if "stdout" in opts.sections:
        for kind in opts.sinks:
            for rep, order in rotations(TOOLS, opts.stream_repeat):
                for tool in order:
                    s = bench.stdout(tool, kind, opts.size)
                    results.add("stdout", kind, tool, s)
                    progress.step(
                        f"stdout->{kind:<4} {tool:<12} rep {rep + 1}: {gib_s(s):5.2f} GiB/s, "
                        f"{cpu_per_gib(s):.2f} CPU-s/GiB"
                    )
    if "stdin" in opts.sections:
        for rep, order in rotations(TOOLS, opts.stream_repeat):
            for tool in order:
                s = bench.stdin(tool, opts.size)
                results.add("stdin", "cat", tool, s)
                progress.step(
                    f"stdin        {tool:<12} rep {rep + 1}: {gib_s(s):5.2f} GiB/s, "
                    f"{cpu_per_gib(s):.2f} CPU-s/GiB"
                )
    if "latency" in opts.sections:
        # An installed package has bytecode (pip compiles it); an editable checkout run with
        # PYTHONDONTWRITEBYTECODE=1 would recompile every module in every `pycontainerd` command.
        compileall.compile_dir(os.path.dirname(pycontainerd.__file__), quiet=1)
        if opts.cli_baseline:
            compileall.compile_dir(os.path.join(opts.cli_baseline, "pycontainerd"), quiet=1)
        # Warm the daemon's and this process's caches (and each package's files) once.
        for tool in latency_tools(opts):
            if tool != "ctr":
                bench.latency(tool)
        for rep, order in rotations(latency_tools(opts), opts.latency_repeat):
            for tool in order:
                s = bench.latency(tool)
                results.add("latency", "true", tool, s)
                progress.step(f"lifecycle    {tool:<12} rep {rep + 1}: {s.wall * 1000:6.1f} ms")
    if "concurrency" in opts.sections:
        for rep, order in rotations(("api", "ctr"), opts.repeat):
            for tool in order:
                s = bench.concurrency(tool, opts.containers)
                results.add("concurrency", str(opts.containers), tool, s)
                progress.step(
                    f"concurrency  {tool:<12} rep {rep + 1}: {opts.containers / s.wall:6.1f} containers/s"
                )
    if "memory" in opts.sections:
        for tool in ("pycontainerd", "python-loop", "ctr"):
            s = bench.memory(tool, opts.rss_size)
            results.add("memory", "stream", tool, s)
            label = "peak RSS" if tool == "ctr" else "RSS growth"
            progress.step(f"memory       {tool:<12}: {label} {s.rss / MIB:.1f} MiB")
    return results


# -- reporting --------------------------------------------------------------------------------------------


def _fmt(value: float | None, spec: str, suffix: str = "") -> str:
    return "-" if value is None else f"{value:{spec}}{suffix}"


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b == 0 else a / b


@dataclass
class Target:
    """One of the issue's targets, judged on this run's medians."""

    name: str
    value: float | None
    limit: float
    higher_is_better: bool
    unit: str = "x"

    @property
    def met(self) -> bool | None:
        if self.value is None:
            return None
        return self.value >= self.limit if self.higher_is_better else self.value <= self.limit

    @property
    def speedup(self) -> float | None:
        """The value as "better than ctr" factor (> 1 is better), for the chart."""
        if self.value is None or self.value == 0:
            return None
        return self.value if self.higher_is_better else 1 / self.value

    @property
    def chart_limit(self) -> float:
        """The limit on the same "better than ctr" scale as :attr:`speedup`."""
        return self.limit if self.higher_is_better else 1 / self.limit


def targets(r: Results, opts: argparse.Namespace) -> list[Target]:
    out: list[Target] = []
    for kind in opts.sinks if "stdout" in opts.sections else ():
        ours = r.median("stdout", kind, "pycontainerd", gib_s)
        theirs = r.median("stdout", kind, "ctr", gib_s)
        if kind in ("null", "pipe"):
            out.append(Target(f"stdout->{kind} throughput vs ctr", _ratio(ours, theirs), 1.1, True))
        cpu = _ratio(
            r.median("stdout", kind, "pycontainerd", cpu_per_gib),
            r.median("stdout", kind, "ctr", cpu_per_gib),
        )
        out.append(Target(f"stdout->{kind} client CPU/GiB vs ctr", cpu, 0.6, False))
    if "stdin" in opts.sections:
        cpu = _ratio(
            r.median("stdin", "cat", "pycontainerd", cpu_per_gib),
            r.median("stdin", "cat", "ctr", cpu_per_gib),
        )
        out.append(Target("stdin client CPU/GiB vs ctr", cpu, 0.6, False))
    if "latency" in opts.sections:
        ctr = r.median("latency", "true", "ctr", lambda s: s.wall)
        out.append(
            Target(
                "in-process lifecycle vs ctr run --rm",
                _ratio(r.median("latency", "true", "api", lambda s: s.wall), ctr),
                0.8,
                False,
            )
        )
        out.append(
            Target(
                "pycontainerd run --rm vs ctr run --rm",
                _ratio(r.median("latency", "true", "cli", lambda s: s.wall), ctr),
                2.0,
                False,
            )
        )
    if "concurrency" in opts.sections:
        case = str(opts.containers)
        out.append(
            Target(
                f"{case} concurrent containers/s vs ctr",
                _ratio(
                    r.median("concurrency", case, "ctr", lambda s: s.wall),
                    r.median("concurrency", case, "api", lambda s: s.wall),
                ),
                1.1,
                True,
            )
        )
    if "memory" in opts.sections:
        growth = r.median("memory", "stream", "pycontainerd", lambda s: s.rss)
        out.append(
            Target(
                f"client RSS growth over {opts.rss_size / GIB:g} GiB",
                None if growth is None else growth / MIB,
                16,
                False,
                "MiB",
            )
        )
    return out


def markdown(r: Results, opts: argparse.Namespace, info: dict[str, str], tgts: list[Target]) -> str:
    lines = [f"# End-to-end benchmark (through containerd), {_dt.date.today().isoformat()}", ""]
    lines.append("Machine: " + "; ".join(f"{k} {v}" for k, v in info.items()) + ".")
    counts = [
        (opts.stream_repeat, "streams", ("stdout", "stdin")),
        (opts.latency_repeat, "latency", ("latency",)),
        (opts.repeat, "concurrency", ("concurrency",)),
    ]
    over = ", ".join(f"{n} ({what})" for n, what, names in counts if set(names) & set(opts.sections))
    command = f"python benchmarks/e2e.py {' '.join(opts.argv)}".rstrip()
    lines.append(f"Command: `{command}`; medians over {over or '1'} repetitions, tools alternating.")
    lines.append("")
    if "stdout" in opts.sections or "stdin" in opts.sections:
        lines += [
            f"### stdio throughput ({opts.size / GIB:g} GiB per run)",
            "",
            "| stream | tool | GiB/s | vs ctr | client CPU-s/GiB | vs ctr |",
            "|---|---|---:|---:|---:|---:|",
        ]
        cases = [
            ("stdout", k, f"stdout → {'/dev/null' if k == 'null' else k}")
            for k in opts.sinks
            if "stdout" in opts.sections
        ]
        if "stdin" in opts.sections:
            cases.append(("stdin", "cat", "stdin → `cat >/dev/null`"))
        for section, case, label in cases:
            ctr_t = r.median(section, case, "ctr", gib_s)
            ctr_c = r.median(section, case, "ctr", cpu_per_gib)
            for tool in TOOLS:
                t = r.median(section, case, tool, gib_s)
                c = r.median(section, case, tool, cpu_per_gib)
                lines.append(
                    f"| {label} | {tool} | {_fmt(t, '.2f')} | {_fmt(_ratio(t, ctr_t), '.2f', 'x')} | "
                    f"{_fmt(c, '.3f')} | {_fmt(_ratio(c, ctr_c), '.2f', 'x')} |"
                )
        for (section, case, tool), samples in sorted(r.samples.items()):
            short = [s for s in samples if s.lost]
            if section in ("stdout", "stdin") and short:
                lines.append(
                    f"\n**Incomplete output**: {tool}, {section} → {case}: {len(short)} of {len(samples)} "
                    f"runs delivered fewer bytes than the container wrote (missing: "
                    f"{', '.join(str(s.lost) for s in short)} bytes)."
                )
        lines.append("")
    if "latency" in opts.sections:
        ctr = r.median("latency", "true", "ctr", lambda s: s.wall)
        lines += [
            "### lifecycle latency: create + start + wait + delete of `/bin/true`",
            "",
            "| tool | median ms | vs ctr run --rm | vs ctr, per repetition (median) | client CPU ms |",
            "|---|---:|---:|---:|---:|",
        ]
        for tool, label in (
            ("api", "pycontainerd API (in-process)"),
            ("ctr", "`ctr run --rm`"),
            ("cli", "`pycontainerd run --rm`"),
            ("cli-baseline", f"`pycontainerd run --rm` from `{opts.cli_baseline}` (baseline)"),
        ):
            if tool not in latency_tools(opts):
                continue
            w = r.median("latency", "true", tool, lambda s: s.wall)
            c = r.median("latency", "true", tool, lambda s: s.cpu)
            paired = r.paired_ratio("latency", "true", tool, "ctr")
            lines.append(
                f"| {label} | {_fmt(None if w is None else w * 1000, '.1f')} | "
                f"{_fmt(_ratio(w, ctr), '.2f', 'x')} | {_fmt(paired, '.2f', 'x')} | "
                f"{_fmt(None if c is None else c * 1000, '.1f')} |"
            )
        lines.append("")
    if "concurrency" in opts.sections:
        case = str(opts.containers)
        ctr = r.median("concurrency", case, "ctr", lambda s: s.wall)
        lines += [
            f"### concurrency: {case} containers started at once and waited",
            "",
            "| tool | wall s | containers/s | vs ctr | client CPU s |",
            "|---|---:|---:|---:|---:|",
        ]
        for tool, label in (
            ("api", f"pycontainerd, {case} threads in one process"),
            ("ctr", f"{case} parallel `ctr run --rm`"),
        ):
            w = r.median("concurrency", case, tool, lambda s: s.wall)
            c = r.median("concurrency", case, tool, lambda s: s.cpu)
            lines.append(
                f"| {label} | {_fmt(w, '.2f')} | {_fmt(None if not w else opts.containers / w, '.1f')} | "
                f"{_fmt(_ratio(ctr, w), '.2f', 'x')} | {_fmt(c, '.2f')} |"
            )
        lines.append("")
    if "memory" in opts.sections:
        lines += [
            f"### memory while streaming {opts.rss_size / GIB:g} GiB to /dev/null",
            "",
            "| client | RSS growth (MiB) |",
            "|---|---:|",
        ]
        for tool, label in (
            ("pycontainerd", "pycontainerd (native pump), fresh process"),
            ("python-loop", "pycontainerd with a Python copy loop, fresh process"),
        ):
            g = r.median("memory", "stream", tool, lambda s: s.rss)
            lines.append(f"| {label} | {_fmt(None if g is None else g / MIB, '.1f')} |")
        peak = r.median("memory", "stream", "ctr", lambda s: s.rss)
        peak_mib = None if peak is None else peak / MIB
        lines.append(f"| `ctr run` (its whole peak RSS, for scale) | {_fmt(peak_mib, '.1f')} |")
        lines.append("")
    if tgts:
        lines += ["### targets", "", "| target | measured | limit | met |", "|---|---:|---:|:---:|"]
        for t in tgts:
            op = "≥" if t.higher_is_better else "≤"
            unit = " MiB" if t.unit == "MiB" else "x"
            verdict = "-" if t.met is None else ("yes" if t.met else "**no**")
            lines.append(f"| {t.name} | {_fmt(t.value, '.2f', unit)} | {op} {t.limit:g}{unit} | {verdict} |")
        lines.append("")
    return "\n".join(lines)


# -- main ------------------------------------------------------------------------------------------


def parse_size(text: str) -> int:
    units = {"K": 1 << 10, "M": MIB, "G": GIB}
    text = text.strip().upper().removesuffix("IB").removesuffix("B")
    if text and text[-1] in units:
        return int(float(text[:-1]) * units[text[-1]])
    return int(text)


def options(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="256 MiB streams, 3 stream repeats, 1 GiB RSS stream"
    )
    parser.add_argument("--size", type=parse_size, help="bytes per stream (default 2G; quick 256M)")
    parser.add_argument(
        "--rss-size", type=parse_size, help="bytes streamed for the memory test (4G; quick 1G)"
    )
    parser.add_argument("--repeat", type=int, default=5, help="repetitions (default 5)")
    parser.add_argument(
        "--stream-repeat", type=int, help="repetitions of the streams (default --repeat; quick 3)"
    )
    parser.add_argument(
        "--latency-repeat", type=int, help="repetitions of the latency test (default 2x --repeat)"
    )
    parser.add_argument(
        "--cli-baseline",
        metavar="DIR",
        help="latency: also time the command run from DIR/pycontainerd (another commit, native parts built)",
    )
    parser.add_argument("--containers", type=int, default=50, help="concurrent containers (default 50)")
    parser.add_argument(
        "--sections", default=",".join(SECTIONS), help="comma-separated subset of " + ",".join(SECTIONS)
    )
    parser.add_argument("--sinks", default=",".join(SINKS), help="comma-separated subset of null,file,pipe")
    parser.add_argument(
        "--address", help="use this containerd instead of a private one (never the system one by default)"
    )
    parser.add_argument("--namespace", help=argparse.SUPPRESS)
    parser.add_argument("--rootfs", help="busybox rootfs to use (default: built in a temp dir)")
    parser.add_argument("--containerd", default="system",
                        help="containerd version for the private daemon and its ctr: system (default), "
                        "1.6, 1.7, 2 (see scripts/fetch-containerd)")
    parser.add_argument("--out", default=str(HERE / "results"), help="where e2e.md and e2e.png go")
    parser.add_argument("--no-write", action="store_true", help="print the table only")
    parser.add_argument("--json", action="store_true", help="print the medians as JSON instead of Markdown")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    parser.add_argument("--child-rss", choices=["pycontainerd", "python-loop"], help=argparse.SUPPRESS)
    opts = parser.parse_args(argv)
    opts.argv = argv
    opts.size = opts.size or (256 * MIB if opts.quick else 2 * GIB)
    opts.rss_size = opts.rss_size or (GIB if opts.quick else 4 * GIB)
    opts.stream_repeat = opts.stream_repeat or (3 if opts.quick else opts.repeat)
    opts.latency_repeat = opts.latency_repeat or 2 * opts.repeat
    opts.sections = [s for s in opts.sections.split(",") if s]
    if opts.cli_baseline:
        opts.cli_baseline = os.path.abspath(opts.cli_baseline)
        if not os.path.isfile(os.path.join(opts.cli_baseline, "pycontainerd", "__main__.py")):
            parser.error(f"--cli-baseline {opts.cli_baseline}: no pycontainerd package in it")
    opts.sinks = [s for s in opts.sinks.split(",") if s]
    for name, allowed in (("sections", SECTIONS), ("sinks", SINKS)):
        bad = set(getattr(opts, name)) - set(allowed)
        if bad:
            parser.error(f"unknown {name}: {', '.join(sorted(bad))}")
    return opts


def medians_json(r: Results) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for (section, case, tool), samples in r.samples.items():
        out.setdefault(section, {}).setdefault(case, {})[tool] = {
            "wall": statistics.median(s.wall for s in samples),
            "cpu": statistics.median(s.cpu for s in samples),
            "gib_per_s": statistics.median(gib_s(s) for s in samples)
            if samples[0].nbytes and samples[0].wall
            else None,
            "rss": statistics.median(s.rss for s in samples),
            "runs": len(samples),
        }
    return out


def main(argv: list[str] | None = None) -> int:
    opts = options(sys.argv[1:] if argv is None else argv)
    if opts.child_rss:
        return child_rss(opts)
    if os.geteuid() != 0:
        sys.exit("e2e.py needs root (containerd and runc run as root)")
    for tool in ("runc", "dd"):
        if shutil.which(tool) is None:
            sys.exit(f"e2e.py needs {tool} on PATH")
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="pcd-e2e-")))
        rootfs = opts.rootfs or busybox_rootfs(tmp / "rootfs")
        address = opts.address
        binary, ctr = "containerd", "ctr"
        if address is None:
            daemon = PrivateContainerd(version=opts.containerd)
            stack.callback(daemon.close)
            daemon.start()
            address = daemon.address
            binary, ctr = daemon.binary, daemon.ctr
        namespace = opts.namespace or f"pcd-e2e-{uuid.uuid4().hex[:8]}"
        bench = Bench(address, namespace, rootfs, tmp, ctr=ctr, cli_baseline=opts.cli_baseline)
        stack.callback(bench.close)
        if opts.address is not None:
            from pycontainerd.testing import purge_namespace

            stack.callback(purge_namespace, address, namespace)
        progress = Progress(plan_size(opts), quiet=opts.quiet)
        load_before = os.getloadavg()[0]
        started = time.monotonic()
        results = run_plan(bench, opts, progress)
        progress.finish()
    info = machine(binary)
    info["load average (1 min) before/after"] = f"{load_before:.1f}/{os.getloadavg()[0]:.1f}"
    info["duration"] = f"{time.monotonic() - started:.0f} s"
    tgts = targets(results, opts)
    if opts.json:
        print(
            json.dumps(
                {
                    "machine": info,
                    "medians": medians_json(results),
                    "targets": [
                        {"name": t.name, "value": t.value, "limit": t.limit, "met": t.met} for t in tgts
                    ],
                },
                indent=2,
            )
        )
    text = markdown(results, opts, info, tgts)
    if not opts.json:
        print(text)
    if not opts.no_write:
        out = Path(opts.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "e2e.md").write_text(text)
        from e2e_chart import write_chart

        write_chart(out / "e2e.png", [(t.name, t.speedup, t.chart_limit) for t in tgts if t.unit == "x"])
        sys.stderr.write(f"wrote {out / 'e2e.md'} and {out / 'e2e.png'}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
