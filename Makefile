# Two commands do all the set-up on a fresh machine:
#   make run    import examples/contacts.csv and run a campaign on the embedded stack
#   make test   run the whole test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
CONTACTS ?= examples/contacts.csv
# Without ARGS, the example runs as a short demonstration: retries come after
# seconds instead of the product's 4 hours, and the window is the widest the law
# allows on every day, so that some contacts are inside it whatever the hour.
ARGS ?= --retry-delay 10s --window-start 08:00 --window-end 21:00 --window-days 1,2,3,4,5,6,7
SCENARIO ?= examples/scenario.json

.PHONY: install run up down test lint bench

$(BIN)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $@

install: $(BIN)/.installed

run: install
	$(BIN)/outbound run $(CONTACTS) --scenario $(SCENARIO) $(ARGS)

up: install
	$(BIN)/outbound up --scenario $(SCENARIO)

down: install
	$(BIN)/outbound down

test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Benchmarks print their figures and ratios; not part of `make test`.
bench: install
	$(BIN)/python -m bench.run_all

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
