# Set-up builds .venv from scratch. torch is pinned here (not in pyproject) to the CPU wheel
# that lies on our machines; on a GPU machine install the torch build you need first.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
TORCH ?= torch==2.13.0

.PHONY: venv test lint demo wheel-smoke clean-venv

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q "$(TORCH)"
	$(BIN)/pip install -q -e ".[embedded,dev]"
	touch $@

test: venv
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/pytest -q

# The main job on the embedded default: phantom -> prepare -> 9 variants -> evaluate -> summary.
DEMO_OUT ?= demo_out
demo: venv
	$(BIN)/clip2clinic demo --out $(DEMO_OUT)

# The built wheel in a fresh venv, no source tree: phantom -> prepare -> train -> evaluate ->
# report on a tiny corpus in a temporary folder (about 2.5 minutes).
wheel-smoke:
	PY=$(PY) TORCH="$(TORCH)" .ci/wheel_smoke.sh

lint: venv
	$(BIN)/ruff check src tests benchmarks

clean-venv:
	rm -rf $(VENV)
