# gridpatrol — the two commands a newcomer needs: `make demo` and `make test`.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
DEMO_DIR ?= demo-workspace
DEMO_MONTH ?= 2026-10

.PHONY: demo test test-latest venv lint bench clean

# installs are pinned to constraints.txt: the versions the suite last passed with (pip freeze)
$(VENV)/.installed: pyproject.toml constraints.txt
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "需要 Python 3.11 ($(PYTHON) not found); set PYTHON=/path/to/python3.11"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[test,dev]'
	touch $@

venv: $(VENV)/.installed
	@# the packages' bytecode, as pip writes it for an installed wheel: an editable install
	@# under PYTHONDONTWRITEBYTECODE=1 (CI, this machine) would compile every module at every
	@# run (0.1-0.2 s of each nightly start-up); up to date in a few ms
	@$(PY) -m compileall -q trajectory scoring maps benchmarks >/dev/null

demo: venv
	$(PY) -m trajectory.run --demo --workspace $(DEMO_DIR) --month $(DEMO_MONTH)

lint: venv
	$(VENV)/bin/ruff check trajectory scoring maps tests benchmarks
	$(VENV)/bin/ruff format --check trajectory scoring maps tests benchmarks
	$(VENV)/bin/mypy trajectory scoring maps

test: venv
	bash tests/setup_system.sh
	$(MAKE) lint
	$(VENV)/bin/pytest

# the newest releases of every dependency, in a separate environment (.venv-latest)
test-latest:
	$(PYTHON) -m venv .venv-latest
	.venv-latest/bin/python -m pip install --quiet --upgrade pip
	.venv-latest/bin/python -m pip install --quiet --upgrade -e '.[test,dev]'
	bash tests/setup_system.sh
	.venv-latest/bin/pytest

# issue 12's two benchmarks: a 4 M-point night stage by stage, and a 30-night month (~15 min)
bench: venv
	$(PY) -m benchmarks.bench_stages --runs 3
	$(PY) -m benchmarks.bench_month

clean:
	rm -rf $(VENV) $(DEMO_DIR) .pytest_cache .mypy_cache .ruff_cache
