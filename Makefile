# Everything runs from a local virtualenv that these rules create and keep in step with the
# lock files. `make run` serves the shipped assistant; `make test` runs the tests in
# PYTEST_WORKERS processes, in random order (`make test PYTEST_ARGS=--randomly-seed=N` runs each
# file's tests in seed N's order again).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# `make run HOST=0.0.0.0 PORT=8080` listens there; left out, serve's own settings decide
# (LEGACY_ASSISTANT_HOST and LEGACY_ASSISTANT_PORT, else 127.0.0.1 and 5000): a flag given
# here always would override them. HOST and PORT in the environment are not read:
# tcsh sets HOST to the machine's name, and other tools' setups export PORT
HOST ?=
PORT ?=
given = $(if $(findstring command line,$(origin $(1)))$(findstring override,$(origin $(1))),$($(1)))
PYTEST_ARGS ?=
# pytest-xdist's processes for `make test`, each taking whole test files (--dist loadfile: a
# file's module fixtures are made once; session fixtures once in each process that needs
# them); 0 runs the suite in pytest's own process
PYTEST_WORKERS ?= 2
UV ?= uv

.PHONY: run playground test lint venv lock default-model responder bench bench-serve bench-runtimes matrix test-tf-oldest clean clean-checkpoints \
	check-corpora check-wrk

venv: $(STAMP)

# The same pins either way: uv (when on PATH) installs them in well under half of pip's time
# (`make venv UV=` uses pip).
# --compile-bytecode, as pip does: without .pyc files every process that imports TensorFlow
# compiles its ~1,800 modules again (21 s an import against 9 s here).
# A virtualenv whose making was cut short (Ctrl-C while venv installs pip) has its python but
# no pip: venv runs again over it and finishes it, rather than every later pip install failing.
# One venv cannot mend (a pip of its own version, broken) is named, with how to start afresh.
# uv needs no pip in it: a virtualenv `uv venv` made (it has none) is kept as it is, not made
# again over by $(PYTHON), which may be another Python than the one it holds.
ifneq ($(shell command -v $(UV) 2>/dev/null),)
INSTALL := $(UV) pip install --python $(BIN)/python --compile-bytecode -q
VENV_READY := $(BIN)/python -c ''
else
INSTALL := $(BIN)/python -m pip install --disable-pip-version-check -q
VENV_READY := $(BIN)/python -m pip --version
endif

$(STAMP): requirements-tf1compat.txt requirements-dev.txt pyproject.toml
	$(VENV_READY) >/dev/null 2>&1 || $(PYTHON) -m venv $(VENV)
	@$(VENV_READY) >/dev/null 2>&1 || { echo "make venv: $(VENV) is broken (\`$(VENV_READY)\` fails, and venv did not" \
		"mend it): remove it (rm -rf $(VENV)) and run make venv again" >&2; exit 1; }
	$(INSTALL) -r requirements-tf1compat.txt -r requirements-dev.txt
	$(INSTALL) --no-deps -e .
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/legacy-assistant serve$(if $(call given,HOST), --host $(HOST))$(if $(call given,PORT), --port $(PORT))

# A local page to try the shipped models by hand (gradio: the playground extra, in the lock files).
# `make playground HOST=::1 PORT=8080` listens there, as make run does (PORT was left unread).
# PLAYGROUND_PORT on make's command line comes before PORT; without either, the port is
# PLAYGROUND_PORT from the environment, else 7860.
PLAYGROUND_PORT ?= 7860
playground: $(STAMP)
	$(BIN)/legacy-assistant playground$(if $(call given,HOST), --host $(HOST)) --port $(or $(call given,PLAYGROUND_PORT),$(call given,PORT),$(PLAYGROUND_PORT))

# The tests stay in the repository (MANIFEST.in prunes them from the source distribution): in an
# unpacked sdist this says so, before any virtualenv is made, rather than pytest finding nothing
# (its exit status 5, "no tests ran"). It fails either way: no tests is never a pass. So do the
# version matrix's targets (below), which run the suite with scripts/, left out with it.
IN_CHECKOUT := $(wildcard tests/conftest.py)
ifeq ($(IN_CHECKOUT),)
test matrix test-tf-oldest:
	@echo "make $@: the tests are not part of the source distribution; run them in a checkout of the repository" >&2
	@exit 1
else
test: $(STAMP)
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadfile $(PYTEST_ARGS)
endif

# Static checks, as CI runs them: ruff's lint rules and formatting, then mypy (pyproject.toml's
# settings) on the same folders: those of them that are there (a source distribution has no scripts/).
LINT_PATHS := $(wildcard legacy_assistant compat benchmarks scripts)
lint: $(STAMP)
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/ruff format --check $(LINT_PATHS)
	$(BIN)/mypy $(LINT_PATHS)

# Compile the lock files from their .in files (needs uv: pip install uv). A pin that still fits
# is kept, so only what an .in file changed moves (uv's --upgrade-package NAME moves one more).
# UV may hold arguments (UV="python3 -m uv", UV="uv --offline"): its first word is looked for.
lock:
	@command -v '$(firstword $(UV))' >/dev/null || { echo "make lock needs uv: pip install uv (or UV=/path/to/uv)" >&2; exit 1; }
	$(UV) pip compile requirements-tf1compat.in --universal --python-version 3.11 -o requirements-tf1compat.txt
	$(UV) pip compile requirements-dev.in --universal --python-version 3.11 -o requirements-dev.txt

