"""The rules of the outside world that input is checked against, each written once.

containerd's identifier grammar (``pkg/identifiers``), the kernel's limits on a unix socket
path (``sun_path``), a file name and a path, Linux signal numbers and names, and the sizes
containerd and the shim accept. Every other module takes them from here, so a rule cannot
drift between the client, the daemon helpers and the command line.
"""

from __future__ import annotations

import os
import re
import signal as _signal
from typing import Final

__all__ = [
    "HOST_NAME_MAX",
    "IDENTIFIER",
    "MAX_IDENTIFIER_LENGTH",
    "MAX_LABEL_SIZE",
    "MAX_SIGNAL",
    "MAX_SOCKET_PATH",
    "MAX_TERMINAL_SIZE",
    "MAX_USER_ID",
    "NAME_MAX",
    "PATH_MAX",
    "RUNTIME_NAME",
    "identifier",
    "identifier_problem",
    "signal_number",
    "socket_path_fits",
]

# containerd pkg/identifiers: alphanumerics separated by single '.', '_' or '-'. Use it with
# fullmatch: Go's `$` ends at the end of the text, Python's also before a final newline.
IDENTIFIER: Final = re.compile(r"[A-Za-z0-9]+(?:[._-][A-Za-z0-9]+)*")
MAX_IDENTIFIER_LENGTH: Final = 76

# struct sockaddr_un's sun_path is 108 bytes, the last one the terminating NUL.
MAX_SOCKET_PATH: Final = 107
# Linux limits on one path component and on a whole path (including its NUL).
NAME_MAX: Final = 255
PATH_MAX: Final = 4096
# Linux limit on a hostname, in bytes.
HOST_NAME_MAX: Final = 64
# CVE-2024-40635: unpatched containerd overflowed uids and gids above int32 max into 0 (root).
MAX_USER_ID: Final = 2**31 - 1

# containerd's metadata store refuses a label whose key and value together exceed this.
MAX_LABEL_SIZE: Final = 4096
# containerd core/runtime/v2/shim_manager.go: io.containerd.<name>.v<N> (or an absolute path).
RUNTIME_NAME: Final = re.compile(r"io\.containerd\.[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*\.v[0-9]+")
# The shim's ResizePty takes uint32 but the pty's winsize holds 16 bits.
MAX_TERMINAL_SIZE: Final = 65535
# Linux: SIGRTMAX is 64; 0 is "check only" and never a meaningful kill.
MAX_SIGNAL: Final = 64


def identifier_problem(value: str) -> str | None:
    """Why ``value`` is not a containerd identifier (container id, exec id, namespace).

    Args:
        value: The candidate.

    Returns:
        The broken rule as a phrase ("must not be empty", ...), or ``None`` if it is valid.
    """
    if not value:
        return "must not be empty"
    if len(value) > MAX_IDENTIFIER_LENGTH:
        return f"is longer than {MAX_IDENTIFIER_LENGTH} characters"
    if not IDENTIFIER.fullmatch(value):
        return "must be alphanumerics separated by single '.', '_' or '-' (containerd's identifier rule)"
    return None


def identifier(value: object, what: str = "id") -> str:
    """Check a containerd identifier.

    Args:
        value: The candidate identifier.
        what: What it names, for the error message.

    Returns:
        The identifier unchanged.

    Raises:
        TypeError: If it is not a string.
        ValueError: If it is empty, longer than 76 characters or has characters containerd refuses.
    """
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a str, not {type(value).__name__}")
    problem = identifier_problem(value)
    if problem is not None:
        shown = f"{value[:20]!r}..." if len(value) > MAX_IDENTIFIER_LENGTH else repr(value)
        raise ValueError(f"{what} {shown} {problem}")
    return value


def socket_path_fits(path: str | bytes) -> bool:
    """Whether ``path`` fits in ``sun_path`` (at most 107 bytes), so ``bind``/``connect`` take it."""
    return len(os.fsencode(path)) <= MAX_SOCKET_PATH


def signal_number(sig: object) -> int:
    """Normalise a signal given as a number, a ``signal.Signals`` or a name.

    Args:
        sig: ``9``, ``signal.SIGKILL``, ``"9"``, ``"KILL"``, ``"SIGKILL"`` or ``"sigkill"``.

    Returns:
        The signal number, 1..64.

    Raises:
        TypeError: For other types (``bool`` included).
        ValueError: For 0, out-of-range numbers and unknown names.
    """
    if isinstance(sig, bool):
        raise TypeError("signal must be an int, a signal.Signals or a name, not bool")
    if isinstance(sig, int):
        if not 1 <= int(sig) <= MAX_SIGNAL:
            raise ValueError(f"invalid signal {int(sig)}: must be 1..{MAX_SIGNAL}")
        return int(sig)
    if isinstance(sig, str):
        text = sig.strip().upper()
        if text.isdigit():
            return signal_number(int(text))
        name = text if text.startswith("SIG") else "SIG" + text
        try:
            return int(_signal.Signals[name])
        except KeyError:
            raise ValueError(f"invalid signal {sig!r} (e.g. TERM, KILL, 9)") from None
    raise TypeError(f"signal must be an int, a signal.Signals or a name, not {type(sig).__name__}")
