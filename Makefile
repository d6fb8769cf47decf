# One command to set up and run: `make run` (train, evaluate, predict) or `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TORCH_VERSION ?= 2.13.0
# Without an NVIDIA GPU, take PyTorch's CPU build (~200 MB) instead of the CUDA one (several GB),
# from PyTorch's CPU index when it answers (offline mirrors and wheel caches are used as they are).
CPU_INDEX := https://download.pytorch.org/whl/cpu
TORCH_INDEX ?= $(if $(shell command -v nvidia-smi),,$(shell $(PYTHON) -c "import urllib.request as r; r.urlopen('$(CPU_INDEX)/', timeout=5); print('$(CPU_INDEX)')" 2>/dev/null))
CONFIG ?= configs/seed.yaml
MODEL ?= models/seed-distilbert

.PHONY: setup run train evaluate predict test test-fast

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install "torch==$(TORCH_VERSION)" $(if $(TORCH_INDEX),--extra-index-url $(TORCH_INDEX))
	$(BIN)/pip install -e ".[dev]"
	touch $@

run: train evaluate predict

train: setup
	$(BIN)/python -m train --config $(CONFIG) --output_dir $(MODEL) --overwrite_output_dir true

evaluate: setup
	$(BIN)/python -m eval --model $(MODEL) --data data/seed_export.json --split test

predict: setup
	$(BIN)/python -m eval.predict --model $(MODEL) --input data/sample_sentences.txt --output $(MODEL)/sample_predictions.jsonl
	cat $(MODEL)/sample_predictions.jsonl

test: setup
	$(BIN)/python -m pytest

test-fast: setup
	$(BIN)/python -m pytest -m "not slow and not labelstudio"
