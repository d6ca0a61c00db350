# `make run` starts everything (web, worker, embedded Redis); `make test` runs the tests (`make test-fast`:
# without browsers and chaos); `make bench` measures. `make run` installs requirements.txt only; the
# others add the test and bench tools of requirements-dev.txt.
PYTHON ?= python3
VENV := .venv

.PHONY: run test test-fast bench clean

run: $(VENV)/.installed
	$(VENV)/bin/python -m launcher

test: $(VENV)/.dev-installed
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

# The suite without the browser, chaos and fuzzing tests (marked slow): a few minutes.
test-fast: $(VENV)/.dev-installed
	$(VENV)/bin/python -m pytest -m "not slow" $(PYTEST_ARGS)

# Benchmarks against the bare engine in the same run (bench/README.md); BENCH_SCALE=0.1 for a quick look.
bench: $(VENV)/.dev-installed
	$(VENV)/bin/python -m bench.run $(BENCH_ARGS)

# The stamp is newer than requirements.txt once the venv holds exactly what it pins.
$(VENV)/.installed: requirements.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "error: Python 3.11 or newer is needed, but $(PYTHON) is Python " + sys.version.split()[0] + "; run e.g. make PYTHON=python3.12")'
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install -r requirements.txt
	touch $@

# The same for the test and bench tools, on top of the runtime (requirements-dev.txt includes requirements.txt).
$(VENV)/.dev-installed: requirements-dev.txt requirements.txt $(VENV)/.installed
	$(VENV)/bin/python -m pip install -r requirements-dev.txt
	touch $@

clean:
	rm -rf var $(VENV)
