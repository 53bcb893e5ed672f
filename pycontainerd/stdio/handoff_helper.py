"""Zero-copy stdio handoff: receive a container's own stdout/stderr pipes.

containerd's runc shim can run a *logging binary* for a non-TTY process
(stdout URI ``binary:///path?k=v``; init processes and execs alike, containerd
1.6 and later). It starts the program with the read ends of the container's
stdout and stderr pipes as fds 3 and 4. pycontainerd's helper,
``pcd-handoff``, listens on a private unix socket and passes duplicates of
those read ends to the client (``SCM_RIGHTS``), which then splices straight
from the container's pipes: the shim copies nothing.

The contract a caller must know:

* Use :func:`binary_uri` as **both** ``stdout`` and ``stderr`` of
  ``CreateTaskRequest``/``ExecProcessRequest`` (the shim reads only
  ``stdout``; ``stderr`` set to the same URI mirrors containerd's ``cio.LogURI``).
  The socket path should lie in a directory only the owner can enter.
* **stdin is not connected** when the shim uses a logging binary: its
  ``binaryIO`` has no stdin and the shim skips its copy loop, so the process
  reads ``/dev/null``. A task that needs stdin must use the FIFO path.
* The helper listens once Create (or the exec's Start) has returned: the
  shim waits for its readiness, and the socket path appears only when it
  accepts connections. :func:`receive` then (for a task, before its Start)
  and keep draining: a full pipe blocks the process, and nothing is lost
  before the first read, as the pipes hold the bytes until Delete.
* The shim holds the pipes' **write ends until Delete** of that process, so a
  reader sees EOF only after ``Tasks/Delete`` (task or exec), never at exit.
  For byte-exact output: drain, wait for the exit, Delete, then drain to EOF
  (EOF then also waits for any background writer the process left behind).
  After Delete the helper is gone: receive before it.
* The helper keeps its own copies of the read ends until the shim stops it
  (on that Delete): a client may close its pipes and a new client may
  :func:`receive` again and continue where the first stopped reading. It
  also exits by itself once every writer of both pipes is gone (the shim
  closed or lost its ends), so it never outlives the shim and the process.
* Only one reader at a time: the pipes are shared file descriptions, so two
  readers would each get an arbitrary part of the stream.

.. versionadded:: 0.1
"""

from __future__ import annotations

import array
import contextlib
import errno
import fcntl
import os
import socket
import stat
import struct
import time
import urllib.parse
from types import TracebackType
from typing import Literal

from pycontainerd import _rules

__all__ = [
    "ANCILLARY_SIZE",
    "HELPER_NAME",
    "MESSAGE_SIZE",
    "PROTOCOL_VERSION",
    "HandoffError",
    "HandoffPipes",
    "HandoffProtocolError",
    "HandoffRefusedError",
    "HelperNotBuiltError",
    "absorb",
    "binary_uri",
    "check_peer",
    "connect",
    "connect_address",
    "finish_message",
    "helper_path",
    "receive",
    "wait_socket",
]

#: File name of the helper program, installed next to the native module.
HELPER_NAME = "pcd-handoff"
#: The helper's message: magic, version, flags (reserved, zero), padding.
PROTOCOL_VERSION = 1
_MAGIC = b"PCDH"
_HEADER = struct.Struct("4sBBH")
# Room for far more fds than the helper sends: surplus ones must be received
# to be closed (a truncated SCM_RIGHTS array is silently dropped by the kernel).
_MAX_FDS = 16


class HandoffError(OSError):
    """The helper could not hand the pipes over (base class)."""


class HandoffRefusedError(HandoffError):
    """The helper closed the connection without sending the pipes.

    It does so when the connecting uid is neither the owner given in
    :func:`binary_uri` nor root.
    """


class HandoffProtocolError(HandoffError):
    """The peer answered, but not with a valid pcd-handoff message."""


class HelperNotBuiltError(FileNotFoundError):
    """The ``pcd-handoff`` executable is missing (the package was not built)."""