# Retrain the shipped model and its golden predictions (commit both afterwards).
default-model: $(STAMP)
	$(BIN)/legacy-assistant train data/intents.json --out exported/default --force --preset ngrams
	$(BIN)/legacy-assistant golden exported/default --sentences data/golden_sentences.txt

# Retrain the shipped responder (exported/responder/) and its golden replies (commit both
# afterwards): Topical-Chat's valid_freq, valid_rare and test_freq plus the English ChatterBot
# corpus, Topical-Chat's test_rare held out for validation. The corpora sit beside the checkout
# (DATASETS, relative to the repository root). The network's sizes are in
# data/responder_config.json. 17 minutes of training decide how many epochs it gets (an epoch
# the budget cuts short still counts: its weights are validated and kept if better), so the
# whole target fits 20 minutes on 2 cores. Checkpoints go to build/ (ignored by git); an
# interrupted run prints the command that resumes it.
DATASETS ?= ../shared/datasets
RESPONDER_CHECKPOINTS ?= build/responder-checkpoints
# The corpora are looked for first: a DATASETS that names the wrong folder must not cost the
# checkpoints an interrupted run left.
RESPONDER_CORPORA = $(addprefix $(DATASETS)/,topical_chat/valid_freq.json topical_chat/valid_rare.json \
	topical_chat/test_freq.json topical_chat/test_rare.json chatterbot_corpus/english)
# They are looked for before the virtualenv is made, too (a prerequisite of their own, ahead of it).
responder: check-corpora $(STAMP)
	rm -rf $(RESPONDER_CHECKPOINTS)
	$(BIN)/legacy-assistant train-responder $(DATASETS)/topical_chat/valid_freq.json \
		$(DATASETS)/topical_chat/valid_rare.json $(DATASETS)/topical_chat/test_freq.json \
		$(DATASETS)/chatterbot_corpus/english --validation $(DATASETS)/topical_chat/test_rare.json \
		--skip-bad-dialogues --config data/responder_config.json --vocab-size 8000 --sampled-softmax 512 \
		--epochs 20 --max-minutes 17 \
		--out exported/responder --force --checkpoint-dir $(RESPONDER_CHECKPOINTS)
	$(BIN)/legacy-assistant golden exported/responder --contexts data/responder_contexts.json

check-corpora:
	@for corpus in $(RESPONDER_CORPORA); do test -e "$$corpus" || \
		{ echo "make responder: $$corpus not found (DATASETS=$(DATASETS))" >&2; exit 1; }; done

bench: $(STAMP)
	$(BIN)/python benchmarks/predictor.py

# Serving throughput and latency (needs wrk: apt-get install wrk, looked for before the
# virtualenv is made).
bench-serve: check-wrk $(STAMP)
	$(BIN)/python benchmarks/web_overhead.py
	$(BIN)/python benchmarks/tokenizer_threads.py
	$(BIN)/python benchmarks/serve.py

check-wrk:
	@command -v wrk >/dev/null || { echo "make bench-serve needs wrk: apt-get install wrk" >&2; exit 1; }

# Latency of the compat and tf2 runtimes on the shipped model, in one run.
bench-runtimes: $(STAMP)
	$(BIN)/python benchmarks/runtimes.py

ifneq ($(IN_CHECKOUT),)
# The TensorFlow version matrix: one .venv-tf<version>/ per constraints/tf-<version>.txt, the
# test suite, golden and cross-version checks in each (scripts/tf_matrix.py).
# MATRIX_ARGS: the script's options, as --seed=N (the test order) or --workers=N.
MATRIX_ARGS ?=
matrix: $(STAMP)
	$(PYTHON) scripts/tf_matrix.py --pinned-venv '$(VENV)' $(MATRIX_ARGS)

# The oldest supported TensorFlow's suite, and the cross-version loads between it and the pinned
# release, whose suite is `make test`'s (CI runs both). MATRIX_ARGS=--seed=N fixes the test order.
test-tf-oldest: $(STAMP)
	$(PYTHON) scripts/tf_matrix.py --pinned-venv '$(VENV)' --versions oldest,pinned --without-suite pinned $(MATRIX_ARGS)
endif

# Everything the rules made, except the responder's training checkpoints, which the command an
# interrupted `make responder` prints resumes from (clean-checkpoints deletes them): the folder
# of build/ that holds them, however the path is spelt (./build/x/, build/x/y, $PWD/build/x, a
# path through a link or with spaces; the shell resolves it, make's path functions split on
# spaces); all of build/ when they are in build/ itself, none of it when they are elsewhere.
clean:
	rm -rf $(VENV) .venv-tf* reports/matrix .pytest_cache .mypy_cache .ruff_cache *.egg-info
	@if [ -d build ]; then \
		build="$$(CDPATH= cd build && pwd -P)"; kept="$$(CDPATH= cd '$(RESPONDER_CHECKPOINTS)' 2>/dev/null && pwd -P)"; \
		case "$$kept" in \
			"$$build") echo "build/ holds the responder's checkpoints: kept" ;; \
			"$$build"/*) first="$${kept#"$$build"/}"; first="$${first%%/*}"; \
				echo "find build -mindepth 1 -maxdepth 1 ! -path 'build/$$first' -exec rm -rf {} +"; \
				find build -mindepth 1 -maxdepth 1 ! -path "build/$$first" -exec rm -rf {} + ;; \
			*) echo "find build -mindepth 1 -maxdepth 1 -exec rm -rf {} +"; \
				find build -mindepth 1 -maxdepth 1 -exec rm -rf {} + ;; \
		esac; \
	fi

clean-checkpoints:
	rm -rf $(RESPONDER_CHECKPOINTS)
