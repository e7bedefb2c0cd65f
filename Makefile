# Quick start:  make chat   (set up, build the index once, chat in the terminal; no tokens needed)
#               make test   (set up, run the whole test suite)
VENV := .venv
STAMP := $(VENV)/.qabot-installed

.PHONY: setup chat test lint bench eval clean

$(STAMP): pyproject.toml scripts/setup.sh
	bash scripts/setup.sh
	touch $(STAMP)

setup: $(STAMP)

chat: $(STAMP)
	$(VENV)/bin/qabot chat

test: $(STAMP)
	$(VENV)/bin/python -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

eval: $(STAMP)
	$(VENV)/bin/qabot index build -q
	$(VENV)/bin/qabot eval tests/eval/questions.jsonl
	$(VENV)/bin/qabot eval tests/eval/holdout.jsonl

bench: $(STAMP)
	$(VENV)/bin/python -m benchmarks.bench_core

clean:
	rm -rf $(VENV) index data .pytest_cache
