# The two commands a fresh clone needs:  make report  (the main job)  and  make test.
# CIFAR-10 is read from $AML_DATA_DIR/cifar-10-batches-py (default: data/), downloaded if missing.
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
NOTEBOOKS := $(sort $(wildcard notebooks/[0-9][0-9]_*.ipynb))

.PHONY: setup test lint test-unit test-notebooks test-report report lab bench clean-venv clean-runs mutate

setup: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --no-cache-dir --upgrade pip
	$(PY) -m pip install --quiet --no-cache-dir -r requirements.txt
	$(PY) -m pip install --quiet --no-cache-dir --no-deps -e .
	touch $(STAMP)

## make test: unit tests, every notebook under nbval (small budget), and a smoke build of the PDF
test: lint test-unit test-notebooks test-report

lint: setup
	$(VENV)/bin/ruff check .

test-unit: setup
	$(PY) -m pytest tests

## nbval writes into a temporary run folder seeded with the committed results (never results/ or imgs/);
## a relative AML_DATA_DIR is made absolute here (the kernels start in notebooks/)
test-notebooks: setup
	out=$$(mktemp -d /tmp/aml-nbval-XXXXXX) && \
	  $(PY) -c 'import sys; from aml.runs import seed_run_folder; seed_run_folder(sys.argv[1])' "$$out" && \
	  AML_SMOKE=1 AML_OUTPUT_DIR="$$out" $(if $(AML_DATA_DIR),AML_DATA_DIR="$(abspath $(AML_DATA_DIR))") \
	  $(PY) -m pytest --nbval-lax --nbval-cell-timeout=600 -p no:cacheprovider $(NOTEBOOKS)

## a smoke build runs in runs/<stamp>-smoke/ and never promotes; its report goes to a temporary folder
test-report: setup
	$(PY) -m tools.report --smoke --out $$(mktemp -d /tmp/aml-report-XXXXXX) --check

## make report: execute (in runs/<stamp>/) the notebooks whose cache key changed, with the full budget,
## export and check the PDF, then promote: notebooks/, results/, imgs/, the ledger's new rows, report/.
## FORCE=1 re-runs every notebook. A failed build promotes nothing and names its run folder.
## MAINTAINING.md has the rules.
report: setup
	$(PY) -m tools.report $(if $(filter-out 0,$(FORCE)),--force)

## make clean-runs: delete the git-ignored run folders (interactive sessions, nbval, smoke and full builds)
clean-runs:
	rm -rf runs

lab: setup
	$(VENV)/bin/jupyter lab notebooks/

bench: setup
	$(PY) benchmarks/numpy_step.py
	$(PY) benchmarks/q4_epoch.py
	$(PY) benchmarks/q4_bfloat16.py

clean-venv:
	rm -rf $(VENV)

## make mutate: mutation testing of the core with mutmut (not part of CI; see tests/README.md).
## Starts from a clean mutants/ folder; the last line printed is killed=K/N.
mutate: setup
	rm -rf mutants && mkdir mutants
	OMP_NUM_THREADS=1 $(VENV)/bin/mutmut run > mutants/run.log 2>&1 || { tail -n 40 mutants/run.log; exit 1; }
	@$(PY) tests/mutation_score.py
