"""Typed job configuration: YAML file + ``key=value`` overrides, validated with errors that name the key.

A data-platform job fails fast on a typo: every unknown key, wrong type or bad value is reported with its
dotted path (``models.chunk.batch_size: expected int, got 'eight'``) before any Spark stage starts.

Model paths work from any working directory (``resolve_model_paths``): an empty ``models.<stage>.path`` serves
the bundled model of that stage and kind (the doc model; for the chunk stage the line refiner, or the tiny
generative chunk model under ``kind: generative``, with the settings it is served with: each kind's ``bundled``,
``prox_spark.pipeline.model_kinds``), and a relative one
that does not exist from the working directory is read from the folder above the config file's folder (the
project root for ``conf/*.yaml``).
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal, Optional

import yaml

from prox_spark.chunking import DEFAULT_MAX_TOKENS
from prox_spark.lines.cuts import PageCuts
from prox_spark.programs import ExecutorConfig
from prox_spark.rules.presets import DEFAULT_PRESET, PresetName


class ConfigError(ValueError):
    """A configuration problem; the message names the offending key."""


@dataclass(frozen=True)
class InputConfig:
    """Where the corpus is and how to read it."""

    path: str = ""
    #: a metastore table instead of files (``catalog.schema.table``, ``schema.table`` or ``table``; a part may
    #: be written in backticks): read with Spark, with the columns a JSONL record has; its data files are the shards
    table: str = ""
    #: jsonl | parquet | delta | warc | auto (from the file extension)
    format: Literal["auto", "jsonl", "parquet", "delta", "warc"] = "auto"
    id_column: str = "id"
    text_column: str = "text"
    #: documents larger than this go to quarantine (never silently truncated)
    max_text_bytes: int = 8 * 1024 * 1024
    #: documents with more lines go to quarantine (``too_many_lines``): programs address lines, and a
    #: 100k-line page ran a 1 GB driver out of heap writing its programs
    max_text_lines: int = 20_000
    #: Spark partitions the documents are spread over before the model stages (0: keep the reader's)
    partitions: int = 0
    #: input shards (files) written per commit; a resumed run skips committed ones (0: all in one commit)
    shards_per_commit: int = 0
    #: a run whose quarantined records exceed this fraction of the records read fails (exit 1): a wrong
    #: input.format or text_column quarantines everything, which should stop a pipeline, not feed it
    max_quarantined_fraction: float = 0.5

    def __post_init__(self) -> None:
        _at_least("input.max_text_bytes", self.max_text_bytes, 1)
        _at_least("input.max_text_lines", self.max_text_lines, 1)
        _at_least("input.partitions", self.partitions, 0, "0: one task per file")
        _at_least("input.shards_per_commit", self.shards_per_commit, 0, "0: all shards in one commit")
        if not 0.0 <= self.max_quarantined_fraction <= 1.0:
            raise ConfigError(
                f"input.max_quarantined_fraction: must be between 0 and 1, got {self.max_quarantined_fraction}"
            )
        if not self.text_column:
            raise ConfigError("input.text_column: must name the text field, got an empty string")
        if self.table:
            if self.path:
                raise ConfigError(f"input.table: set input.path or input.table, not both (path {self.path!r})")
            if self.format not in ("auto", "delta"):
                raise ConfigError(f"input.format: {self.format!r} does not apply to input.table (a table is read by Spark)")
            if len(split_name(self.table, "input.table")) > 3:
                raise ConfigError(f"input.table: expected table, schema.table or catalog.schema.table, got {self.table!r}")

    @property
    def reads_table(self) -> bool:
        """Whether Spark reads the input as a table (``input.table``, or a Delta table at ``input.path``) whose
        data files are the shards, rather than the job's own readers reading listed files."""
        return bool(self.table) or self.format == "delta"


def _at_least(key: str, value: float, minimum: float, note: str = "") -> None:
    """Reject a count below what the job can act on, naming the key: a negative ``shards_per_commit``
    once made the job commit nothing and still report success."""
    if value < minimum:
        raise ConfigError(f"{key}: must be >= {minimum}{f' ({note})' if note else ''}, got {value}")


