"""Container stdout throughput: pycontainerd handoff vs pycontainerd FIFO vs ``ctr run``.

Each run starts a busybox container running ``dd if=/dev/zero bs=1M count=N``
and sends its stdout to one of three sinks:

* ``/dev/null``;
* ``a pipe`` read by ``dd of=/dev/null bs=1M`` (its byte count is checked);
* ``a file`` (a fresh regular file on the root filesystem; its size is checked).

Three ways to run it, one after the other within each round, in an order
that rotates from round to round (so that none always runs first or last):

* ``handoff``: ``pycontainerd.run(..., stdout=sink, handoff=True)``: the shim
  runs ``pcd-handoff``, this process receives the container's own pipe and the
  native pump splices it into the sink (nothing copies in the shim);
* ``fifo``: ``pycontainerd.run(..., stdout=sink, handoff=False)``: the shim
  copies the container's pipe into a FIFO, the native pump splices the FIFO;
* ``ctr``: ``ctr run --rm --rootfs ...`` with its stdout redirected to the
  sink: the shim copies into a FIFO, ctr copies the FIFO (32 KiB buffers).

Wall time covers the whole run: create, start, the container's exit, the
output drained, delete. Client CPU is user+system time of the client: this
process during a pycontainerd run (gRPC threads included), or the ``ctr``
process. Neither counts the shim, containerd or the pipe's reader. Reported:
medians over the rounds.

Runs against a private containerd it starts (own root/state/sockets under a
temp dir, stopped with every shim it started at the end), or ``--address``
(never the system daemon unless named explicitly). Needs root.

    python benchmarks/handoff_vs_ctr.py [--gib 2] [--rounds 5] [--address SOCK] [--markdown]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from _common import machine, machine_line

from pycontainerd import testing
from pycontainerd._run import run
from pycontainerd.client import Client
from pycontainerd.stdio.handoff_io import available

MODES = ("handoff", "fifo", "ctr")
SINKS = ("/dev/null", "a pipe", "a file")


def cpu_self() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


class Sink:
    """One sink instance for one run: ``fd`` to write to, ``finish()`` checks the byte count."""

    def __init__(self, kind: str, base: Path) -> None:
        self.kind = kind
        self.reader: subprocess.Popen[bytes] | None = None
        self.path = base / f"out-{uuid.uuid4().hex[:8]}"
        if kind == "/dev/null":
            self.fd = os.open(os.devnull, os.O_WRONLY | os.O_CLOEXEC)
        elif kind == "a pipe":
            r, self.fd = os.pipe2(os.O_CLOEXEC)
            self.reader = subprocess.Popen(
                ["dd", "of=/dev/null", "bs=1M"], stdin=r, stderr=subprocess.PIPE, env={"LC_ALL": "C"}
            )
            os.close(r)
        else:
            self.fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)

    def finish(self, expected: int) -> None:
        os.close(self.fd)
        if self.reader is not None:
            _, err = self.reader.communicate()
            # GNU dd's summary: "N bytes (...) copied, ...".
            copied = int(err.decode().strip().splitlines()[-1].split()[0])
            assert copied == expected, f"pipe reader got {copied} bytes, expected {expected}"
        elif self.kind == "a file":
            size = self.path.stat().st_size
            self.path.unlink()
            assert size == expected, f"file has {size} bytes, expected {expected}"


class ThreadWatch:
    """The most of our stdio threads (``pcd-*``) alive at once while a run streams."""

    def __init__(self) -> None:
        self.most = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="bench-thread-watch", daemon=True)

    def _watch(self) -> None:
        while not self._stop.wait(0.005):
            self.most = max(self.most, sum(t.name.startswith("pcd-") for t in threading.enumerate()))

    def __enter__(self) -> ThreadWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


#: Per mode, the most pcd- threads seen during its warm-up run (one process at a time).
THREADS: dict[str, int] = {}


def one_pycontainerd(
    client: Client, rootfs: str, count: int, sink: Sink, *, handoff: bool, watch_threads: bool = False
) -> tuple[float, float]:
    argv = ["dd", "if=/dev/zero", "bs=1M", f"count={count}"]
    if watch_threads:
        # Counting threads wakes this process every 5 ms: done in the untimed
        # warm-up only, so the watcher's CPU is never charged to the client.
        with ThreadWatch() as watch:
            result = run(argv, rootfs=rootfs, stdout=sink.fd, client=client, handoff=handoff)
        mode = "handoff" if handoff else "fifo"
        THREADS[mode] = max(THREADS.get(mode, 0), watch.most)
        assert result.returncode == 0, result
        return 0.0, 0.0
    cpu0 = cpu_self()
    t0 = time.perf_counter()
    result = run(argv, rootfs=rootfs, stdout=sink.fd, client=client, handoff=handoff)
    wall = time.perf_counter() - t0
    cpu = cpu_self() - cpu0
    assert result.returncode == 0, result
    return wall, cpu


def one_ctr(address: str, namespace: str, rootfs: str, count: int, sink: Sink, ctr: str = "ctr"
            ) -> tuple[float, float]:
    name = f"bench-ctr-{uuid.uuid4().hex[:8]}"
    argv = [ctr, "--address", address, "--namespace", namespace, "run", "--rm", "--rootfs", rootfs,
            name, "/bin/dd", "if=/dev/zero", "bs=1M", f"count={count}"]  # fmt: skip
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=sink.fd, stderr=subprocess.PIPE)
    assert proc.stderr is not None
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    proc.stderr.close()
    if proc.returncode:
        sys.exit(f"ctr failed: {err.decode(errors='replace')}")
    return wall, usage.ru_utime + usage.ru_stime


def write_handoff_chart(path: str, med: dict[tuple[str, str], tuple[float, float]], gib: float) -> None:
    """Bars of times-better-than-ctr (throughput, and CPU saved) with the issue's targets."""
    from e2e_chart import write_chart  # benchmarks/ is the script's directory

    bars: list[tuple[str, float | None, float | None]] = []
    for sink_kind in SINKS:
        ctr_wall, ctr_cpu = med[(sink_kind, "ctr")]
        target = None if sink_kind.endswith("file") else 5.0  # the issue sets none for files
        for mode in ("handoff", "fifo"):
            wall, cpu = med[(sink_kind, mode)]
            goal = target if mode == "handoff" else None
            bars.append((f"{mode} -> {sink_kind}: GiB/s vs ctr", ctr_wall / wall, goal))
            if mode == "handoff" and cpu:
                bars.append((f"{mode} -> {sink_kind}: CPU saved vs ctr", ctr_cpu / cpu, target))
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    title = f"zero-copy handoff vs ctr, container dd {gib:g} GiB (times better; tick = target)"
    write_chart(path, bars, title=title)
    print(f"chart: {path}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gib", type=float, default=2.0)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--address", help="an existing containerd socket (default: start a private one)")
    ap.add_argument("--markdown", action="store_true", help="also print the table as Markdown")
    ap.add_argument("--containerd", default="system",
                    help="containerd of the private daemon and its ctr: system (default), 1.6, 1.7, 2")
    ap.add_argument("--chart", default=str(Path(__file__).parent / "results" / "handoff.png"),
                    help="where the PNG chart goes ('' for none)")  # fmt: skip
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("needs root")
    if not available():
        sys.exit("pcd-handoff is not built (pip install -e .)")
    count = int(args.gib * 1024)
    nbytes = count << 20
    gib = count / 1024

    base = Path(tempfile.mkdtemp(prefix="pcd-bench-", dir="/var/tmp"))
    # Bundle dirs (FIFOs, helper sockets) under the temp dir too, removed with it.
    os.environ["PYCONTAINERD_STATE_DIR"] = str(base / "state")
    daemon = None
    namespace = f"pcd-bench-{uuid.uuid4().hex[:8]}"
    binary, ctr = "containerd", "ctr"
    try:
        if args.address:
            address = args.address
        else:
            daemon = testing.PrivateContainerd(version=args.containerd)
            daemon.start()
            address = daemon.address
            binary, ctr = daemon.binary, daemon.ctr
        rootfs = testing.busybox_rootfs(base / "rootfs")
        with Client(address, namespace=namespace) as client:
            runners: dict[str, Callable[[Sink], tuple[float, float]]] = {
                "handoff": lambda s: one_pycontainerd(client, rootfs, count, s, handoff=True),
                "fifo": lambda s: one_pycontainerd(client, rootfs, count, s, handoff=False),
                "ctr": lambda s: one_ctr(address, namespace, rootfs, count, s, ctr),
            }
            # Warm-up: page cache, shim and helper binaries, the gRPC channel.
            # The stdio threads are counted here, outside the timed rounds.
            for mode in MODES:
                sink = Sink("/dev/null", base)
                if mode == "ctr":
                    runners[mode](sink)
                else:
                    one_pycontainerd(client, rootfs, count, sink, handoff=mode == "handoff",
                                     watch_threads=True)
                sink.finish(nbytes)
            rows: dict[tuple[str, str], list[tuple[float, float]]] = {
                (s, m): [] for s in SINKS for m in MODES
            }
            for i in range(args.rounds):
                order = MODES[i % 3 :] + MODES[: i % 3]
                for sink_kind in SINKS:
                    for mode in order:
                        sink = Sink(sink_kind, base)
                        try:
                            wall, cpu = runners[mode](sink)
                        finally:
                            sink.finish(nbytes)
                        rows[(sink_kind, mode)].append((wall, cpu))
                        print(f"  round {i + 1} {sink_kind:9s} {mode:8s} {wall:7.3f} s"
                              f" {gib / wall:6.2f} GiB/s  client cpu {cpu:6.3f} s", flush=True)  # fmt: skip
    finally:
        if daemon is not None:
            daemon.close()
        shutil.rmtree(base, ignore_errors=True)

    med = {
        k: (statistics.median(w for w, _ in v), statistics.median(c for _, c in v)) for k, v in rows.items()
    }
    print("\n" + machine_line(machine(binary), ("cpu", "memory", "kernel", "containerd", "runc", "python")))
    print(f"container dd {gib:g} GiB -> stdout -> sink; median of {args.rounds} rounds (order rotated)\n")
    header = ("sink", "mode", "wall s", "GiB/s", "vs ctr", "client CPU s/GiB", "CPU vs ctr")
    lines = []
    for sink_kind in SINKS:
        ctr_wall, ctr_cpu = med[(sink_kind, "ctr")]
        for mode in MODES:
            wall, cpu = med[(sink_kind, mode)]
            lines.append((sink_kind, mode, f"{wall:.3f}", f"{gib / wall:.2f}", f"{ctr_wall / wall:.2f}x",
                          f"{cpu / gib:.3f}", f"{cpu / ctr_cpu:.3f}" if ctr_cpu else "n/a"))  # fmt: skip
    widths = [max(len(h), *(len(r[i]) for r in lines)) for i, h in enumerate(header)]
    for row in (header, *lines):
        cells = zip(row, widths, strict=True)
        print("  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(cells)))
    print("\nstdio threads per running process (most seen): "
          + ", ".join(f"{mode} {n}" for mode, n in sorted(THREADS.items())))
    if args.chart:
        write_handoff_chart(args.chart, med, gib)
    if args.markdown:
        print("\n| " + " | ".join(header) + " |")
        print("|" + "|".join(":--" if i < 2 else "--:" for i in range(len(header))) + "|")
        for row in lines:
            print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
