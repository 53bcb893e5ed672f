"""Registries against ctr: cold pull + unpack from a loopback registry, and a blob download micro-benchmark.

Run as root: ``python benchmarks/registry_vs_ctr.py`` (``--quick``: a 128 MiB image, fewer
repetitions; ``--containerd 1.7`` for another daemon version; ``--skip-pull``: the blob
download only). A private containerd
(``PrivateContainerd``) and a private registry (``testing_registry.PrivateRegistry``: Debian's
``docker-registry``, plain HTTP on 127.0.0.1) are started and removed; the daemon's own ``ctr``
is the baseline. Nothing leaves the machine.

* **The image** is the one ``images_vs_ctr.py`` imports (the same cached OCI archive):
  ``--layers`` gzip layers, the busybox root filesystem, then layers of random, so
  incompressible, 16 MiB files, ``--size`` MiB compressed in all. Gzip rather than
  uncompressed layers because that is what registries serve; with random data gzip
  stores the bytes nearly as they are, so the compressed and uncompressed sizes match
  and the daemon's gunzip during ``Diff.Apply`` stays cheap: the pull's cost is the
  transfer, which is what this measures. Its blobs are pushed into the registry with
  plain HTTP calls (``testing_registry.push_blobs``, no pycontainerd code), and both
  tools pull that same reference.
* **pull + unpack**: ``Client.pull(ref, plain_http=True)`` against ``ctr images pull
  --plain-http ref`` (which unpacks into overlayfs too). On containerd 1.6 ``ctr``'s pull
  is client-side, as pycontainerd's is: ``ctr`` fetches the blobs itself, writes them
  through ``Content.Write`` and has the daemon apply them. The ``ctr`` of 1.7 and 2.x
  would hand the pull to the daemon's transfer service (2.x by default), so it gets
  ``--local`` there, which keeps its pull client-side and the comparison like for like.
  Cold: every repetition pulls into a fresh namespace, and afterwards the namespace is
  emptied (image, leases, snapshots, content) and a synchronous garbage collection waited
  for until the content store and the snapshotter hold nothing, so every blob is
  downloaded and every layer applied again (the registry's files stay in the page cache
  for both tools alike). ``Client.pull`` runs in a child process that first pulls a tiny
  image from the same registry (every module, thread and buffer exists then) and reports
  the wall time and the CPU time of the call (``getrusage(RUSAGE_SELF)``: all its
  threads) and its RSS growth (VmHWM after ``clear_refs``, minus VmRSS before: the peak
  during the pull). ``ctr images pull`` is timed as a whole process (its wall time, and
  its CPU time and peak RSS from ``wait4``). The two alternate, in a rotating order;
  medians.
* **blob download**: one ``--blob-size`` MiB random blob from the same registry,
  ``GET /v2/<repo>/blobs/<digest>`` read to its end and dropped: pycontainerd's urllib3
  transport read as a pull reads (``Response.stream`` of 1 MiB), the same with a
  sha256 of the bytes on the way (what a pull cost before it left the digest to the
  daemon), httpx (``Client.stream`` + ``iter_raw``; skipped
  when not installed: ``pip install httpx``, it is no dependency of pycontainerd), and
  ``curl -o /dev/null``. The Python readers run in this process on one keep-alive
  connection each (a warm-up download first), timed per download, CPU from
  ``getrusage(RUSAGE_THREAD)`` (they read in the calling thread); curl as a whole
  process (``wait4``). Every download's byte count is checked. Alternating; medians.

Writes a markdown table (``--out``, default ``benchmarks/results/registry.md``) and a chart
beside it (``registry.png``: times better than ctr or curl, the issue's targets as ticks).
``--json`` prints every sample and the ratios as JSON instead of the table.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from _common import machine, machine_line
from images_vs_ctr import build_archive, make_cold, spawn_wait

MIB = 1 << 20
REPOSITORY = "pcd/bench"
SMALL_REPOSITORY = "pcd/bench-small"
BLOB_REPOSITORY = "pcd/blob"
# What a pull reads per call (pycontainerd.registry.fetch reads 1 MiB).
READ_SIZE = 1 << 20
# The targets (ratios in the same run).
THROUGHPUT_TARGET = 1.3  # at least, vs ctr
CPU_TARGET = 0.5  # at most, vs ctr
RSS_TARGET_MIB = 64  # less than
CURL_TARGET = 0.8  # at least, blob throughput vs curl


def _status_bytes(field_name: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field_name + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"{field_name} not in /proc/self/status")


def _cpu(who: int = resource.RUSAGE_SELF) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def _archive_image(archive: Path) -> tuple[dict[str, bytes], tuple[str, bytes]]:
    """The blobs (config and layers) and the manifest ``(media type, bytes)`` of the archive's image."""
    with tarfile.open(archive) as tar:

        def member(name: str) -> bytes:
            f = tar.extractfile(name)
            if f is None:
                raise RuntimeError(f"{archive}: no {name}")
            return f.read()

        entry = json.loads(member("index.json"))["manifests"][0]
        data = member("blobs/sha256/" + entry["digest"].split(":", 1)[1])
        manifest = json.loads(data)
        blobs = {}
        for desc in [manifest["config"], *manifest["layers"]]:
            blobs[desc["digest"]] = member("blobs/sha256/" + desc["digest"].split(":", 1)[1])
    return blobs, (entry["mediaType"], data)


