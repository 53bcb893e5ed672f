"""What the benchmark scripts share: a description of the machine a run was measured on.

The scripts are run as ``python benchmarks/<name>.py``, so this module is importable
as ``_common`` from each of them.
"""

from __future__ import annotations

import contextlib
import os
import platform
import subprocess
from pathlib import Path


def first_line(argv: list[str]) -> str:
    """The first line a command prints (a version string), or ``"?"``."""
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False).stdout
        return out.splitlines()[0].strip()
    except (OSError, IndexError, subprocess.SubprocessError):
        return "?"


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo."""
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return "?"


def machine(containerd: str = "containerd") -> dict[str, str]:
    """Everything a result table should say about where it was measured.

    Args:
        containerd: The containerd binary the run used (its ``--version`` is reported).
    """
    pipe_max = "?"
    with contextlib.suppress(OSError):
        pipe_max = Path("/proc/sys/fs/pipe-max-size").read_text().strip()
    import pycontainerd

    return {
        "cpu": f"{cpu_model()}, {os.cpu_count()} CPUs",
        "memory": f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB",
        "kernel": platform.release(),
        "os": first_line(["sh", "-c", ". /etc/os-release && echo $PRETTY_NAME"]),
        "cgroup": "v2" if os.path.exists("/sys/fs/cgroup/cgroup.controllers") else "v1",
        "containerd": first_line([containerd, "--version"]),
        "runc": first_line(["runc", "--version"]),
        "python": platform.python_version(),
        "pycontainerd": pycontainerd.__version__,
        "pipe-max-size": pipe_max,
    }


def machine_line(info: dict[str, str], keys: tuple[str, ...]) -> str:
    """One line of ``key: value`` pairs from :func:`machine`, in the order of ``keys``."""
    return ", ".join(f"{key} {info[key]}" for key in keys)
