# The two commands of the README. Both create .venv and install the package when needed.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.obliviate-installed

.PHONY: demo test install clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/obliviate demo
	@echo "next: . $(VENV)/bin/activate   # puts obliviate on your PATH in this shell"

test: $(STAMP)
	$(PY) -m pytest -n auto

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache
