# The README's two commands. Each does its own set-up on a fresh machine with only python3:
# a virtualenv in .venv, the project installed into it, and throw-away PostgreSQL and Redis
# started (and stopped) by the commands themselves.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell $(PYTHON) -c "import hashlib,sys;print(hashlib.sha1(open('pyproject.toml','rb').read()).hexdigest()[:12])")
PYTEST_ARGS ?=

.PHONY: run serve test test-postgres test-sqlite load install clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[app,load,services,test]"
	rm -f $(VENV)/.installed-* && touch $(STAMP)

## make run: the races in both modes, a short load run of every scenario, and the gated report
## (reports/latest/report.html), all on PostgreSQL, Redis and rq workers it starts itself.
run: $(STAMP)
	$(BIN)/racelab run

## make serve: serve the bundled app on http://127.0.0.1:8080 until Ctrl-C.
serve: $(STAMP)
	$(BIN)/racelab serve --port $${PORT:-8080}

## make load: the short gated load run CI does after the tests.
load: $(STAMP)
	$(BIN)/racelab load --scenario all --users $${USERS:-10} --run-time $${RUN_TIME:-30s} --think-time "$${THINK_TIME:-}"

## make test: the whole suite on PostgreSQL, then on SQLite, two processes each.
test: test-postgres test-sqlite

test-postgres: $(STAMP)
	$(BIN)/python -m pytest -n 2 --race-db postgres $(PYTEST_ARGS)

test-sqlite: $(STAMP)
	$(BIN)/python -m pytest -n 2 --race-db sqlite $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .racelab reports/latest
