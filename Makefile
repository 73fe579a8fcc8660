# Two entry points: `make run` (the main job) and `make test`. Both set up the virtualenv first.
VENV ?= .venv
PY := $(VENV)/bin/python

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet -e ".[serve,onnx,test]"
	touch $@

.PHONY: setup run test lint
setup: $(VENV)/.installed

run: setup
	$(VENV)/bin/ecglab example --out example
	$(VENV)/bin/ecglab predict example/synthetic_sinus.hea
	$(VENV)/bin/ecglab explain example/synthetic_sinus.hea --out example/synthetic_sinus.png

test: setup
	@command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium >/dev/null) \
		|| echo "no chromium (needs root for apt-get): the browser tests will be skipped"
	$(PY) -m ruff check src tests benchmarks
	$(PY) -m pytest -m "not gpu"

lint: setup
	$(PY) -m ruff check src tests benchmarks
	$(PY) -m ruff format --check src tests benchmarks
