#!/usr/bin/env python3
"""FIFO throughput: the native pump against Python and C copy loops, free and GIL-contended.

A separate writer process (a small C program, built at run time) pushes
``--size`` bytes into a FIFO with vmsplice(2) from a constant buffer, so the
writer costs almost nothing. A copying process reads the FIFO (opened
blocking, as every variant can use it) and copies it to a destination:

* ``null``: ``/dev/null``;
* ``pipe``: an anonymous pipe drained by a consumer process (splice to
  ``/dev/null``; it reports the byte count, which is checked);
* ``file``: a regular file in ``--dir`` (its size is checked);
* ``append``: the same opened ``O_APPEND`` (what ``stdio.log_file`` opens):
  splice refuses such a file, so the pump uses read/write there, and the
  ``python-splice`` loop is not run.

Before a file run the copying process touches and frees as much memory as
the file will take in the page cache, untimed (``--no-prefault`` skips it):
in a VM with free page reporting, memory freed more than ~2 s earlier was
seen to cost a host page fault per page on reuse, which made file runs 3-5x
slower at random.

Variants, each run in a fresh copying process:

* ``native``: ``pycontainerd.stdio.pump.copy`` (splice, enlarged pipes, GIL released);
* ``python-rw``: an ``os.read``/``os.write`` loop with a 64 KiB buffer;
* ``python-splice``: an ``os.splice`` loop (1 MiB per call);
* ``copyfileobj``: ``shutil.copyfileobj`` between buffered file objects;
* ``c-rw-32k``: a C ``read``/``write`` loop with a 32 KiB buffer (what
  containerd's Go ``cio`` does), compiled with cffi at run time, GIL released;
* ``native-rw`` (only with ``--variants``): the pump forced to read/write.

Each configuration runs twice: with the copy alone in its process, and
with another Python thread in the copying process running pure-Python work
(the GIL is contended). Throughput is bytes / wall time of the copy call;
CPU is the copying thread's user+system time (``RUSAGE_THREAD``), so the
busy thread's own CPU is not counted. Variants alternate within each
repetition; the table shows medians over ``--repeat`` repetitions, with
ratios to the native pump, then the native pump against the fastest and the
cheapest baseline (every variant but the pump's own) per sink. The last line
is the native pump's throughput over the pure-Python loop's under GIL
contention. ``--json FILE`` also writes every sample, not just the medians,
so a run that crawled shows (single runs vary by up to 2x on a shared
machine, see ``benchmarks/README.md``).

Usage: ``python benchmarks/fifo_throughput.py [--size 1G] [--repeat 5]``
(quick: ``--size 256M --repeat 3``; ``--dests``, ``--variants``, ``--modes``
narrow it down).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from _common import machine, machine_line

GIB = 1 << 30
VARIANTS = ["native", "python-rw", "python-splice", "copyfileobj", "c-rw-32k"]
EXTRA_VARIANTS = ["native-rw"]
# What the native pump must match: every way to copy that is not the pump itself.
BASELINES = ["python-rw", "python-splice", "copyfileobj", "c-rw-32k"]
MODES = {"free": False, "contended": True}
DESTS = ["null", "pipe", "file", "append"]
# splice(2) refuses an O_APPEND file (EINVAL): that loop has nothing to measure there.
UNSUPPORTED = {("append", "python-splice")}
FILE_DESTS = ("file", "append")

HELPER_C = r"""
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#define CHUNK (1u << 20)

/* write PATH SIZE: vmsplice SIZE bytes of a constant buffer into PATH. */
static int writer(const char *path, unsigned long long size)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) { perror("open fifo"); return 1; }
    char *buf = aligned_alloc(4096, CHUNK);
    if (!buf) { perror("alloc"); return 1; }
    for (size_t i = 0; i < CHUNK; i++) buf[i] = (char)(i * 131 + 7);
    int gift = 1;
    size_t off = 0;
    while (size > 0) {
        size_t len = CHUNK - off;
        if (len > size) len = size;
        ssize_t n;
        if (gift) {
            struct iovec iov = {buf + off, len};
            n = vmsplice(fd, &iov, 1, 0);
            if (n < 0 && (errno == EINVAL || errno == ENOSYS)) { gift = 0; continue; }
        } else {
            n = write(fd, buf + off, len);
        }
        if (n < 0) {
            if (errno == EINTR) continue;
            perror("write fifo");
            return 1;
        }
        size -= (unsigned long long)n;
        off = (off + (size_t)n) % CHUNK;
    }
    return close(fd) < 0;
}

