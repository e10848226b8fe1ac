"""Refine a batch of documents end to end without Spark: ``run_stages``, then the rows the job writes.

Returns two frames with the rows the Spark job writes to its ``refined`` and ``programs`` tables, built by the
same function the job's stage pass calls (``pipeline.rows.table_rows``), plus each document's stage programs
on its ``refined`` row. Documents dropped by a stage never reach the later ones' models, as in the reference.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import pandas as pd

from prox_spark.pipeline.model_kinds import ServedModel
from prox_spark.pipeline.rows import PROGRAM_ROW_ARROW_TYPE, REFINED_ROW_ARROW_TYPE, stage_model_ids, table_rows
from prox_spark.pipeline.settings import RefineSettings
from prox_spark.pipeline.stage_pass import NO_MODELS, run_stages
from prox_spark.rules import DEFAULT_PRESET

#: the columns of ``refine_batch``'s frames: the document's id, then its row's fields
DOC_COLUMNS = ("doc_id", *(field.name for field in REFINED_ROW_ARROW_TYPE))
PROGRAM_COLUMNS = ("doc_id", *(field.name for field in PROGRAM_ROW_ARROW_TYPE))


def refine_batch(
    doc_ids: Sequence[Any],
    texts: Sequence[Any],
    models: Mapping[str, ServedModel] = NO_MODELS,
    settings: RefineSettings = RefineSettings(),
    *,
    stages: Sequence[str] = ("doc", "chunk"),
    rules_preset: str = DEFAULT_PRESET,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Refine ``texts`` (one per ``doc_ids``) through ``stages`` with ``models`` (each model stage's model, by
    stage name: ``prox_spark.clean.load_models``); returns ``(documents, programs)`` frames.

    ``stages`` as ``pipeline.mode`` names them (``prox_spark.config.PIPELINE_STAGES``); a model stage's program
    rows carry its model's id, the rules stage's ``rules:<preset>``, as the job's do.
    """
    if len(doc_ids) != len(texts):
        raise ValueError(f"{len(doc_ids)} doc_ids but {len(texts)} texts")
    columns = run_stages(texts, stages, settings, rules_preset=rules_preset, models=models)
    model_ids = stage_model_ids(rules_preset, {stage: model.model_id for stage, model in models.items()})
    rows = table_rows(columns, stages, model_ids)
    refined, programs = rows.column("refined").to_pylist(), rows.column("programs").to_pylist()
    return (
        pd.DataFrame.from_records(
            [{"doc_id": doc_id, **row} for doc_id, row in zip(doc_ids, refined)], columns=list(DOC_COLUMNS)
        ),
        pd.DataFrame.from_records(
            [{"doc_id": doc_id, **row} for doc_id, doc_rows in zip(doc_ids, programs) for row in doc_rows],
            columns=list(PROGRAM_COLUMNS),
        ),
    )
