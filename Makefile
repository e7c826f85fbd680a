PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench clean messages catalogues

# Message catalogues: locale/<lang>/LC_MESSAGES/memberflow.po (committed) compile to .mo (built).
LANGS := vi en
PO := $(foreach lang,$(LANGS),locale/$(lang)/LC_MESSAGES/memberflow.po)
MO := $(PO:.po=.mo)
KEYWORDS := -k N_ -k NC_:1c,2 -k ngettext:1,2 -k pgettext:1c,2

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	for po in $(PO); do $(BIN)/pybabel compile --statistics -D memberflow -i $$po -o $${po%.po}.mo || exit 1; done
	touch $(STAMP)

%.mo: %.po | $(STAMP)
	$(BIN)/pybabel compile -D memberflow -i $< -o $@

catalogues: $(MO)

# Extract every marked message into the template, then bring each catalogue up to date with it.
messages: $(STAMP)
	$(BIN)/pybabel extract -F babel.cfg $(KEYWORDS) --no-location --sort-output --project memberflow \
		--version 0.1.0 -o locale/memberflow.pot .
	for lang in $(LANGS); do $(BIN)/pybabel update -D memberflow -i locale/memberflow.pot \
		-o locale/$$lang/LC_MESSAGES/memberflow.po -l $$lang --no-fuzzy-matching --ignore-obsolete \
		|| exit 1; done

demo: $(STAMP) catalogues
	$(BIN)/memberflow demo

test: $(STAMP) catalogues
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
	rm -rf $(VENV) memberflow-demo.db* .pytest_cache $(MO)
