# One entry point for people and CI. `make demo` and `make test` set everything up first (idempotent).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
MODEL_EXTRA ?= model-qwen15
# llama.cpp is compiled from source. AMX is switched off: its kernels crash on these virtual machines
# (docs/decisions/0003-llama-cpp-build.md); AVX-512 doubles prompt throughput over AVX2 here.
LLAMA_CMAKE_ARGS ?= -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON \
	-DGGML_AVX512=ON -DGGML_AVX512_VBMI=ON -DGGML_AVX512_VNNI=ON -DGGML_AVX512_BF16=ON -DGGML_AVX_VNNI=ON \
	-DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF
STAMP := $(VENV)/.installed-$(MODEL_EXTRA)

.PHONY: setup model demo test lint fmt bench eval-questions clean test-tools

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip wheel
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(BIN)/python -m pip install --quiet -e '.[dev,$(MODEL_EXTRA)]'
	touch $@

INSPECTOR := tests/mcp_inspector/node_modules/.package-lock.json

# Test-only peers: the MCP Inspector CLI (an MCP client nobody here wrote) and Debian's Chromium for browser tests.
test-tools: $(INSPECTOR) /usr/bin/chromium

$(INSPECTOR): tests/mcp_inspector/package-lock.json
	npm ci --prefix tests/mcp_inspector --no-audit --no-fund --loglevel=error

/usr/bin/chromium:
	apt-get install -y -q chromium || (apt-get update -q && apt-get install -y -q chromium)

model: setup
	$(BIN)/atende model assemble

demo: model
	$(BIN)/atende ingest
	$(BIN)/atende seed
	$(BIN)/atende serve --host 127.0.0.1 --port 8000

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

fmt: setup
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

test: model test-tools
	$(MAKE) lint
	ATENDE_REQUIRE_SERVICES=1 $(BIN)/python -m pytest

bench: model
	$(BIN)/python -m bench.run --out bench/results.json

eval-questions: model
	$(BIN)/atende ingest
	$(BIN)/python -m eval.foundation --out eval/reports/foundation.json

clean:
	rm -rf $(VENV) var
