"""atheris harness: the client side of pcd-handoff's protocol (``pycontainerd.stdio.handoff_helper.receive``).

A fake helper on a unix socket answers each connection as the input says: a
few ``sendmsg`` calls, each with some bytes and some descriptors (pipe read
ends, pipe write ends, /dev/null, a socket), then it hangs up. ``receive()``
must return exactly two pipe read ends or raise ``HandoffError``, never
anything else, and must not leak a descriptor whichever way it ends.

Input: per message, one byte (low nibble: how many bytes follow, high nibble:
how many descriptors, each named by one more byte; 15 means 20, more than the
client makes room for). Run by scripts/fuzz
(``make fuzz``).
"""

from __future__ import annotations

import array
import contextlib
import fcntl
import os
import socket
import stat
import tempfile
import threading

import atheris
from _oracle import expect, fuzz

with atheris.instrument_imports():
    from pycontainerd.stdio import handoff_helper

_MAX_MESSAGES = 6
_DIR = tempfile.mkdtemp(prefix="pcd-fuzz-handoff-client-")
_PATH = os.path.join(_DIR, "handoff.sock")
_LISTENER = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
_LISTENER.bind(_PATH)
_LISTENER.listen(1)


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def _descriptor(kind: int, mine: list[int]) -> int:
    """A descriptor of the kind the byte names; the server closes it after sending."""
    kind %= 4
    if kind in (0, 1):
        r, w = os.pipe2(os.O_CLOEXEC)
        mine += [r, w]
        return r if kind == 0 else w
    if kind == 2:
        fd = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
        mine.append(fd)
        return fd
    a, b = socket.socketpair()
    mine += [a.detach(), b.detach()]
    return mine[-2]


def _serve(data: bytes) -> None:
    conn, _ = _LISTENER.accept()
    with conn:
        pos = 0
        for _ in range(_MAX_MESSAGES):
            if pos >= len(data):
                break
            head = data[pos]
            pos += 1
            payload = data[pos : pos + (head & 0x0F)]
            pos += len(payload)
            mine: list[int] = []
            count = head >> 4 if head >> 4 < 15 else 20
            kinds = data[pos : pos + count]
            pos += len(kinds)
            fds = [_descriptor(b, mine) for b in kinds]
            rights = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds).tobytes())] if fds else []
            try:
                if payload or fds:
                    conn.sendmsg([payload or b"\0"], rights)
            except OSError:
                break  # the client hung up: it already decided
            finally:
                for fd in mine:
                    os.close(fd)


def test_one_input(data: bytes) -> None:
    before = _open_fds()
    server = threading.Thread(target=_serve, args=(data,))
    server.start()
    try:
        try:
            # No deadline: the fake helper always answers or hangs up, and a client that
            # waits anyway is a hang, which libFuzzer reports after -timeout.
            pipes = handoff_helper.receive(_PATH, timeout=None)
        except handoff_helper.HandoffError:
            return
        with pipes:
            for fd in (pipes.stdout, pipes.stderr):
                expect(stat.S_ISFIFO(os.fstat(fd).st_mode), f"fd {fd} is not a pipe")
                mode = fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE
                expect(mode == os.O_RDONLY, f"fd {fd} is not a read end")
    finally:
        server.join()
        expect(_open_fds() == before, f"descriptors: {before} before, {_open_fds()} after")


if __name__ == "__main__":
    try:
        fuzz(test_one_input)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(_PATH)
            os.rmdir(_DIR)
