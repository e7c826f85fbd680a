PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/memberflow demo

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .

bench: $(STAMP)
	$(BIN)/python -m bench

# Issue 7 at full size (about 25 minutes, 11 GB free in /tmp): a 1M-person, 1M-case, ~10M-event
# database, the CLI latencies on it, then peak memory moving 10,000 and 1,000,000 cases.
NATIONAL_DB ?= /tmp/memberflow-national.db
.PHONY: bench-national
bench-national: $(STAMP)
	rm -f $(NATIONAL_DB) $(NATIONAL_DB)-wal $(NATIONAL_DB)-shm
	$(BIN)/python -m bench.scale generate $(NATIONAL_DB) --people 1000000 --latency
	rm -f $(NATIONAL_DB) $(NATIONAL_DB)-wal $(NATIONAL_DB)-shm
	$(BIN)/python -m bench.memory --cases 10000 1000000

clean:
	rm -rf $(VENV) memberflow-demo.db* .pytest_cache