@dataclass(frozen=True)
class ModelConfig:
    """One refining model (doc or chunk stage) exported to ONNX: a generative model (``prox_model.json``
    manifest) or, for the chunk stage, a line refiner (``prox_line_model.json``, ``prox_spark.lines``)."""

    path: str = ""
    #: its model kind (``prox_spark.pipeline.model_kinds.MODEL_KINDS``), one the stage takes (its ``model_kinds``;
    #: checked in ``ModelsConfig``): "generative": a decoder writes the programs (the released gair-prox models, the
    #: tiny generative models); "lines": the line refiner scores every line of the page and its decisions are
    #: rendered as remove_lines programs (chunk stage only; batch/token settings below do not apply to it)
    kind: str = "generative"
    batch_size: int = 16
    max_new_tokens: int = 256
    #: cap on rows x padded tokens per model batch (prompt + new tokens when generating), so batches of
    #: long pages get fewer rows instead of exhausting memory; 0 = rows are limited by batch_size only
    max_batch_tokens: int = 32768
    #: most padded tokens per prefill pass within a batch (decode still runs the whole batch): CPU caches
    #: favour passes of a few thousand tokens; null = 2048 on CPU and one pass on a GPU, 0 = one pass
    prefill_tokens: Optional[int] = None

    def __post_init__(self) -> None:
        if self.max_batch_tokens < 0:
            raise ValueError(f"max_batch_tokens must be >= 0 (0: no limit), got {self.max_batch_tokens}")
        if self.prefill_tokens is not None and self.prefill_tokens < 0:
            raise ValueError(f"prefill_tokens must be >= 0 (0: one pass, null: by device), got {self.prefill_tokens}")


#: words of main text (as the line refiner keeps them) that spare a page from the doc model's drop: the
#: smallest value that keeps the doc model's held-out DCLM doc F1 (its drops of low-quality pages keep at
#: most ~160 words), rounded up
DEFAULT_DOC_GUARD_WORDS = 200


@dataclass(frozen=True)
class ModelsConfig:
    doc: ModelConfig = field(default_factory=ModelConfig)
    chunk: ModelConfig = field(default_factory=ModelConfig)
    #: doc stage: "score" compares keep_doc() / drop_doc() in one forward pass and keeps when the logit
    #: margin reaches the manifest's calibrated doc_keep_threshold; "generate" decodes (no threshold)
    doc_mode: Literal["score", "generate"] = "score"
    #: chunk size in tokens of the chunk model's tokenizer (the reference's 1500)
    max_chunk_tokens: int = DEFAULT_MAX_TOKENS
    #: clip each chunk program's remove_lines to its own chunk's lines before the merge (not the
    #: reference, which lets a chunk program remove any line; a guard for small models)
    clip_chunk_programs: bool = False
    #: the doc model reads a page's first tokens, often menus: a page it drops is kept when the chunk
    #: stage's line refiner keeps at least this many words of it (0: off; no effect with a generative
    #: chunk model). The programs table keeps the model's drop_doc() in model_program.
    doc_guard_words: int = DEFAULT_DOC_GUARD_WORDS
    #: with a line-refiner chunk model, also remove each page's reader-comment section ("12 Comments",
    #: "Leave a Reply", a run of "<writer> says:" lines, ... and what follows; ``prox_spark.lines.comments``),
    #: as article-extraction gold does; false keeps comment threads the model keeps (CleanEval's
    #: convention). No effect with a generative chunk model. The programs table keeps the model's own
    #: program in model_program. Defaults (here and below) are ``PageCuts``', which the line thresholds are
    #: chosen with (``prox_spark.training.line_train``).
    drop_comment_sections: bool = PageCuts.comment_sections
    #: with a line-refiner chunk model, also remove kept lines repeated right below themselves (a gallery's
    #: captions, a link's doubled title; ``prox_spark.lines.doubled``)
    drop_doubled_lines: bool = PageCuts.doubled_lines
    #: with a line-refiner chunk model, also remove stray fragments: runs of kept lines far smaller than the
    #: page's main text (teasers of other articles, captions; ``prox_spark.lines.fragments``)
    drop_stray_fragments: bool = PageCuts.stray_fragments
    #: "auto" uses CUDA when onnxruntime-gpu sees a GPU, else CPU
    provider: Literal["auto", "cpu", "cuda"] = "auto"
    #: onnxruntime intra-op threads per task (0: cores ÷ concurrent tasks)
    intra_op_threads: int = 0
    #: documents per Arrow batch handed to the stages' Python pass (``udfs.stage_pass``); the models batch
    #: prompts by length within it (Spark's default of 10,000 is too many texts)
    udf_batch_rows: int = 256

    @property
    def sections(self) -> tuple[str, ...]:
        """The stages with a model section (a ``ModelConfig`` field, ``models.<name>``), in field order."""
        return tuple(f.name for f in dataclasses.fields(self) if isinstance(getattr(self, f.name), ModelConfig))

    def stage(self, name: str) -> ModelConfig:
        """The ``models.<name>`` section of model stage ``name``: where its model is and how it is served. Every
        model stage of the registry (``prox_spark.pipeline.stages``) has one; the YAML key is the stage's name."""
        if name not in self.sections:
            raise ConfigError(f"models.{name}: no such section (the model sections are {list(self.sections)})")
        return getattr(self, name)

    def __post_init__(self) -> None:
        for name in self.sections:
            _check_kind(name, self.stage(name).kind)
        _at_least("models.doc_guard_words", self.doc_guard_words, 0, "0: off")


