# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
# torch==2.13.0 is the CPU wheel on these machines' disk (pip's find-links); nothing may pull
# another torch. The lock names it as 2.13.0+cpu with that file's hash.

.PHONY: demo test lint typecheck venv runtime dev weights bench clean chromium lock lock-check docs

# Every version installed comes from a lock file in requirements/ (pip-tools, with hashes);
# `make lock` rewrites them from requirements/*.in (the workspace's pyproject.toml files). The
# workspace itself goes in editable, with no dependency resolution and no build isolation:
# nothing is installed that the lock does not name.
PIP_QUIET := --quiet --quiet --disable-pip-version-check --no-warn-script-location
PIP_LOCKED := $(BIN)/pip install $(PIP_QUIET) --require-hashes --no-deps
# the workspace: the core (this folder) and each folder that is a distribution of its own
MEMBERS := plugins db stations review batch
RUNTIME_MEMBERS := plugins db stations
SOURCES := pyproject.toml $(addsuffix /pyproject.toml,$(MEMBERS))
# editable_mode=compat: a plain path in a .pth file per member (no import hook), which any tool
# that reads imports follows
PIP_SELF := $(BIN)/pip install $(PIP_QUIET) --no-deps --no-build-isolation \
	--config-settings editable_mode=compat -e .

$(BIN)/python:
	$(PY) -m venv $(VENV)

# runtime only: ONNX Runtime, NumPy, OpenCV (no torch)
$(VENV)/.runtime: $(BIN)/python requirements/runtime.txt $(SOURCES)
	$(PIP_LOCKED) -r requirements/runtime.txt
	$(PIP_SELF) $(addprefix -e ./,$(RUNTIME_MEMBERS))
	touch $@

# everything the tests need: the train extra (torch CPU build), dev tools, review, batch
$(VENV)/.dev: $(BIN)/python requirements/dev.txt $(SOURCES)
	$(PIP_LOCKED) -r requirements/dev.txt
	$(PIP_SELF) $(addprefix -e ./,$(MEMBERS))
	$(BIN)/python requirements/check_lock.py --installed requirements/dev.txt
	touch $@

runtime: $(VENV)/.runtime
dev: $(VENV)/.dev

# Chromium renders the HTML report in a test (Debian package; skipped where apt is absent)
chromium:
	@command -v chromium >/dev/null 2>&1 || (command -v apt-get >/dev/null 2>&1 && \
	  (apt-get install -y -qq chromium >/dev/null 2>&1 || \
	   (apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq chromium >/dev/null 2>&1)) || \
	  echo "chromium not installed: the HTML rendering test will be skipped")

# `inspect` is in .venv, not on PATH: `. .venv/bin/activate` afterwards (the demo says so too)
demo: $(VENV)/.runtime
	$(BIN)/inspect demo

# The documentation site (mkdocs.yml, docs/) into site/, git-ignored. --strict: a warning (a
# broken link, a page left out of the navigation) fails it. docs/gen/hooks.py makes the
# reference pages from the code as it builds: the CLI, the hooks, the configuration, the models.
docs: $(VENV)/.dev
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet --site-dir site

# ruff (pyproject.toml [tool.ruff]): lint, and the formatting ruff format would give
lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# mypy, strict on the public seams (pyproject.toml [tool.mypy]); each workspace folder is on its
# mypy_path, so the packages are read where they are
typecheck: $(VENV)/.dev
	$(BIN)/mypy

# Rewrite the lock files from the workspace's pyproject.toml files: pins kept where they still
# fit, `make lock UPGRADE=1` takes the newest releases that fit. Review the diff, run make test.
# pip-tools itself is pinned here: it is the one tool outside the lock.
PIP_TOOLS := pip-tools==7.7.0
COMPILE := $(VENV)/lock-tools/bin/pip-compile --quiet --generate-hashes --allow-unsafe \
	--strip-extras --no-emit-index-url --no-emit-find-links
lock: export CUSTOM_COMPILE_COMMAND := make lock
lock:
	test -x $(VENV)/lock-tools/bin/pip-compile || \
	  ($(PY) -m venv $(VENV)/lock-tools && $(VENV)/lock-tools/bin/pip install -q $(PIP_TOOLS))
	for lock in runtime station dev; do \
	  $(COMPILE) $(if $(UPGRADE),--upgrade) -o requirements/$$lock.txt requirements/$$lock.in && \
	  $(VENV)/lock-tools/bin/python requirements/check_lock.py --strip requirements/$$lock.txt \
	  || exit 1; \
	done

# the lock names every requirement of pyproject.toml with a version that fits it, and nothing else
lock-check: $(VENV)/.dev
	$(BIN)/python requirements/check_lock.py

# every check; the site (a few seconds), then the tests last
test: $(VENV)/.dev lock-check lint typecheck chromium docs
	$(BIN)/python -m pytest -q

# Retrain every shipped model from its recipe (about 10 hours on 2 CPU cores: the stages' time
# budgets, --max-minutes in training/*.args; docs/model-author/models.md "Retraining")
weights: $(VENV)/.dev
	training/all.sh

bench: $(VENV)/.dev
	$(BIN)/python bench/infer.py
	$(BIN)/python bench/station.py
	$(BIN)/python bench/records.py

clean:
	rm -rf $(VENV) runs .pytest_cache site
