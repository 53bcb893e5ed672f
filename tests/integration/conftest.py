"""Fixtures for tests against a real containerd (and runc).

By default a private containerd runs for the whole session (a
:class:`~pycontainerd.daemon.PrivateContainerd` under a temporary directory,
closed at the end). ``--containerd-address PATH`` or
``PYCONTAINERD_TEST_ADDRESS=PATH`` use an external daemon instead; then only
the per-test namespaces are created and removed, nothing else is touched.

Integration tests are skipped, with the reason, only when they cannot run
here: not root, or no containerd binary. Any other failure to bring up the
daemon is an error, never a silent skip.

Leak guards: after each test its namespace is emptied and deleted, and no shim
of that namespace may be left; after the session no shim of the private
daemon may be left.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from _session_report import CONTAINERD_LABEL

from pycontainerd import testing

if TYPE_CHECKING:
    from pycontainerd.daemon import PrivateContainerd

_HERE = Path(__file__).parent
_ENV_ADDRESS = "PYCONTAINERD_TEST_ADDRESS"
# Which containerd the private daemon runs: "system" (default: the containerd on PATH),
# a version ("1.6", "1.7", "2", "2.1": the system's when it matches, else one fetched by
# scripts/fetch-containerd), or a path to a containerd binary. A requested version that
# is missing is an error, not a skip.
_ENV_CONTAINERD = "PYCONTAINERD_TEST_CONTAINERD"
# The default deadline of one `pycontainerd` command run by the `cli` fixture.
_CLI_TIMEOUT = 60
# Shims exit shortly after their last task is deleted; this only bounds a hang.
_SHIM_EXIT_DEADLINE = 30.0


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if _HERE in item.path.parents:
            item.add_marker(pytest.mark.integration)


@dataclass(frozen=True)
class ExternalContainerd:
    """A daemon we did not start: only its address is ours to use."""

    address: str


def _external_address(config: pytest.Config) -> str | None:
    try:
        option = config.getoption("--containerd-address")
    except ValueError:  # the option is registered only when this conftest loads at start-up
        option = None
    return option or os.environ.get(_ENV_ADDRESS) or None


def _wait_no_shims(address: str, namespace: str | None) -> list[int]:
    deadline = time.monotonic() + _SHIM_EXIT_DEADLINE
    while True:
        left = testing.find_shims(address, namespace)
        if not left or time.monotonic() >= deadline:
            return left
        time.sleep(0.05)


@pytest.fixture(scope="session")
def containerd_daemon(request: pytest.FixtureRequest) -> Iterator[PrivateContainerd | ExternalContainerd]:
    """The session's containerd: a private daemon, or the external one named by the option/env."""
    external = _external_address(request.config)
    if external:
        request.config.stash[CONTAINERD_LABEL] = f"external containerd at {external}"
        yield ExternalContainerd(os.path.abspath(external))
        return
    if os.geteuid() != 0:
        pytest.skip("integration tests need root (containerd and runc run as root)")
    wanted = os.environ.get(_ENV_CONTAINERD, "system")
    if wanted in ("", "system"):
        if shutil.which("containerd") is None:
            pytest.skip("integration tests need the containerd binary (Debian: apt-get install containerd)")
        daemon = testing.PrivateContainerd()
    elif os.sep in wanted:
        daemon = testing.PrivateContainerd(binary=wanted)
    else:
        daemon = testing.PrivateContainerd(version=wanted)
    try:
        daemon.start()
    except BaseException:
        daemon.close()
        raise
    request.config.stash[CONTAINERD_LABEL] = "containerd " + ".".join(map(str, daemon.version))
    yield daemon
    address = daemon.address
    daemon.close()
    leaked = _wait_no_shims(address, None)
    assert not leaked, f"shims of the private containerd outlived the session: {leaked}"
    assert not os.path.exists(daemon.base_dir), f"{daemon.base_dir} was not removed"


@pytest.fixture
def private_daemon(
    containerd_daemon: PrivateContainerd | ExternalContainerd,
) -> PrivateContainerd:
    """The session's daemon when it is a private one (tests that stop/kill/inspect it); skip otherwise."""
    if isinstance(containerd_daemon, ExternalContainerd):
        pytest.skip("needs the private test daemon, not an external one")
    return containerd_daemon