def helper_path() -> str:
    """Absolute path of the installed ``pcd-handoff`` executable.

    Returns:
        The path, suitable for :func:`binary_uri`.

    Raises:
        HelperNotBuiltError: The executable is missing or not executable.
    """
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    path = os.path.join(package, "_native", HELPER_NAME)
    if not os.access(path, os.X_OK):
        raise HelperNotBuiltError(
            errno.ENOENT, f"{HELPER_NAME} is not built; run `pip install -e .` in the source tree", path
        )
    return path


def binary_uri(
    socket_path: str,
    *,
    owner_uid: int | None = None,
    helper: str | None = None,
    scheme: Literal["binary", "binary-v2"] = "binary",
) -> str:
    """The ``binary://`` stdio URI that makes the shim run the helper.

    The shim passes the query pairs to the program as ``key value`` words
    (``NewBinaryCmd``), so the helper sees ``socket <path> [owner_uid <uid>]``.

    Args:
        socket_path: Absolute path the helper listens on (created mode 0600;
            must not exist yet).
        owner_uid: The uid, besides root, allowed to receive the pipes, and
            owner of the socket file. Default: the helper's euid (the shim's:
            root), i.e. root only.
        helper: The executable; default :func:`helper_path`.
        scheme: ``"binary"`` (containerd 1.6+: a helper that dies before it
            is ready goes unnoticed and the process writes into closed pipes)
            or ``"binary-v2"`` (containerd 2.2+: the shim fails the create
            unless the helper wrote its readiness byte).

    Returns:
        The URI, for both the stdout and stderr fields of the request.

    Raises:
        ValueError: A path is not absolute or contains a NUL byte, or
            ``owner_uid`` or ``scheme`` is out of range.
        HelperNotBuiltError: ``helper`` is None and the helper is not built.
    """
    if scheme not in ("binary", "binary-v2"):
        raise ValueError(f"unknown logging-binary scheme: {scheme!r}")
    exe = helper_path() if helper is None else helper
    for name, value in (("helper", exe), ("socket_path", socket_path)):
        if not os.path.isabs(value) or "\0" in value:
            raise ValueError(f"{name} must be an absolute path without NUL bytes: {value!r}")
    pairs = [("socket", socket_path)]
    if owner_uid is not None:
        if not 0 <= owner_uid < 2**32 - 1:
            raise ValueError(f"owner_uid out of range: {owner_uid}")
        pairs.append(("owner_uid", str(owner_uid)))
    # Go's url.Parse percent-decodes the path and QueryUnescape's the values
    # ('+' is a space there, as quote_plus makes it).
    return scheme + "://" + urllib.parse.quote(exe, safe="/") + "?" + urllib.parse.urlencode(pairs)