def _check_kind(stage: str, kind: str) -> None:
    """``models.<stage>.kind`` is one of the kinds the stage takes (its ``model_kinds``, each a registered kind), or a
    ``ConfigError`` naming them and, for a kind the stage refuses, the stages whose programs that kind writes."""
    # imported here: the stages and the kinds read their settings from this module (pipeline.settings imports it)
    from prox_spark.pipeline.model_kinds import MODEL_KINDS
    from prox_spark.pipeline.stages import STAGES, model_stage

    accepted = model_stage(stage).model_kinds
    if kind in accepted:
        return
    choices = repr(accepted[0]) if len(accepted) == 1 else "one of " + ", ".join(map(repr, accepted))
    refused = MODEL_KINDS.get(kind)
    writes = [other.name for other in STAGES if kind in other.model_kinds]
    why = f" ({refused.label} writes {' and '.join(writes)} programs)" if refused is not None and writes else ""
    raise ConfigError(f"models.{stage}.kind must be {choices}{why}, got {kind!r}")


@dataclass(frozen=True)
class ExecutorSettings:
    """The program executor (``prox_spark.programs.ExecutorConfig`` documents each key).

    The decision thresholds apply to the strict dialect only: the reference dialect is the released
    executor and always uses the released values, so a non-default threshold with ``dialect: reference``
    is a config error instead of a setting that silently does nothing. The bounds apply to both dialects.
    """

    dialect: Literal["reference", "strict"] = "reference"
    #: strict only: drop when the kept words are at most 1 - this of the original's (reference: 0.95)
    max_removed_fraction: float = ExecutorConfig.max_removed_fraction
    min_kept_fraction: float = ExecutorConfig.min_kept_fraction
    drop_at_or_below_words: int = ExecutorConfig.drop_at_or_below_words
    error_fallback_at: int = ExecutorConfig.error_fallback_at
    #: no normalize may grow a text past this factor of its length before the op, nor of the original
    #: (texts under 4,096 characters may always grow to that); past it the program is ignored
    max_growth: float = ExecutorConfig.max_growth
    #: programs with more lines (one op each) are ignored whole
    max_ops: int = ExecutorConfig.max_ops
    #: programs with more characters are ignored without being parsed
    max_program_chars: int = ExecutorConfig.max_program_chars

    def __post_init__(self) -> None:
        try:
            executor_config(self).check_dialect(self.dialect)
        except ValueError as exc:  # ExecutorConfig's messages start with the field's name
            raise ConfigError(f"executor.{exc}") from None


def split_name(name: str, key: str) -> list[str]:
    """The parts of a dotted SQL name (``main.prox``, ``main.`prox-2026```), unquoted: a part in backticks may hold
    dots (a doubled backtick stands for one), a part without them may not. ``ConfigError`` naming ``key`` when the
    name is empty, has an empty part or an unclosed backtick."""
    if not _QUALIFIED_NAME.fullmatch(name):
        raise ConfigError(
            f"{key}: {name!r} is not a dotted name (parts separated by dots, none empty; a part with a dot or a "
            "backtick goes in backticks, a backtick in it doubled)"
        )
    return [quoted.replace("``", "`") if quoted else plain for quoted, plain in _NAME_PART.findall(name)]


