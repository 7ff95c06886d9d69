# Stockroom: `make run` (the app with demo data) and `make test` (the whole suite).
VENV ?= .venv
PYTHON ?= python3
FLASK = $(VENV)/bin/flask --app wsgi
HOST ?= 127.0.0.1
PORT ?= 5000

.PHONY: install run test bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[dev]'
	touch $@

install: $(VENV)/.installed

# Migrates, loads the demo shop into an empty database, prints the demo logins, and serves
# the dashboard with the scheduler's jobs running in-process.
run: install
	$(FLASK) db upgrade
	$(FLASK) demo --if-empty
	COOKIE_SECURE=0 $(FLASK) run --host $(HOST) --port $(PORT)

# PostgreSQL when TEST_DATABASE_URL is set (a fresh database is created and dropped), else SQLite.
test: install
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) instance .pytest_cache .hypothesis
