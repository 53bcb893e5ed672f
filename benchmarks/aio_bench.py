#!/usr/bin/env python3
"""pycontainerd.aio against the sync client, through a private containerd: threads, throughput, latency.

Two sections, each alternating its variants round by round (the machine has 2
cores and is shared: only the ratios of medians mean anything):

1. **streaming**: ``--containers`` containers started at once, each streaming
   ``--mib`` MiB of stdout (``yes | head -c``) into ``/dev/null``; each sleeps
   ``--stagger`` s first, so that the streams overlap. ``aio``: every container is an
   ``aio.run`` in one event loop; ``sync``: every container is a ``pycontainerd.run``
   in its own thread. Reported per variant: wall time, containers/s, aggregate
   MiB/s, client CPU (this process, every thread), and the thread count before
   and at its peak (sampled every 10 ms).
2. **lifecycle**: ``/bin/true`` run one after the other, ``--runs`` per round:
   ``aio.run`` awaited vs ``pycontainerd.run``; median latency and client CPU per run.
3. **concurrency**: ``--concurrent`` containers of ``/bin/true`` started at once and
   waited: ``aio.run`` in one loop, ``pycontainerd.run`` in a thread each, and as many
   parallel ``ctr run --rm``; containers/s and client CPU (ctr: its processes').

Usage::

    python benchmarks/aio_bench.py                       # 500 containers x 4 MiB, 3 rounds; 30 runs x 5
    python benchmarks/aio_bench.py --containers 50 --mib 64 --sections streaming

Needs root, containerd, runc and busybox-static. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pycontainerd
from pycontainerd import aio
from pycontainerd.daemon import PrivateContainerd
from pycontainerd.stdio.pool import shared_pool
from pycontainerd.testing import busybox_rootfs, purge_namespace


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@dataclass
class Sample:
    wall: float
    cpu: float
    threads_before: int
    threads_peak: int


class ThreadPeak:
    """Samples ``threading.active_count()`` every 10 ms from a thread of its own (not counted)."""

    def __init__(self) -> None:
        self.before = threading.active_count()
        self.peak = self.before
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.01):
            self.peak = max(self.peak, threading.active_count() - 1)

    def stop(self) -> tuple[int, int]:
        self._stop.set()
        self._thread.join()
        return self.before, self.peak


def _script(mib: int, stagger: float) -> list[str]:
    return ["sh", "-c", f"sleep {stagger}; yes 0123456789abcdef | head -c {mib << 20}"]


def streaming_aio(address: str, namespace: str, rootfs: str, n: int, mib: int, stagger: float) -> Sample:
    async def main() -> None:
        sink = os.open(os.devnull, os.O_WRONLY | os.O_CLOEXEC)
        try:
            async with aio.Client(address, namespace=namespace) as client:
                results = await asyncio.gather(*[
                    aio.run(_script(mib, stagger), rootfs=rootfs, stdout=sink,
                            client=client) for _ in range(n)
                ])
        finally:
            os.close(sink)
        assert all(r.returncode == 0 for r in results)

    peak = ThreadPeak()
    cpu, wall = _cpu(), time.perf_counter()
    asyncio.run(main())
    wall, cpu = time.perf_counter() - wall, _cpu() - cpu
    return Sample(wall, cpu, *peak.stop())


def streaming_sync(address: str, namespace: str, rootfs: str, n: int, mib: int, stagger: float) -> Sample:
    sink = os.open(os.devnull, os.O_WRONLY | os.O_CLOEXEC)
    client = pycontainerd.Client(address, namespace=namespace)
    peak = ThreadPeak()
    cpu, wall = _cpu(), time.perf_counter()
    try:
        with ThreadPoolExecutor(max_workers=n) as pool:
            futures = [pool.submit(pycontainerd.run, _script(mib, stagger), rootfs=rootfs, stdout=sink,
                                   client=client) for _ in range(n)]
            results = [f.result() for f in futures]
        wall, cpu = time.perf_counter() - wall, _cpu() - cpu
    finally:
        client.close()
        os.close(sink)
    assert all(r.returncode == 0 for r in results)
    return Sample(wall, cpu, *peak.stop())


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def concurrency(variant: str, address: str, namespace: str, rootfs: str, ctr: str, n: int) -> Sample:
    """``n`` containers of ``/bin/true`` at once, waited; the client's CPU (ctr: its processes')."""
    peak = ThreadPeak()
    if variant == "ctr":
        cpu, wall = _children_cpu(), time.perf_counter()
        procs = [subprocess.Popen([ctr, "--address", address, "--namespace", namespace, "run", "--rm",
                                   "--rootfs", rootfs, f"ctr-{uuid.uuid4().hex[:10]}", "/bin/true"],
                                  stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
                 for _ in range(n)]
        codes = [p.wait() for p in procs]
        wall, cpu = time.perf_counter() - wall, _children_cpu() - cpu
        assert codes == [0] * n, codes
    elif variant == "aio":
        async def main() -> None:
            async with aio.Client(address, namespace=namespace) as client:
                results = await asyncio.gather(*[aio.run(["/bin/true"], rootfs=rootfs, client=client)
                                                 for _ in range(n)])
            assert all(r.returncode == 0 for r in results)

        cpu, wall = _cpu(), time.perf_counter()
        asyncio.run(main())
        wall, cpu = time.perf_counter() - wall, _cpu() - cpu
    else:
        with pycontainerd.Client(address, namespace=namespace) as client:
            cpu, wall = _cpu(), time.perf_counter()
            with ThreadPoolExecutor(max_workers=n) as pool:
                results = list(pool.map(lambda _: pycontainerd.run(["/bin/true"], rootfs=rootfs,
                                                                   client=client),
                                        range(n)))
            wall, cpu = time.perf_counter() - wall, _cpu() - cpu
        assert all(r.returncode == 0 for r in results)
    return Sample(wall, cpu, *peak.stop())


def lifecycle_aio(address: str, namespace: str, rootfs: str, runs: int) -> list[tuple[float, float]]:
    async def main() -> list[tuple[float, float]]:
        out = []
        async with aio.Client(address, namespace=namespace) as client:
            await aio.run(["true"], rootfs=rootfs, client=client)  # the channel
            for _ in range(runs):
                cpu, wall = _cpu(), time.perf_counter()
                await aio.run(["true"], rootfs=rootfs, client=client)
                out.append((time.perf_counter() - wall, _cpu() - cpu))
        return out

    return asyncio.run(main())


def lifecycle_sync(address: str, namespace: str, rootfs: str, runs: int) -> list[tuple[float, float]]:
    out = []
    with pycontainerd.Client(address, namespace=namespace) as client:
        pycontainerd.run(["true"], rootfs=rootfs, client=client)
        for _ in range(runs):
            cpu, wall = _cpu(), time.perf_counter()
            pycontainerd.run(["true"], rootfs=rootfs, client=client)
            out.append((time.perf_counter() - wall, _cpu() - cpu))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--containers", type=int, default=500)
    parser.add_argument("--mib", type=int, default=4)
    parser.add_argument("--stagger", type=float, default=2.0, help="seconds each container sleeps first")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--runs", type=int, default=30, help="lifecycle runs per round")
    parser.add_argument("--lifecycle-rounds", type=int, default=5)
    parser.add_argument("--sections", default="streaming,lifecycle,concurrency")
    parser.add_argument("--concurrent", type=int, default=200, help="concurrency: containers at once")
    parser.add_argument("--containerd", default=None, help="version for the private daemon (1.6, 1.7, 2)")
    parser.add_argument("--no-sync", action="store_true", help="streaming: only the aio variant")
    opts = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("aio_bench.py needs root (containerd and runc run as root)")
    sections = opts.sections.split(",")
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="pcd-aio-bench-")))
        rootfs = busybox_rootfs(tmp / "rootfs")
        daemon = PrivateContainerd(version=opts.containerd) if opts.containerd else PrivateContainerd()
        stack.callback(daemon.close)
        daemon.start()
        namespace = f"pcd-aio-bench-{uuid.uuid4().hex[:8]}"
        stack.callback(purge_namespace, daemon.address, namespace)
        version = ".".join(map(str, daemon.version))
        print(f"containerd {version}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}, "
              f"pump pool {shared_pool().thread_count} threads")
        if "streaming" in sections:
            variants = ["aio"] if opts.no_sync else ["aio", "sync"]
            samples: dict[str, list[Sample]] = {v: [] for v in variants}
            for i in range(opts.rounds):
                order = variants if i % 2 == 0 else variants[::-1]
                for variant in order:
                    run = streaming_aio if variant == "aio" else streaming_sync
                    s = run(daemon.address, namespace, rootfs, opts.containers, opts.mib, opts.stagger)
                    samples[variant].append(s)
                    print(f"  streaming {variant:4} round {i + 1}: {s.wall:6.1f} s, CPU {s.cpu:6.1f} s, "
                          f"threads {s.threads_before} -> peak {s.threads_peak}", flush=True)
            print(f"\n{opts.containers} containers x {opts.mib} MiB stdout -> /dev/null, all at once "
                  f"(medians of {opts.rounds})")
            med = {}
            for variant, rows in samples.items():
                wall = statistics.median(r.wall for r in rows)
                cpu = statistics.median(r.cpu for r in rows)
                peak = max(r.threads_peak for r in rows)
                before = min(r.threads_before for r in rows)
                med[variant] = (wall, cpu)
                print(f"  {variant:4}: {opts.containers / wall:6.1f} containers/s, "
                      f"{opts.containers * opts.mib / wall:7.1f} MiB/s aggregate, client CPU {cpu:.1f} s, "
                      f"threads {before} before, {peak} at peak")
            if "sync" in med:
                print(f"  aio/sync: wall {med['aio'][0] / med['sync'][0]:.2f}, "
                      f"client CPU {med['aio'][1] / med['sync'][1]:.2f}")
        if "concurrency" in sections:
            variants = ["aio", "sync", "ctr"]
            csamples: dict[str, list[Sample]] = {v: [] for v in variants}
            for i in range(opts.rounds):
                order = variants[i % 3:] + variants[:i % 3]
                for variant in order:
                    s = concurrency(variant, daemon.address, namespace, rootfs, daemon.ctr, opts.concurrent)
                    csamples[variant].append(s)
                    print(f"  concurrency {variant:4} round {i + 1}: {opts.concurrent / s.wall:6.1f} "
                          f"containers/s, CPU {s.cpu:5.1f} s, threads peak {s.threads_peak}", flush=True)
            print(f"\n{opts.concurrent} containers of /bin/true started at once and waited "
                  f"(medians of {opts.rounds})")
            rate = {v: opts.concurrent / statistics.median(x.wall for x in rows)
                    for v, rows in csamples.items()}
            ccpu = {v: statistics.median(x.cpu for x in rows) for v, rows in csamples.items()}
            for variant in variants:
                print(f"  {variant:4}: {rate[variant]:6.1f} containers/s, client CPU {ccpu[variant]:5.1f} s")
            print(f"  aio vs ctr: {rate['aio'] / rate['ctr']:.2f}x containers/s; aio vs sync: "
                  f"{rate['aio'] / rate['sync']:.2f}x containers/s, "
                  f"client CPU {ccpu['aio'] / ccpu['sync']:.2f}")
        if "lifecycle" in sections:
            rows: dict[str, list[tuple[float, float]]] = {"aio": [], "sync": []}
            for i in range(opts.lifecycle_rounds):
                order = ["aio", "sync"] if i % 2 == 0 else ["sync", "aio"]
                for variant in order:
                    run_rounds = lifecycle_aio if variant == "aio" else lifecycle_sync
                    rows[variant] += run_rounds(daemon.address, namespace, rootfs, opts.runs)
            print(f"\nlifecycle of /bin/true, {opts.lifecycle_rounds} alternating rounds x {opts.runs} "
                  "runs (medians)")
            lat = {v: statistics.median(r[0] for r in rs) for v, rs in rows.items()}
            cpu = {v: statistics.median(r[1] for r in rs) for v, rs in rows.items()}
            for variant in ("aio", "sync"):
                print(f"  {variant:4}: {lat[variant] * 1000:6.1f} ms per run, client CPU "
                      f"{cpu[variant] * 1000:5.1f} ms")
            print(f"  aio/sync: latency {lat['aio'] / lat['sync']:.2f}, "
                  f"client CPU {cpu['aio'] / cpu['sync']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