_NAME_PART = re.compile(r"(?:^|\.)(?:`((?:[^`]|``)+)`|([^.`]+))")
_QUALIFIED_NAME = re.compile(r"(?:`(?:[^`]|``)+`|[^.`]+)(?:\.(?:`(?:[^`]|``)+`|[^.`]+))*")


@dataclass(frozen=True)
class OutputConfig:
    """Delta outputs: tables under ``path`` (path-based), or in ``database`` when set (metastore tables, under
    ``catalog`` when set: Unity Catalog's three-level names)."""

    path: str = ""
    #: the catalog of the metastore tables ("": the session's current one); needs ``database``
    catalog: str = ""
    #: the schema (database) of the metastore tables: ``schema``, or ``catalog.schema`` when ``catalog`` is not
    #: set (a part may be written in backticks); when set, the tables are metastore tables, not under ``path``
    database: str = ""
    refined_table: str = "refined"
    programs_table: str = "programs"
    quarantine_table: str = "quarantine"
    runs_table: str = "runs"
    shards_table: str = "shards"
    #: attempts per Delta commit when a concurrent writer conflicts (ConcurrentAppendException,
    #: ProtocolChangedException, ...): the write is retried from a fresh snapshot with exponential backoff
    commit_attempts: int = 5
    #: seconds before the first retry (doubled each time, with jitter)
    commit_backoff_seconds: float = 1.0
    #: a folder for ``spark.staging: delta``'s path-based staging tables ("": ``<output.path>/_staging``, or, with
    #: ``output.database``, tables ``_prox_staging_<run>_*`` in that schema); never a Unity Catalog Volume
    staging_path: str = ""

    def __post_init__(self) -> None:
        names = {key: getattr(self, f"{key}_table") for key in ("refined", "programs", "quarantine", "runs", "shards")}
        for key, name in names.items():
            if not name:
                raise ConfigError(f"output.{key}_table: must not be empty")
        if len(set(names.values())) < len(names):
            raise ConfigError(f"output.*_table: the five tables need five different names, got {names}")
        _at_least("output.commit_attempts", self.commit_attempts, 1)
        _at_least("output.commit_backoff_seconds", self.commit_backoff_seconds, 0)
        if self.catalog and not self.database:
            raise ConfigError(f"output.catalog: {self.catalog!r} needs output.database (the schema of the tables)")
        self.namespace  # noqa: B018 - validates output.database

    @property
    def namespace(self) -> tuple[str, ...]:
        """Where the metastore tables live, as plain names: ``(catalog, schema)`` or ``(schema,)``; ``()`` for
        path-based tables. ``udfs.tables`` quotes each part."""
        if not self.database:
            return ()
        parts = split_name(self.database, "output.database")
        if self.catalog and len(parts) > 1:
            raise ConfigError(
                f"output.database: {self.database!r} names a catalog and output.catalog names {self.catalog!r}: "
                "give the catalog once"
            )
        if len(parts) > 2:
            raise ConfigError(f"output.database: expected schema or catalog.schema, got {self.database!r}")
        return (self.catalog, *parts) if self.catalog else tuple(parts)


@dataclass(frozen=True)
class SparkConfig:
    """Only used when the job builds its own session (local runs); on Databricks/EMR the platform's is used."""

    master: str = "local[2]"
    shuffle_partitions: int = 4
    conf: dict = field(default_factory=dict)
    #: Spark Connect: "" runs a classic session (unless the ``SPARK_REMOTE`` environment variable names a
    #: remote); ``sc://host:port`` connects to a running Connect server (Databricks, a cluster's server);
    #: ``local`` / ``local[N]`` starts a local Connect server in this process with the Delta jars (tests)
    remote: str = ""
    #: how a commit's read records and stage results are kept while every table is written from them, so the
    #: models run once per document: ``persist`` (Spark DISK_ONLY storage, released after the commit) or
    #: ``delta`` (written once to staging Delta tables, emptied after the shard commit, resumed from after a
    #: failed or killed commit: for Spark Connect servers that forbid persist, as Databricks serverless does)
    staging: Literal["persist", "delta"] = "persist"

    def __post_init__(self) -> None:
        if not self.master:
            raise ConfigError("spark.master: must not be empty (e.g. local[2])")
        if self.remote and not (self.remote.startswith("sc://") or re.fullmatch(r"local(\[[0-9*]+\])?", self.remote)):
            raise ConfigError(
                f"spark.remote: expected sc://host:port (a Spark Connect server) or local[N] (start one here), "
                f"got {self.remote!r}"
            )
        _at_least("spark.shuffle_partitions", self.shuffle_partitions, 1)
        # an override spark.conf.spark.executor.memory=4g arrives as nested mappings: Spark wants the dotted key
        object.__setattr__(self, "conf", _dotted(self.conf, "spark.conf"))


