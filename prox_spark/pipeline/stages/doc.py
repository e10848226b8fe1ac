"""The doc stage: a model decides per document ``keep_doc()`` or ``drop_doc()`` (as its kind writes doc programs:
the generative model's ``write_doc_programs``), guarded by
the line refiner's main-text check when the line refiner runs the chunk stage (``spare_main_text_pages``). It hands
the next stage the document's text unchanged."""

from __future__ import annotations

from dataclasses import asdict, fields
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import pandas as pd
import pyarrow as pa

from prox_spark.lines.refiner import LineRefiner
from prox_spark.pipeline.model_stages import DocProgram, spare_main_text_pages
from prox_spark.pipeline.stages.base import (
    ModelStage, PassContext, StageRecord, StageRun, WHOLE_DOCUMENT_ROW, check_record_type, execute,
)
from prox_spark.programs.batch import EXECUTOR_RESULT_ARROW_TYPE

if TYPE_CHECKING:
    from prox_spark.pipeline.stage_pass import ModelPrograms

#: a ``DocProgram`` as Arrow (the ``doc`` column)
DOC_PROGRAM_ARROW_TYPE = pa.struct(
    [
        ("program", pa.string()),
        ("prompt_tokens", pa.int64()),
        ("latency_ms", pa.float64()),
        ("truncated", pa.bool_()),
        # main-text guard (models.doc_guard_words): the model's drop_doc() when the guard kept the page
        ("model_program", pa.string()),
    ]
)
DOC_PROGRAM_FIELDS = tuple(f.name for f in fields(DocProgram))
check_record_type(DOC_PROGRAM_ARROW_TYPE, DOC_PROGRAM_FIELDS, "DocProgram")
#: the ``programs`` table columns a stored doc program is read back from
STORED_DOC_FIELDS = ("program", "prompt_tokens", "latency_ms", "model_program")


class DocStage(ModelStage):
    name = "doc"
    model_kinds = ("generative",)
    schema = pa.schema([("doc", DOC_PROGRAM_ARROW_TYPE), ("doc_exec", EXECUTOR_RESULT_ARROW_TYPE)])
    stored_fields = STORED_DOC_FIELDS

    def empty_program(self) -> DocProgram:
        return DocProgram("", 0, 0.0)

    def write_programs(self, texts: list[str], models: ModelPrograms) -> Sequence[DocProgram]:
        programs = models.write(self.name, texts)
        chunk_model = models.models.get("chunk")
        if models.spare_main_text and isinstance(chunk_model, LineRefiner):
            s = models.settings
            programs = spare_main_text_pages(programs, texts, chunk_model, s.doc_guard_words, cuts=s.page_cuts)
        return programs

    def read_stored(self, stored: Sequence[Mapping[str, Any]]) -> DocProgram:
        """A document's doc program from its one doc row (a run writes one per document it reached)."""
        (row,) = stored
        return DocProgram(row["program"], row["prompt_tokens"], row["latency_ms"], model_program=row["model_program"])

    def run(self, texts: list, programs: list | None, context: PassContext) -> StageRun:
        assert programs is not None
        doc = pd.DataFrame.from_records([asdict(p) for p in programs], columns=list(DOC_PROGRAM_FIELDS))
        doc_exec = execute(texts, [p.program for p in programs], self.name, context.settings)
        return StageRun({"doc": doc, "doc_exec": doc_exec}, texts, doc_exec["kept"].tolist())

    def program_rows(self, record: StageRecord) -> list[dict[str, Any]]:
        doc, result = record["doc"], record["doc_exec"]
        return [{**WHOLE_DOCUMENT_ROW, "program": doc["program"], "ops": result["ops"], "errors": result["errors"],
                 "prompt_tokens": doc["prompt_tokens"], "latency_ms": doc["latency_ms"],
                 "model_program": doc["model_program"]}]

    def refined_program(self, record: StageRecord) -> str | None:
        return record["doc"]["program"]
