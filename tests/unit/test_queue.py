"""The per-key ordered dispatch queue (moby's libcontainerd/queue)."""

from __future__ import annotations

import random
import threading
import time

import pytest

from pycontainerd._queue import OrderedQueue


def test_in_order_per_key_under_concurrency():
    queue = OrderedQueue(max_workers=4)
    seen: dict[str, list[int]] = {}
    running: dict[str, int] = {}
    overlap: list[str] = []
    lock = threading.Lock()
    rng = random.Random(7)
    delays = [rng.random() / 2000 for _ in range(2000)]

    def work(key: str, n: int, delay: float) -> None:
        with lock:
            running[key] = running.get(key, 0) + 1
            if running[key] > 1:
                overlap.append(key)
        time.sleep(delay)
        with lock:
            seen.setdefault(key, []).append(n)
            running[key] -= 1

    keys = [f"c{i}" for i in range(10)]
    for n, delay in enumerate(delays):
        key = keys[n % len(keys)]
        queue.append(key, lambda k=key, n=n, d=delay: work(k, n, d))
    queue.shutdown(wait=True)
    assert not overlap, "two callbacks of one key ran at the same time"
    for i, key in enumerate(keys):
        assert seen[key] == list(range(i, len(delays), len(keys)))


def test_different_keys_run_concurrently():
    queue = OrderedQueue(max_workers=2)
    barrier = threading.Barrier(2, timeout=30)
    results: list[str] = []

    def meet(name: str) -> None:
        barrier.wait()  # only passes if both keys are being served at once
        results.append(name)

    queue.append("a", lambda: meet("a"))
    queue.append("b", lambda: meet("b"))
    queue.shutdown(wait=True)
    assert sorted(results) == ["a", "b"]


def test_failing_callback_does_not_stop_its_key(caplog):
    queue = OrderedQueue(max_workers=1)
    seen: list[int] = []

    def boom() -> None:
        raise RuntimeError("handler bug")

    queue.append("k", lambda: seen.append(1))
    queue.append("k", boom)
    queue.append("k", lambda: seen.append(2))
    queue.shutdown(wait=True)
    assert seen == [1, 2]
    assert "handler bug" in caplog.text


def test_append_from_a_callback_runs_after_it():
    queue = OrderedQueue(max_workers=2)
    seen: list[str] = []
    done = threading.Event()

    def first() -> None:
        queue.append("k", lambda: (seen.append("second"), done.set()))
        seen.append("first")

    queue.append("k", first)
    assert done.wait(30)
    queue.shutdown(wait=True)
    assert seen == ["first", "second"]


def test_append_after_shutdown_raises():
    queue = OrderedQueue(max_workers=1)
    queue.shutdown(wait=True)
    with pytest.raises(RuntimeError):
        queue.append("k", lambda: None)
