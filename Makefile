# `make demo` and `make test` each create .venv on first use and install the package into it.
VENV ?= .venv
PYTHON ?= python3
TORCH ?= torch==2.13.0
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEMO_DIR ?= demo

SPECIALISTS ?= runs/specialists
SHIPPED := src/global_workspace/shipped/simple_shapes_32

.PHONY: install demo test lint bench clean specialists

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH)"
	$(PY) -m pip install -q -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/gw demo $(DEMO_DIR) --force

test: $(STAMP)
	$(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks analysis
	$(VENV)/bin/ruff format --check src tests benchmarks analysis
	$(VENV)/bin/mypy

bench: $(STAMP)
	$(PY) benchmarks/bench_data.py
	$(PY) benchmarks/bench_factory.py
	$(PY) benchmarks/bench_domains.py
	$(PY) benchmarks/bench_train.py

# Retrain the shipped specialists from nothing (hours on a CPU; rerunning resumes). Two processes of
# one thread each train v and t side by side.
specialists: $(STAMP)
	test -d $(SPECIALISTS)/data || $(VENV)/bin/gw data simple-shapes $(SPECIALISTS)/data --train 500000 --val 2000 --test 2000 --seed 0
	test -d $(SPECIALISTS)/fresh || $(VENV)/bin/gw data simple-shapes $(SPECIALISTS)/fresh --train 1000 --val 1000 --test 5000 --seed 1
	OMP_NUM_THREADS=1 $(VENV)/bin/gw pretrain $(SPECIALISTS)/data --from-scratch --domains v --steps v=20000,probe=2000,blur=1500 --batch-size 512 --device cpu --quiet & \
	OMP_NUM_THREADS=1 $(VENV)/bin/gw pretrain $(SPECIALISTS)/data --from-scratch --domains t --steps t=5000,caption=1500 --batch-size 512 --device cpu --quiet; \
	wait
	$(VENV)/bin/gw specialists export $(SPECIALISTS)/data --fresh $(SPECIALISTS)/fresh --out $(SHIPPED) --force

clean:
	rm -rf $(VENV) $(DEMO_DIR) .pytest_cache .mypy_cache .ruff_cache
