# pycontainerd developer entry points. `make demo` and `make test` do all
# set-up themselves (scripts/setup.sh is idempotent).
PYTHON ?= python3

.PHONY: setup demo test lint typecheck unit integration protos check-protos bench clean

setup:
	PYTHON=$(PYTHON) scripts/setup.sh

demo: setup
	$(PYTHON) scripts/demo.py

test: setup lint typecheck check-protos
	$(PYTHON) -m pytest -q

lint:
	$(PYTHON) -m ruff check .

typecheck:
	$(PYTHON) -m mypy

unit: setup
	$(PYTHON) -m pytest -q tests/unit

integration: setup
	$(PYTHON) -m pytest -q tests/integration

protos:
	$(PYTHON) tools/gen_protos.py

check-protos:
	$(PYTHON) tools/gen_protos.py --check

bench: setup
	$(PYTHON) benchmarks/fifo_throughput.py
	$(PYTHON) benchmarks/e2e.py
	$(PYTHON) benchmarks/handoff_vs_ctr.py

clean:
	rm -rf build *.egg-info pycontainerd/_native/_ffi*.so pycontainerd/_native/_ffi.c pycontainerd/_native/pcd-handoff
