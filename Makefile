# The README's two commands are `make run` (the whole application on 127.0.0.1) and `make test`
# (everything CI checks). Both install what they need on first use: Python 3.11+, Java 17, Node/npm.

PYTHON ?= python3
VENV   := .venv
TOOLS  := .venv-tools
PY     := $(VENV)/bin/python
SAM_CLI_VERSION := 1.170.0
CFN_LINT_VERSION := 1.58.0


.PHONY: run schedule report screenshots bench-scale test test-scale setup chromium lint typecheck template-check unit integration fuzz bench bench-card openapi clean

run: $(VENV)/.installed node_modules/.installed
	$(PY) -m devtools.local $(ARGS)

# Fire a daily run against the running `make run`: `make schedule RUN=expiry AT=2028-12-01T03:00:00Z`.
RUN ?= expiry
AT ?=
schedule: $(VENV)/.installed
	$(PY) -m devtools.local run $(RUN) $(if $(AT),--at $(AT))

# The monthly liability report of the running local mode, as of the start of AT's month (default: now)
report: $(VENV)/.installed
	$(PY) -m devtools.local report $(if $(AT),--at $(AT))

# The README's screenshots of the support console, from its browser tests
screenshots: setup chromium
	CONSOLE_SCREENSHOTS=docs/console $(PY) -m pytest -q tests/browser/test_console.py

test: setup chromium lint typecheck template-check
	$(PY) -m pytest -n 2 --dist loadfile

# The business card at full scale: 30 purchases a day for two years (~22,000), two policies (~15 min).
test-scale: setup
	LOYALTY_CARD_PURCHASES_PER_DAY=30 $(PY) -m pytest tests/integration/test_engine_limits.py -n 2 -k business

setup: $(VENV)/.installed node_modules/.installed $(TOOLS)/.installed

# The browser tests (tests/browser) drive the distribution's Chromium: installed when missing
# (as root, as CI runs; Playwright's own browser downloads are not used).
CHROMIUM := /usr/bin/chromium
chromium:
	@test -x $(CHROMIUM) || { apt-get install -y chromium chromium-driver || \
		{ apt-get update && apt-get install -y chromium chromium-driver; }; }

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is needed"'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $@

# SAM CLI and cfn-lint pin their own boto3: they live in a venv of their own.
$(TOOLS)/.installed: Makefile
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet --upgrade pip
	$(TOOLS)/bin/python -m pip install --quiet aws-sam-cli==$(SAM_CLI_VERSION) cfn-lint==$(CFN_LINT_VERSION)
	touch $@

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(VENV)/.installed
	$(VENV)/bin/mypy

template-check: $(TOOLS)/.installed
	$(TOOLS)/bin/cfn-lint template.yaml
	SAM_CLI_TELEMETRY=0 $(TOOLS)/bin/sam validate --lint --template-file template.yaml --region eu-west-1
	scripts/with-python312 $(TOOLS)/bin/sam build --template-file template.yaml --build-dir .aws-sam/build

unit: $(VENV)/.installed
	$(PY) -m pytest tests/unit -q

integration: setup
	$(PY) -m pytest tests/integration -q

# Schemathesis on every operation of docs/openapi.json, 1000 examples each (CI runs 50): `make fuzz EXAMPLES=5000`.
EXAMPLES ?= 1000
fuzz: $(VENV)/.installed node_modules/.installed
	LOYALTY_FUZZ_EXAMPLES=$(EXAMPLES) $(PY) -m pytest tests/integration/test_openapi_fuzz.py -q -s

bench: setup
	$(PY) -m bench

# A business card at full scale (30 purchases a day for two years, both policies side by side: ~6 min).
bench-card: setup
	$(PY) -m bench.business_card $(ARGS)

# The expiry and reminder runs over 100,000 lots and over 1,000,000 (10x the table, the same due
# members), side by side (issue #8; seeding the larger table alone takes ~20 min on DynamoDB Local).
bench-scale: setup
	$(PY) -m bench.expiry_scale --scale 10

openapi: $(VENV)/.installed
	$(PY) -m devtools.openapi_export

clean:
	rm -rf .aws-sam .pytest_cache .ruff_cache .mypy_cache