/* drain: splice stdin to /dev/null until EOF, print the byte count. */
static int drain(void)
{
    int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
    char *buf = malloc(CHUNK);
    if (null < 0 || !buf) { perror("drain setup"); return 1; }
    unsigned long long total = 0;
    int use_splice = 1;
    for (;;) {
        ssize_t n;
        if (use_splice) {
            n = splice(0, NULL, null, NULL, CHUNK, SPLICE_F_MOVE);
            if (n < 0 && errno == EINVAL) { use_splice = 0; continue; }
        } else {
            n = read(0, buf, CHUNK);
        }
        if (n < 0) {
            if (errno == EINTR) continue;
            perror("drain");
            return 1;
        }
        if (n == 0) break;
        total += (unsigned long long)n;
    }
    printf("%llu\n", total);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "write") == 0)
        return writer(argv[2], strtoull(argv[3], NULL, 10));
    if (argc == 2 && strcmp(argv[1], "drain") == 0)
        return drain();
    fprintf(stderr, "usage: %s write PATH SIZE | drain\n", argv[0]);
    return 2;
}
"""

C_LOOP_CDEF = "long long pcd_bench_rw32k(int src, int dst);"
C_LOOP_SRC = r"""
#include <errno.h>
#include <unistd.h>

/* containerd cio's copy: io.CopyBuffer with a 32 KiB buffer. Returns bytes or -errno. */
long long pcd_bench_rw32k(int src, int dst)
{
    char buf[32 << 10];
    long long total = 0;
    for (;;) {
        ssize_t n = read(src, buf, sizeof buf);
        if (n < 0) {
            if (errno == EINTR) continue;
            return -errno;
        }
        if (n == 0) return total;
        for (ssize_t off = 0; off < n;) {
            ssize_t w = write(dst, buf + off, (size_t)(n - off));
            if (w < 0) {
                if (errno == EINTR) continue;
                return -errno;
            }
            off += w;
        }
        total += n;
    }
}
"""


# ---------------------------------------------------------------- the copying process


def copy_native(src: int, dst: int) -> int:
    from pycontainerd.stdio.pump import copy

    return copy(src, dst)


def copy_native_rw(src: int, dst: int) -> int:
    from pycontainerd._native import pump

    _, [(nbytes, err, _done, _dropped)] = pump.pump([(src, dst)], -1, pump.NO_SPLICE)
    if err:
        raise OSError(err, os.strerror(err))
    return nbytes


def copy_python_rw(src: int, dst: int) -> int:
    total = 0
    while True:
        block = os.read(src, 64 << 10)
        if not block:
            return total
        written = os.write(dst, block)
        while written < len(block):
            written += os.write(dst, memoryview(block)[written:])
        total += len(block)


def copy_python_splice(src: int, dst: int) -> int:
    total = 0
    while True:
        n = os.splice(src, dst, 1 << 20)
        if not n:
            return total
        total += n


def copy_copyfileobj(src: int, dst: int) -> int:
    with open(src, "rb", closefd=False) as fsrc, open(dst, "wb", closefd=False) as fdst:
        shutil.copyfileobj(fsrc, fdst)
    return -1  # not counted here; the sink is checked instead


def copy_c_rw32k(src: int, dst: int) -> int:
    import _pcd_bench_rw32k  # type: ignore[import-not-found]

    n = int(_pcd_bench_rw32k.lib.pcd_bench_rw32k(src, dst))
    if n < 0:
        raise OSError(-n, os.strerror(-n))
    return n


COPIERS: dict[str, Callable[[int, int], int]] = {
    "native": copy_native,
    "native-rw": copy_native_rw,
    "python-rw": copy_python_rw,
    "python-splice": copy_python_splice,
    "copyfileobj": copy_copyfileobj,
    "c-rw-32k": copy_c_rw32k,
}


def busy_python(stop: threading.Event, started: threading.Event) -> None:
    """Pure-Python work that wants the GIL all the time (what an application thread does)."""
    table: dict[int, int] = {}
    i = 0
    while not stop.is_set():
        for j in range(200):
            table[(i + j) & 1023] = i * j
        i += 1
        started.set()


def prefault(nbytes: int) -> None:
    """Touch and free ``nbytes`` (+1/8) of memory so the file's page cache gets host-backed pages.

    In a VM with virtio-balloon free page reporting, memory freed for about two
    seconds is handed back to the host, and the first write to it again costs
    a host page fault per page: writing a file into such memory ran 3-5x slower
    (and burned 3-5x the CPU) for every variant alike, depending only on when
    the run started. Touching the memory first, untimed, removes that noise.
    """
    buf = bytearray(nbytes + nbytes // 8)
    buf[::4096] = b"\x01" * len(range(0, len(buf), 4096))
    del buf


def child(spec: dict[str, object]) -> None:
    sys.path.insert(0, str(spec["build"]))
    copier = COPIERS[str(spec["variant"])]
    # Import everything a copier needs now, outside the timed region.
    import _pcd_bench_rw32k  # type: ignore[import-not-found]  # noqa: F401

    import pycontainerd.stdio.pump  # noqa: F401

    if spec["dest"] in FILE_DESTS and spec["prefault"]:
        prefault(int(str(spec["size"])))

    src = os.open(str(spec["fifo"]), os.O_RDONLY | os.O_CLOEXEC)  # waits for the writer
    dest = str(spec["dest"])
    if dest == "null":
        dst = os.open(os.devnull, os.O_WRONLY | os.O_CLOEXEC)
    elif dest == "pipe":
        dst = int(str(spec["pipe_fd"]))
    else:
        append = os.O_APPEND if dest == "append" else 0
        dst = os.open(str(spec["file"]), os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC | append, 0o600)
    stop, started = threading.Event(), threading.Event()
    busy = threading.Thread(target=busy_python, args=(stop, started))
    if spec["contended"]:
        busy.start()
        started.wait()
    r0 = resource.getrusage(resource.RUSAGE_THREAD)
    t0 = time.perf_counter()
    nbytes = copier(src, dst)
    t1 = time.perf_counter()
    r1 = resource.getrusage(resource.RUSAGE_THREAD)
    stop.set()
    if busy.is_alive():
        busy.join()
    os.close(src)
    os.close(dst)
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    json.dump({"nbytes": nbytes, "seconds": t1 - t0, "cpu": cpu}, sys.stdout)


# ---------------------------------------------------------------- the driver


@dataclass(frozen=True)
class Sample:
    gib_s: float
    cpu_per_gib: float


def build_helpers(build: Path) -> Path:
    """Compile the writer/drainer program with gcc and the 32 KiB C loop with cffi into ``build``."""
    from cffi import FFI

    source = build / "pcd-bench-io.c"
    source.write_text(HELPER_C)
    helper = build / "pcd-bench-io"
    subprocess.run(["gcc", "-O2", "-Wall", "-o", str(helper), str(source)], check=True)
    ffi = FFI()
    ffi.cdef(C_LOOP_CDEF)
    ffi.set_source("_pcd_bench_rw32k", C_LOOP_SRC, extra_compile_args=["-O2"])
    ffi.compile(tmpdir=str(build), verbose=False)
    return helper


def run_once(
    variant: str,
    dest: str,
    contended: bool,
    size: int,
    build: Path,
    helper: Path,
    workdir: Path,
    prefault_file: bool = True,
) -> Sample:
    fifo = workdir / "fifo"
    target = workdir / "sink.bin"
    os.mkfifo(fifo, 0o600)
    spec: dict[str, object] = {
        "variant": variant,
        "dest": dest,
        "contended": contended,
        "fifo": str(fifo),
        "file": str(target),
        "build": str(build),
        "size": size,
        "prefault": prefault_file,
    }
    pass_fds: tuple[int, ...] = ()
    consumer = None
    pipe_r = pipe_w = -1
    try:
        if dest == "pipe":
            pipe_r, pipe_w = os.pipe2(os.O_CLOEXEC)
            consumer = subprocess.Popen(
                [str(helper), "drain"], stdin=pipe_r, stdout=subprocess.PIPE, text=True
            )
            os.close(pipe_r)
            spec["pipe_fd"] = pipe_w
            pass_fds = (pipe_w,)
        writer = subprocess.Popen([str(helper), "write", str(fifo), str(size)])
        copier = subprocess.Popen(
            [sys.executable, __file__, "--child", json.dumps(spec)],
            pass_fds=pass_fds,
            stdout=subprocess.PIPE,
            text=True,
        )
        if pipe_w >= 0:
            os.close(pipe_w)
            pipe_w = -1
        out, _ = copier.communicate()
        if copier.returncode != 0 or writer.wait() != 0:
            raise RuntimeError(f"{variant}/{dest}: copier {copier.returncode}, writer {writer.returncode}")
        result = json.loads(out)
        if result["nbytes"] not in (-1, size):
            raise RuntimeError(f"{variant}/{dest}: copied {result['nbytes']} of {size} bytes")
        if consumer is not None:
            drained, _ = consumer.communicate()
            if consumer.returncode != 0 or int(drained) != size:
                raise RuntimeError(f"{variant}/{dest}: consumer got {drained.strip()} of {size} bytes")
        if dest in FILE_DESTS and target.stat().st_size != size:
            raise RuntimeError(f"{variant}/{dest}: file has {target.stat().st_size} of {size} bytes")
    finally:
        if pipe_w >= 0:
            os.close(pipe_w)
        fifo.unlink()
        target.unlink(missing_ok=True)
    gib = size / GIB
    return Sample(gib / result["seconds"], result["cpu"] / gib)


def report(
    samples: dict[tuple[bool, str, str], list[Sample]],
    variants: list[str],
    dests: list[str],
    modes: list[bool],
) -> None:
    """Print the median tables, native against the best baseline per sink, and the old targets."""

    def median(contended: bool, dest: str, variant: str) -> Sample | None:
        runs = samples.get((contended, dest, variant))
        if not runs:
            return None  # not measurable there (UNSUPPORTED)
        return Sample(
            statistics.median(s.gib_s for s in runs), statistics.median(s.cpu_per_gib for s in runs)
        )

    for contended in modes:
        title = "GIL contended (a pure-Python thread runs beside the copy)" if contended else "GIL free"
        print(f"\n{title}")
        print(f"{'dest':<7}{'variant':<15}{'GiB/s':>8}{'x native':>10}{'CPU s/GiB':>11}{'x native':>10}")
        for dest in dests:
            base = median(contended, dest, variants[0])
            for variant in variants:
                m = median(contended, dest, variant)
                if m is None or base is None:
                    print(f"{dest:<7}{variant:<15}{'n/a':>8}")
                    continue
                print(
                    f"{dest:<7}{variant:<15}{m.gib_s:>8.2f}{m.gib_s / base.gib_s:>10.2f}"
                    f"{m.cpu_per_gib:>11.3f}{m.cpu_per_gib / base.cpu_per_gib:>10.2f}"
                )
    baselines = [v for v in variants if v in BASELINES]
    if "native" in variants and baselines:
        print("\nnative against the best baseline per dest (" + ", ".join(baselines) + "), same run:")
        for mode in modes:
            for dest in dests:
                nat = median(mode, dest, "native")
                there = {v: m for v in baselines if (m := median(mode, dest, v)) is not None}
                if nat is None or not there:
                    continue
                fastest = max(there, key=lambda v: there[v].gib_s)
                cheapest = min(there, key=lambda v: there[v].cpu_per_gib)
                speed_x = nat.gib_s / there[fastest].gib_s
                cpu_x = nat.cpu_per_gib / there[cheapest].cpu_per_gib
                print(
                    f"  [{'MET ' if speed_x >= 1 and cpu_x <= 1 else 'MISS'}] "
                    f"{'contended' if mode else 'GIL free':<9} {dest:<6} "
                    f"throughput {speed_x:.2f}x {fastest}, CPU/GiB {cpu_x:.2f}x {cheapest}"
                )
    if "native" not in variants or "python-rw" not in variants or modes != [False, True]:
        return

    def ratios(contended: bool, field: str, other: str) -> dict[str, float]:
        out = {}
        for d in dests:
            nat, oth = median(contended, d, "native"), median(contended, d, other)
            if nat is not None and oth is not None:
                out[d] = getattr(nat, field) / getattr(oth, field)
        return out

    def line(ok: bool, text: str, values: dict[str, float]) -> None:
        shown = ", ".join(f"{d} {r:.2f}x" for d, r in values.items())
        print(f"  [{'MET ' if ok else 'MISS'}] {text}: {shown}")

    print("\ntargets (same run):")
    for other in variants[1:]:
        speed = ratios(False, "gib_s", other)
        line(all(r >= 1 for r in speed.values()), f"GIL free: native throughput / {other} >= 1", speed)
    cpu = ratios(False, "cpu_per_gib", "python-rw")
    line(all(r <= 0.5 for r in cpu.values()), "GIL free: native CPU per GiB / python-rw <= 0.5", cpu)
    contended = ratios(True, "gib_s", "python-rw")
    met = all(r >= 3 for r in contended.values())
    line(met, "GIL contended: native throughput / python-rw >= 3", contended)
    print(
        "GIL contended, native pump / pure-Python loop throughput: "
        + ", ".join(f"{d} {r:.1f}x" for d, r in contended.items())
        + f" (min {min(contended.values()):.1f}x)"
    )


def parse_size(text: str) -> int:
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    text = text.strip().upper().removesuffix("IB").removesuffix("B")
    if text and text[-1] in units:
        return int(float(text[:-1]) * units[text[-1]])
    return int(text)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=parse_size, default=GIB, help="bytes per run (default 1G)")
    parser.add_argument("--repeat", type=int, default=5, help="repetitions (default 5)")
    parser.add_argument("--dir", default=tempfile.gettempdir(), help="where the FIFO and the file sink live")
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated; also: native-rw")
    parser.add_argument(
        "--dests", default=",".join(DESTS), help="comma-separated subset of null,pipe,file,append"
    )
    parser.add_argument(
        "--no-prefault",
        action="store_true",
        help="do not touch memory before a file run (see prefault() on VMs with free page reporting)",
    )
    parser.add_argument(
        "--modes", default=",".join(MODES), help="comma-separated subset of free,contended (the GIL)"
    )
    parser.add_argument("--json", help="also write every sample (not just the medians) to this file")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(json.loads(args.child))
        return 0

    variants = args.variants.split(",")
    dests = args.dests.split(",")
    for v in variants:
        if v not in COPIERS:
            parser.error(f"unknown variant {v}")
    for m in args.modes.split(","):
        if m not in MODES:
            parser.error(f"unknown mode {m}")
    modes = [contended for name, contended in MODES.items() if name in args.modes.split(",")]
    print("machine: " + machine_line(machine(), ("cpu", "kernel", "python", "pipe-max-size")))
    print(f"size {args.size / GIB:.2f} GiB per run, {args.repeat} repetitions, medians; dir {args.dir}")
    samples: dict[tuple[bool, str, str], list[Sample]] = {}
    with tempfile.TemporaryDirectory(prefix="pcd-bench-build-") as build_dir, tempfile.TemporaryDirectory(
        prefix="pcd-bench-", dir=args.dir
    ) as work_dir:
        build, workdir = Path(build_dir), Path(work_dir)
        helper = build_helpers(build)
        for rep in range(args.repeat):
            order = variants[rep % len(variants) :] + variants[: rep % len(variants)]
            for contended in modes:
                for dest in dests:
                    for variant in order:
                        if (dest, variant) in UNSUPPORTED:
                            continue
                        sample = run_once(
                            variant, dest, contended, args.size, build, helper, workdir, not args.no_prefault
                        )
                        samples.setdefault((contended, dest, variant), []).append(sample)
            print(f"  repetition {rep + 1}/{args.repeat} done", file=sys.stderr, flush=True)

    report(samples, variants, dests, modes)
    if args.json:
        rows = [
            {"contended": c, "dest": d, "variant": v, "gib_s": x.gib_s, "cpu_s_per_gib": x.cpu_per_gib}
            for (c, d, v), runs in samples.items()
            for x in runs
        ]
        Path(args.json).write_text(json.dumps({"size": args.size, "samples": rows}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
