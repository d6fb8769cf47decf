# One command to set up and run: `make run` (train on the bundled corpus, evaluate, tag samples),
# `make demo` (the same on the five seed articles, in a couple of minutes) or `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TORCH_VERSION ?= 2.13.0
# Without an NVIDIA GPU, take PyTorch's CPU build (~200 MB) instead of the CUDA one (several GB),
# from PyTorch's CPU index when it answers (offline mirrors and wheel caches are used as they are).
CPU_INDEX := https://download.pytorch.org/whl/cpu
TORCH_INDEX ?= $(if $(shell command -v nvidia-smi),,$(shell $(PYTHON) -c "import urllib.request as r; r.urlopen('$(CPU_INDEX)/', timeout=5); print('$(CPU_INDEX)')" 2>/dev/null))
CONFIG ?= configs/news.yaml
MODEL ?= models/news
# Evaluation outputs go beside the model folder, not into it.
OUTPUTS ?= $(MODEL)-outputs

.PHONY: setup run demo train evaluate predict test test-fast

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install "torch==$(TORCH_VERSION)" $(if $(TORCH_INDEX),--extra-index-url $(TORCH_INDEX))
	$(BIN)/pip install -e ".[dev]"
	touch $@

run: train predict evaluate
	@echo
	@echo "The model is in $(MODEL)/ (a Hugging Face folder with thresholds.json). Tag sentences in Python:"
	@echo '  from tagger import Tagger'
	@echo '  tagger = Tagger.from_pretrained("$(MODEL)")'
	@echo '  tagger.tag(["Russian troops withdrew from the city overnight."])'

demo:
	$(MAKE) run CONFIG=configs/seed.yaml MODEL=models/seed

train: setup
	$(BIN)/python -m train --config $(CONFIG) --output_dir $(MODEL) --overwrite_output_dir true

predict: setup
	$(BIN)/python -m eval.predict --model $(MODEL) --input data/sample_sentences.txt --output $(OUTPUTS)/sample_predictions.jsonl
	cat $(OUTPUTS)/sample_predictions.jsonl

# Test split of the data the model was trained on, rebuilt from its saved split seed.
evaluate: setup
	$(BIN)/python -m eval --model $(MODEL) --split test

test: setup
	$(BIN)/python -m pytest

test-fast: setup
	$(BIN)/python -m pytest -m "not slow and not labelstudio"
