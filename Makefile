# prox-spark developer entry points. `make demo` and `make test` work on a fresh machine: they build the
# virtualenv and fetch the Delta jars first (both cached under ~/.cache/prox-spark, shared by all clones).
# `make demo` installs only what the refine job needs (Spark + the CPU model runtime); `make test` adds the
# training stack (torch, transformers), pytest and the notebook runner.

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.ONESHELL:
.DEFAULT_GOAL := help

# Shared across clones, so CI's fresh clone reuses the installed packages.
VENV ?= $(HOME)/.cache/prox-spark/venv
PYTHON ?= python3.11
# The extras each goal needs: the refine job runs on DEMO_EXTRAS (the demo reads the bundled JSONL: no `warc`);
# tests (the Spark Connect test and the WARC readers among them), benchmarks, training and the comparison need
# FULL_EXTRAS. Any goal outside LIGHT_GOALS on the command line (`make demo test` too) asks for FULL_EXTRAS;
# EXTRAS=... overrides both.
DEMO_EXTRAS := spark,cpu
FULL_EXTRAS := spark,cpu,warc,connect,train,dev,notebooks
LIGHT_GOALS := demo jars help venv-spark35 jars-spark35
EXTRAS ?= $(if $(filter-out $(LIGHT_GOALS),$(or $(MAKECMDGOALS),help)),$(FULL_EXTRAS),$(DEMO_EXTRAS))
# The exact versions the venv is tested with; pyproject.toml declares the ranges the package supports.
CONSTRAINTS := constraints.txt
JARS_DIR ?= $(HOME)/.cache/prox-spark/jars
DEMO_OUT ?= out/demo
PYTEST_ARGS ?=
DIST_DIR ?= dist
DEMO_ARGS ?=
BENCH_ARGS ?=

PY := $(VENV)/bin/python
STAMP := $(VENV)/.prox-spark-stamp
REPO_DIR := $(abspath $(CURDIR))

# Sessions and `make jars` read the jar folder from here.
export PROX_SPARK_JARS_DIR := $(JARS_DIR)

.PHONY: help venv jars test demo bench wheel

help:
	@echo "make demo    build venv + jars if needed, run the refine job on the bundled sample corpus -> $(DEMO_OUT)"
	@echo "make test    build venv + jars if needed, run pytest (PYTEST_ARGS='-k udf' passes through)"
	@echo "make venv    create/refresh $(VENV) with -e .[$(FULL_EXTRAS)] (skipped when up to date; demo needs only [$(DEMO_EXTRAS)])"
	@echo "make jars    fetch the Delta jars once into $(JARS_DIR) (no network when present)"
	@echo "make bench   run the benchmarks in benchmarks/ (BENCH_ARGS passes through)"
	@echo "make compare raw vs rules vs ProX: refine the shared data four ways, pre-train on each -> $(COMPARE_OUT)"
	@echo "make wheel   build the prox-spark wheel (no dependencies bundled) into $(DIST_DIR)/ for Databricks/EMR"
	@echo "make test-spark35  the job's end-to-end tests on Spark 3.5 + Delta 3.3 in $(VENV_SPARK35) (builds it and its jars if needed)"

