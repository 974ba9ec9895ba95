# Two commands do all set-up on a fresh machine: `make run` (the app) and `make test` (the suite).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test setup browser sheet bench clean

$(STAMP): requirements.txt requirements-dev.txt Makefile
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-dev.txt
	# Sample photos only (t1.jpg for multi-face tests); its dependencies are not needed.
	$(PY) -m pip install -q --no-deps insightface==2.1
	touch $(STAMP)

setup: $(STAMP)

# The app's browser tests drive Debian's chromium (Playwright cannot download browsers here).
browser:
	@test -x /usr/bin/chromium || { [ "$$(id -u)" = 0 ] && apt-get update -q && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; } || \
	  echo "warning: /usr/bin/chromium missing (apt-get install chromium as root); browser tests skip (and fail when CI is set)"

run: setup
	$(PY) app.py

test: setup browser
	$(PY) -m pytest -q

sheet: setup
	$(PY) -m pipeline sheet --out out/sheet.png

bench: setup
	$(PY) -m pipeline.bench --out docs/speed.md --check

clean:
	rm -rf $(VENV) out .pytest_cache
