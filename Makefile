# onprem.datastores: the two commands a newcomer runs are `make sandbox` and
# `make test`. Everything they need is installed by the targets themselves.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV        ?= .venv
BIN         := $(VENV)/bin
PYTHON      ?= python3
export ONPREM_CACHE_DIR ?= /var/cache/onprem-datastores
export ONPREM_APT_CACHE ?= $(ONPREM_CACHE_DIR)/apt-archives
export ONPREM_APT_MIRROR ?= $(shell scripts/testbed/apt-mirror.sh)
export ONPREM_APT_SECURITY_MIRROR ?= $(shell scripts/testbed/apt-mirror.sh security)
export PATH := $(CURDIR)/$(BIN):$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg

# Molecule scenarios, in the order `make test` runs them (cheapest first).
SCENARIOS ?= postgresql redis_cluster site
SCENARIO  ?= site

.PHONY: help
help:  ## List the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

$(BIN)/.installed: requirements.txt scripts/bootstrap-host.sh
	scripts/bootstrap-host.sh
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements.txt
	touch $@

.PHONY: venv
venv: $(BIN)/.installed  ## Create the virtualenv with the pinned toolchain

.PHONY: testbed
testbed: venv  ## Start a Docker engine and build the offline base image
	scripts/testbed/ensure-docker.sh
	scripts/testbed/build-image.sh
	mkdir -p $(ONPREM_APT_CACHE)

.PHONY: lint
lint: venv  ## yamllint + ansible-lint (profile production, no skip list) + ansible-test sanity (no ignore file)
	$(BIN)/yamllint --strict .
	@# ansible-test sanity runs beside ansible-lint: each keeps about one core busy. Its output
	@# is printed after ansible-lint's; the target fails when either fails.
	@log=$$(mktemp); scripts/sanity.sh $(BIN)/python >"$$log" 2>&1 & sanity=$$!; \
	  trap 'kill $$sanity 2>/dev/null; rm -f "$$log"' EXIT INT TERM; \
	  echo "$(BIN)/ansible-lint --profile production  (scripts/sanity.sh $(BIN)/python beside it)"; \
	  $(BIN)/ansible-lint --profile production; lint_rc=$$?; \
	  wait $$sanity; sanity_rc=$$?; cat "$$log"; rm -f "$$log"; \
	  echo "ansible-lint: exit $$lint_rc; scripts/sanity.sh: exit $$sanity_rc"; \
	  [ $$lint_rc -eq 0 ] && [ $$sanity_rc -eq 0 ]

.PHONY: unit
unit: venv  ## Unit tests of the filter plugins and scripts
	$(BIN)/python -m pytest -q tests/unit

.PHONY: integration
integration: venv  ## Playbook-level tests that need no containers
	set -e; for p in tests/integration/*.yml; do \
	  [ -e "$$p" ] || continue; \
	  $(BIN)/ansible-playbook -i localhost, -c local "$$p"; done

.PHONY: molecule
molecule: testbed  ## Run one molecule scenario: make molecule SCENARIO=postgresql
	MOLECULE=$(BIN)/molecule scripts/molecule-test $(SCENARIO)

.PHONY: test
test: venv  ## The whole suite: lint, unit, integration, every scenario in sequence
	@rm -f .cache/stages.tsv
	scripts/stage lint $(MAKE) --no-print-directory lint
	scripts/stage unit $(MAKE) --no-print-directory unit
	scripts/stage integration $(MAKE) --no-print-directory integration
	scripts/stage testbed $(MAKE) --no-print-directory testbed
	set -e; for s in $(SCENARIOS); do \
	  MOLECULE=$(BIN)/molecule scripts/stage "molecule-$$s" scripts/molecule-test "$$s"; done

.PHONY: sandbox
sandbox: testbed  ## Bring up containers standing in for VMs and run playbooks/site.yml
	scripts/sandbox.sh up

.PHONY: sandbox-down
sandbox-down:  ## Remove the sandbox containers
	scripts/sandbox.sh down

.PHONY: bench
bench: testbed  ## Figures on fresh containers: converge, pgbench, redis, backups (docs/benchmark.md)
	scripts/bench.sh
