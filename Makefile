# The README's commands. Each target sets up .venv on first use (Python 3.11+ and make are all a
# fresh machine needs); `constraints.txt` pins what gets installed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run demo test lint bench install clean screenshots container-base

$(STAMP): pyproject.toml constraints.txt clients/python/pyproject.toml devtools/stripe-double/pyproject.toml
	@echo "Setting up $(VENV) (once, about a minute): billplane and what it needs, one line each..."
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --progress-bar off -c constraints.txt -e '.[dev]' -e 'clients/python[offline,webhooks]' -e devtools/stripe-double
	touch $(STAMP)
	@echo "$(VENV) is ready."

install: $(STAMP)

# The admin token logs in to the dashboard; the secret key encrypts the keys that sign
# entitlement snapshots (keep it: another one cannot read them).
.env: | $(STAMP)
	@$(BIN)/python -c "import secrets; print('BILLPLANE_ADMIN_TOKEN=' + secrets.token_urlsafe(24)); print('BILLPLANE_SECRET_KEY=' + secrets.token_urlsafe(32))" > .env
	@echo "Created .env with a new admin token (log in to the dashboard with it) and a secret key:"
	@grep BILLPLANE_ADMIN_TOKEN .env

# `make run PORT=8100` serves on another port (set BILLPLANE_PUBLIC_URL to match for Stripe).
PORT ?= 8000

run: $(STAMP) .env
	$(BIN)/billplane db upgrade
	$(BIN)/billplane serve --host 127.0.0.1 --port $(PORT)

# `make demo` serves a demo database made anew each time (demo.db; `make run` keeps serving its
# own database): the realtyos catalogue `billplane demo` fills it with, what to try, the server.
DEMO_DATABASE := DATABASE_URL=sqlite:///./demo.db

demo: $(STAMP) .env
	rm -f demo.db demo.db-wal demo.db-shm
	$(DEMO_DATABASE) $(BIN)/billplane db upgrade
	$(DEMO_DATABASE) $(BIN)/billplane demo --port $(PORT)
	$(DEMO_DATABASE) $(BIN)/billplane serve --host 127.0.0.1 --port $(PORT)

# Two processes: this machine's two cores (see tests/servers.py for how they share ports, and
# the `xdist_group` marks for the tests that must not run beside each other).
test: $(STAMP)
	$(BIN)/python -m pytest -n 2 --dist loadgroup

# The container test's Docker engine (started and left running when none answers), its Debian
# base image (debootstrap, about a minute) and its wheels, once per machine, and the image's
# layers in the build cache: ahead of `make test`, so that the suite's clock is not charged.
container-base: $(STAMP)
	$(BIN)/python tests/containers.py

lint: $(STAMP)
	$(BIN)/ruff format --check src tests bench clients examples devtools
	$(BIN)/ruff check src tests bench clients examples devtools
	$(BIN)/mypy src devtools/stripe-double/src clients/python/src examples/realtyos tests bench
	$(BIN)/lint-imports --no-cache

bench: $(STAMP)
	$(BIN)/python bench/run.py

# Refresh the dashboard pictures in docs/screenshots/ (the browser tests take them).
screenshots: $(STAMP)
	BILLPLANE_SCREENSHOTS=docs/screenshots $(BIN)/python -m pytest -m browser -k sqlite tests/browser

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
