#!/usr/bin/env python3
"""The README's main job, in one command (``make demo``).

1. starts the embedded containerd (``pycontainerd daemon start``), unless it already runs;
2. builds a busybox root filesystem (``pycontainerd rootfs busybox``, cached in
   ``$PYCONTAINERD_DEMO_DIR`` or ``/var/tmp/pycontainerd-demo``; rebuilding is cheap);
3. runs a container whose output streams back line by line (``pycontainerd run --rm``);
4. prints a short end-to-end comparison (``benchmarks/e2e.py``, 256 MiB: stdout →
   /dev/null through containerd, pycontainerd vs ``ctr`` vs a pure-Python copy loop, on
   the same daemon); the full benchmarks are ``make bench``;
5. stops the embedded daemon again if this script started it (one that was already
   running is left running, as found).

Idempotent: run it as often as you like; it leaves no daemon, shim or container behind
that was not there before. Needs root, containerd, runc, ctr and busybox-static
(``scripts/setup.sh`` installs them). ``--skip-bench`` stops after step 3.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NAMESPACE = "pcd-demo"


def banner(text: str) -> None:
    """Print a step heading."""
    print(f"\n\033[1m==> {text}\033[0m" if sys.stdout.isatty() else f"\n==> {text}", flush=True)


def env() -> dict[str, str]:
    """The environment for the subprocesses: this checkout first on PYTHONPATH."""
    out = dict(os.environ)
    out["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), out.get("PYTHONPATH", "")) if p)
    return out


def pcd(*args: str, capture: bool = False) -> subprocess.CompletedProcess[str]:
    """Run ``pycontainerd ARGS`` (echoing the command line)."""
    argv = [sys.executable, "-m", "pycontainerd", *args]
    print("$ " + shlex.join(["pycontainerd", *args]), flush=True)
    return subprocess.run(argv, env=env(), text=True, capture_output=capture, check=False, cwd=ROOT)


def check(result: subprocess.CompletedProcess[str], what: str) -> None:
    """Stop the demo with a message if a step failed."""
    if result.returncode != 0:
        sys.stderr.write(result.stderr or "")
        raise SystemExit(f"demo: {what} failed (exit status {result.returncode})")


def main() -> int:
    """Run the demo; see the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--skip-bench", action="store_true", help="stop after running the container")
    opts = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("demo: needs root (containerd and runc run as root); try: sudo make demo")
    demo_dir = Path(os.environ.get("PYCONTAINERD_DEMO_DIR", "/var/tmp/pycontainerd-demo"))

    banner("1. the embedded containerd")
    status = pcd("--json", "daemon", "status", capture=True)
    was_running = status.returncode == 0 and json.loads(status.stdout).get("serving", False)
    started = pcd("--json", "daemon", "start", capture=True)
    check(started, "starting the embedded daemon")
    info = json.loads(started.stdout)
    address = info["address"]
    note = " (already running)" if was_running else ""
    print(f"containerd pid {info['pid']} serving on {address}{note}")
    try:
        banner("2. a busybox root filesystem")
        built = pcd("--json", "rootfs", "busybox", str(demo_dir / "busybox"), capture=True)
        check(built, "building the rootfs")
        rootfs = json.loads(built.stdout)["rootfs"]
        print(rootfs)

        banner("3. a container whose output streams back through the native pump")
        script = (
            'echo "hello from $(hostname), pid $$ in its own namespaces"; uname -sr; '
            'for i in 1 2 3; do echo "line $i"; sleep 0.3; done; echo bye >&2; exit 3'
        )
        container_id = f"demo-{os.getpid()}"
        start = time.perf_counter()
        ran = pcd("--address", address, "--namespace", NAMESPACE, "run", "--rm", "--hostname", "demo",
                  "--rootfs", rootfs, container_id, "--", "sh", "-c", script)  # fmt: skip
        print(f"(exit status {ran.returncode}, as the container's; {time.perf_counter() - start:.2f} s)")
        if ran.returncode != 3:
            raise SystemExit("demo: the container did not run as expected")

        if opts.skip_bench:
            return 0
        banner("4. end to end through containerd: container stdout -> /dev/null (a quick comparison)")
        subprocess.run(
            [
                sys.executable,
                str(ROOT / "benchmarks" / "e2e.py"),
                "--address",
                address,
                "--sections",
                "stdout",
                "--sinks",
                "null",
                "--size",
                "256M",
                "--stream-repeat",
                "3",
                "--no-write",
                "--quiet",
                "--rootfs",
                rootfs,
            ],
            env=env(),
            check=True,
            cwd=ROOT,
        )
        print("quick and noisy by design; the full benchmarks (FIFO throughput, every sink, handoff,\n"
              "latency, per containerd version): make bench (benchmarks/README.md)")
    finally:
        if not was_running:
            banner("5. stopping the embedded containerd (this script started it)")
            check(pcd("daemon", "stop", capture=True), "stopping the embedded daemon")
            print("stopped: no daemon or shim left running")
    return 0


if __name__ == "__main__":
    sys.exit(main())