def _dotted(conf: dict, where: str) -> dict:
    """Nested mappings flattened to dotted keys ({"spark": {"a": 1}} -> {"spark.a": 1}); lists and nulls
    are refused, naming the key (Spark settings are scalars)."""
    flat: dict = {}
    for key, value in conf.items():
        if isinstance(value, dict):
            flat.update({f"{key}.{inner}": v for inner, v in _dotted(value, f"{where}.{key}").items()})
        elif isinstance(value, list) or value is None:
            raise ConfigError(f"{where}.{key}: expected a scalar value, got {value!r}")
        else:
            flat[str(key)] = value
    return flat


@dataclass(frozen=True)
class FaultInjection:
    """Test hooks for reliability checks: fail a task's first attempt, or a commit, on purpose (off by default)."""

    #: Spark partition id of the model stage whose first attempt raises (-1: never)
    fail_first_attempt_of_partition: int = -1
    #: the commit (0: an attempt's first) that fails after its results are staged, before any output table is
    #: written (-1: never): a run interrupted where ``spark.staging: delta`` must resume it
    fail_after_staging_commit: int = -1


#: the stages each ``pipeline.mode`` runs, in order (documents dropped by a stage skip the later ones)
PIPELINE_STAGES: dict[str, tuple[str, ...]] = {
    "prox": ("doc", "chunk"),
    "prox-doc": ("doc",),
    "rules": ("rules",),
    "rules+prox": ("rules", "doc", "chunk"),
}


@dataclass(frozen=True)
class PipelineConfig:
    """Which refining stages run: ProX (doc + chunk), ProX doc stage only, the rule baseline, or rules first."""

    mode: Literal["prox", "prox-doc", "rules", "rules+prox"] = "prox"

    @property
    def stages(self) -> tuple[str, ...]:
        return PIPELINE_STAGES[self.mode]


@dataclass(frozen=True)
class RulesConfig:
    """The heuristic rule stage (``pipeline.mode`` rules or rules+prox); presets in ``prox_spark.rules``."""

    preset: PresetName = DEFAULT_PRESET


@dataclass(frozen=True)
class RefineConfig:
    #: a rerun with the same run_id replaces that run's rows; empty: derived from config + input files
    run_id: str = ""
    input: InputConfig = field(default_factory=InputConfig)
    pipeline: PipelineConfig = field(default_factory=PipelineConfig)
    rules: RulesConfig = field(default_factory=RulesConfig)
    models: ModelsConfig = field(default_factory=ModelsConfig)
    executor: ExecutorSettings = field(default_factory=ExecutorSettings)
    output: OutputConfig = field(default_factory=OutputConfig)
    spark: SparkConfig = field(default_factory=SparkConfig)
    faults: FaultInjection = field(default_factory=FaultInjection)


def stage_model_paths(config: RefineConfig) -> dict[str, str]:
    """The model directory of each model stage ``pipeline.mode`` runs, by stage name in stage order; an unset
    one is a ``ConfigError`` naming its key, for the Spark job's preflight and ``prox-spark clean`` alike."""
    # imported here: the stages read their settings from this module (pipeline.settings imports it)
    from prox_spark.pipeline.stages import model_stages

    paths = {}
    for stage in model_stages(config.pipeline.stages):
        path = config.models.stage(stage.name).path
        if not path:
            raise ConfigError(
                f"models.{stage.name}.path: required for pipeline.mode {config.pipeline.mode!r} (an exported model "
                "directory; conf/local.yaml points it at the bundled default models)"
            )
        paths[stage.name] = path
    return paths


#: a URI scheme (``s3://``, ``dbfs:/``): such model paths are left to preflight, which rejects them by name
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+:")


#: the kind a stage's bundled model is when the config names neither a path nor a kind
BUNDLED_KIND: dict[str, str] = {"doc": "generative", "chunk": "lines"}


