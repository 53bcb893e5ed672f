"""The shared native pump pool (csrc/pump_pool.c via pycontainerd.stdio.pool), on real descriptors."""

from __future__ import annotations

import errno
import os
import select
import threading

import pytest

from pycontainerd.stdio.pool import PoolJob, PumpPool


@pytest.fixture
def pool():
    p = PumpPool(2)
    yield p
    p.close()


def _wait(pool: PumpPool, jobs: list[PoolJob]) -> None:
    while not all(job.finished for job in jobs):
        ready, _, _ = select.select(pool.notify_fds, [], [], 30)
        assert ready, "the pool reported nothing within 30 s"
        pool.reap()


def _writer(fd: int, data: bytes) -> threading.Thread:
    def run() -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.close(fd)

    thread = threading.Thread(target=run)
    thread.start()
    return thread


@pytest.mark.parametrize("size", [0, 1, (1 << 16) - 1, 1 << 16, (1 << 20) + 1])
def test_many_jobs_byte_exact(pool, size):
    done: list[PoolJob] = []
    jobs, sinks, writers = [], [], []
    for i in range(20):
        r, w = os.pipe()
        out = os.memfd_create("out")
        data = os.urandom(size + i)
        writers.append(_writer(w, data))
        jobs.append(pool.submit([(r, out)], done.append))
        sinks.append((r, out, data))
    _wait(pool, jobs)
    for thread in writers:
        thread.join()
    assert sorted(j.id for j in done) == sorted(j.id for j in jobs)
    for job, (r, out, data) in zip(jobs, sinks, strict=True):
        assert job.results[0].nbytes == len(data)
        assert not job.cancelled
        assert os.pread(out, len(data) + 1, 0) == data
        os.close(r)
        os.close(out)


def test_two_streams_one_job(pool):
    (r1, w1), (r2, w2) = os.pipe(), os.pipe()
    out, err = os.memfd_create("o"), os.memfd_create("e")
    threads = [_writer(w1, b"out" * 50000), _writer(w2, b"err" * 7)]
    job = pool.submit([(r1, out), (r2, err)], lambda j: None)
    _wait(pool, [job])
    for t in threads:
        t.join()
    assert [r.nbytes for r in job.results] == [150000, 21]
    assert os.pread(err, 100, 0) == b"err" * 7
    for fd in (r1, r2, out, err):
        os.close(fd)


def test_cancel_reports_cancelled_and_counts(pool):
    r, w = os.pipe()
    out = os.memfd_create("o")
    os.write(w, b"before")
    job = pool.submit([(r, out)], lambda j: None)
    pool.cancel(job)
    _wait(pool, [job])
    assert job.cancelled
    (result,) = job.results
    assert result.cancelled
    assert result.nbytes == os.fstat(out).st_size  # exact: what reached the sink
    for fd in (r, w, out):
        os.close(fd)


def test_drain_ends_without_eof(pool):
    r, w = os.pipe()  # w stays open: no EOF, as with the handoff's pipes
    out = os.memfd_create("o")
    os.write(w, b"held open")
    job = pool.submit([(r, out)], lambda j: None)
    pool.drain(job)
    _wait(pool, [job])
    assert not job.cancelled
    assert job.results[0].nbytes == 9
    assert os.pread(out, 20, 0) == b"held open"
    for fd in (r, w, out):
        os.close(fd)


def test_broken_sink_discards_and_reports(pool):
    r, w = os.pipe()
    pr, pw = os.pipe()
    os.close(pr)
    os.write(w, b"x" * 1000)
    os.close(w)
    job = pool.submit([(r, pw)], lambda j: None)
    _wait(pool, [job])
    (result,) = job.results
    assert isinstance(result.error, BrokenPipeError)
    assert result.dropped == 1000
    for fd in (r, pw):
        os.close(fd)


def test_fifo_read_end_before_writer_is_not_eof(pool, tmp_path):
    path = tmp_path / "fifo"
    os.mkfifo(path)
    r = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    out = os.memfd_create("o")
    job = pool.submit([(r, out)], lambda j: None)
    # No writer yet: the job must still be running after another job completes.
    other_r, other_w = os.pipe()
    os.close(other_w)
    other = pool.submit([(other_r, out)], lambda j: None)
    _wait(pool, [other])
    assert not job.finished
    w = os.open(path, os.O_WRONLY)
    os.write(w, b"late")
    os.close(w)
    _wait(pool, [job])
    assert os.pread(out, 10, 0) == b"late"
    for fd in (r, other_r, out):
        os.close(fd)


def test_bad_descriptor_fails_only_its_job(pool):
    r, w = os.pipe()
    os.close(w)
    bad = pool.submit([(r, 999_999)], lambda j: None)
    _wait(pool, [bad])
    assert bad.results[0].error is not None
    assert bad.results[0].error.errno == errno.EBADF
    os.close(r)


def test_threads_are_fixed(pool):
    before = threading.active_count()
    fds = []
    jobs = []
    for _ in range(100):
        r, w = os.pipe()
        fds += [r, w]
        jobs.append(pool.submit([(r, w)], lambda j: None))
    assert threading.active_count() == before
    for job in jobs:
        pool.cancel(job)
    _wait(pool, jobs)
    for fd in fds:
        os.close(fd)


def test_close_cancels_running_jobs():
    pool = PumpPool(1)
    r, w = os.pipe()
    job = pool.submit([(r, w)], lambda j: None)
    pool.close()
    assert job.finished
    assert job.cancelled
    with pytest.raises(OSError, match="closed") as info:
        pool.submit([(r, w)], lambda j: None)
    assert info.value.errno == errno.ESHUTDOWN
    os.close(r)
    os.close(w)
