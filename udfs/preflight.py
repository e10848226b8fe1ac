"""What a run checks and decides before any Spark stage: the input listing, the stages' models, the versions the
``runs`` row records and the run id.

A typo or a corrupt model fails here in seconds (a ``ConfigError`` or ``ModelLoadError`` naming the setting),
not after an hour of reading.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version

from pyspark.sql import SparkSession

from prox_spark.udfs.input_files import list_input_files
from prox_spark.udfs.staging import staging_root
from prox_spark.config import ConfigError, RefineConfig, as_dict, stage_model_paths
from prox_spark.inference import ModelLoadError
from prox_spark.pipeline import verify_stage_model
from prox_spark.pipeline.rows import rules_model_id, stage_model_ids
from prox_spark.readers.dispatch import file_format
from prox_spark.readers.storage import hadoop_local_path, local_path
from prox_spark.readers.warc import WARC_UNAVAILABLE


@dataclass
class Preflight:
    """What was checked before Spark starts: the input files and the manifests of the stages' models."""

    files: list[str]
    #: the checked model's id of each model stage ``pipeline.mode`` runs, by stage name (rules-only runs: none)
    model_ids: dict[str, str]
    versions: dict = field(default_factory=dict)
    #: rows per listed file where the listing counted them (table input: ``refine_plan.table_data_files``); each
    #: commit must read exactly these (None: files, whose readers count every record they meet)
    listed_rows: dict[str, int] | None = None

    def program_model_ids(self, config: RefineConfig) -> dict[str, str]:
        """The ``model_id`` each stage's ``programs`` rows carry (``rules:<preset>``, the checked models' ids)."""
        return stage_model_ids(config.rules.preset, self.model_ids)


def preflight(config: RefineConfig, spark: SparkSession | None = None) -> Preflight:
    """Fail fast with a message naming the problem: missing input, WARC input without the ``warc`` extra, bad model,
    missing output location.

    ``spark`` lists URI inputs (``s3://``, ``abfss://``, ``gs://``, ``dbfs:/``, ``file:``) through Hadoop's
    FileSystem; plain paths need none (``udfs.input_files``)."""
    if not (config.input.path or config.input.table):
        raise ConfigError("input.path: required (a file, a directory or a glob), or input.table (a table name)")
    if not (config.output.path or config.output.database):
        raise ConfigError("output.path or output.database: one is required")
    if config.input.table:
        files = [config.input.table]  # the table's data files are listed once Spark runs (run_refine)
    elif config.input.format == "delta":
        local = hadoop_local_path(config.input.path)  # as typed: not percent-encoded
        if local is not None and not os.path.isdir(os.path.join(local, "_delta_log")):
            raise ConfigError(f"input.path: no Delta table at {config.input.path!r} (no _delta_log folder)")
        files = [config.input.path]
    else:
        try:
            files = list_input_files(config.input.path, spark)
        except FileNotFoundError as exc:
            raise ConfigError(f"input.path: {exc}") from None
        warc = _warc_input(config.input.format, files)
        if warc is not None and WARC_UNAVAILABLE is not None:
            raise ConfigError(f"input.path: {warc} is WARC input, and {WARC_UNAVAILABLE}")
    if config.spark.staging == "delta":
        staging_root(config)  # never staging tables on a Unity Catalog Volume
    models = {}
    for stage, path in stage_model_paths(config).items():  # each model stage the mode runs (the registry's)
        try:
            models[stage] = verify_stage_model(path, config.models.stage(stage).kind, stage)
        except ModelLoadError as exc:
            raise ModelLoadError(f"models.{stage}.path: {exc}") from None
    versions = library_versions()
    versions.update({f"model.{k}": model_id + "@" + checksum[:12] for k, (model_id, checksum) in models.items()})
    if "rules" in config.pipeline.stages:
        versions["rules"] = rules_model_id(config.rules.preset)
    return Preflight(files, {stage: model_id for stage, (model_id, _) in models.items()}, versions)


def _warc_input(fmt: str | None, files: list[str]) -> str | None:
    """The first listed file the run would read as WARC (``prox_spark.readers.dispatch.file_format``: every file
    under ``input.format: warc``, under ``auto`` those whose name says WARC), None when it reads none."""
    for path in files:
        try:
            if file_format(path, fmt) == "warc":
                return path
        except ValueError:  # no known extension: not read as WARC (read_file refuses it by itself)
            continue
    return None


def library_versions() -> dict[str, str | None]:
    """The installed versions ``runs.versions_json`` records (None: not installed)."""
    return {name: _version(name) for name in ("prox-spark", "pyspark", "delta-spark", "onnxruntime", "onnxruntime-gpu")}


def _version(package: str) -> str | None:
    try:
        return version(package)
    except PackageNotFoundError:
        return None


def derive_run_id(config: RefineConfig, files: list[str]) -> str:
    """Stable id from the config and the input listing: rerunning the same job over the same input
    replaces its own rows instead of adding a second copy."""
    if config.run_id:
        return config.run_id
    listing = [(path, _local_size(path)) for path in files]
    payload = json.dumps([as_dict(config), listing], sort_keys=True, default=str)
    return "run-" + hashlib.sha256(payload.encode()).hexdigest()[:16]


def _local_size(path: str) -> int | None:
    """Size of a local input file (part of the derived run id); None for remote or vanished files."""
    local = local_path(path)
    return os.path.getsize(local) if local is not None and os.path.exists(local) else None
