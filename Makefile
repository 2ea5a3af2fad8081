# twin: the two commands a new user runs are `make demo` and `make test`.
# Each creates/updates .venv itself (Python >= 3.11 on PATH is the only prerequisite).
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
SAMPLES := data/samples
DEMO_OUT := workspace/demo

.PHONY: demo test test-all bench venv clean lint sysdeps npmdeps

venv: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	@touch $(STAMP)

# System packages from Debian: the Mosquitto MQTT broker (sensor tests), Chromium (viewer browser tests, report
# PDF) and poppler-utils (pdftoppm: the report test renders the PDF's pages).
SYSDEPS := $(VENV)/.sysdeps
sysdeps: $(SYSDEPS)

$(SYSDEPS):
	@mkdir -p $(VENV)
	@need=; \
	command -v mosquitto >/dev/null || test -x /usr/sbin/mosquitto || need="$$need mosquitto"; \
	test -x /usr/bin/chromium || need="$$need chromium"; \
	command -v pdftoppm >/dev/null || need="$$need poppler-utils"; \
	if [ -n "$$need" ]; then \
		if [ "$$(id -u)" = 0 ]; then SUDO=; elif command -v sudo >/dev/null; then SUDO=sudo; \
		else echo "missing:$$need and no root/sudo: install them with apt-get install$$need" >&2; exit 1; fi; \
		$$SUDO apt-get update && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $$need fonts-dejavu-core; \
	fi
	@touch $(SYSDEPS)

# Node packages from package-lock.json into ./node_modules: CesiumJS (served by the viewer) and the
# Khronos glTF validator (tiles tests).
NPMDEPS := node_modules/.twin-npm
npmdeps: $(NPMDEPS)

$(NPMDEPS): package.json package-lock.json
	@command -v npm >/dev/null || { echo "npm missing: install nodejs and npm (apt-get install nodejs npm) for the glTF validator tests" >&2; exit 1; }
	npm ci --no-audit --no-fund --loglevel=error
	@touch $(NPMDEPS)

# The whole twin on the sample city: import, live sensors (local SensorThings server, Bern sample), baseline and
# adaptation scenarios (heavy rain, screening, heat) with their 3D Tiles, the council report, then the viewer
# (CesiumJS from npm) at http://127.0.0.1:$(DEMO_PORT)/. `make demo DEMO_ARGS=--no-serve` stops before serving.
DEMO_PORT ?= 8000
DEMO_ARGS ?=
demo: $(STAMP) $(NPMDEPS)
	$(VENV)/bin/twin demo $(DEMO_OUT) --port $(DEMO_PORT) $(DEMO_ARGS)

# Default run: everything but the cases marked slow. Tests on ../shared/data run when it is present.
test: $(STAMP) $(SYSDEPS) $(NPMDEPS)
	$(VENV)/bin/lint-imports --no-cache
	$(PY) -m pytest -m "not slow" -q

test-all: $(STAMP) $(SYSDEPS) $(NPMDEPS)
	$(PY) -m pytest -q

bench: $(STAMP)
	$(PY) benchmarks/citygml.py

clean:
	rm -rf $(VENV) workspace .pytest_cache .hypothesis