# pip runs only when pyproject.toml or constraints.txt changed (sha256) or an extra EXTRAS needs is missing:
# the stamp records the installed extras as a set, so a venv with more extras than a goal needs is left alone
# (`make demo` after `make test` runs no pip). An install covers the needed and the recorded extras, so nothing
# installed goes stale. When only the checkout differs (another clone installed last), only the editable link is
# redone (--no-deps). A venv with the gpu runtime counts as having cpu: the two must never be installed together.
venv:
	@mkdir -p "$(dir $(VENV))"
	exec 9>"$(VENV).lock"
	if command -v flock >/dev/null; then flock 9; fi   # two clones running make at once
	if [ ! -x "$(PY)" ]; then
	  echo "venv: creating $(VENV) with $(PYTHON)"
	  $(PYTHON) -m venv "$(VENV)"
	  "$(PY)" -m pip install -q --upgrade pip
	fi
	extras_set() { tr ', ' '\n\n' <<<"$$1" | sed '/^$$/d' | sort -u; }   # "b,a,b" -> lines a, b
	want_hash="$$(cat pyproject.toml "$(CONSTRAINTS)" | sha256sum | cut -d' ' -f1)"
	stamp_hash=""; stamp_extras=""; stamp_repo=""
	if [ -f "$(STAMP)" ]; then
	  stamp_hash="$$(sed -n 's/^deps_sha256=//p' "$(STAMP)")"
	  stamp_extras="$$(sed -n 's/^extras=//p' "$(STAMP)")"
	  stamp_repo="$$(sed -n 's/^repo=//p' "$(STAMP)")"
	fi
	needed="$(EXTRAS)"
	if extras_set "$$stamp_extras" | grep -x gpu >/dev/null; then needed="$$(extras_set "$$needed" | sed 's/^cpu$$/gpu/')"; fi
	missing="$$(comm -23 <(extras_set "$$needed") <(extras_set "$$stamp_extras") | paste -sd, -)"
	installed="$$(extras_set "$$needed,$$stamp_extras" | paste -sd, -)"
	# Where the editable install really points (pip's direct_url.json), whatever the stamp says.
	linked_repo="$$(cd / && "$(PY)" -c 'import json, urllib.parse as u, importlib.metadata as m; d = json.loads(m.distribution("prox-spark").read_text("direct_url.json") or "{}"); print(u.unquote(u.urlparse(d.get("url", "")).path) if d.get("dir_info", {}).get("editable") else "")' 2>/dev/null || true)"
	if [ "$$stamp_hash" != "$$want_hash" ] || [ -n "$$missing" ]; then
	  why="$$([ -n "$$missing" ] && echo "extras missing: $$missing" || echo "pyproject.toml or $(CONSTRAINTS) changed")"
	  echo "venv: installing -e .[$$installed] into $(VENV) ($$why)"
	  "$(PY)" -m pip install -q -c "$(CONSTRAINTS)" -e ".[$$installed]"
	elif [ "$$stamp_repo" != "$(REPO_DIR)" ] || [ "$$linked_repo" != "$(REPO_DIR)" ]; then
	  echo "venv: pointing the editable install at $(REPO_DIR) (was: $${linked_repo:-none})"
	  "$(PY)" -m pip install -q --no-deps -e .
	else
	  echo "venv: up to date ($(VENV), extras $$installed)"
	fi
	printf 'deps_sha256=%s\nextras=%s\nrepo=%s\n' "$$want_hash" "$$installed" "$(REPO_DIR)" > "$(STAMP)"

# Resolved once at set-up (checksum-pinned download from Maven Central); jobs and tests never download.
jars: venv
	@"$(PY)" -m jobs.delta_jars fetch --dest "$(JARS_DIR)"

test: venv jars
	@rc=0
	"$(PY)" -m pytest -q $(PYTEST_ARGS) || rc=$$?
	if [ "$$rc" -eq 5 ]; then echo "error: pytest collected no tests (exit 5) - treated as a failure" >&2; fi
	exit "$$rc"

