# Two entry points for a fresh machine: `make run` (serve) and `make test` (lint, types, tests).
SHELL := /bin/bash
VENV ?= .venv
BIN := $(VENV)/bin
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: install run index test lint typecheck browser postgres bench clean

$(BIN)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# CPU torch first: an unpinned torch would pull several GB of CUDA packages
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[test]'
	touch $@

install: $(BIN)/.installed

index: install
	$(BIN)/qa index --if-stale

run: install
	$(BIN)/qa serve --build-if-needed

browser:
	@command -v chromium >/dev/null || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq chromium; }

# Debian's PostgreSQL server: the conversation-store and replica tests start one of their own in a temporary folder
postgres:
	@ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || { $(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql; }

lint: install
	$(BIN)/ruff check qa tests bench
	$(BIN)/ruff format --check qa tests bench

typecheck: install
	$(BIN)/mypy

test: install browser postgres lint typecheck
	$(BIN)/pytest -q -rs

bench: install
	$(BIN)/python bench/ask_latency.py

clean:
	rm -rf $(VENV) index/builds index/current
