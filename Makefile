# twin: the two commands a new user runs are `make demo` and `make test`.
# Each creates/updates .venv itself (Python >= 3.11 on PATH is the only prerequisite).
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
SAMPLES := data/samples
DEMO_OUT := workspace/demo

.PHONY: demo test test-all bench venv clean lint sysdeps

venv: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	@touch $(STAMP)

# System packages (sensors): the Mosquitto MQTT broker for the sensor tests, from Debian.
SYSDEPS := $(VENV)/.sysdeps
sysdeps: $(SYSDEPS)

$(SYSDEPS):
	@mkdir -p $(VENV)
	@if ! command -v mosquitto >/dev/null && ! test -x /usr/sbin/mosquitto; then \
		if [ "$$(id -u)" = 0 ]; then SUDO=; elif command -v sudo >/dev/null; then SUDO=sudo; \
		else echo "mosquitto missing and no root/sudo: install it with apt-get install mosquitto" >&2; exit 1; fi; \
		$$SUDO apt-get update && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y mosquitto; \
	fi
	@touch $(SYSDEPS)

demo: $(STAMP)
	$(VENV)/bin/twin import $(SAMPLES)/muenchen-tum/lod2/*.gml --terrain $(SAMPLES)/muenchen-tum/dgm1/*.tif \
		--crs EPSG:25832+7837 --out $(DEMO_OUT)/scene --overwrite
	$(VENV)/bin/twin info $(DEMO_OUT)/scene

# Default run: everything but the cases marked slow. Tests on ../shared/data run when it is present.
test: $(STAMP) $(SYSDEPS)
	$(VENV)/bin/lint-imports
	$(PY) -m pytest -m "not slow" -q

test-all: $(STAMP) $(SYSDEPS)
	$(PY) -m pytest -q

bench: $(STAMP)
	$(PY) benchmarks/citygml.py

clean:
	rm -rf $(VENV) workspace .pytest_cache .hypothesis