# --- the Spark 3.5 + Delta 3.3 line (EMR 7.x, Databricks 14.3/15.4 LTS) ------------------------------------
# A second venv pinned by constraints-spark35.txt (pyspark 3.5.5, delta-spark 3.3.2), built and reused by the
# same `venv` recipe, with only what the job's end-to-end tests need (no torch), and its Delta jars
# (io.delta:delta-spark_2.12:3.3.2) in their own cache. `make test-spark35` runs SPARK35_TESTS there; the
# untrained fixture models those tests use are exported by the main venv's training stack first (the 3.5 venv
# has no torch) into a temporary folder that the tests read through PROX_SPARK_TEST_MODELS; tests marked `train`
# (pre-training reads of the refined table: torch, deltalake) are deselected.
VENV_SPARK35 ?= $(HOME)/.cache/prox-spark/venv-spark35
JARS_DIR_SPARK35 ?= $(HOME)/.cache/prox-spark/jars-spark35
# `warc`: test_refine_job.py and test_refine_integrity.py read WARC input
SPARK35_EXTRAS := spark,cpu,warc,dev
# The job end to end (JSONL, parquet, WARC and Delta in, every table out, the count balance, reruns, a refresh,
# shard resume after a kill, concurrent writers, metastore tables, the audits) and its Spark glue; the Connect
# tests in test_connect.py are skipped there with the reason. Left to `make test` (4.0 only), for CI's time:
# spark.staging=delta (test_staging.py), apply, the pipeline modes, the notebooks and the wheel.
SPARK35_TESTS ?= tests/test_spark_lines.py tests/test_connect.py tests/test_refine_job.py tests/test_refine_integrity.py \
  tests/test_refine_reliability.py tests/test_audit.py tests/test_guard_overrides_audit.py tests/test_unity_catalog.py \
  tests/test_udf_staged.py tests/test_spark_executor_udf.py tests/test_spark_logging.py
PY_SPARK35 := $(VENV_SPARK35)/bin/python

.PHONY: venv-spark35 jars-spark35 test-spark35

venv-spark35:
	@$(MAKE) --no-print-directory venv VENV="$(VENV_SPARK35)" CONSTRAINTS=constraints-spark35.txt EXTRAS="$(SPARK35_EXTRAS)"

jars-spark35: venv-spark35
	@PROX_SPARK_JARS_DIR="$(JARS_DIR_SPARK35)" "$(PY_SPARK35)" -m jobs.delta_jars fetch --dest "$(JARS_DIR_SPARK35)"

test-spark35: venv jars-spark35
	@models="$$(mktemp -d)"; trap 'rm -rf "$$models"' EXIT
	# the fixture models tests/conftest.py builds in-process on the 4.0 line (max_prompt_tokens as there)
	"$(PY)" -m prox_spark.training.untrained "$$models" --max-prompt-tokens 192 >/dev/null
	rc=0
	PROX_SPARK_JARS_DIR="$(JARS_DIR_SPARK35)" PROX_SPARK_TEST_MODELS="$$models" \
	  "$(PY_SPARK35)" -m pytest -q -m "not train" $(SPARK35_TESTS) $(PYTEST_ARGS) || rc=$$?
	if [ "$$rc" -eq 5 ]; then echo "error: pytest collected no tests (exit 5) - treated as a failure" >&2; fi
	exit "$$rc"

# The refine job on the bundled sample corpus with the committed default models (conf/local.yaml).
demo: venv jars
	@rm -rf "$(DEMO_OUT)"
	"$(PY)" -m jobs.refine --conf conf/local.yaml output.path="$(DEMO_OUT)" $(DEMO_ARGS)

