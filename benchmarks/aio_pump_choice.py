"""Which way an event loop should move stdio bytes: loop readiness callbacks, or the shared native pool.

The asyncio client must copy many processes' output at once without a thread
per process. Two designs were candidates (issue 14):

* ``loop``: the event loop's own readiness callbacks (``add_reader`` on each
  source, non-blocking ``os.splice`` until ``EAGAIN`` in the callback);
* ``pool``: the shared native pump pool (``pycontainerd.stdio.pool``,
  2 worker threads), whose finished jobs the loop learns from an eventfd.

Each round starts N writer processes (``dd``, bs=1M) on pipes, lets them fill
their pipes, then times one variant copying every pipe to ``/dev/null`` (the
pump's cost, not a sink's) and ending when every source reached EOF. The
client's CPU is this process's (all threads: the pool's included); the loop
lag is how late a 1 ms timer fires at worst meanwhile (what every other
coroutine of the program waits). Variants
alternate; the medians and their ratios are printed. No thresholds.

Usage: python benchmarks/aio_pump_choice.py [--streams 500] [--mib 2] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import fcntl
import os
import resource
import statistics
import subprocess
import threading
import time

from pycontainerd.stdio.pool import PumpPool

_SPLICE_FLAGS = os.SPLICE_F_NONBLOCK | os.SPLICE_F_MOVE


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _writers(n: int, mib: int) -> list[subprocess.Popen[bytes]]:
    return [subprocess.Popen(["dd", "if=/dev/zero", "bs=1M", f"count={mib}", "status=none"],
                             stdout=subprocess.PIPE) for _ in range(n)]


async def _loop_variant(fds: list[int], sink: int) -> int:
    loop = asyncio.get_running_loop()
    remaining = len(fds)
    finished = loop.create_future()
    total = 0

    def readable(fd: int) -> None:
        nonlocal remaining, total
        while True:
            try:
                n = os.splice(fd, sink, 1 << 20, flags=_SPLICE_FLAGS)
            except BlockingIOError:
                return
            if n == 0:
                loop.remove_reader(fd)
                remaining -= 1
                if remaining == 0:
                    finished.set_result(None)
                return
            total += n

    for fd in fds:
        os.set_blocking(fd, False)
        fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, 1 << 20)  # as the native pump grows its pipes
        loop.add_reader(fd, readable, fd)
    await finished
    return total


async def _pool_variant(pool: PumpPool, fds: list[int], sink: int) -> int:
    loop = asyncio.get_running_loop()
    remaining = len(fds)
    finished = loop.create_future()
    total = 0

    def done(job: object) -> None:
        nonlocal remaining, total
        remaining -= 1
        total += job.results[0].nbytes  # type: ignore[attr-defined]
        if remaining == 0:
            finished.set_result(None)

    for fd in pool.notify_fds:
        loop.add_reader(fd, pool.reap)
    try:
        for fd in fds:
            pool.submit([(fd, sink)], done)
        await finished
    finally:
        for fd in pool.notify_fds:
            loop.remove_reader(fd)
    return total


async def _with_lag(copy: object) -> tuple[int, float]:
    """Run the copy while a ticker measures how late the loop runs a 1 ms timer (its worst)."""
    worst = 0.0
    stop = False

    async def ticker() -> None:
        nonlocal worst
        while not stop:
            start = time.perf_counter()
            await asyncio.sleep(0.001)
            worst = max(worst, time.perf_counter() - start - 0.001)

    tick = asyncio.ensure_future(ticker())
    total = await copy  # type: ignore[misc]
    stop = True
    await tick
    return total, worst


def _round(variant: str, pool: PumpPool, n: int, mib: int) -> tuple[float, float, int, float]:
    procs = _writers(n, mib)
    time.sleep(0.5)  # every writer started and blocked on its full pipe
    fds = [p.stdout.fileno() for p in procs]  # type: ignore[union-attr]
    sink = os.open(os.devnull, os.O_WRONLY)
    threads = threading.active_count()
    cpu, wall = _cpu(), time.perf_counter()
    if variant == "loop":
        total, lag = asyncio.run(_with_lag(_loop_variant(fds, sink)))
    else:
        total, lag = asyncio.run(_with_lag(_pool_variant(pool, fds, sink)))
    wall, cpu = time.perf_counter() - wall, _cpu() - cpu
    peak_threads = max(threads, threading.active_count())
    os.close(sink)
    for p in procs:
        p.wait()
        p.stdout.close()  # type: ignore[union-attr]
    assert total == n * mib << 20, (variant, total)
    return wall, cpu, peak_threads, lag


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--streams", type=int, default=500)
    parser.add_argument("--mib", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    pool = PumpPool()
    results: dict[str, list[tuple[float, float, int, float]]] = {"loop": [], "pool": []}
    for i in range(args.rounds):
        order = ("loop", "pool") if i % 2 == 0 else ("pool", "loop")
        for variant in order:
            results[variant].append(_round(variant, pool, args.streams, args.mib))
    pool.close()
    print(f"{args.streams} streams x {args.mib} MiB -> /dev/null, {args.rounds} alternating rounds (medians)")
    med = {}
    for variant, rows in results.items():
        wall = statistics.median(r[0] for r in rows)
        cpu = statistics.median(r[1] for r in rows)
        threads = max(r[2] for r in rows)
        lag = statistics.median(r[3] for r in rows)
        gib = args.streams * args.mib / 1024
        med[variant] = (wall, cpu)
        print(f"  {variant:4}: wall {wall:.2f} s ({gib / wall:.2f} GiB/s), client CPU {cpu:.2f} s, "
              f"threads {threads}, worst loop lag {lag * 1000:.1f} ms")
    print(f"  pool/loop: wall {med['pool'][0] / med['loop'][0]:.2f}, "
          f"client CPU {med['pool'][1] / med['loop'][1]:.2f}")


if __name__ == "__main__":
    main()
