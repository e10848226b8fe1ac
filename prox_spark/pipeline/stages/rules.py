"""The rules stage: a heuristic rule chain (``rules.preset``, ``prox_spark.rules``) over each document. It needs no
model; its program is what the chain did, and its program rows carry ``rules:<preset>`` as their model id."""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from prox_spark.pipeline.stages.base import PassContext, Stage, StageRecord, StageRun, WHOLE_DOCUMENT_ROW, check_record_type
from prox_spark.programs.batch import OPS_ARROW_TYPE
from prox_spark.rules import RULES_STAGE_COLUMNS, rules_stage_batch

#: a ``rules_stage_batch`` row as Arrow (the ``rules_exec`` column); its ops are the executor's
RULES_RESULT_ARROW_TYPE = pa.struct(
    [
        ("text", pa.string()),
        ("kept", pa.bool_()),
        ("outcome", pa.string()),
        ("reason", pa.string()),
        ("rule", pa.string()),
        ("program", pa.string()),
        ("ops", OPS_ARROW_TYPE),
        ("words_before", pa.int64()),
        ("words_after", pa.int64()),
        ("lines_before", pa.int64()),
        ("lines_after", pa.int64()),
        ("latency_ms", pa.float64()),
    ]
)
check_record_type(RULES_RESULT_ARROW_TYPE, RULES_STAGE_COLUMNS, "RULES_STAGE_COLUMNS")


class RulesStage(Stage):
    name = "rules"
    schema = pa.schema([("rules_exec", RULES_RESULT_ARROW_TYPE)])

    def run(self, texts: list, programs: list | None, context: PassContext) -> StageRun:
        rules = rules_stage_batch(texts, context.rules_preset)
        return StageRun({"rules_exec": rules}, rules["text"].tolist(), rules["kept"].tolist())

    def program_rows(self, record: StageRecord) -> list[dict[str, Any]]:
        result = record["rules_exec"]
        return [{**WHOLE_DOCUMENT_ROW, "program": result["program"], "ops": result["ops"], "errors": 0,
                 "prompt_tokens": None, "latency_ms": result["latency_ms"]}]

    def refined_program(self, record: StageRecord) -> str | None:
        return record["rules_exec"]["program"]
