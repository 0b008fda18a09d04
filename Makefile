# Everything runs from a local virtualenv that these rules create and keep in step with the
# requirements files. `make run` serves the shipped assistant; `make test` runs the tests.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 5000
PYTEST_ARGS ?=

.PHONY: run test venv default-model bench clean

venv: $(STAMP)

$(STAMP): requirements-tf1compat.txt requirements-dev.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --disable-pip-version-check -q -r requirements-dev.txt
	$(BIN)/python -m pip install --disable-pip-version-check -q --no-deps -e .
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/legacy-assistant serve --host $(HOST) --port $(PORT)

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Retrain the shipped model and its golden predictions (commit both afterwards).
default-model: $(STAMP)
	$(BIN)/legacy-assistant train data/intents.json --out exported/default --force --preset ngrams
	$(BIN)/legacy-assistant golden exported/default --sentences data/golden_sentences.txt

bench: $(STAMP)
	$(BIN)/python benchmarks/predictor.py

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
