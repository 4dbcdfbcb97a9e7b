# The README's two commands. Each does its own set-up on a fresh machine with only python3:
# a virtualenv in .venv, the project installed into it, and throw-away PostgreSQL and Redis
# started (and stopped) by the commands themselves.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell $(PYTHON) -c "import hashlib,sys;print(hashlib.sha1(open('pyproject.toml','rb').read()).hexdigest()[:12])")
PYTEST_ARGS ?=
# Upstream Label Studio 1.23.2's pins of what the harness imports: the second dependency set CI tests.
COMPAT       := .venv-compat
COMPAT_PINS  := "Django==5.2.*" "django-rq==3.1" "rq==2.6.*" "redis==5.2.*" "psycopg[binary]==3.2.*"
COMPAT_STAMP := $(COMPAT)/.installed-$(shell $(PYTHON) -c "import hashlib,sys;print(hashlib.sha1(open('pyproject.toml','rb').read()+b'$(COMPAT_PINS)').hexdigest()[:12])")

.PHONY: run serve test test-postgres test-sqlite test-shop test-compat test-explore load load-nemesis load-faults install clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[app,load,services,test]"
	rm -f $(VENV)/.installed-* && touch $(STAMP)

## make run: the races in both modes, a short load run of every scenario, and the gated report
## (reports/latest/report.html), all on PostgreSQL, Redis and rq workers it starts itself; then the
## short nemesis run (reports/latest/nemesis/report.html).
run: $(STAMP)
	$(BIN)/racelab run
	$(MAKE) load-nemesis

## make serve: serve the bundled app on http://127.0.0.1:8080 until Ctrl-C.
serve: $(STAMP)
	$(BIN)/racelab serve --port $${PORT:-8080}

## make load: the short gated load run CI does after the tests.
load: $(STAMP)
	$(BIN)/racelab load --scenario all --users $${USERS:-10} --run-time $${RUN_TIME:-30s} --think-time "$${THINK_TIME:-}"

## make load-nemesis: a short load run with faults (PostgreSQL paused, Redis paused, a gunicorn worker
## killed, one every 10 s for 3 s), judged on anomalies, counts, stuck files and the completeness check.
## The kinds the app recovers from within the 7 s between two faults; `make load-faults` runs every kind,
## one at a time. NEMESIS=kill-worker,... to try others on this schedule.
NEMESIS ?= pause-postgres,pause-redis,kill-web
load-nemesis: $(STAMP)
	$(BIN)/racelab load --scenario all --users $${USERS:-5} --run-time $${RUN_TIME:-40s} --think-time 0.5-2 \
		--nemesis $(NEMESIS) --nemesis-every 10 --nemesis-for 3 --stuck-timeout 60 --out reports/latest/nemesis

## make load-faults: each fault once, mid-run, under 20 users (93 % async imports, 1000-task batches, PDFs),
## each judged on completeness and on recovery within 30 s of its end (reports/latest/faults/KIND).
## The app's default 600 s stuck timeout, so that no recovery can lean on it; but a paused worker is held
## 135 s, past a stuck timeout of 60 s, while batch users import 20,000 tasks at a time. About 13 minutes;
## FAULTS=... for fewer.
FAULTS ?= kill-worker kill-workers kill-redis pause-redis pause-postgres kill-web pause-worker
load-faults: $(STAMP)
	@failed=""; for fault in $(FAULTS); do \
		batch=1000; case $$fault in pause-worker) every=155 hold=135 run=180s stuck=60 batch=20000;; \
			pause-redis) every=40 hold=5 run=60s stuck=600;; pause-postgres) every=40 hold=3 run=60s stuck=600;; \
			*) every=40 hold=1 run=60s stuck=600;; esac; \
		RACELAB_ASYNC_RATIO=0.93 RACELAB_BATCH_SIZE=$$batch $(BIN)/racelab load --scenario all --users 20 --run-time $$run \
			--nemesis $$fault --nemesis-every $$every --nemesis-for $$hold --stuck-timeout $$stuck \
			--out reports/latest/faults/$$fault || failed="$$failed $$fault"; \
	done; $(BIN)/python -m racelab.reports --campaign reports/latest/faults; \
	if [ -n "$$failed" ]; then echo "load-faults: gates failed under:$$failed"; exit 1; fi

## make test: the whole suite on PostgreSQL, then on SQLite, two processes each; then the second app
## (tests/shop: its own settings, no race points) on both, with today's dependencies and with upstream
## Label Studio 1.23.2's (django-rq 3.1, rq 2.6, redis 5.2, psycopg 3).
test: test-postgres test-sqlite test-shop test-compat test-explore

# A test that fails on a sync-point timeout runs once more, and the run reports it as rerun: about one CI run
# in three met one whose RQ worker thread never saw its job, cause not yet found (the failure prints RQ's
# state and every thread's stack). Any other failure, and a timeout that comes back, fails the run.
RERUN = --reruns 1 --only-rerun SyncPointTimeout

test-postgres: $(STAMP)
	$(BIN)/python -m pytest -n 2 --race-db postgres --race-budget 30 $(RERUN) $(PYTEST_ARGS)

test-sqlite: $(STAMP)
	$(BIN)/python -m pytest -n 2 --race-db sqlite --race-budget 30 $(RERUN) $(PYTEST_ARGS)

## make test-explore: each race found from its actors alone (and nothing with its fix on), 3 seeds, both databases.
test-explore: $(STAMP)
	$(BIN)/racelab explore --db both --seeds 3 --budget 40

test-shop: $(STAMP)
	cd tests/shop && ../../$(BIN)/python -m pytest -n 2 --race-db postgres --race-budget 30 $(RERUN)
	cd tests/shop && ../../$(BIN)/python -m pytest -n 2 --race-db sqlite --race-budget 30 $(RERUN)

$(COMPAT_STAMP): pyproject.toml
	$(PYTHON) -m venv $(COMPAT)
	$(COMPAT)/bin/python -m pip install --quiet --upgrade pip
	$(COMPAT)/bin/python -m pip install --quiet -e ".[services]" $(COMPAT_PINS) pytest-xdist pytest-timeout pytest-rerunfailures
	$(COMPAT)/bin/python -m pip check
	rm -f $(COMPAT)/.installed-* && touch $(COMPAT_STAMP)

test-compat: $(COMPAT_STAMP)
	cd tests/shop && ../../$(COMPAT)/bin/python -m pytest -n 2 --race-db postgres --race-budget 30 $(RERUN)
	cd tests/shop && ../../$(COMPAT)/bin/python -m pytest -n 2 --race-db sqlite --race-budget 30 $(RERUN)

clean:
	rm -rf $(VENV) $(COMPAT) .racelab reports/latest