def push_images(registry: Any, archive: Path) -> tuple[str, str, int]:
    """Push the archive's image and a tiny one; their references, and the image's blob bytes."""
    from pycontainerd import testing_images as ti
    from pycontainerd import testing_registry as tr

    blobs, (media_type, manifest) = _archive_image(archive)
    size = sum(len(b) for b in blobs.values())
    tr.push_blobs(registry.url, REPOSITORY, blobs, [("1", media_type, manifest)])
    del blobs
    small = ti.build_image([ti.Layer([ti.file("x", b"x")])], cmd=["x"])
    manifest_bytes = small.blobs[small.manifest["digest"]]
    tr.push_blobs(registry.url, SMALL_REPOSITORY,
                  {d: b for d, b in small.blobs.items() if d != small.manifest["digest"]},
                  [("1", small.manifest["mediaType"], manifest_bytes)])
    return f"{registry.host}/{REPOSITORY}:1", f"{registry.host}/{SMALL_REPOSITORY}:1", size


def child_pull(args: argparse.Namespace) -> int:
    """In a fresh process: warm up, then pull the image; print wall, CPU and RSS growth as JSON."""
    from pycontainerd import Client

    with Client(args.address, namespace=args.namespace) as client:
        client.pull(args.small, plain_http=True)
        baseline = _status_bytes("VmRSS")
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # resets VmHWM to the current RSS
        if args.profile:
            import cProfile
            import pstats

            profiler = cProfile.Profile()
            profiler.enable()
        cpu0, t0 = _cpu(), time.perf_counter()
        client.pull(args.child_pull, plain_http=True)
        wall, cpu = time.perf_counter() - t0, _cpu() - cpu0
        growth = max(0, _status_bytes("VmHWM") - baseline)
        if args.profile:
            profiler.disable()
            pstats.Stats(profiler, stream=sys.stderr).sort_stats("tottime").print_stats(20)
    print(json.dumps({"wall": wall, "cpu": cpu, "growth": growth}))
    return 0


def _proc_cpu(pid: int | None) -> float:
    """CPU seconds (user + system) a process has used so far; 0 when it is unknown."""
    if pid is None:
        return 0.0
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def ctr_pull_argv(daemon: Any) -> list[str]:
    """``ctr images pull --plain-http``, with ``--local`` where ctr would use the transfer service."""
    argv = [daemon.ctr, "images", "pull", "--plain-http"]
    usage = subprocess.run([daemon.ctr, "images", "pull", "--help"], capture_output=True, text=True).stdout
    if "--local" in usage:
        argv.append("--local")
    return argv


