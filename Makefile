# Two entry points: `make run` (the main job) and `make test`. Both set up the virtualenv first.
VENV ?= .venv
# pytest-xdist workers for `make test`: one per logical core (tests share the cores' threads out between them)
TEST_WORKERS ?= logical
PY := $(VENV)/bin/python

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet -e ".[serve,onnx,test]"
	touch $@

# ONNX Runtime Web for the in-browser page (`ecglab serve`, /local): the exact version in
# web/package-lock.json, its single-threaded WebAssembly build copied into the package (git-ignored).
VENDOR := src/ecglab/serve/static/vendor
ORT_DIST := web/node_modules/onnxruntime-web/dist
ORT_FILES := ort.wasm.min.mjs ort-wasm-simd-threaded.mjs ort-wasm-simd-threaded.wasm

$(VENDOR)/.installed: web/package.json web/package-lock.json
	cd web && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	mkdir -p $(VENDOR)
	cp $(addprefix $(ORT_DIST)/,$(ORT_FILES)) $(VENDOR)/
	touch $@

.PHONY: setup run test lint web web-if-npm
web: $(VENDOR)/.installed

# Without npm the rest still installs; the in-browser page then names `make web`.
web-if-npm:
	@if command -v npm >/dev/null; then $(MAKE) --no-print-directory web; else \
		echo "WARNING: no npm, so ONNX Runtime Web is not installed: the in-browser page (/local) will not run;" \
		     "install Node.js/npm and run 'make web'"; fi

setup: $(VENV)/.installed web-if-npm

run: setup
	$(VENV)/bin/ecglab example --out example
	$(VENV)/bin/ecglab predict example/synthetic_sinus.hea
	$(VENV)/bin/ecglab explain example/synthetic_sinus.hea --out example/synthetic_sinus.png

test: setup
	@command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium >/dev/null) \
		|| echo "no chromium (needs root for apt-get): the browser tests will be skipped"
	$(PY) -m ruff check src tests benchmarks
	$(PY) -m pytest -m "not gpu" -n $(TEST_WORKERS) --dist loadfile

lint: setup
	$(PY) -m ruff check src tests benchmarks
	$(PY) -m ruff format --check src tests benchmarks
