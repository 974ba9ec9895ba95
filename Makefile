# Two commands do all set-up on a fresh machine: `make run` (the app) and `make test` (the suite).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test setup sheet bench clean

$(STAMP): requirements.txt requirements-dev.txt Makefile
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-dev.txt
	# Sample photos only (t1.jpg for multi-face tests); its dependencies are not needed.
	$(PY) -m pip install -q --no-deps insightface==2.1
	touch $(STAMP)

setup: $(STAMP)

run: setup
	$(PY) app.py

test: setup
	$(PY) -m pytest -q

sheet: setup
	$(PY) -m pipeline sheet --out out/sheet.png

clean:
	rm -rf $(VENV) out .pytest_cache
