# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
# torch==2.13.0 is the CPU wheel on these machines' disk; nothing may pull another torch.
TORCH := torch==2.13.0

.PHONY: demo test lint typecheck venv runtime dev weights bench clean chromium

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# runtime only: ONNX Runtime, NumPy, OpenCV (no torch)
$(VENV)/.runtime: $(BIN)/python pyproject.toml setup.py
	$(BIN)/pip install -q -e .
	touch $@

# everything the tests need: the train extra (torch CPU) and dev tools
$(VENV)/.dev: $(BIN)/python pyproject.toml setup.py
	$(BIN)/pip install -q $(TORCH)
	$(BIN)/pip install -q -e '.[train,dev,review,batch]'
	touch $@

runtime: $(VENV)/.runtime
dev: $(VENV)/.dev

# Chromium renders the HTML report in a test (Debian package; skipped where apt is absent)
chromium:
	@command -v chromium >/dev/null 2>&1 || (command -v apt-get >/dev/null 2>&1 && \
	  (apt-get install -y -qq chromium >/dev/null 2>&1 || \
	   (apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq chromium >/dev/null 2>&1)) || \
	  echo "chromium not installed: the HTML rendering test will be skipped")

demo: $(VENV)/.runtime
	$(BIN)/inspect demo

# ruff (pyproject.toml [tool.ruff]): lint, and the formatting ruff format would give
lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# mypy, strict on the public seams (pyproject.toml [tool.mypy]). db/, stations/ and plugins/ are
# installed as inspect_db, inspect_stations, inspect_plugins (setup.py) through an import hook
# mypy cannot follow: links under those names in build/typecheck (its mypy_path) stand in.
typecheck: $(VENV)/.dev
	@mkdir -p build/typecheck
	@ln -sfn ../../db build/typecheck/inspect_db
	@ln -sfn ../../stations build/typecheck/inspect_stations
	@ln -sfn ../../plugins build/typecheck/inspect_plugins
	$(BIN)/mypy

# every check; the tests last
test: $(VENV)/.dev lint typecheck chromium
	$(BIN)/python -m pytest -q

# Retrain every shipped model from its recipe (about 5 hours on 2 CPU cores)
weights: $(VENV)/.dev
	training/all.sh

bench: $(VENV)/.dev
	$(BIN)/python bench/infer.py
	$(BIN)/python bench/station.py
	$(BIN)/python bench/records.py

clean:
	rm -rf $(VENV) runs .pytest_cache build/typecheck
