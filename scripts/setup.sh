#!/usr/bin/env bash
# Idempotent set-up of a fresh Debian 12/13 machine for pycontainerd.
#
#  1. the Debian packages the build, the demo, the tests and the fuzzers need (only the
#     missing ones);
#  2. the project's own virtual environment, .venv/, built from $PYTHON (default: Debian's
#     /usr/bin/python3, whatever python3 comes first on PATH), because Debian's interpreter
#     refuses system-wide `pip install` (PEP 668);
#  3. `pip install -e '.[dev]'` into it (which builds the C module), redone only when the
#     build inputs change.
#
# Quiet when nothing is missing. Every Makefile target runs .venv/bin/python afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-/usr/bin/python3}
VENV=${VENV:-.venv}

# Build: compiler, libc headers, Python headers and venv (for Debian's python3), make.
# Run: containerd (+ ctr), runc, busybox-static (the test rootfs).
# ca-certificates: pip reaches the package index over TLS.
# clang: the libFuzzer harnesses (`make fuzz`) and the ASan+UBSan build (`make sanitize`).
# docker-registry, apache2-utils (htpasswd), openssl: the loopback registry of the pull/push
# tests (pycontainerd.testing_registry); each test runs its own registry process.
packages=(make gcc libc6-dev ca-certificates containerd runc busybox-static clang
    docker-registry apache2-utils openssl)
if [[ $PYTHON == /usr/bin/python3* ]]; then
    packages+=(python3 python3-dev python3-venv)
fi

updated=0
install_missing() {
    local need=() pkg
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}\n' "$pkg" 2>/dev/null | grep -q "install ok installed" || need+=("$pkg")
    done
    ((${#need[@]})) || return 0
    if ((EUID != 0)); then
        echo "setup: missing Debian packages: ${need[*]} (run as root, or apt-get install them)" >&2
        exit 1
    fi
    echo "setup: installing Debian packages: ${need[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    if ((!updated)); then
        apt-get update -qq </dev/null >/dev/null
        updated=1
    fi
    apt-get install -y -qq --no-install-recommends "${need[@]}" </dev/null >/dev/null
}
install_missing "${packages[@]}"
# The package starts a system-wide registry on :5000 where an init system runs; the tests
# run their own on free loopback ports, so keep the system one stopped and disabled.
if [[ -e /lib/systemd/system/docker-registry.service || -e /etc/init.d/docker-registry ]]; then
    if [[ -d /run/systemd/system ]]; then
        if systemctl is-enabled --quiet docker-registry 2>/dev/null ||
            systemctl is-active --quiet docker-registry 2>/dev/null; then
            systemctl disable --now docker-registry >/dev/null 2>&1 || true
        fi
    elif [[ -x /etc/init.d/docker-registry ]] && ((EUID == 0)); then
        /etc/init.d/docker-registry stop >/dev/null 2>&1 || true
        update-rc.d docker-registry disable >/dev/null 2>&1 || true
    fi
fi
# libFuzzer and clang's sanitizer runtimes ship apart from clang, named after its major
# version: libclang-rt-14-dev on Debian 12, libclang-rt-19-dev on Debian 13.
llvm=$(clang -dumpversion)
install_missing "libclang-rt-${llvm%%.*}-dev"

if ! base=$(command -v "$PYTHON"); then
    echo "setup: PYTHON=$PYTHON not found" >&2
    exit 1
fi
base=$(readlink -f "$base")
# The environment records what it was built from; another $PYTHON means a new one.
marker=$VENV/.pycontainerd-base
if [[ ! -x $VENV/bin/python || ! -f $marker || $(cat "$marker") != "$base" ]]; then
    echo "setup: creating $VENV from $base" >&2
    rm -rf "$VENV"
    "$base" -m venv "$VENV"
    echo "$base" >"$marker"
fi
py=$VENV/bin/python

# Rebuild/reinstall only when the sources that feed the build changed.
stamp=$VENV/.pycontainerd-setup-stamp
inputs=$(find pyproject.toml setup.py csrc pycontainerd/_version.py -type f -not -path '*/__pycache__/*' -print0 |
    sort -z | xargs -0 cat | { cat; echo editable_mode=compat; } | sha256sum | cut -d' ' -f1)
if [[ ! -f $stamp || $(cat "$stamp") != "$inputs" || ! -x pycontainerd/_native/pcd-handoff ]] ||
    ! "$py" -c "import pycontainerd._native" 2>/dev/null; then
    echo "setup: pip install -e '.[dev]' into $VENV" >&2
    # editable_mode=compat: a plain path in a .pth, as a wheel install has no import
    # hook either; setuptools' default finder costs every process ~8 ms at start-up
    # (it imports pathlib), a twentieth of a `pycontainerd run --rm`.
    "$py" -m pip install -q --disable-pip-version-check -e '.[dev]' \
        --config-settings editable_mode=compat </dev/null
    echo "$inputs" >"$stamp"
fi
# Byte-compile once: with PYTHONDONTWRITEBYTECODE set, every command would recompile
# the package (about 150 ms per `pycontainerd` invocation).
"$py" -m compileall -q pycontainerd >/dev/null
