"""pytest-benchmark: the native stdio pump against the stdlib ways to copy a FIFO.

Run with ``python -m pytest benchmarks/test_pump_bench.py --benchmark-only
--benchmark-group-by=group,param:size``. Group ``stdio-copy``: a FIFO fed by a
separate writer process (vmsplice from a constant buffer, so the writer is
cheap) copied to ``/dev/null`` by

* ``native``: :func:`pycontainerd.stdio.pump.copy`;
* ``os-splice``: a Python ``os.splice`` loop (1 MiB per call);
* ``copyfileobj``: :func:`shutil.copyfileobj` between buffered file objects,

parametrized over payload sizes (up to 64 KiB the writer finishes before the
round starts, so the round times draining a full FIFO; larger payloads
stream while the copy runs). Every round gets a fresh FIFO and writer
through ``benchmark.pedantic(setup=...)``; the writer's exit status is
checked after the round. ``fifo_throughput.py`` has the full comparison
(more sinks, CPU per GiB, GIL contention).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import fifo_throughput
import pytest

from pycontainerd.stdio.pump import copy

SIZES = {"64K": 64 << 10, "1M": 1 << 20, "16M": 16 << 20, "256M": 256 << 20}


@pytest.fixture(scope="module")
def helper() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="pcd-bench-build-") as build:
        yield fifo_throughput.build_helpers(Path(build))


def splice_loop(src: int, dst: int) -> int:
    total = 0
    while n := os.splice(src, dst, 1 << 20):
        total += n
    return total


def copyfileobj(src: int, dst: int) -> int:
    with open(src, "rb", closefd=False) as fsrc, open(dst, "wb", closefd=False) as fdst:
        shutil.copyfileobj(fsrc, fdst)
    return -1


VARIANTS: dict[str, Callable[[int, int], int]] = {
    "native": copy,
    "os-splice": splice_loop,
    "copyfileobj": copyfileobj,
}


@pytest.mark.benchmark(group="stdio-copy")
@pytest.mark.parametrize("size", list(SIZES))
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_fifo_to_devnull(benchmark: Any, helper: Path, tmp_path: Path, variant: str, size: str) -> None:
    nbytes = SIZES[size]
    func = VARIANTS[variant]
    fifo = tmp_path / "fifo"
    sink = os.open(os.devnull, os.O_WRONLY | os.O_CLOEXEC)
    rounds: list[tuple[subprocess.Popen[bytes], int]] = []

    def finish_round() -> None:
        while rounds:
            writer, src = rounds.pop()
            os.close(src)
            assert writer.wait() == 0

    def setup() -> tuple[tuple[int, int], dict[str, Any]]:
        finish_round()
        fifo.unlink(missing_ok=True)
        os.mkfifo(fifo, 0o600)
        writer = subprocess.Popen([str(helper), "write", str(fifo), str(nbytes)])
        src = os.open(fifo, os.O_RDONLY | os.O_CLOEXEC)  # meets the writer's open
        rounds.append((writer, src))
        if nbytes <= 64 << 10:
            # All of it fits in the FIFO: time the copy, not the writer's start-up and exit.
            assert writer.wait() == 0
        return (src, sink), {}

    try:
        moved = benchmark.pedantic(func, setup=setup, rounds=max(3, min(50, (256 << 20) // nbytes)))
        assert moved in (-1, nbytes)
        finish_round()
    finally:
        for writer, src in rounds:
            writer.kill()
            writer.wait()
            os.close(src)
        os.close(sink)
