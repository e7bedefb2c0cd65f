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
	cat tests/eval/questions.jsonl tests/eval/holdout.jsonl tests/eval/dev_extra.jsonl > .eval-dev.jsonl
	@echo "== dev split (tuned on)"
	$(VENV)/bin/qabot eval .eval-dev.jsonl
	@echo "== test split (never tuned on)"
	$(VENV)/bin/qabot eval tests/eval/test.jsonl

bench: $(STAMP)
	$(VENV)/bin/python -m benchmarks.bench_core

clean:
	rm -rf $(VENV) index data .pytest_cache
