# Two commands on a fresh machine: `make demo` and `make test`. Everything else is setup.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup system-deps test-deps test lint demo bench clean

# torch first, pinned: it is a CPU wheel on disk here; a loose torch spec pulled in by
# diffusers/accelerate would download a multi-GB CUDA build instead.
# Each step says what it does, and pip lists what it collects: a first setup takes minutes.
$(STAMP): pyproject.toml
	@echo "setup: 1/3 the virtual environment $(VENV)"
	$(PYTHON) -m venv $(VENV)
	@echo "setup: 2/3 torch 2.13.0 (the CPU wheel)"
	$(BIN)/python -m pip install --disable-pip-version-check torch==2.13.0
	@echo "setup: 3/3 storyboard and its dependencies (a few minutes the first time)"
	$(BIN)/python -m pip install --disable-pip-version-check -e '.[daemon,diffusion,export,server,dev]'
	touch $(STAMP)
	@echo "setup: done; the CLI is $(BIN)/storyboard (\`. $(BIN)/activate\` puts it on PATH)"

system-deps:
	@sh scripts/system-deps.sh

test-deps:
	@sh scripts/system-deps.sh --test

setup: system-deps $(STAMP)

lint: setup
	$(BIN)/ruff check .

test: setup test-deps lint
	$(BIN)/pytest -q -n 2 --dist loadfile

demo: setup
	$(BIN)/storyboard demo

bench: setup
	$(BIN)/python bench/run.py

clean:
	-$(BIN)/storyboard down
	rm -rf $(VENV) .storyboard storyboard.db storyboard.db-wal storyboard.db-shm
