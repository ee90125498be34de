# Everything is driven from here; `make help` lists the targets.
# The virtual environment is built from requirements/constraints.txt, so every tool, the
# generator and the ruff it runs included, is at the exact version pinned there.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
STAMP := $(VENV)/.installed-stamp
GENERATED := generated/stability_user_client
GENERATE = PATH="$(abspath $(BIN)):$$PATH" $(BIN)/openapi-python-client generate \
	--path openapi.yaml --config openapi-generator.yaml --meta none --overwrite

.DEFAULT_GOAL := help
.PHONY: help venv demo test ci lint format typecheck validate-spec generate check-generated \
	pytest cassettes bench clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml requirements/constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -c requirements/constraints.txt -e '.[dev]'
	touch $@

venv: $(STAMP) ## Create the virtual environment with the pinned tools

demo: $(STAMP) ## The main job: account, balance and balances (live with a key, else the stand-in)
	$(PY) scripts/demo.py

test: ci ## Every check: lint, types, generated code, tests with coverage

ci: lint typecheck check-generated pytest ## What CI runs (.ci/run)

lint: $(STAMP) ## ruff lint and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP) ## ruff fix and format
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

typecheck: $(STAMP) ## mypy --strict on the facade
	$(BIN)/mypy

validate-spec: $(STAMP) ## Validate openapi.yaml
	$(BIN)/openapi-spec-validator openapi.yaml

generate: validate-spec ## Regenerate generated/ from openapi.yaml
	$(GENERATE) --output-path $(GENERATED)

check-generated: validate-spec ## Fail with a diff when generated/ is not what openapi.yaml makes
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	$(GENERATE) --output-path "$$tmp/stability_user_client" >/dev/null && \
	if diff -ru --exclude=__pycache__ $(GENERATED) "$$tmp/stability_user_client"; then \
		echo "generated/ is up to date with openapi.yaml"; \
	else \
		echo "generated/ is out of date: run 'make generate' and commit the result" >&2; exit 1; \
	fi

pytest: $(STAMP) ## Tests with branch coverage of the facade (at least 95%)
	$(BIN)/pytest --cov --cov-report=term --cov-fail-under=95

cassettes: $(STAMP) ## Re-record the cassettes (live with STABILITY_API_KEY, else the stand-in)
	$(PY) scripts/record_cassettes.py

bench: $(STAMP) ## Benchmark the facade against raw httpx and its peers
	$(PY) benchmarks/bench.py

clean: ## Remove the virtual environment and caches
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis .coverage
