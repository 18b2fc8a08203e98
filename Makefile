# Two commands on a fresh machine: `make run` and `make test` (both install first).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test test-fast lint format schemas clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e ".[dev]"
	@# The dashboard test drives Debian's chromium; as root we install it, else we say so.
	@command -v chromium >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "note: install Debian's chromium for the dashboard test (apt-get install chromium)"; fi; }
	touch $(STAMP)

run: install
	$(BIN)/llm-streams up $(if $(TRACES),--traces) $(if $(REGISTRY),--schema-registry) $(if $(LOCAL_MODEL),--local-model)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/llm-streams schemas --check
	$(BIN)/hadolint Dockerfile

test: lint
	$(BIN)/pytest

# The inner loop: lint, types and every test that needs no broker and no worker process.
test-fast: lint
	$(BIN)/pytest -m "not broker and not slow"

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

schemas: install
	$(BIN)/llm-streams schemas

clean:
	rm -rf $(VENV) .data artifacts .mypy_cache .ruff_cache .pytest_cache
