"""Typed config: YAML + overrides, and errors that name the bad key."""

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


def test_prefill_pass_size_reaches_the_decoders():
    """models.<stage>.prefill_tokens sets each stage's decoder; null leaves it to the device (2048 on CPU)."""
    from prox_spark.clean import load_models
    from prox_spark.inference.decode import CPU_PREFILL_TOKENS

    root = Path(__file__).resolve().parents[1]
    local = root / "conf" / "local.yaml"
    assert load_config(local).models.chunk.prefill_tokens == 0  # the bundled tiny models prefill in one pass
    overrides = ["models.provider=cpu", "models.doc.prefill_tokens=512", "models.chunk.prefill_tokens=null"]
    config = load_config(local, overrides)
    doc, chunk = load_models(config)
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
