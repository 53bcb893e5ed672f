#!/usr/bin/env bash
# Idempotent set-up of a fresh Debian 12/13 machine for pycontainerd:
# the Debian packages the tests and the demo drive, then the package itself
# (editable, with dev tools). Safe to run again; installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
need=()
for pkg in containerd runc busybox-static; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need+=("$pkg")
done
if ((${#need[@]})); then
    echo "setup: installing Debian packages: ${need[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq </dev/null
    apt-get install -y -qq --no-install-recommends "${need[@]}" </dev/null >/dev/null
fi

# Rebuild/reinstall only when the sources that feed the build changed.
stamp=build/.setup-stamp
inputs=$(find pyproject.toml setup.py csrc pycontainerd/_version.py -type f -not -path '*/__pycache__/*' -print0 | sort -z | xargs -0 cat | sha256sum | cut -d' ' -f1)
if [[ ! -f $stamp || $(cat "$stamp") != "$inputs" || ! -x pycontainerd/_native/pcd-handoff ]] || ! "$PYTHON" -c "import pycontainerd._native" 2>/dev/null; then
    echo "setup: pip install -e '.[dev]'" >&2
    "$PYTHON" -m pip install -q --disable-pip-version-check -e '.[dev]' </dev/null
    mkdir -p build && echo "$inputs" >"$stamp"
fi
# Byte-compile once: with PYTHONDONTWRITEBYTECODE set, every command would recompile
# the package (about 150 ms per `pycontainerd` invocation).
"$PYTHON" -m compileall -q pycontainerd >/dev/null