def bench_pull(daemon: Any, ref: str, small: str, size: int, repeat: int,
               profile: bool) -> dict[str, list[dict[str, float]]]:
    """``repeat`` cold pulls per tool, alternating; one sample dict per pull."""
    out: dict[str, list[dict[str, float]]] = {"pycontainerd": [], "ctr": []}
    ctr = ctr_pull_argv(daemon)

    def ours(namespace: str, *extra: str) -> list[str]:
        return [sys.executable, __file__, "--address", daemon.address, "--namespace", namespace,
                "--small", small, "--child-pull", ref, *extra]

    if profile:
        # An extra pull under cProfile (its figures are not in the table: the profiler costs CPU).
        namespace = f"pcd-bench-{uuid.uuid4().hex[:8]}"
        try:
            subprocess.run(ours(namespace, "--profile"), stdout=subprocess.DEVNULL, check=True)
        finally:
            make_cold(daemon, namespace)
    for rep in range(repeat):
        order = ["pycontainerd", "ctr"] if rep % 2 == 0 else ["ctr", "pycontainerd"]
        for tool in order:
            namespace = f"pcd-bench-{uuid.uuid4().hex[:8]}"
            daemon_cpu = _proc_cpu(daemon.pid)
            try:
                if tool == "ctr":
                    argv = [ctr[0], "--address", daemon.address, "--namespace", namespace, *ctr[1:], ref]
                    wall, cpu, rss = spawn_wait(argv)
                    sample = {"wall": wall, "cpu": cpu, "peak_rss": rss}
                else:
                    done = subprocess.run(ours(namespace), stdout=subprocess.PIPE, text=True, check=True)
                    sample = json.loads(done.stdout)
                # The daemon's CPU over the whole child (ours includes its small warm-up pull).
                sample["daemon_cpu"] = _proc_cpu(daemon.pid) - daemon_cpu
            finally:
                make_cold(daemon, namespace)
            sample["mib_s"] = size / sample["wall"] / MIB
            out[tool].append(sample)
            print(f"pull {tool}: {sample['wall']:.2f} s, {sample['cpu']:.2f} CPU-s, "
                  f"daemon {sample['daemon_cpu']:.2f} CPU-s", file=sys.stderr)
    return out


def push_blob(registry: Any, size: int) -> tuple[str, str]:
    """Push ``size`` random bytes as a blob; its URL and digest."""
    from pycontainerd import testing_registry as tr

    data = os.urandom(size)
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    tr.push_blobs(registry.url, BLOB_REPOSITORY, {digest: data}, [])
    return f"{registry.url}/v2/{BLOB_REPOSITORY}/blobs/{digest}", digest


def _timed(read: Callable[[], int]) -> dict[str, float]:
    cpu0, t0 = _cpu(resource.RUSAGE_THREAD), time.perf_counter()
    got = read()
    wall, cpu = time.perf_counter() - t0, _cpu(resource.RUSAGE_THREAD) - cpu0
    return {"wall": wall, "cpu": cpu, "bytes": got}


Reader = Callable[[], dict[str, float]]


