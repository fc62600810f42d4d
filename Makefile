# Two commands on a fresh machine: `make demo` and `make test`. Everything else is setup.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup system-deps test-deps test lint demo bench clean

# torch first, pinned: it is a CPU wheel on disk here; a loose torch spec pulled in by
# diffusers/accelerate would download a multi-GB CUDA build instead.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check torch==2.13.0
	$(BIN)/python -m pip install -q --disable-pip-version-check -e '.[daemon,diffusion,export,server,dev]'
	touch $(STAMP)

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
