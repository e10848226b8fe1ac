"""Typed config: YAML + overrides, and errors that name the bad key."""

import re
from pathlib import Path

import pytest

from prox_spark.config import ConfigError, RefineConfig, as_dict, executor_config, load_config


def test_defaults_and_overrides(tmp_path):
    conf = tmp_path / "c.yaml"
    conf.write_text("input:\n  path: /data/corpus\nmodels:\n  doc:\n    batch_size: 4\n")
    config = load_config(conf, ["models.doc.batch_size=8", "executor.dialect=strict", "spark.conf.spark.x=1"])
    assert isinstance(config, RefineConfig)
    assert config.input.path == "/data/corpus"
    assert config.models.doc.batch_size == 8
    assert config.executor.dialect == "strict"
    assert config.models.chunk.max_new_tokens == 256
    assert as_dict(config)["input"]["format"] == "auto"
    assert executor_config(config.executor).max_removed_fraction == 0.95


@pytest.mark.parametrize(
    "override, message",
    [
        ("models.doc.batchsize=8", r"models\.doc\.batchsize: unknown key"),
        ("models.doc.batch_size=eight", r"models\.doc\.batch_size: expected an integer"),
        ("executor.dialect=lenient", r"executor\.dialect: expected one of 'reference', 'strict'"),
        ("executor.max_removed_fraction=yes", r"executor\.max_removed_fraction: expected a number"),
        ("input=3", r"input: expected a mapping"),
        ("nonsense", r"not of the form key\.sub=value"),
    ],
)
def test_errors_name_the_key(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, [override])