def blob_readers(url: str, digest: str) -> tuple[dict[str, Reader], list[Callable[[], None]]]:
    """The blob download variants by name, each giving one sample; and what closes them."""
    from pycontainerd.registry.transport import Transport

    transport = Transport(connections=1)

    def urllib3_read(hashing: bool) -> int:
        hasher = hashlib.sha256() if hashing else None
        got = 0
        with transport.request("GET", url) as response:
            if response.status != 200:
                raise RuntimeError(f"GET {url}: status {response.status}")
            for chunk in response.stream(READ_SIZE):
                got += len(chunk)
                if hasher is not None:
                    hasher.update(chunk)
        if hasher is not None and "sha256:" + hasher.hexdigest() != digest:
            raise RuntimeError(f"GET {url}: digest mismatch")
        return got

    def curl() -> dict[str, float]:
        wall, cpu, _ = spawn_wait(["curl", "-sSf", "-o", "/dev/null", url])
        return {"wall": wall, "cpu": cpu, "bytes": -1}

    readers: dict[str, Reader] = {
        "urllib3 (pycontainerd transport)": lambda: _timed(lambda: urllib3_read(False)),
        "urllib3 + sha256": lambda: _timed(lambda: urllib3_read(True)),
    }
    closers: list[Callable[[], None]] = [transport.close]
    try:
        import httpx
    except ImportError:
        print("httpx is not installed (pip install httpx): its row is left out", file=sys.stderr)
    else:
        session = httpx.Client(timeout=60)

        def httpx_read() -> int:
            got = 0
            with session.stream("GET", url) as response:
                if response.status_code != 200:
                    raise RuntimeError(f"GET {url}: status {response.status_code}")
                for chunk in response.iter_raw(READ_SIZE):
                    got += len(chunk)
            return got

        readers["httpx"] = lambda: _timed(httpx_read)
        closers.append(session.close)
    if shutil.which("curl"):
        readers["curl -o /dev/null"] = curl
    else:
        print("curl is not installed (apt-get install curl): its row is left out", file=sys.stderr)
    return readers, closers


def bench_blob(url: str, digest: str, size: int, repeat: int) -> dict[str, list[dict[str, float]]]:
    """``repeat`` downloads of the blob per variant, in a rotating order; one sample dict per download."""
    readers, closers = blob_readers(url, digest)
    names = list(readers)
    out: dict[str, list[dict[str, float]]] = {name: [] for name in names}
    try:
        for name in names:
            readers[name]()  # warm-up: connection, modules, the registry's file in the page cache
        for rep in range(repeat):
            shift = rep % len(names)
            for name in names[shift:] + names[:shift]:
                sample = readers[name]()
                if sample["bytes"] not in (-1, size):
                    raise RuntimeError(f"{name}: read {sample['bytes']} bytes, not {size}")
                sample["mib_s"] = size / sample["wall"] / MIB
                out[name].append(sample)
                print(f"blob {name}: {sample['mib_s']:.0f} MiB/s, {sample['cpu']:.2f} CPU-s", file=sys.stderr)
    finally:
        for close in closers:
            close()
    return out


def ratios_of(pull: dict[str, Any], blob: dict[str, Any]) -> dict[str, float]:
    """The headline ratios: ours over the baseline, medians."""

    def med(samples: list[dict[str, float]], key: str) -> float:
        return float(statistics.median(s[key] for s in samples))

    ratios = {}
    if pull["ctr"]:
        ratios["throughput"] = med(pull["ctr"], "wall") / med(pull["pycontainerd"], "wall")
        ratios["cpu"] = med(pull["pycontainerd"], "cpu") / med(pull["ctr"], "cpu")
        ratios["rss_mib"] = med(pull["pycontainerd"], "growth") / MIB
    curl = blob.get("curl -o /dev/null")
    if curl:
        for name, key in (("urllib3 (pycontainerd transport)", "urllib3_vs_curl"),
                          ("urllib3 + sha256", "urllib3_sha256_vs_curl"),
                          ("httpx", "httpx_vs_curl")):
            if blob.get(name):
                ratios[key] = med(curl, "wall") / med(blob[name], "wall")
    return ratios