@pytest.fixture(scope="session")
def containerd_address(containerd_daemon: PrivateContainerd | ExternalContainerd) -> str:
    """The gRPC socket path of the session's containerd."""
    return containerd_daemon.address


@pytest.fixture
def namespace(containerd_address: str) -> Iterator[str]:
    """A fresh containerd namespace name; everything in it is removed after the test."""
    name = f"pcd-test-{uuid.uuid4().hex[:8]}"
    yield name
    # Errors are swallowed: a test that already cleaned up, or a daemon it killed,
    # must not turn into a teardown error here. A leaked shim is a real failure.
    testing.purge_namespace(containerd_address, name)
    # Bundle dirs (FIFOs, handoff sockets) of containers a failing test did not delete.
    from pycontainerd.container import default_state_dir

    shutil.rmtree(os.path.join(default_state_dir(), name), ignore_errors=True)
    leaked = _wait_no_shims(containerd_address, name)
    assert not leaked, f"shims of namespace {name} outlived the test: {leaked}"
    # runc's /run/containerd/runc/<namespace> (and the namespace's parent cgroups) empty
    # only once the shims are gone; the purge above cannot wait for that, nor can it
    # remove them when the namespace itself outlived a killed daemon.
    from pycontainerd.daemon._purge import remove_namespace_dirs

    remove_namespace_dirs(name)


@pytest.fixture
def client(containerd_address: str, namespace: str) -> Iterator[Any]:
    """A ``pycontainerd.Client`` on the test's namespace, closed after the test."""
    # Imported here so the daemon fixtures work before the client layer exists.
    from pycontainerd.client import Client

    with Client(containerd_address, namespace=namespace) as c:
        yield c


@pytest.fixture
def cli(containerd_address: str, namespace: str) -> Any:
    """``cli(*args, input=None)`` runs ``python -m pycontainerd --address A --namespace N *args``."""

    def run(
        *args: str,
        input: bytes | None = None,
        env: dict[str, str] | None = None,
        timeout: float = _CLI_TIMEOUT,
    ) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            [
                sys.executable,
                "-m",
                "pycontainerd",
                "--address",
                containerd_address,
                "--namespace",
                namespace,
                *args,
            ],
            input=input,
            capture_output=True,
            timeout=timeout,
            env=env,
            stdin=None if input is not None else subprocess.DEVNULL,
        )

    return run


@pytest.fixture
def ctr(
    containerd_daemon: PrivateContainerd | ExternalContainerd, containerd_address: str, namespace: str
) -> Any:
    """``ctr(*args, namespace=...)``: the daemon's own ``ctr`` (the test's namespace by default).

    Returns its stdout; a non-zero exit fails the test with its stderr. ``ctr run`` gets
    the private daemon's runc root.
    """
    binary = getattr(containerd_daemon, "ctr", "ctr")
    runc_root = getattr(containerd_daemon, "runc_root", None)

    def run(*args: str, namespace: str = namespace) -> str:
        argv = [binary, "--address", containerd_address, "--namespace", namespace]
        if args[0] == "run" and runc_root:
            args = ("run", "--runc-root", runc_root, *args[1:])
        done = subprocess.run([*argv, *args], capture_output=True, text=True, timeout=300, check=False)
        assert done.returncode == 0, f"ctr {' '.join(args)}: {done.stderr}"
        return done.stdout

    return run


@pytest.fixture
def other_namespace(containerd_address: str) -> Iterator[str]:
    """A second namespace name (for ``ctr`` or a client view), emptied and deleted after the test."""
    name = f"pcd-test-{uuid.uuid4().hex[:8]}"
    yield name
    testing.purge_namespace(containerd_address, name)


@pytest.fixture(scope="session")
def rootfs(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A busybox root filesystem directory, shared by the session (do not modify it)."""
    return testing.busybox_rootfs(tmp_path_factory.mktemp("busybox") / "rootfs")


@pytest.fixture
def aio_client_factory(containerd_address: str, namespace: str) -> Any:
    """Makes a ``pycontainerd.aio.Client`` on the test's namespace (in the test's own event loop)."""
    from pycontainerd import aio

    def make() -> Any:
        return aio.Client(containerd_address, namespace=namespace)

    return make