class HandoffPipes:
    """The container's stdout and stderr pipe read ends, owned by the caller.

    The fds are blocking and close-on-exec, as received. They are shared
    file descriptions with the helper's copies: setting ``O_NONBLOCK`` on
    them is harmless (the helper never reads).

    Attributes:
        stdout: Read end of the container's stdout pipe (``-1`` once closed).
        stderr: Read end of the container's stderr pipe (``-1`` once closed).
        flags: The flags byte of the helper's message (reserved, 0).
        helper_pid: The helper's pid as the kernel reported it at connect
            (``SO_PEERCRED``); for diagnostics (it is not a handle).
    """

    __slots__ = ("flags", "helper_pid", "stderr", "stdout")

    def __init__(self, stdout: int, stderr: int, *, flags: int = 0, helper_pid: int = 0) -> None:
        self.stdout = stdout
        self.stderr = stderr
        self.flags = flags
        self.helper_pid = helper_pid

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` has run."""
        return self.stdout < 0 and self.stderr < 0

    def close(self) -> None:
        """Close both fds. Idempotent.

        Closing does not lose data: unread bytes stay in the pipe for the
        next :func:`receive` while the helper runs.
        """
        fds, self.stdout, self.stderr = (self.stdout, self.stderr), -1, -1
        for fd in fds:
            if fd >= 0:
                os.close(fd)

    def __enter__(self) -> HandoffPipes:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"HandoffPipes(stdout={self.stdout}, stderr={self.stderr})"


def connect(sock: socket.socket, path: str) -> None:
    """Connect a unix socket to ``path``, reaching one longer than ``sun_path`` through its directory fd.

    Args:
        sock: An ``AF_UNIX`` socket.
        path: The socket's path (absolute).

    Raises:
        OSError: From connect(2) (``ConnectionRefusedError``: nobody listens), or
            opening the directory (a symlink as its last component is refused).
    """
    address, dirfd = connect_address(path)
    try:
        sock.connect(address)
    finally:
        if dirfd >= 0:
            os.close(dirfd)


def _close_all(fds: list[int]) -> None:
    for fd in fds:
        with contextlib.suppress(OSError):
            os.close(fd)


def _is_pipe_read_end(fd: int) -> bool:
    if not stat.S_ISFIFO(os.fstat(fd).st_mode):
        return False
    return fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE == os.O_RDONLY


def receive(socket_path: str, *, timeout: float | None = 10.0) -> HandoffPipes:
    """Connect to a ``pcd-handoff`` helper and receive the container's pipes.

    May be called again after the pipes were closed (e.g. by a restarted
    client): the helper serves every permitted connection while it runs.

    Args:
        socket_path: The helper's socket, as given to :func:`binary_uri`.
        timeout: Seconds for connect plus the answer; ``None`` waits forever.

    Returns:
        The two read ends; the caller owns them (close them, or use ``with``).

    Raises:
        FileNotFoundError: No socket at ``socket_path`` (the helper is not
            running or has exited; see :func:`wait_socket`).
        ConnectionRefusedError: The socket exists but nobody listens.
        PermissionError: The socket's mode keeps this user out.
        HandoffRefusedError: The helper refused this uid.
        HandoffProtocolError: The peer is not a pcd-handoff helper of root or
            this user, or it sent something other than two pipe read ends.
        TimeoutError: No answer within ``timeout``.
    """
    fds: list[int] = []
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC) as sock:
            sock.settimeout(timeout)
            connect(sock, socket_path)
            flags, pid = _receive_message(sock, socket_path, fds)
    except TimeoutError as exc:
        _close_all(fds)
        message = f"no answer from the helper within {timeout} s"
        raise TimeoutError(errno.ETIMEDOUT, message, socket_path) from exc
    except BaseException:
        _close_all(fds)
        raise
    return HandoffPipes(fds[0], fds[1], flags=flags, helper_pid=pid)


def _receive_message(sock: socket.socket, socket_path: str, fds: list[int]) -> tuple[int, int]:
    """Read the helper's message into ``fds`` (for the caller to close on error).

    Returns:
        The message's flags and the helper's pid.
    """
    pid = check_peer(sock, socket_path)
    data = b""
    while len(data) < MESSAGE_SIZE:
        received = sock.recvmsg(MESSAGE_SIZE - len(data), ANCILLARY_SIZE, socket.MSG_CMSG_CLOEXEC)
        data = absorb(received, data, fds, socket_path)
    return finish_message(data, fds, socket_path), pid


#: Bytes of the helper's message.
MESSAGE_SIZE = _HEADER.size
#: The ancillary buffer every ``recvmsg`` of the message needs (room for surplus fds).
ANCILLARY_SIZE = socket.CMSG_SPACE(_MAX_FDS * 4)


def check_peer(sock: socket.socket, socket_path: str) -> int:
    """Accept only root or ourselves as the server; returns the helper's pid.

    Anyone able to bind in the bundle dir could pose as the helper and feed us other fds.

    Raises:
        HandoffProtocolError: Another uid serves the socket.
    """
    pid, uid, _gid = struct.unpack("3i", sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))
    if uid not in (0, os.geteuid()):
        raise HandoffProtocolError(f"{socket_path}: served by uid {uid} (pid {pid}), not root or us")
    return int(pid)


def absorb(received: tuple[bytes, list[tuple[int, int, bytes]], int, object], data: bytes, fds: list[int],
           socket_path: str) -> bytes:
    """Take one ``recvmsg`` result of the message: its fds into ``fds``, its bytes after ``data``.

    The pure half of receiving (no I/O), shared by the blocking :func:`receive` and the
    asyncio client's non-blocking one.

    Args:
        received: What ``sock.recvmsg(..., ANCILLARY_SIZE, MSG_CMSG_CLOEXEC)`` returned.
        data: The message bytes so far.
        fds: Received descriptors so far (the caller closes them on error).
        socket_path: For the messages.

    Returns:
        The message bytes so far, with these.

    Raises:
        HandoffRefusedError: The helper closed without answering.
        HandoffProtocolError: The connection closed mid-message, or the control data was truncated.
    """
    msg, ancdata, msg_flags, _addr = received
    for level, kind, payload in ancdata:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            arr = array.array("i")
            arr.frombytes(payload[: len(payload) - len(payload) % arr.itemsize])
            fds.extend(arr)
    if msg_flags & socket.MSG_CTRUNC:
        raise HandoffProtocolError(f"{socket_path}: control message truncated")
    if not msg:
        if not data and not fds:
            raise HandoffRefusedError(
                f"{socket_path}: the helper refused uid {os.geteuid()} (closed without an answer)"
            )
        raise HandoffProtocolError(f"{socket_path}: connection closed mid-message")
    return data + msg


def finish_message(data: bytes, fds: list[int], socket_path: str) -> int:
    """Check a complete message and its fds (two pipe read ends); returns its flags.

    Raises:
        HandoffProtocolError: Not a pcd-handoff message of this version, or not two pipe read ends.
    """
    magic, version, flags, _pad = _HEADER.unpack(data)
    if magic != _MAGIC or version != PROTOCOL_VERSION:
        raise HandoffProtocolError(f"{socket_path}: not a pcd-handoff v{PROTOCOL_VERSION} message: {data!r}")
    if len(fds) != 2 or not all(_is_pipe_read_end(fd) for fd in fds):
        raise HandoffProtocolError(f"{socket_path}: expected 2 pipe read ends, got {len(fds)} fds")
    for fd in fds:
        # MSG_CMSG_CLOEXEC already did it; this is the documented guarantee.
        os.set_inheritable(fd, False)
    return int(flags)


def connect_address(path: str) -> tuple[str, int]:
    """The address to ``connect()`` to for ``path``, and a directory fd to close after connecting (or -1).

    A path longer than ``sun_path`` is reached through ``/proc/self/fd/<dir fd>/<name>``.

    Raises:
        OSError: The directory cannot be opened (a symlink as its last component is refused).
    """
    if _rules.socket_path_fits(path):
        return path, -1
    directory, base = os.path.split(path)
    dirfd = os.open(directory, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    return f"/proc/self/fd/{dirfd}/{base}", dirfd


def wait_socket(path: str, timeout: float, *, interval: float = 0.005) -> None:
    """Wait until a unix socket file exists at ``path``.

    Useful when the helper may still be starting (the shim itself waits for
    its readiness, so after a successful Create/Start no wait is needed).

    Args:
        path: The socket path.
        timeout: Seconds to wait.
        interval: First poll interval; it doubles up to 0.1 s.

    Raises:
        TimeoutError: No socket appeared in time.
        FileExistsError: ``path`` exists but is not a socket.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            pass
        else:
            if stat.S_ISSOCK(st.st_mode):
                return
            raise FileExistsError(errno.EEXIST, "not a socket", path)
        now = time.monotonic()
        if now >= deadline:
            raise TimeoutError(f"no socket at {path} after {timeout} s")
        time.sleep(min(interval, deadline - now))
        interval = min(interval * 2, 0.1)
