# Everything sets itself up on first use: a .venv with the project and its
# test/bench extras, re-made when pyproject.toml changes.
PYTHON ?= python3
VENV   ?= .venv
SHOOT  ?= samples/shoot
OUT    ?= out
JOBS   ?=
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed

.PHONY: eval-reframe render test test-fast bench lint clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,bench,speech,speech-multilingual,review,queue]'
	touch $(STAMP)

render: $(STAMP)
	$(BIN)/repurpose render "$(SHOOT)" --out "$(OUT)" $(if $(JOBS),--jobs $(JOBS))
	@echo "review and approve them: $(BIN)/repurpose review $(OUT) --masters $(dir $(SHOOT)) --open"
	@echo "then hand them to a scheduler: $(BIN)/repurpose export $(OUT) --to metricool --base-url URL --start DATETIME --out posts.csv"

test: $(STAMP)
	$(BIN)/python -m pytest

test-fast: $(STAMP)
	$(BIN)/python -m pytest -m 'not slow'

bench: $(STAMP)
	$(BIN)/python bench/run.py

eval-reframe: $(STAMP)
	$(BIN)/python bench/reframe.py $(COUNT)

lint: $(STAMP)
	$(BIN)/python -m pip install --quiet ruff mypy types-PyYAML types-defusedxml
	$(BIN)/ruff check pipeline tests bench
	$(BIN)/mypy

clean:
	rm -rf $(OUT) bench/.data .pytest_cache