def bundled_model_dir(stage: str, kind: str = ModelConfig.kind) -> Path | None:
    """The model of ``stage`` and ``kind`` shipped as package data, in the folder under
    ``prox_spark/resources/models`` its kind names (``ModelKind.bundled``); None when the package ships none."""
    # imported here: the kinds read their settings from this module (pipeline.settings imports it)
    from prox_spark.pipeline.model_kinds import model_kind

    bundled = model_kind(kind).bundled.get(stage)
    if bundled is None:
        return None
    return Path(str(resources.files("prox_spark") / "resources" / "models" / bundled.folder))


def _bundled_serving_defaults(raw: dict) -> None:
    """Fill the serving settings of each stage's bundled model (``ModelKind.bundled``) into ``raw['models']`` for
    each stage whose model path is unset, so a config without models (``prox-spark clean`` with no ``--conf``)
    serves the bundled models as they were tested."""
    from prox_spark.pipeline.model_kinds import MODEL_KINDS  # imported here: see bundled_model_dir

    if raw.get("models") is None:
        raw["models"] = {}
    if not isinstance(raw["models"], dict):
        return  # build() reports the wrong type, naming the key
    for stage, default_kind in BUNDLED_KIND.items():
        section = raw["models"].get(stage)
        if section is None:
            section = raw["models"][stage] = {}
        if not isinstance(section, dict) or section.get("path"):
            continue  # the config names its own model (or build() names the wrong type)
        kind = section.setdefault("kind", default_kind)
        found = MODEL_KINDS.get(kind) if isinstance(kind, str) else None  # an unknown kind: build() names it
        bundled = found.bundled.get(stage) if found is not None else None
        if bundled is not None:
            _set_defaults(raw["models"], bundled.serving)


def _set_defaults(target: dict, defaults: dict) -> None:
    """``dict.setdefault`` through nested mappings; a value of the wrong type is left for build() to name."""
    for key, value in defaults.items():
        if not isinstance(value, dict):
            target.setdefault(key, value)
            continue
        if target.get(key) is None:
            target[key] = {}
        if isinstance(target[key], dict):
            _set_defaults(target[key], value)


def resolve_model_paths(config: RefineConfig, config_file: str | Path | None = None) -> RefineConfig:
    """Each model section's ``models.<stage>.path`` made to work from any working directory.

    One rule, so a config behaves the same wherever the job is started:

    - empty: the bundled model of that stage and kind (``bundled_model_dir``; with no kind set, ``load_config``
      picks ``BUNDLED_KIND``), so ``prox-spark clean`` runs with no config at all (a bundled model also gets the
      settings it is served with, ``ModelKind.bundled``);
    - a URI or an absolute path: unchanged (preflight checks it and rejects URIs, naming the key);
    - relative: used as written when it exists from the working directory (how configs have always been
      read), otherwise taken from the folder above the config file's folder and made absolute: configs
      live in ``conf/`` and write their paths from the project root, as ``conf/local.yaml`` does.

    When a relative path exists in neither place and ``pipeline.mode`` runs that stage, the ``ConfigError``
    names the key and every path tried; a stage the mode skips keeps its path untouched.
    """
    root = Path(config_file).resolve().parent.parent if config_file is not None else None
    paths = {}
    for stage in config.models.sections:
        section = config.models.stage(stage)
        value = section.path
        if not value:
            bundled = bundled_model_dir(stage, section.kind)
            # "" is reported by stage_model_paths if the mode runs the stage
            value = str(bundled) if bundled is not None and bundled.is_dir() else ""
        elif not (_URI.match(value) or Path(value).is_absolute() or Path(value).exists()):
            tried = [Path.cwd() / value, *([root / value] if root is not None else [])]
            found = next((candidate for candidate in tried[1:] if candidate.exists()), None)
            if found is not None:
                value = str(found)
            elif stage in config.pipeline.stages:
                raise ConfigError(f"models.{stage}.path: {value!r} not found (tried {', '.join(map(str, tried))})")
        paths[stage] = value
    sections = {stage: dataclasses.replace(config.models.stage(stage), path=path) for stage, path in paths.items()}
    return dataclasses.replace(config, models=dataclasses.replace(config.models, **sections))


