# Developer entry points. `make test` is the README's test command and what CI runs.
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: install test test-fast lint sim bench testnet nemesis

$(PY):
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'

install: $(PY)

test: $(PY)
	$(PY) -m pytest -q

test-fast: $(PY)
	$(PY) -m pytest -q -m "not slow"

lint: $(PY)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy --strict .

sim: $(PY)
	$(VENV)/bin/sec sim --seeds 1000

bench: $(PY)
	$(VENV)/bin/sec bench ledger
	$(VENV)/bin/sec bench cluster
	$(VENV)/bin/sec bench trust
	$(VENV)/bin/sec bench state
	$(VENV)/bin/sec bench txcost
	$(VENV)/bin/sec bench p2p
	$(VENV)/bin/sec bench rpc

testnet: $(PY)
	$(VENV)/bin/sec testnet

# Fault cycles over a real 4-validator network; override e.g. `make nemesis CYCLES=20 SEED=2`.
CYCLES ?= 200
SEED ?= 1
nemesis: $(PY)
	rm -rf nemesis-out/seed-$(SEED)
	$(VENV)/bin/sec nemesis --cycles $(CYCLES) --seed $(SEED) --out nemesis-out/seed-$(SEED)
