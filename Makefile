# Two commands on a fresh clone: `make demo` (main job) and `make test` (whole suite).
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp

.PHONY: demo test bench lint clean

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# The CPU wheel of torch 2.13.0 lies on the machine's disk; a looser spec would pull a multi-GB CUDA build.
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e ".[llm,trl,dev,reasoning]"
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/dagsim demo --out out

test: $(STAMP)
	$(PY) -m pytest -q

bench: $(STAMP)
	for b in bench/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

lint: $(STAMP)
	$(VENV)/bin/ruff check app dagsim llm proofs_check tests bench figures

clean:
	rm -rf $(VENV) out .pytest_cache .hypothesis