def test_missing_and_invalid_files(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("input: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)
    listy = tmp_path / "list.yaml"
    listy.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        load_config(listy)


def test_token_budget_reaches_the_pipeline_settings():
    from prox_spark.pipeline import settings_of

    config = load_config(None, ["models.doc.max_batch_tokens=4096", "models.chunk.max_batch_tokens=0"])
    settings = settings_of(config)
    # 0 means no cap: batch_size alone limits the rows
    assert (settings.doc_max_batch_tokens, settings.chunk_max_batch_tokens) == (4096, None)
    assert RefineConfig().models.doc.max_batch_tokens == 32768
    with pytest.raises(ConfigError, match=r"models\.chunk: max_batch_tokens must be >= 0"):
        load_config(None, ["models.chunk.max_batch_tokens=-1"])


def test_the_stage_settings_default_to_the_job_configs_defaults():
    """``RefineSettings()`` (notebooks, ``refine_batch``) and an empty job config run alike: each default is written
    once, in the config, apart from the token limits (None: the model's own limit, no rows x tokens cap)."""
    from dataclasses import fields, replace

    from prox_spark.chunking import DEFAULT_MAX_TOKENS
    from prox_spark.pipeline import RefineSettings, settings_of
    from prox_spark.rules import DEFAULT_PRESET

    token_limits = ("doc_max_new_tokens", "chunk_max_new_tokens", "doc_max_batch_tokens", "chunk_max_batch_tokens")
    from_config = settings_of(RefineConfig())
    assert replace(from_config, **{name: None for name in token_limits}) == RefineSettings()
    assert {f.name for f in fields(RefineSettings)} >= set(token_limits)
    assert RefineSettings().drop_comment_sections is True and RefineSettings().max_chunk_tokens == DEFAULT_MAX_TOKENS
    assert RefineConfig().rules.preset == DEFAULT_PRESET


def test_stage_settings_refuse_a_threshold_the_reference_dialect_ignores():
    """As a job config does (``executor.*``), settings built in code refuse a strict-only threshold under the
    reference dialect instead of running the released one without a word."""
    from prox_spark.pipeline import RefineSettings
    from prox_spark.programs import ExecutorConfig

    with pytest.raises(ValueError, match=r"executor\.max_removed_fraction: 0\.5 only applies to dialect 'strict'"):
        RefineSettings(executor=ExecutorConfig(max_removed_fraction=0.5))
    assert RefineSettings(dialect="strict", executor=ExecutorConfig(max_removed_fraction=0.5)).executor.max_removed_fraction == 0.5
    assert RefineSettings(executor=ExecutorConfig(max_ops=64)).executor.max_ops == 64  # bounds apply to both dialects


def test_prefill_pass_size_reaches_the_decoders():
    """models.<stage>.prefill_tokens sets each stage's decoder; null leaves it to the device (2048 on CPU)."""
    from prox_spark.clean import load_models
    from prox_spark.inference.decode import CPU_PREFILL_TOKENS

    root = Path(__file__).resolve().parents[1]
    local = root / "conf" / "local.yaml"
    assert load_config(local).models.doc.prefill_tokens == 0  # the bundled tiny doc model prefills in one pass
    generative_chunk = ["models.chunk.kind=generative", "models.chunk.path=prox_spark/resources/models/chunk"]
    overrides = ["models.provider=cpu", "models.doc.prefill_tokens=512", "models.chunk.prefill_tokens=null", *generative_chunk]
    config = load_config(local, overrides)
    models = load_models(config)
    doc, chunk = models["doc"], models["chunk"]
    assert (doc.decoder._prefill_tokens, chunk.decoder._prefill_tokens) == (512, CPU_PREFILL_TOKENS)
    assert RefineConfig().models.chunk.prefill_tokens is None
    with pytest.raises(ConfigError, match=r"models\.chunk: prefill_tokens must be >= 0"):
        load_config(None, ["models.chunk.prefill_tokens=-5"])


@pytest.mark.parametrize("path", sorted((Path(__file__).resolve().parents[1] / "conf" / "training").glob("*.yaml")),
                         ids=lambda p: p.name)
def test_training_configs_load(path):
    """A misspelt key in a training config fails here, not minutes into ``make models`` / ``make models-large``."""
    from prox_spark.training.sft import SFTConfig

    config = load_config(path, [], cls=SFTConfig)
    assert config.kind in ("doc", "chunk")
    assert config.max_steps > 0
    if config.kind == "doc":  # both doc models learn the in-distribution keeps (issue #5)
        assert config.extra_train_file and config.extra_train_examples > 0


REPO_ROOT = Path(__file__).resolve().parents[1]


def test_spark_conf_overrides_keep_the_property_name(tmp_path):
    """``spark.conf.<property>`` sets one Spark property, dots and all, to its literal string."""
    conf = tmp_path / "c.yaml"
    conf.write_text("spark:\n  conf:\n    spark.driver.maxResultSize: 1g\n")
    overrides = ["spark.conf.spark.executor.memory=2g", "spark.conf.spark.sql.adaptive.enabled=false",
                 "spark.conf.spark.task.resource.gpu.amount=0.25"]
    config = load_config(conf, overrides)
    assert config.spark.conf == {
        "spark.driver.maxResultSize": "1g",
        "spark.executor.memory": "2g",
        "spark.sql.adaptive.enabled": "false",
        "spark.task.resource.gpu.amount": "0.25",
    }
    assert load_config(None, ["spark.master=local[1]"]).spark.master == "local[1]"  # other spark keys as before


def test_empty_model_paths_serve_the_bundled_models_from_any_directory(tmp_path, monkeypatch):
    """No config at all: the bundled doc model and, for the chunk stage, the bundled line refiner."""
    from prox_spark.config import bundled_model_dir
    from prox_spark.pipeline import verify_stage_model

    monkeypatch.chdir(tmp_path)
    config = load_config(None, [])
    models = REPO_ROOT / "prox_spark" / "resources" / "models"
    assert (config.models.doc.kind, config.models.chunk.kind) == ("generative", "lines")
    assert Path(config.models.doc.path) == bundled_model_dir("doc") == models / "doc"
    assert Path(config.models.chunk.path) == bundled_model_dir("chunk", "lines") == models / "lines"
    for stage in ("doc", "chunk"):  # the manifest, its checksums and the graph, as the job's preflight checks them
        verify_stage_model(getattr(config.models, stage).path, getattr(config.models, stage).kind, stage)


def test_relative_model_paths_of_a_config_work_from_another_directory(tmp_path, monkeypatch):
    """conf/local.yaml writes its model paths from the project root: used as written there, found from elsewhere."""
    monkeypatch.chdir(REPO_ROOT)
    assert load_config("conf/local.yaml").models.doc.path == "prox_spark/resources/models/doc"
    monkeypatch.chdir(tmp_path)
    config = load_config(REPO_ROOT / "conf" / "local.yaml")
    assert config.models.doc.path == str(REPO_ROOT / "prox_spark" / "resources" / "models" / "doc")
    assert config.models.chunk.path == str(REPO_ROOT / "prox_spark" / "resources" / "models" / "lines")
    (tmp_path / "models" / "chunk").mkdir(parents=True)  # a path that exists from the working directory wins
    assert load_config(REPO_ROOT / "conf" / "local.yaml", ["models.chunk.path=models/chunk"]).models.chunk.path == "models/chunk"


def test_a_missing_relative_model_path_names_the_key_and_the_paths_tried(tmp_path, monkeypatch):
    (tmp_path / "project" / "conf").mkdir(parents=True)
    (tmp_path / "elsewhere").mkdir()
    conf = tmp_path / "project" / "conf" / "job.yaml"
    conf.write_text("models:\n  doc:\n    path: models/doc\n")
    monkeypatch.chdir(tmp_path / "elsewhere")
    tried = f"tried {tmp_path / 'elsewhere' / 'models' / 'doc'}, {tmp_path / 'project' / 'models' / 'doc'}"
    with pytest.raises(ConfigError, match=f"^models.doc.path: 'models/doc' not found \\({re.escape(tried)}\\)$"):
        load_config(conf)
    # a stage the pipeline mode does not run keeps its path: the rule baseline needs no model
    assert load_config(conf, ["pipeline.mode=rules"]).models.doc.path == "models/doc"
    # URIs and absolute paths are left to the job's preflight, which checks the model itself
    assert load_config(conf, ["models.doc.path=s3://bucket/doc"]).models.doc.path == "s3://bucket/doc"
    assert load_config(conf, ["models.doc.path=/nonexistent/doc"]).models.doc.path == "/nonexistent/doc"


def test_bundled_generative_chunk_model_is_served_with_its_settings_unless_the_config_sets_them():
    """kind: generative without a path serves the tiny generative chunk model as it was tested (128-token
    chunks, the guard, one prefill pass); the line refiner takes none of those settings."""
    bundled = load_config(None, ["models.chunk.kind=generative"]).models
    assert bundled.chunk.path == str(REPO_ROOT / "prox_spark" / "resources" / "models" / "chunk")
    assert (bundled.max_chunk_tokens, bundled.clip_chunk_programs) == (128, True)
    assert (bundled.doc.prefill_tokens, bundled.chunk.prefill_tokens) == (0, 0)
    chosen = load_config(None, ["models.chunk.kind=generative", "models.max_chunk_tokens=64", "models.chunk.prefill_tokens=null"]).models
    assert (chosen.max_chunk_tokens, chosen.clip_chunk_programs, chosen.chunk.prefill_tokens) == (64, True, None)
    own = load_config(None, ["models.chunk.path=/models/my-chunk"]).models  # another chunk model: the defaults
    assert (own.chunk.kind, own.max_chunk_tokens, own.clip_chunk_programs, own.chunk.prefill_tokens) == ("generative", 1500, False, None)
    assert own.doc.prefill_tokens == 0  # the doc stage still serves the bundled doc model
    lines = load_config(None, []).models
    assert (lines.chunk.kind, lines.max_chunk_tokens, lines.clip_chunk_programs) == ("lines", 1500, False)
    assert load_config(None, ["models.chunk.kind=lines"]).models.chunk.path == lines.chunk.path


def test_a_line_refiner_cannot_serve_the_doc_stage():
    with pytest.raises(ConfigError, match=r"models.*doc\.kind must be 'generative'"):
        load_config(None, ["models.doc.kind=lines"])



@pytest.mark.parametrize(
    "override, read, expected",
    [
        ("input.path=/data/a b #1/x", lambda c: c.input.path, "/data/a b #1/x"),
        ("input.path=#1", lambda c: c.input.path, "#1"),
        ('input.path="a #b"', lambda c: c.input.path, "a #b"),
        ("input.path=s3://bucket/x y", lambda c: c.input.path, "s3://bucket/x y"),
        ("models.udf_batch_rows=4", lambda c: c.models.udf_batch_rows, 4),
        ("models.clip_chunk_programs=true", lambda c: c.models.clip_chunk_programs, True),
    ],
)
def test_override_values_keep_what_was_typed(override, read, expected):
    assert read(load_config(None, [override])) == expected
