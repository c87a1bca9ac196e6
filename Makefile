# The two commands of the README, and the pieces they are made of.
#   make run    install everything, then run the replica-kill scenario end to end on the embedded stack
#   make test   install everything, run the test suite against real processes
# Other targets: setup, lint, typecheck, gate, bench-*, down.

VENV ?= .venv
PY := $(VENV)/bin/python
PYTHON ?= python3
PYTEST_ARGS ?=

.PHONY: setup run gate test test-extended lint typecheck bench-stack down k8s-cluster gate-k8s gate-k8s-in-cluster

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check --upgrade pip
	$(PY) -m pip install -q --disable-pip-version-check -e '.[test,dev]'
	touch $@

setup: $(VENV)/.installed
	bash deploy/local/install.sh

SCENARIO ?= pod_failure
run: setup
	$(VENV)/bin/resilience run $(SCENARIO)

gate: setup
	$(VENV)/bin/resilience gate $(GATE_ARGS)

test: setup k8s-envtest k8s-cluster
	$(PY) -m pytest $(PYTEST_ARGS)

lint: setup  # ruff's rules only (the code keeps its aligned continuation lines, so no `ruff format`), and
	$(VENV)/bin/ruff check .   # the import contract of docs/architecture.md (pyproject.toml, [tool.importlinter])
	$(VENV)/bin/lint-imports

typecheck: setup
	$(VENV)/bin/mypy

bench-stack: setup
	$(PY) benchmarks/stack_startup.py

down:
	$(VENV)/bin/resilience down

# kube-apiserver + etcd for tests/k8s (marker k8s) and the kustomize its manifest tests run, cached in
# /var/cache/sql-audit-resilience/k8s/; a no-op when cached, about 11 min cold on 2 cores
# (deploy/k8s/envtest/install.sh).
k8s-envtest:
	bash deploy/k8s/envtest/install.sh

# The local single-node cluster's binaries and images (tests/cluster, marker k8s_cluster; docs/cluster.md),
# cached in /var/cache/sql-audit-resilience/k8s/; a no-op when cached, about 45 min cold on a loaded 2-core machine.
k8s-cluster: k8s-envtest
	bash deploy/k8s/local/install.sh

# The proofs kept out of the README's test command (docs/testing.md says which and why): the slow live tests
# marked `extended` and the interrupted-runner matrix, on the local stack, the Spring and HA stacks and the
# local cluster, the 15-trial regression; an hour or more, not timed as a whole. `make test` then
# `make test-extended` runs every test there is but the gate's scenarios (`make gate`).
test-extended: setup k8s-envtest k8s-cluster
	$(PY) -m pytest -m "extended or interrupt_matrix" $(PYTEST_ARGS)

test-k8s: setup k8s-envtest
	$(PY) -m pytest tests/k8s $(PYTEST_ARGS)

# The catalogue on the local cluster (docs/cluster.md, "The system under test"): install (cached), `cluster up`,
# `cluster deploy` (the system under test; prints the target file it writes), `resilience gate --target kubernetes`
# with that file, then `cluster down` whatever the gate said. Needs root. Cluster name, ranges and state directory
# from RESILIENCE_CLUSTER_* (docs/cluster.md).
gate-k8s: setup k8s-cluster
	$(PY) -m cluster up || { $(PY) -m cluster down; exit 1; }
	target=$$($(PY) -m cluster deploy) || { $(PY) -m cluster down; exit 1; }; \
	RESILIENCE_TARGET_CONFIG=$$target $(VENV)/bin/resilience gate --target kubernetes $(GATE_ARGS); rc=$$?; \
	$(PY) -m cluster down; exit $$rc

# The same gate judged by the suite's runner IN the cluster (docs/cluster.md, "The runner in the cluster"): up,
# deploy, `cluster runner` (deploy/k8s/base with the runner image built here), the gate in a Job of the CronJob's
# template through `cluster job` (its logs followed; exit code the gate's), then down. Reports and JUnit stay on
# the runner's volume, <state>/node/var-lib/sql-audit-data/resilience-data/reports (printed by `cluster runner`).
gate-k8s-in-cluster: setup k8s-cluster
	$(PY) -m cluster up || { $(PY) -m cluster down; exit 1; }
	$(PY) -m cluster deploy >/dev/null && $(PY) -m cluster runner || { $(PY) -m cluster down; exit 1; }; \
	$(PY) -m cluster job -- gate --target kubernetes --reports-dir /var/lib/resilience/reports \
	  --junit /var/lib/resilience/reports/gate-junit.xml $(GATE_ARGS); rc=$$?; \
	$(PY) -m cluster down; exit $$rc