bench: venv
	@ran=0
	for file in benchmarks/*.py; do
	  [ -e "$$file" ] || continue
	  name="$$(basename "$$file" .py)"
	  [ "$$name" = "__init__" ] && continue
	  grep -q "__name__ == \"__main__\"" "$$file" || continue   # helpers, not benchmarks
	  echo "== benchmarks/$$name"
	  "$(PY)" -m "benchmarks.$$name" $(BENCH_ARGS)
	  ran=$$((ran + 1))
	done
	if [ "$$ran" -eq 0 ]; then echo "bench: no benchmarks in benchmarks/"; fi

# Raw vs rules vs ProX-doc vs ProX at an equal token budget on the shared data (about 13 minutes on 2 cores):
# comparison.{md,json} and loss_curves.png under $(COMPARE_OUT). COMPARE_ARGS passes key=value overrides.
COMPARE_OUT ?= out/compare
COMPARE_ARGS ?=

.PHONY: compare

compare: venv jars
	@"$(PY)" -m jobs.compare --conf conf/compare_local.yaml out_dir="$(COMPARE_OUT)" \
	  corpus.shared_data="$(abspath $(SHARED_DATA))" $(COMPARE_ARGS)

# The deployable wheel: prox_spark, udfs and jobs (jobs/refine.py is the spark-submit entry point), without
# its dependencies (clusters install them: pip resolves the base deps, `[gpu]`/`[cpu]` picks the runtime,
# `[warc]` adds the WARC reader's libraries).
# Built from a clean copy of the sources (no build/, egg-info or __pycache__), so stale build output never
# leaks into it; no build isolation, so it needs no network (setuptools and wheel come from the venv).
wheel: venv
	@mkdir -p "$(DIST_DIR)"
	rm -f "$(DIST_DIR)"/prox_spark-*.whl
	src="$$(mktemp -d)"; trap 'rm -rf "$$src"' EXIT
	tar --exclude=__pycache__ --exclude='*.pyc' --exclude='*.egg-info' -cf - pyproject.toml README.md prox_spark udfs jobs | tar -xf - -C "$$src"
	"$(PY)" -m pip wheel -q --no-deps --no-build-isolation --wheel-dir "$(abspath $(DIST_DIR))" "$$src"
	ls -1 "$(DIST_DIR)"/prox_spark-*.whl

# --- default refining models (prox_spark/resources/models, committed) -------------------------------
# `make models`: tokenizer (4096 BPE) -> seed data (out/models/seed) -> tiny doc + chunk models trained
# from scratch on 2 CPU threads (seeded: the same data gives the same models): a short next-token
# pre-training on the seed files' train-split text, SFT, the doc keep threshold calibrated on validation ->
# ONNX fp32 export ->
# evaluation reports (prox_spark/resources/models/reports). `make models-large` trains bigger models
# into out/models/large (about 20 minutes; not run in CI). SHARED_DATA is read in place, never copied.
SHARED_DATA ?= ../shared/data
MODELS_WORK ?= out/models
MODELS_DIR ?= prox_spark/resources/models
TRAIN_ARGS ?=

.PHONY: models models-large models-generative-chunk eval

models: venv
	@rm -f "$(MODELS_WORK)/tokenizer/tokenizer.json"
	"$(PY)" -m jobs.build_seed --data-dir "$(SHARED_DATA)" --out "$(MODELS_WORK)/seed" \
	  --tokenizer "$(MODELS_WORK)/tokenizer/tokenizer.json" --train-tokenizer-vocab 4096 --chunk-max-tokens 128
	# the doc model also learns the train-split cleaning pages as keeps (doc_tiny.yaml)
	"$(PY)" -m jobs.train_refiner --conf conf/training/doc_tiny.yaml \
	  seed_file="$(MODELS_WORK)/seed/doc.jsonl" tokenizer="$(MODELS_WORK)/tokenizer/tokenizer.json" \
	  work_dir="$(MODELS_WORK)/train/doc_tiny" export_dir="$(MODELS_DIR)/doc" \
	  pretrain_seed_files="[$(MODELS_WORK)/seed/doc.jsonl,$(MODELS_WORK)/seed/chunk.jsonl]" \
	  extra_train_file="$(MODELS_WORK)/seed/doc_cleaning.jsonl" $(TRAIN_ARGS)
	"$(PY)" -m jobs.train_line_refiner --data-dir "$(SHARED_DATA)" --out "$(MODELS_DIR)/lines"
	chunk_log=()  # the generative chunk model's training log, when models-generative-chunk ran here
	if [ -f "$(MODELS_WORK)/train/chunk_tiny/train_log.json" ]; then chunk_log=(--chunk-train-log "$(MODELS_WORK)/train/chunk_tiny/train_log.json"); fi
	"$(PY)" -m jobs.evaluate_refiner --data-dir "$(SHARED_DATA)" --seed-dir "$(MODELS_WORK)/seed" \
	  --doc-model "$(MODELS_DIR)/doc" --chunk-model "$(MODELS_DIR)/chunk" --chunk-max-tokens 128 \
	  --doc-train-log "$(MODELS_WORK)/train/doc_tiny/train_log.json" "$${chunk_log[@]}" --out "$(MODELS_DIR)/reports"
	$(EVAL_CMD)

# The tiny generative chunk model (`models.chunk.kind: generative`; not the default any more): trained on the
# seed programs `make models` derives, with the same tokenizer. About 8 minutes on 2 cores.
models-generative-chunk: venv
	@"$(PY)" -m jobs.train_refiner --conf conf/training/chunk_tiny.yaml \
	  seed_file="$(MODELS_WORK)/seed/chunk.jsonl" tokenizer="$(MODELS_WORK)/tokenizer/tokenizer.json" \
	  work_dir="$(MODELS_WORK)/train/chunk_tiny" export_dir="$(MODELS_DIR)/chunk" \
	  pretrain_seed_files="[$(MODELS_WORK)/seed/doc.jsonl,$(MODELS_WORK)/seed/chunk.jsonl]" $(TRAIN_ARGS)

# Cleaning quality on every human-gold set and the trafilatura test pages: the default pipeline
# (conf/local.yaml), the tiny generative chunk model and the baselines, side by side in one run
# -> $(MODELS_DIR)/reports/cleaning.{md,json}. EVAL_ARGS passes options (e.g. --max-pages 20).
EVAL_ARGS ?=
EVAL_CMD = "$(PY)" -m jobs.evaluate_cleaning --conf conf/local.yaml --data-dir "$(SHARED_DATA)" --out "$(MODELS_DIR)/reports" \
  --variant "generative-chunk=conf/local.yaml,models.chunk.kind=generative,models.chunk.path=prox_spark/resources/models/chunk,models.max_chunk_tokens=128,models.clip_chunk_programs=true" \
  --variant "no-doc-guard=conf/local.yaml,models.doc_guard_words=0" \
  --variant "comments-kept=conf/local.yaml,models.drop_comment_sections=false" \
  --variant "doubled-kept=conf/local.yaml,models.drop_doubled_lines=false" \
  --variant "fragments-kept=conf/local.yaml,models.drop_stray_fragments=false" $(EVAL_ARGS)

eval: venv
	@$(EVAL_CMD)

models-large: venv
	@if [ ! -f "$(MODELS_WORK)/seed/chunk.jsonl" ]; then
	  "$(PY)" -m jobs.build_seed --data-dir "$(SHARED_DATA)" --out "$(MODELS_WORK)/seed" \
	    --tokenizer "$(MODELS_WORK)/tokenizer/tokenizer.json" --train-tokenizer-vocab 4096 --chunk-max-tokens 128
	fi
	for kind in doc chunk; do
	  extra=()  # as in `make models`: the doc model also learns the train-split cleaning pages as keeps
	  if [ "$$kind" = doc ]; then extra=(extra_train_file="$(MODELS_WORK)/seed/doc_cleaning.jsonl"); fi
	  "$(PY)" -m jobs.train_refiner --conf "conf/training/$${kind}_large.yaml" \
	    seed_file="$(MODELS_WORK)/seed/$$kind.jsonl" tokenizer="$(MODELS_WORK)/tokenizer/tokenizer.json" \
	    work_dir="$(MODELS_WORK)/train/$${kind}_large" export_dir="$(MODELS_WORK)/large/$$kind" "$${extra[@]}" $(TRAIN_ARGS)
	done
	"$(PY)" -m jobs.evaluate_refiner --data-dir "$(SHARED_DATA)" --seed-dir "$(MODELS_WORK)/seed" \
	  --doc-model "$(MODELS_WORK)/large/doc" --chunk-model "$(MODELS_WORK)/large/chunk" --chunk-max-tokens 128 \
	  --doc-train-log "$(MODELS_WORK)/train/doc_large/train_log.json" \
	  --chunk-train-log "$(MODELS_WORK)/train/chunk_large/train_log.json" --out "$(MODELS_WORK)/large/reports"