def markdown(info: dict[str, str], size: int, layers: int, ctr_argv: list[str], blob_size: int,
             pull: dict[str, Any], blob: dict[str, Any], load: tuple[float, float]) -> str:
    """The results tables."""

    def med(samples: list[dict[str, float]], key: str) -> float:
        return float(statistics.median(s[key] for s in samples))

    def rep_ratio(key: str, ours_over_theirs: bool) -> float:
        pairs = zip(pull["pycontainerd"], pull["ctr"], strict=True)
        ratios = [a[key] / b[key] if ours_over_theirs else b[key] / a[key] for a, b in pairs]
        return float(statistics.median(ratios))

    ctr_cmd = " ".join(["ctr", *ctr_argv[1:]])
    lines = [
        "# Registries: pycontainerd vs ctr",
        "",
        machine_line(info, ("cpu", "memory", "kernel", "os", "cgroup", "containerd", "runc", "python"))
        + f"; registry: {info['registry']}; 1-minute load average {load[0]:.1f} before, {load[1]:.1f} after.",
    ]
    if pull["ctr"]:
        lines += [
            "",
            f"Image: {size / MIB:.0f} MiB, {layers} gzip layers (busybox, then random 16 MiB files), in a "
            f"`docker-registry` on 127.0.0.1 (plain HTTP); {len(pull['ctr'])} cold pulls + unpacks per tool, "
            f"alternating (medians). `Client.pull(ref, plain_http=True)` vs `{ctr_cmd} REF`.",
            "",
            "Throughput and CPU are also given as the median of each repetition's ratio (the two "
            "pulls of a repetition run back to back, under the same load).",
            "",
            "| pull + unpack | wall s | MiB/s | vs ctr | per rep. | client CPU-s | vs ctr | per rep. "
            "| client memory |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---|",
        ]
    for tool in ("pycontainerd", "ctr") if pull["ctr"] else ():
        wall, cpu = med(pull[tool], "wall"), med(pull[tool], "cpu")
        ours = tool == "pycontainerd"
        memory = (f"{med(pull[tool], 'growth') / MIB:.1f} MiB RSS growth" if ours
                  else f"{med(pull[tool], 'peak_rss') / MIB:.1f} MiB peak RSS (whole process)")
        wall_rep, cpu_rep = (rep_ratio("wall", False), rep_ratio("cpu", True)) if ours else (1.0, 1.0)
        vs_ctr = med(pull["ctr"], "wall") / wall
        lines.append(f"| {tool} | {wall:.2f} | {size / wall / MIB:.0f} | {vs_ctr:.2f}x "
                     f"| {wall_rep:.2f}x | {cpu:.2f} | {cpu / med(pull['ctr'], 'cpu'):.2f}x | {cpu_rep:.2f}x "
                     f"| {memory} |")
    curl = blob.get("curl -o /dev/null")
    any_samples = next(iter(blob.values()))
    lines += [
        "",
        f"Blob download: one {blob_size // MIB} MiB random blob, `GET /v2/.../blobs/<digest>` from the same "
        f"registry, {len(any_samples)} downloads per reader in a rotating order (medians); the Python "
        "readers in one process, one keep-alive connection each, 1 MiB reads; CPU of the reading thread "
        "(curl: the whole process).",
        "",
        "| blob download | wall s | MiB/s | vs curl | CPU-s | CPU-s/GiB | vs curl |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, samples in blob.items():
        wall, cpu = med(samples, "wall"), med(samples, "cpu")
        vs_wall = f"{med(curl, 'wall') / wall:.2f}x" if curl else "-"
        vs_cpu = f"{cpu / med(curl, 'cpu'):.2f}x" if curl else "-"
        lines.append(f"| {name} | {wall:.3f} | {blob_size / wall / MIB:.0f} | {vs_wall} | {cpu:.3f} "
                     f"| {cpu / (blob_size / 2**30):.3f} | {vs_cpu} |")
    lines.append("")
    return "\n".join(lines)


def write_chart(path: Path, ratios: dict[str, float]) -> None:
    """Times better than the baseline per measure, the issue's targets as ticks."""
    from e2e_chart import write_chart as chart

    bars: list[tuple[str, float | None, float | None]] = [
        ("pull+unpack: MiB/s vs ctr", ratios["throughput"], THROUGHPUT_TARGET),
        ("pull+unpack: client CPU saved vs ctr", 1 / ratios["cpu"], 1 / CPU_TARGET),
    ]
    for key, label in (("urllib3_vs_curl", "blob: urllib3 MiB/s vs curl"),
                       ("urllib3_sha256_vs_curl", "blob: urllib3+sha256 vs curl"),
                       ("httpx_vs_curl", "blob: httpx MiB/s vs curl")):
        if key in ratios:
            bars.append((label, ratios[key], CURL_TARGET))
    chart(path, bars, title="pycontainerd registry pulls: times better (tick = target)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("--size", type=int, default=512, help="compressed MiB of the generated layers")
    parser.add_argument("--layers", type=int, default=5, help="layers in all (busybox is the first)")
    parser.add_argument("--repeat", type=int, default=5, help="cold pulls per tool")
    parser.add_argument("--blob-size", type=int, default=512, help="MiB of the micro-benchmark's blob")
    parser.add_argument("--blob-repeat", type=int, default=7, help="downloads per blob reader")
    parser.add_argument("--quick", action="store_true", help="128 MiB, 2 pulls and 3 blob downloads per tool")
    parser.add_argument("--skip-pull", action="store_true", help="only the blob micro-benchmark")
    parser.add_argument("--containerd", default="system",
                        help="system, or 1.6, 1.7, 2 (see scripts/fetch-containerd)")
    parser.add_argument("--profile", action="store_true",
                        help="first an extra pull under cProfile (to stderr; not in the table)")
    parser.add_argument("--json", action="store_true",
                        help="print the samples and ratios as JSON, not the table")
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "pcd-image-bench")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "registry.md")
    parser.add_argument("--address", help=argparse.SUPPRESS)
    parser.add_argument("--namespace", help=argparse.SUPPRESS)
    parser.add_argument("--small", help=argparse.SUPPRESS)
    parser.add_argument("--child-pull", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child_pull:
        return child_pull(args)
    if args.quick:
        args.size, args.repeat, args.blob_size, args.blob_repeat = 128, 2, 128, 3
    from pycontainerd import testing, testing_registry

    args.workdir.mkdir(parents=True, exist_ok=True)
    archive = None if args.skip_pull else build_archive(args.workdir, args.size * MIB, args.layers)
    load_before = os.getloadavg()[0]
    pull: dict[str, list[dict[str, float]]] = {"pycontainerd": [], "ctr": []}
    with testing_registry.PrivateRegistry() as registry:
        url, digest = push_blob(registry, args.blob_size * MIB)
        blob = bench_blob(url, digest, args.blob_size * MIB, args.blob_repeat)
        if args.skip_pull:
            info, ctr_argv, size = machine(), ["ctr"], 0
        else:
            assert archive is not None
            ref, small, size = push_images(registry, archive)
            with testing.PrivateContainerd(version=args.containerd) as daemon:
                ctr_argv = ctr_pull_argv(daemon)
                pull = bench_pull(daemon, ref, small, size, args.repeat, args.profile)
                info = machine(daemon.binary)
        info["registry"] = _registry_version()
    load = (load_before, os.getloadavg()[0])
    text = markdown(info, size, args.layers, ctr_argv, args.blob_size * MIB, pull, blob, load)
    ratios = ratios_of(pull, blob)
    if args.json:
        every = {"machine": info, "load": load, "pull": pull, "blob": blob, "ratios": ratios}
        print(json.dumps(every, indent=1))
    else:
        print(text)
    if not args.skip_pull:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
        write_chart(args.out.with_suffix(".png"), ratios)
    print(json.dumps(ratios), file=sys.stderr)
    return 0


def _registry_version() -> str:
    from _common import first_line

    return first_line(["docker-registry", "--version"])


if __name__ == "__main__":
    raise SystemExit(main())
