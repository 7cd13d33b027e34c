# Entry points used the same way on a laptop and on CI: up, demo, test, bench.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# Debian packages the tests drive for real; installed when missing and we can (root + apt-get).
SYSTEM_TOOLS := redis-server:redis-server shellcheck:shellcheck chromium:chromium busybox:busybox strace:strace mawk:mawk setpriv:util-linux \
                openssl:openssl jq:jq node:nodejs npm:npm

.PHONY: up demo test lint typecheck pytest bench bench-smoke install web prereqs clean

$(STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@

install: $(STAMP) web

web/node_modules/d3/dist/d3.min.js: web/package.json web/package-lock.json
	cd web && npm ci --no-audit --no-fund --ignore-scripts
	touch $@

web: web/node_modules/d3/dist/d3.min.js

up: install
	$(BIN)/agentwatch up

demo: install
	$(BIN)/agentwatch up --demo

prereqs:
	@for pair in $(SYSTEM_TOOLS); do \
	  cmd=$${pair%%:*}; pkg=$${pair##*:}; \
	  command -v $$cmd >/dev/null 2>&1 && continue; \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing $$pkg (needed by the tests)"; \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$pkg >/dev/null 2>&1 || \
	    { apt-get update -qq >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$pkg >/dev/null 2>&1; }; \
	  fi; \
	  command -v $$cmd >/dev/null 2>&1 || { echo "missing $$cmd: install the Debian package '$$pkg' (apt-get install $$pkg) and run make test again" >&2; exit 1; }; \
	done

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	shellcheck -s sh hooks/agentwatch-hook.sh

typecheck: install
	$(BIN)/mypy

pytest: install prereqs
	$(BIN)/pytest

test: prereqs install lint typecheck pytest

bench: install prereqs
	$(BIN)/python -m bench

bench-smoke: install prereqs
	$(BIN)/python -m bench --smoke

clean:
	rm -rf $(VENV) web/node_modules build dist *.egg-info
