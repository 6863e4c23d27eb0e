# The whole set-up: `make run` serves, `make test` checks. Both build .venv when missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export LITELLM_LOCAL_MODEL_COST_MAP := True

.PHONY: run test lint format bench bench-overhead bench-queries notebooks clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(VENV)/.installed $@

# The real claude and codex CLIs (pinned in tests/clis) that the importer and harness tests run offline.
CLIS := tests/clis/node_modules/.installed

$(CLIS): tests/clis/package-lock.json
	npm ci --prefix tests/clis --no-audit --no-fund --loglevel=error
	touch $@

run: $(VENV)/.installed
	$(BIN)/cerver serve

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .

# pytest exits 5 when it collects nothing: that is a failure, never a pass.
test: lint $(CLIS)
	$(BIN)/python -m pytest; status=$$?; \
	if [ $$status -eq 5 ]; then echo "pytest collected no tests" >&2; exit 1; fi; exit $$status

format: $(VENV)/.installed-dev
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(VENV)/.installed-dev
	$(BIN)/python bench/warehouse.py

bench-overhead: $(VENV)/.installed-dev
	$(BIN)/python bench/overhead.py

bench-queries: $(VENV)/.installed-dev
	$(BIN)/python bench/queries.py

# Rewrite notebooks/*.ipynb from notebooks/build.py, run on a fresh demo dataset (outputs kept).
notebooks: $(VENV)/.installed-dev
	$(BIN)/python notebooks/build.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache tests/clis/node_modules
