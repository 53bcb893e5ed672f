"""Container stdout throughput: pcd-handoff + native splice pump vs plain ``ctr run``.

Each round runs ``dd if=/dev/zero bs=1M count=N`` in a busybox container
(``ctr run --rm --rootfs``) twice, alternating the order:

* ``ctr``: ctr's own FIFO stdio, its stdout redirected to /dev/null (the shim
  copies the container's pipe into the FIFO, ctr copies the FIFO);
* ``handoff``: ``--log-uri binary://.../pcd-handoff``; this process receives
  the container's pipes and the native pump splices them into /dev/null.

Wall time covers the whole ``ctr run`` (create, start, exit, delete) and, for
handoff, the drain to EOF. Client CPU is user+system time of ctr plus, for
handoff, of this process during the run. Medians over the rounds.

Runs against a private containerd it starts (own root/state/sockets under a
temp dir, stopped with every shim it started), or ``--address`` (never the
system daemon unless named explicitly). Needs root.

    python benchmarks/handoff_vs_ctr.py [--gib 2] [--rounds 5] [--address SOCK]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

from pycontainerd import handoff
from pycontainerd.pump import copy_streams


def start_containerd(base: Path) -> tuple[subprocess.Popen[bytes], str]:
    address = str(base / "c.sock")
    config = base / "config.toml"
    config.write_text(
        "version = 2\n"
        f'root = "{base}/root"\nstate = "{base}/state"\n'
        'disabled_plugins = ["io.containerd.grpc.v1.cri"]\n'
        f'[grpc]\n  address = "{address}"\n[ttrpc]\n  address = "{address}.ttrpc"\n'
        f'[debug]\n  address = "{base}/debug.sock"\n'
        f'[plugins."io.containerd.internal.v1.opt"]\n  path = "{base}/opt"\n'
    )
    with open(base / "containerd.log", "wb") as log:
        proc = subprocess.Popen(["containerd", "--config", str(config)], stdout=log, stderr=log)
    while subprocess.run(["ctr", "--address", address, "version"], capture_output=True).returncode:
        if proc.poll() is not None:
            sys.exit("containerd failed to start; see " + str(base / "containerd.log"))
        time.sleep(0.05)
    return proc, address


def shim_pids(address: str) -> list[int]:
    pids = []
    for entry in filter(str.isdigit, os.listdir("/proc")):
        with contextlib.suppress(OSError):
            argv = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
            if b"containerd-shim" in argv[0] and address.encode() in argv:
                pids.append(int(entry))
    return pids


def cpu_self() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def run_ctr(argv: list[str]) -> tuple[int, float]:
    """Run ctr with stdout to /dev/null; return (exit code, its CPU seconds)."""
    with open(os.devnull, "wb") as null:
        proc = subprocess.Popen(argv, stdout=null, stderr=subprocess.PIPE)
        assert proc.stderr is not None
        err = proc.stderr.read()
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        sys.exit(f"ctr failed: {err.decode(errors='replace')}")
    return proc.returncode, usage.ru_utime + usage.ru_stime


def one_ctr(base_argv: list[str], rootfs: str, count: int) -> tuple[float, float]:
    t0 = time.perf_counter()
    _, cpu = run_ctr([*base_argv, "run", "--rm", "--rootfs", rootfs, "bench-ctr",
                      "/bin/dd", "if=/dev/zero", "bs=1M", f"count={count}"])  # fmt: skip
    return time.perf_counter() - t0, cpu


def one_handoff(base_argv: list[str], rootfs: str, count: int, io_dir: Path) -> tuple[float, float]:
    sock = str(io_dir / "h.sock")
    null = os.open(os.devnull, os.O_WRONLY | os.O_CLOEXEC)
    result: dict[str, object] = {}

    def drain() -> None:
        handoff.wait_socket(sock, 60)
        with handoff.receive(sock) as pipes:
            result["copied"] = copy_streams([(pipes.stdout, null), (pipes.stderr, null)])

    cpu0 = cpu_self()
    t0 = time.perf_counter()
    reader = threading.Thread(target=drain)
    reader.start()
    uri = handoff.binary_uri(sock)
    _, ctr_cpu = run_ctr([*base_argv, "run", "--rm", "--log-uri", uri, "--rootfs", rootfs,
                          "bench-handoff", "/bin/dd", "if=/dev/zero", "bs=1M", f"count={count}"])  # fmt: skip
    reader.join()
    wall = time.perf_counter() - t0
    cpu = cpu_self() - cpu0 + ctr_cpu
    os.close(null)
    copied = result["copied"]
    assert isinstance(copied, list)
    assert copied[0].nbytes == count << 20, copied
    return wall, cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gib", type=float, default=2.0)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--address", help="an existing containerd socket (default: start a private one)")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("needs root")
    count = int(args.gib * 1024)
    gib = count / 1024

    base = Path(tempfile.mkdtemp(prefix="pcd-bench-", dir="/tmp"))
    daemon = None
    try:
        if args.address:
            address = args.address
        else:
            daemon, address = start_containerd(base)
        rootfs = base / "rootfs"
        (rootfs / "bin").mkdir(parents=True)
        shutil.copy2(shutil.which("busybox") or "/bin/busybox", rootfs / "bin" / "busybox")
        (rootfs / "bin" / "dd").symlink_to("busybox")
        io_dir = base / "io"
        io_dir.mkdir(mode=0o700)
        base_argv = ["ctr", "--address", address, "--namespace", f"pcd-bench-{uuid.uuid4().hex[:8]}"]

        rows: dict[str, list[tuple[float, float]]] = {"ctr": [], "handoff": []}
        one_handoff(base_argv, str(rootfs), 64, io_dir)  # warm-up: page cache, shim binary
        for i in range(args.rounds):
            order = ["ctr", "handoff"] if i % 2 == 0 else ["handoff", "ctr"]
            for name in order:
                if name == "ctr":
                    rows[name].append(one_ctr(base_argv, str(rootfs), count))
                else:
                    rows[name].append(one_handoff(base_argv, str(rootfs), count, io_dir))
                wall, cpu = rows[name][-1]
                print(f"  round {i + 1} {name:8s} {wall:7.3f} s  {gib / wall:6.2f} GiB/s  cpu {cpu:6.3f} s",
                      flush=True)  # fmt: skip

        med = {}
        for k, v in rows.items():
            med[k] = (statistics.median(w for w, _ in v), statistics.median(c for _, c in v))
        print(f"\ncontainer dd {gib:g} GiB -> stdout -> /dev/null, median of {args.rounds} (alternating)")
        print(f"{'mode':10s} {'wall s':>8s} {'GiB/s':>8s} {'client CPU s/GiB':>18s}")
        for name, (wall, cpu) in med.items():
            print(f"{name:10s} {wall:8.3f} {gib / wall:8.2f} {cpu / gib:18.3f}")
        ratio = med["ctr"][0] / med["handoff"][0]
        cpu_ratio = med["handoff"][1] / med["ctr"][1] if med["ctr"][1] else float("nan")
        print(f"\nhandoff speed-up vs ctr: {ratio:.2f}x   client CPU handoff/ctr: {cpu_ratio:.3f}")
    finally:
        if "base_argv" in locals():
            subprocess.run([*base_argv, "namespaces", "rm", base_argv[-1]], capture_output=True)
        if daemon is not None:
            shims = shim_pids(address)
            daemon.send_signal(signal.SIGTERM)
            try:
                daemon.wait(30)
            except subprocess.TimeoutExpired:
                daemon.kill()
                daemon.wait()
            for pid in shims + shim_pids(address):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        subprocess.run(["umount", "-R", str(base / "state")], capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
