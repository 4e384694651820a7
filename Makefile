# jram.dumphost: every entry point a newcomer or CI needs. All targets run as root on a
# Debian/Ubuntu machine; `make setup` (a prerequisite of every other target) installs what is
# missing and is quick when nothing is.
SHELL := /bin/bash
.DEFAULT_GOAL := help
BIN := $(CURDIR)/.venv/bin
PY := $(BIN)/python
export PATH := $(BIN):$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg

.PHONY: help setup sandbox-up sandbox-down sandbox-status demo test test-identity lint sanity bench release build clean

help:
	@echo "make demo          the whole migration on the sandbox, legacy host to retired keys"
	@echo "make test          lint and the test suite against the sandbox (about 40 minutes)"
	@echo "make test-identity the long walks: molecule scenario identity and the rollback order"
	@echo "make setup         install Debian packages and the pinned .venv (done by every target)"
	@echo "make sandbox-up    start MariaDB, moto, the IMDS emulator and the dump host container"
	@echo "make sandbox-down  stop all of them (data and image cache are kept in .sandbox/)"
	@echo "make lint          yamllint, ansible-lint (production profile), ruff, changelog lint, make sanity"
	@echo "make sanity        ansible-test sanity on the collection as it ships (about 2 minutes)"
	@echo "make bench         the dumpjob benchmarks"
	@echo "make release       add the release of galaxy.yml's version to the changelog (changelogs/, CHANGELOG.rst)"
	@echo "make build         build the collection tarball into dist/ (needs that release)"

setup:
	@bash scripts/setup.sh

sandbox-up: setup
	@$(PY) -m sandbox up

sandbox-down: setup
	@$(PY) -m sandbox down

sandbox-status: setup
	@$(PY) -m sandbox status

demo: setup
	@bash scripts/demo.sh

lint: setup
	yamllint --strict .
	ansible-lint
	ruff check .
	antsibull-changelog lint
	@$(MAKE) --no-print-directory sanity

# ansible-test sanity on the tarball's content (scripts/sanity.sh says how and why). All of its
# default tests run: together they take about 2 minutes here, once ansible-test's own virtual
# environments exist (make setup creates them).
sanity: setup
	bash scripts/sanity.sh

# The suite shares one sandbox, started here so that the pytest workers (TEST_WORKERS, see
# tests/conftest.py for what runs where) find it up, and stopped here even when a test failed
# (SANDBOX_KEEP=1 keeps it). The tests marked serial restart a server every other test uses, so
# they run alone after the parallel part; the lifecycle tests stop the sandbox themselves, so they
# run last and alone.
# Three workers on two cores: the tests mostly wait on ansible-playbook, podman and the servers
# (one core busy on average with two workers), so a third shortens the run by about a quarter.
TEST_WORKERS ?= 3
test: lint
	$(PY) -m sandbox up
	rc=0; $(PY) -m pytest -m "not lifecycle and not identity and not serial" -n $(TEST_WORKERS) --dist loadscope \
	  || rc=$$?; \
	$(PY) -m pytest -m "serial and not identity" || rc=$$?; \
	if [ "$$SANDBOX_KEEP" != 1 ]; then $(PY) -m sandbox down; fi; exit $$rc
	$(PY) -m pytest -m lifecycle

# The long walks (pytest marker `identity`): the molecule scenario identity (phase 3 and key
# retirement, both undone) and the rollback order on the journey's end state
# (tests/integration/test_rollback_order.py), side by side (one uses the shared instance, the
# other an instance and host of its own); CI runs them after `make test`.
test-identity: setup
	$(PY) -m sandbox up
	rc=0; $(PY) -m pytest -m identity -n $(TEST_WORKERS) --dist loadscope || rc=$$?; \
	if [ "$$SANDBOX_KEEP" != 1 ]; then $(PY) -m sandbox down; fi; exit $$rc

bench: setup
	@if ls bench/*.py >/dev/null 2>&1; then for b in bench/*.py; do $(PY) $$b || exit 1; done; \
	else echo "bench: no benchmarks yet"; fi

# The changelog of a version is cut once, by its maintainer, and committed: the fragments stay
# (keep_fragments) and are not taken again by the next release.
VERSION = $(shell sed -n 's/^version: *//p' galaxy.yml)
release: setup
	ANSIBLE_COLLECTIONS_PATH=$(CURDIR)/.collections antsibull-changelog release --version $(VERSION)

build: setup
	@grep -q "^  $(VERSION):" changelogs/changelog.yaml || \
	    { echo "build: the changelog has no release $(VERSION): run make release and commit it" >&2; exit 1; }
	ansible-galaxy collection build --force --output-path dist

clean: sandbox-down
	rm -rf dist .pytest_cache .ruff_cache