def load_config(path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = (), cls: type = RefineConfig):
    """Read ``path`` (YAML), apply ``key.sub=value`` overrides (values parsed as YAML scalars), validate;
    a ``RefineConfig``'s model paths are then resolved against the config file (``resolve_model_paths``)."""
    raw: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file not found: {path}")
        try:
            loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML ({exc})") from None
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"{path}: the top level must be a mapping, got {type(loaded).__name__}")
        raw = loaded or {}
    for override in overrides:
        _apply_override(raw, override)
    if cls is RefineConfig:
        _bundled_serving_defaults(raw)
    config = build(cls, raw, "")
    return resolve_model_paths(config, path) if isinstance(config, RefineConfig) else config


#: override sections whose keys belong to another system and contain dots themselves: the rest of the
#: key is one literal key and the value its literal string (``spark.conf.spark.executor.memory=2g`` sets
#: Spark's ``spark.executor.memory`` to ``"2g"``, not a nested ``spark: {executor: ...}`` mapping)
LITERAL_KEY_SECTIONS = ("spark.conf",)


def _apply_override(raw: dict, override: str) -> None:
    key, sep, value = override.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"override {override!r} is not of the form key.sub=value")
    section = next((s for s in LITERAL_KEY_SECTIONS if key.startswith(s + ".") and len(key) > len(s) + 1), None)
    parts = [*section.split("."), key[len(section) + 1:]] if section else key.split(".")
    node = raw
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"override {override!r}: {part} is not a section")
        node = child
    if section:
        node[parts[-1]] = value  # a property of another system: its literal string
        return
    node[parts[-1]] = _override_value(value)


def _override_value(value: str) -> Any:
    """A command-line value as YAML reads it (numbers, booleans, null, lists), except that an unquoted
    string stays exactly as typed: YAML would cut ``/data/a b #1`` at its "comment", and a path must
    never be shortened silently."""
    if not value.strip():
        return ""
    try:
        parsed = yaml.safe_load(value)
    except yaml.YAMLError:
        return value
    if isinstance(parsed, str) and not value.strip().startswith(("'", '"')):
        return value.strip()
    if parsed is None and value.strip() not in ("null", "Null", "NULL", "~"):
        return value.strip()  # "#..." is no comment on a command line
    return parsed


def build(cls: type, raw: Any, prefix: str):
    """Turn a mapping into the dataclass ``cls``, checking keys and types recursively."""
    where = prefix or "config"
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(raw).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        raise ConfigError(f"{_join(prefix, unknown[0])}: unknown key (known: {', '.join(sorted(fields))})")
    hints = typing.get_type_hints(cls)
    values = {name: _coerce(hints[name], raw[name], _join(prefix, name)) for name in raw}
    try:
        return cls(**values)
    except ConfigError:
        raise  # already names its dotted key
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: {exc}") from None


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _coerce(hint: Any, value: Any, key: str) -> Any:
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        return build(hint, value if value is not None else {}, key)
    if origin is Literal:
        allowed = typing.get_args(hint)
        if value not in allowed:
            raise ConfigError(f"{key}: expected one of {', '.join(map(repr, allowed))}, got {value!r}")
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in typing.get_args(hint):
            return None
        inner = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        return _coerce(inner[0], value, key)
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true/false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        return float(value)
    if hint is str:
        if value is None:
            return ""
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise ConfigError(f"{key}: expected a string, got {value!r}")
        return str(value)
    if origin is tuple and typing.get_args(hint) == (str, ...):
        if not isinstance(value, (list, tuple)) or not all(isinstance(item, str) for item in value):
            raise ConfigError(f"{key}: expected a list of strings, e.g. [en, de], got {value!r}")
        return tuple(value)
    if hint is dict or origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        return dict(value)
    return value


def as_dict(config: Any) -> dict:
    """Plain nested dict (for the runs table and logs)."""
    return dataclasses.asdict(config)


def executor_config(settings: ExecutorSettings) -> ExecutorConfig:
    """The executor thresholds and bounds of a job config."""
    return ExecutorConfig(
        max_removed_fraction=settings.max_removed_fraction,
        min_kept_fraction=settings.min_kept_fraction,
        drop_at_or_below_words=settings.drop_at_or_below_words,
        error_fallback_at=settings.error_fallback_at,
        max_growth=settings.max_growth,
        max_ops=settings.max_ops,
        max_program_chars=settings.max_program_chars,
    )
