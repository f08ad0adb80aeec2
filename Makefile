# Two commands on a fresh machine: `make demo` and `make test`. Each bootstraps the virtual
# environment (and the embedded PostgreSQL server) from nothing but Python >= 3.11 and make.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
DEMO_CREATORS ?= 10000
BENCH_SIZES   ?= 100000 1000000
TEST_WORKERS  ?= 2
BENCH_SEQUENCE_CREATORS ?= 100000
BENCH_LATENCY_CREATORS ?= 100000
BENCH_MARTS_CREATORS ?= 1000000
BENCH_MARTS_EVENTS   ?= 10000000
# e.g. --reuse (take the size's template database as it is), --engines postgres
BENCH_MARTS_ARGS     ?=
# `make demo` always uses the embedded server, never a database named by your environment.
EMBEDDED := env -u DATABASE_URL -u PGHOST -u PGHOSTADDR -u PGPORT -u PGDATABASE -u PGUSER -u PGSERVICE

PRISMA_STAMP := prisma/node_modules/.installed-$(shell cat prisma/package-lock.json | cksum | cut -d' ' -f1)

.PHONY: install browser prisma java demo demo-spark mutation test lint lint-sql lint-python test-python bench bench-backfill bench-latency bench-marts bench-sequence clean db-stop

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev,spark]'
	@rm -f $(VENV)/.installed-*
	@touch $@

install: $(STAMP)

# The report test renders in a real headless browser: Debian's chromium, installed when missing
# (as root, from the distribution's registry; otherwise say what to install).
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing chromium (for the report's browser test)"; \
	    DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null; \
	  else echo "make test needs chromium: sudo apt-get install chromium" >&2; exit 1; fi; }

# Spark (the marts from the lake: make demo-spark and the equality test) needs a Java runtime: Debian's, installed
# when missing (as root, from the distribution's registry; otherwise say what to install).
java:
	@command -v java >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing a Java runtime (for Spark)"; \
	    DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends default-jre-headless >/dev/null; \
	  else echo "Spark needs Java: sudo apt-get install default-jre-headless" >&2; exit 1; fi; }

# The application's ORM CLI (Prisma 6.19), which the tests run against the migrated database: Node.js and
# npm from the machine, the pinned packages from the npm registry (install scripts off: nothing is downloaded
# from outside the registry).
$(PRISMA_STAMP): prisma/package.json prisma/package-lock.json
	@command -v npm >/dev/null 2>&1 || { echo "make test needs Node.js and npm (for the ORM's own CLI): sudo apt-get install nodejs npm" >&2; exit 1; }
	cd prisma && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	@rm -f prisma/node_modules/.installed-*
	@touch $@

prisma: $(PRISMA_STAMP)

demo: install
	$(EMBEDDED) $(BIN)/csinfra db reset --yes
	$(EMBEDDED) $(BIN)/csinfra demo-data --creators $(DEMO_CREATORS)
	$(EMBEDDED) $(BIN)/csinfra migrate up
	$(EMBEDDED) $(BIN)/csinfra migrate status
	$(EMBEDDED) $(BIN)/csinfra demo-data --events-only
	$(EMBEDDED) $(BIN)/csinfra backfill
	$(EMBEDDED) $(BIN)/csinfra backfill
	$(EMBEDDED) $(BIN)/csinfra verify
	$(EMBEDDED) $(BIN)/csinfra marts
	$(EMBEDDED) $(BIN)/csinfra report --out report.html

# The same marts on Spark (local mode) from a lake export of the demo database (run `make demo` first): export,
# build on Spark (with the data tests) and on PostgreSQL at the same moment, compare the marts row for row, and
# write the report from the Spark marts (report-spark.html).
demo-spark: AS_OF := $(shell date -u +'%Y-%m-%d %H:%M:%S')
demo-spark: install java
	$(EMBEDDED) $(BIN)/csinfra lake export --lake lake
	$(EMBEDDED) $(BIN)/csinfra marts --engine spark --lake lake --as-of '$(AS_OF)'
	$(EMBEDDED) $(BIN)/csinfra marts --skip-tests --as-of '$(AS_OF)'
	$(EMBEDDED) sh -c 'eval "$$($(BIN)/csinfra db env)" && $(BIN)/python -m creatorstays_infra.ops.marts_compare --spark-warehouse .csinfra/spark/warehouse'
	$(EMBEDDED) $(BIN)/csinfra report --engine spark --out report-spark.html

# Proves the suite bites: one rule constant, one message, one nullability and the blockers' order changed in a
# scratch copy, each must make a test fail (scripts/mutation/run.py).
mutation: install
	$(EMBEDDED) $(BIN)/python scripts/mutation/run.py

test: install browser prisma java lint test-python

lint: lint-sql lint-python

# The rule models render the catalogs when they compile: sqlfluff's dbt templater needs them loaded (dbt seed)
# in the lint database first.
lint-sql: install
	$(BIN)/squawk --config .squawk.toml scripts/migrations/*/migration.sql scripts/migrations/*/extras.sql
	$(BIN)/squawk --config scripts/migrations/squawk-down.toml scripts/migrations/*/down.sql
	$(EMBEDDED) sh -c 'eval "$$($(BIN)/csinfra db env)" && $(BIN)/dbt seed --quiet --project-dir . --profiles-dir . && $(BIN)/sqlfluff lint models'

lint-python: install
	$(BIN)/ruff check src tests/python scripts

# Two pytest workers (pytest-xdist), one test file each at a time: a file's tests share its module-wide fixtures
# (the Spark build). TEST_WORKERS=0 runs the suite in this process, one test after another.
test-python: install browser prisma java
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile --durations=25

bench: bench-backfill bench-latency bench-sequence bench-marts

bench-backfill: install
	$(EMBEDDED) $(BIN)/python scripts/bench/run.py --sizes $(BENCH_SIZES)

bench-latency: install
	$(EMBEDDED) $(BIN)/python scripts/bench/latency.py --creators $(BENCH_LATENCY_CREATORS)

bench-sequence: install
	$(EMBEDDED) $(BIN)/python scripts/bench/sequence.py --creators $(BENCH_SEQUENCE_CREATORS)

bench-marts: install
	$(EMBEDDED) $(BIN)/python scripts/bench/marts.py --creators $(BENCH_MARTS_CREATORS) --analytics-events $(BENCH_MARTS_EVENTS) $(BENCH_MARTS_ARGS)

db-stop:
	-$(BIN)/csinfra db stop

clean: db-stop
	rm -rf $(VENV) .csinfra target logs .pytest_cache .hypothesis report.html report-spark.html prisma/node_modules
