# pycontainerd developer entry points. `make demo` and `make test` do all set-up
# themselves (scripts/setup.sh is idempotent). Everything runs in the project's own
# virtual environment, .venv/, built from $(PYTHON) (default: Debian's python3).
PYTHON ?= /usr/bin/python3
VENV ?= .venv
PY := $(VENV)/bin/python
CONTAINERD ?=
# Seconds per fuzz target (scripts/fuzz: default 60 under CI=true, else 10).
FUZZ_SECONDS ?=
export PYTHON VENV FUZZ_SECONDS

.PHONY: setup demo test lint typecheck unit sanitize fuzz integration protos check-protos bench bench-registry clean

setup:
	@scripts/setup.sh

demo: setup
	$(PY) scripts/demo.py

# CONTAINERD=1.7 (or "1.6 2", or a path to a containerd binary) narrows the matrix.
test: setup lint typecheck check-protos sanitize fuzz
	scripts/test-matrix $(CONTAINERD)

lint: setup
	$(PY) -m ruff check .

typecheck: setup
	$(PY) -m mypy

unit: setup
	$(PY) -m pytest -q tests/unit

# The C code's unit tests under ASan+UBSan, from a separate build in build/sanitize/.
sanitize: setup
	scripts/sanitize

# Every harness in fuzz/ for FUZZ_SECONDS; a crash fails (artifacts in build/fuzz/).
fuzz: setup
	scripts/fuzz

integration: setup
	PYCONTAINERD_TEST_CONTAINERD=$(or $(CONTAINERD),1.6) $(PY) -m pytest -q tests/integration

protos: setup
	$(PY) tools/gen_protos.py

check-protos: setup
	$(PY) tools/gen_protos.py --check

# The end-to-end and handoff tables per containerd version (results/containerd-<v>/).
bench: setup
	$(PY) benchmarks/fifo_throughput.py
	@set -e; for v in $(or $(CONTAINERD),1.6 1.7 2); do \
	    scripts/fetch-containerd --system-has $$v || scripts/fetch-containerd -q $$v >/dev/null; \
	    mkdir -p benchmarks/results/containerd-$$v; \
	    echo "== containerd $$v"; \
	    $(PY) benchmarks/e2e.py --containerd $$v --out benchmarks/results/containerd-$$v; \
	    $(PY) benchmarks/handoff_vs_ctr.py --containerd $$v --markdown \
	        --chart benchmarks/results/containerd-$$v/handoff.png; \
	done

# Pull + unpack from a loopback registry vs `ctr images pull`, and the blob download
# micro-benchmark (results/registry.md). Its httpx row needs `$(PY) -m pip install httpx`.
bench-registry: setup
	$(PY) benchmarks/registry_vs_ctr.py $(if $(CONTAINERD),--containerd $(CONTAINERD))

clean:
	rm -rf build *.egg-info pycontainerd/_native/_ffi*.so pycontainerd/_native/_ffi.c pycontainerd/_native/pcd-handoff
