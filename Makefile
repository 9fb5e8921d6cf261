# gan_je: every target runs inside .venv, created on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: help install train test lint format bench gpu-check clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

install: $(STAMP)  ## create .venv and install gan_je with every extra and its dev tools (once)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev,all]"
	touch $(STAMP)

train: install  ## train the default experiment (DCGAN, SN discriminator, hinge loss, on 5,000 MNIST digits; minutes on a CPU)
	$(PY) -m gan_je.train

test: install  ## run the test suite, one pytest-xdist worker per core (SLURM tests on one)
	$(PY) -m pytest -n auto --dist loadgroup

lint: install  ## ruff check and format check
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format: install  ## apply ruff's fixes and formatting
	$(PY) -m ruff check --fix .
	$(PY) -m ruff format .

bench: install  ## the benchmark tables: estimators, errors, training speed, mode collapse, text, audio (hours)
	$(PY) benchmarks/estimators.py
	$(PY) benchmarks/calibration.py
	$(PY) benchmarks/jsd_high_dim.py
	$(PY) benchmarks/weighted_entropy.py
	$(PY) benchmarks/copying.py
	$(PY) benchmarks/pca.py
	$(PY) benchmarks/train.py
	$(PY) benchmarks/mode_collapse.py
	$(PY) benchmarks/token_features.py
	$(PY) benchmarks/text.py --records benchmarks/results/text.jsonl oracle chars
	$(PY) benchmarks/audio_features.py
	$(PY) benchmarks/audio.py --records benchmarks/results/audio.jsonl real wavegan specgan
	$(PY) benchmarks/stacked_mnist.py --records benchmarks/results/stacked_mnist.jsonl counter small_d standard

gpu-check: install  ## on one GPU: CUDA tests, k-NN and training speed (8 min) -> benchmarks/results/gpu-report.md
	bash benchmarks/gpu.sh --python $(PY)

clean:  ## remove .venv, caches and run outputs
	rm -rf $(VENV) .pytest_cache .ruff_cache wandb build
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
	find outputs -mindepth 1 ! -name .gitkeep -exec rm -rf {} +
