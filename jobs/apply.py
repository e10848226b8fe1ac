"""Entry point of ``prox-spark apply``: re-execute the programs an earlier run stored, under new executor settings,
without loading or running any model.

    prox-spark apply --conf conf/local.yaml executor.dialect=strict executor.max_removed_fraction=0.5
    prox-spark apply --conf conf/local.yaml --source-run crawl-2026-11 executor.dialect=strict ...
    python -m jobs.apply ...                          (the same options)

The models' programs are decisions; the executor is how they are applied. ``apply`` reads the source run's
``programs`` rows (``--source-run``, default: the latest succeeded run in ``runs``), re-reads the input files
the source run committed (``shards.source_file``) with the same readers, and runs the stage pass with the
stored programs in place of the models (``udfs.apply``). The refine job's own commit loop
(``udfs.commit_loop``) writes the tables (``refined``, ``programs``, ``quarantine``, ``shards``, and a ``runs``
row whose ``source_run_id`` names the source run), under a new run id, so both runs sit side by side.

Every input record is accounted for once, as in a refine run: records the readers quarantine (and repeated
doc ids) are quarantined again; a document that reaches a model stage for which the source run stored no
program (the new settings keep a document the source run dropped before that stage) is quarantined as
``no_stored_program`` instead of silently lost. The settings that decide which documents are read and
which stages run (``SAME_AS_SOURCE``) must equal the source run's; ``input.path`` is the source run's.

Exit codes as ``prox-spark refine``: 0 succeeded; 1 the run failed its checks or a commit kept conflicting;
2 a configuration problem (no such source run, a setting that differs from it) found before any stage.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import sys
from dataclasses import dataclass

from pyspark.errors import AnalysisException
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from prox_spark.udfs.commit_loop import write_run
from prox_spark.udfs.logs import configure_logging
from prox_spark.udfs.preflight import Preflight, library_versions
from prox_spark.udfs.session import job_session
from prox_spark.udfs.summary import RunCheckError, RunSummary, print_summary
from prox_spark.udfs.tables import PROGRAMS, RUNS, SHARDS, CommitConflictError, read_table, read_table_pinned, table_location
from prox_spark.config import ConfigError, RefineConfig, as_dict, build, load_config
from prox_spark.pipeline import settings_of
from prox_spark.pipeline.stages import model_stages
from prox_spark.udfs.apply import apply_documents

#: settings that decide which documents a run reads and which stages it runs: an apply runs under the
#: source run's values, or its stored programs would not match its documents
SAME_AS_SOURCE = (
    "pipeline.mode", "rules.preset", "input.format", "input.id_column", "input.text_column",
    "input.max_text_bytes", "input.max_text_lines",
)


@dataclass(frozen=True)
class SourceRun:
    """The run whose stored programs are applied: its latest succeeded attempt's ``runs`` row and its files."""

    run_id: str
    config: RefineConfig
    versions: dict
    files: list[str]

    def model_id(self, stage: str) -> str:
        """The model id the source run recorded for ``stage`` (``versions_json``: ``model.<stage>`` = id@checksum)."""
        return (self.versions.get(f"model.{stage}") or "").rpartition("@")[0]


def find_source_run(spark: SparkSession, config: RefineConfig, run_id: str | None) -> SourceRun:
    """``run_id``'s latest succeeded attempt, or with no ``run_id`` the latest succeeded run in ``runs``."""
    try:
        runs = read_table(spark, config.output, RUNS).filter(F.col("status") == "succeeded")
    except AnalysisException:
        raise ConfigError(f"no runs table at {table_location(config.output, RUNS)}: run prox-spark refine first") from None
    if run_id:
        runs = runs.filter(F.col("run_id") == run_id)
    row = runs.orderBy(F.desc("finished_at"), F.desc("run_id")).first()
    if row is None:
        which = f"run {run_id!r} has" if run_id else "there is"
        raise ConfigError(f"{which} no succeeded attempt in {table_location(config.output, RUNS)}")
    shards = read_table(spark, config.output, SHARDS).filter(F.col("run_id") == row.run_id).collect()
    if any(shard.source_file is None for shard in shards):
        raise ConfigError(f"run {row.run_id!r} predates shards.source_file: its input files are unknown")
    return SourceRun(
        row.run_id, build(RefineConfig, json.loads(row.config_json), ""), json.loads(row.versions_json or "{}"),
        sorted(shard.source_file for shard in shards),
    )


def for_source(config: RefineConfig, source: SourceRun) -> RefineConfig:
    """``config`` reading the source run's input; a ``SAME_AS_SOURCE`` setting that differs is a ``ConfigError``."""
    for key in SAME_AS_SOURCE:
        mine, theirs = _setting(config, key), _setting(source.config, key)
        if mine != theirs:
            raise ConfigError(
                f"{key}: {mine!r} here, but run {source.run_id!r} ran with {theirs!r}; apply re-executes that run's "
                f"programs on the documents it read (pass {key}={theirs})"
            )
    return dataclasses.replace(
        config, input=dataclasses.replace(config.input, path=source.config.input.path, table=source.config.input.table)
    )


