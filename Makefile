# The two commands a newcomer runs: `make demo` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint docs fuzz bench clean toolchain

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	# torch first and pinned: the CPU build; the [torch] extra only asks for torch>=2.4, and an unpinned
	# install from PyPI would pull the multi-GB CUDA build.
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/tinyopt demo

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy src/tinyopt/graph src/tinyopt/analysis src/tinyopt/runtime src/tinyopt/ops

# The docs site (docs/, API reference from the docstrings); --strict turns every warning into an error.
docs: $(STAMP)
	$(BIN)/mkdocs build --strict -q -d build/site

test: $(STAMP) lint docs
	$(BIN)/python -m pytest -n 2 --durations=15

# The quick benchmarks, printing their tables against the named peers (nothing is written). Every
# benchmark, the command that recorded its figures and the figures are in bench/RESULTS.md.
bench: $(STAMP)
	$(BIN)/python bench/analyze_speed.py --runs 3 --no-write
	$(BIN)/python bench/tflite_io.py --runs 5 --no-write

# Debian packages for the Cortex-M build and the qemu run (root only; skipped when present).
toolchain:
	@command -v arm-none-eabi-gcc >/dev/null && command -v qemu-system-arm >/dev/null || \
	  (apt-get update -qq && apt-get install -y -qq gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm)

fuzz: $(STAMP)
	$(BIN)/python -m tests.fuzz.run_all

clean:
	rm -rf $(VENV) build *.egg-info
