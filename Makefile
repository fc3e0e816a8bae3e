# make test      set up .venv on first use, then run the whole test suite
# make test-fast unit tests only
# make test-cluster the job on a standalone cluster and on model replicas (tests/faults/test_cluster.py)
# make lint      ruff check and format check
# make compare   the model comparison, quick profile (experiments/)
# make bench     service throughput, a backlog drained, then a steady stream's latency per tweet (benchmarks/pipeline.py)
# make dashboard the dashboard of the configured outputs on http://127.0.0.1:8501
# make bench-dashboard  the dashboard's data time and memory on 1 million tweets (benchmarks/dashboard.py)
# make load-test Locust against the service on loopback (benchmarks/load_test.py)
# make clean     delete everything a run wrote under output/ (spool, checkpoints, outputs, logs)
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: install install-experiments browser test test-fast test-cluster lint bench dashboard bench-dashboard compare load-test clean

$(VENV)/.installed: requirements.lock
	@bash scripts/check_java.sh
	$(PYTHON) -m venv $(VENV)
	# torch first, pinned: pip takes the CPU build; a looser spec would pull a CUDA build.
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -r requirements.lock
	touch $@

install: $(VENV)/.installed

# TensorFlow for the GRU/LSTM rows of experiments/ (not needed to run the pipeline).
$(VENV)/.experiments: $(VENV)/.installed requirements-experiments.lock
	$(PY) -m pip install --quiet -r requirements-experiments.lock
	touch $@

install-experiments: $(VENV)/.experiments

# Debian's Chromium for the dashboard's browser tests (tests/browser).
browser:
	@bash scripts/install_chromium.sh

test: install install-experiments browser
	$(PY) -m pytest --durations=25

$(VENV)/.bench: $(VENV)/.installed requirements-bench.lock
	$(PY) -m pip install --quiet -r requirements-bench.lock
	touch $@

load-test: $(VENV)/.bench
	$(PY) -m benchmarks.load_test --scenario single --users 500 --spawn-rate 50 --seconds 60
	$(PY) -m benchmarks.load_test --scenario batch --users 8 --spawn-rate 8 --seconds 30

compare: install-experiments
	$(PY) -m experiments.compare --profile quick

test-fast: install
	$(PY) -m pytest -m unit

test-cluster: install
	$(PY) -m pytest tests/faults/test_cluster.py

lint: install
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

bench: install
	$(PY) -m benchmarks.pipeline --steady-rate 100 --steady-seconds 60

dashboard: install
	$(PY) -m dashboard

bench-dashboard: install browser
	$(PY) -m benchmarks.dashboard

# Everything a run writes under output/ (conf/pipeline.toml's defaults), so the next run starts afresh.
RUN_OUTPUTS := output/spool output/spool-done output/tweets output/quarantine output/checkpoints \
	output/trends output/alerts output/logs

clean:
	rm -rf $(RUN_OUTPUTS)