def _setting(config: RefineConfig, key: str) -> object:
    value: object = config
    for part in key.split("."):
        value = getattr(value, part)
    return value


def apply_run_id(spark: SparkSession, config: RefineConfig, source: SourceRun) -> str:
    """``run_id`` when set, else derived from the source run and the executor settings (applying the same
    settings again replaces that apply's rows). An existing run of other programs is never written over."""
    run_id = config.run_id or "apply-" + hashlib.sha256(
        json.dumps([source.run_id, as_dict(config.executor)], sort_keys=True).encode()
    ).hexdigest()[:16]
    runs = read_table(spark, config.output, RUNS).filter(F.col("run_id") == run_id)
    # a runs table from before apply has no source_run_id yet (write_run adds it): its runs are refine runs
    source_ids = F.col("source_run_id") if "source_run_id" in runs.columns else F.lit(None).cast("string")
    earlier = {row[0] for row in runs.select(source_ids).distinct().collect()}
    others = earlier - {source.run_id}
    if others:
        what = "a refine run" if None in others else f"an apply of run {sorted(others)[0]!r}"
        raise ConfigError(
            f"run_id: {run_id!r} is already a run of other programs ({what}); apply writes a new run: set "
            "another run_id, or leave it empty to derive one"
        )
    return run_id


def run_apply(spark: SparkSession, config: RefineConfig, source_run_id: str | None = None) -> RunSummary:
    """Apply the source run's stored programs under ``config``'s executor settings into the Delta tables as
    a new run; returns its summary (counts checked, as a refine run's)."""
    source = find_source_run(spark, config, source_run_id)
    config = for_source(config, source)
    run_id = apply_run_id(spark, config, source)
    kept_versions = {k: v for k, v in source.versions.items() if k.startswith("model.") or k == "rules"}
    model_ids = {stage.name: source.model_id(stage.name) for stage in model_stages(config.pipeline.stages)}
    checked = Preflight(source.files, model_ids, {**library_versions(), **kept_versions})
    # pinned: the staged results derive from it, and this run's own writes add versions to the programs table
    programs = read_table_pinned(spark, config.output, PROGRAMS).filter(F.col("run_id") == source.run_id)
    settings = settings_of(config)

    program_model_ids = checked.program_model_ids(config)

    def stage(docs):
        return apply_documents(docs, programs, config.pipeline.stages, settings, rules_preset=config.rules.preset,
                               source_run_id=source.run_id, model_ids=program_model_ids)

    return write_run(spark, config, checked, run_id, stage, source_run_id=source.run_id)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="prox-spark apply",
        description="Re-execute the programs an earlier refine run stored, under new executor settings, without "
        "any model: writes refined, programs, quarantine, shards and a runs row (source_run_id) under a new run id.",
    )
    parser.add_argument("--conf", help="YAML config of the run's tables (output.*) and the new executor.* settings")
    parser.add_argument("overrides", nargs="*", metavar="key.sub=value",
                        help="config overrides, e.g. executor.dialect=strict executor.max_removed_fraction=0.5")
    parser.add_argument("--source-run", default=None,
                        help="run id whose programs to apply (default: the latest succeeded run in runs)")
    parser.add_argument("--log-format", choices=("text", "json"), default="text",
                        help="driver log lines as text (default) or one JSON object per line; both carry the run id")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_intermixed_args(argv)  # options may sit among the overrides
    configure_logging(args.log_format)
    try:
        config = load_output_config(args.conf, args.overrides)
    except ConfigError as exc:
        print(f"prox-spark apply: {exc}", file=sys.stderr)
        return 2
    spark = job_session(config)
    try:
        summary = run_apply(spark, config, args.source_run)
    except ConfigError as exc:
        print(f"prox-spark apply: {exc}", file=sys.stderr)
        return 2
    except RunCheckError as exc:
        print_summary(exc.summary, config.output, "apply")
        print(f"prox-spark apply: {exc}", file=sys.stderr)
        return 1
    except CommitConflictError as exc:
        print(f"prox-spark apply: {exc}", file=sys.stderr)
        return 1
    print_summary(summary, config.output, "apply")
    return 0


def load_output_config(path: str | None, overrides: list[str]) -> RefineConfig:
    """The config, which must name the tables (``output.path`` or ``output.database``)."""
    config = load_config(path, overrides)
    if not (config.output.path or config.output.database):
        raise ConfigError("output.path or output.database: one is required (where the source run's tables are)")
    return config


if __name__ == "__main__":
    sys.exit(main())
