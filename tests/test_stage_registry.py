"""A model stage is routed by its name, from the stage registry (``prox_spark.pipeline.stages.STAGES``): what a run
checks, loads, labels and reads back for its models comes from iterating the registry's model stages, so a new
model stage needs its module, its ``STAGES`` entry, its mode and its ``models.<name>`` section, nothing else.

No stage is registered here: each check compares what the plumbing produces with the model stages the registry
holds, in every ``pipeline.mode``.
"""

from __future__ import annotations

import pytest

from prox_spark.clean import load_models
from prox_spark.config import PIPELINE_STAGES, ModelsConfig, load_config, stage_model_paths
from prox_spark.pipeline import RefineSettings
from prox_spark.pipeline.apply import apply_stored_programs
from prox_spark.pipeline.rows import stage_model_ids
from prox_spark.pipeline.stages import STAGE_ORDER, STAGES, ModelStage, model_stages
from prox_spark.udfs.preflight import preflight

MODEL_STAGES = tuple(stage.name for stage in STAGES if isinstance(stage, ModelStage))


def test_every_model_stage_has_a_models_section_of_its_name():
    assert MODEL_STAGES and set(ModelsConfig().sections) == set(MODEL_STAGES)
    assert [stage.name for stage in model_stages(STAGE_ORDER)] == list(MODEL_STAGES)


@pytest.mark.parametrize("mode", sorted(PIPELINE_STAGES))
def test_a_run_checks_and_loads_the_model_of_each_model_stage_of_its_mode(tmp_path, mode):
    corpus = tmp_path / "c.jsonl"
    corpus.write_text('{"id": "a", "text": "hello"}\n')
    config = load_config(None, [f"input.path={corpus}", f"output.path={tmp_path / 'o'}", f"pipeline.mode={mode}",
                                "models.provider=cpu"])  # the bundled models
    want = [name for name in MODEL_STAGES if name in PIPELINE_STAGES[mode]]
    checked = preflight(config)
    assert list(checked.model_ids) == list(stage_model_paths(config)) == want
    assert list(load_models(config)) == want
    # every stage's programs rows get a model id: the checked models', the rules' preset, "" for the others
    ids = checked.program_model_ids(config)
    assert list(ids) == list(STAGE_ORDER)
    assert {name: ids[name] for name in want} == checked.model_ids


def test_model_ids_are_for_model_stages_only():
    with pytest.raises(ValueError, match="rules"):
        stage_model_ids("c4", {"rules": "a-model"})


def test_apply_needs_the_stored_programs_of_each_model_stage_it_runs():
    for missing in MODEL_STAGES:
        stored = {name: [None] for name in MODEL_STAGES if name != missing}
        with pytest.raises(ValueError, match=f"the {missing} stage"):
            apply_stored_programs(["text"], STAGE_ORDER, RefineSettings(), rules_preset="c4", stored=stored)


@pytest.mark.spark
def test_the_apply_pass_collects_each_model_stages_stored_rows_by_name(spark):
    from prox_spark.udfs.apply import stored_column, stored_programs

    stages = model_stages(STAGE_ORDER)
    fields = sorted({field for stage in stages for field in stage.stored_fields})
    schema = ", ".join(f"{column} string" for column in ["shard", "doc_id", "stage", *fields])
    rows = [("s", "d", name, *(f"{name}:{field}" for field in fields)) for name in STAGE_ORDER]
    (stored,) = stored_programs(spark.createDataFrame(rows, schema)).collect()  # the rules row is no stored program
    assert stored.__fields__ == ["shard", "doc_id", *(stored_column(stage.name) for stage in stages)]
    for stage in stages:
        assert [row.asDict() for row in stored[stored_column(stage.name)]] == [
            {field: f"{stage.name}:{field}" for field in stage.stored_fields}
        ]
