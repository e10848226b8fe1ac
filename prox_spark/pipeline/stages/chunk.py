"""The chunk stage: a model writes a program per chunk of each document, as its kind writes them
(``prox_spark.pipeline.model_kinds``: a generative model per line-numbered chunk, the line refiner once per page),
merged into the document's program in chunk order (``merge_programs``). A document has a ``programs`` row per chunk,
with the ops of its own program lines."""

from __future__ import annotations

from dataclasses import asdict, fields
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import pandas as pd
import pyarrow as pa

from prox_spark.pipeline.model_stages import ChunkProgram, merge_programs
from prox_spark.pipeline.stages.base import ModelStage, PassContext, StageRecord, StageRun, check_record_type, execute
from prox_spark.programs.batch import EXECUTOR_RESULT_ARROW_TYPE

if TYPE_CHECKING:
    from prox_spark.pipeline.stage_pass import ModelPrograms

#: a ``ChunkProgram`` as Arrow (an entry of the ``chunks`` column)
CHUNK_PROGRAM_ARROW_TYPE = pa.struct(
    [
        ("chunk_index", pa.int64()),
        ("first_line", pa.int64()),
        ("last_line", pa.int64()),
        ("program", pa.string()),
        ("prompt_tokens", pa.int64()),
        ("latency_ms", pa.float64()),
        ("oversize", pa.bool_()),
        ("truncated", pa.bool_()),
        # where this chunk's program lines start in the document's merged program
        ("program_line_offset", pa.int64()),
        ("program_lines", pa.int64()),
        # chunk-range guard (models.clip_chunk_programs): ops it clipped, and the model's own text
        ("clipped_ops", pa.int64()),
        ("model_program", pa.string()),
    ]
)
check_record_type(CHUNK_PROGRAM_ARROW_TYPE, tuple(f.name for f in fields(ChunkProgram)), "ChunkProgram")
#: the ``programs`` table columns a stored chunk program is read back from (one row per chunk)
STORED_CHUNK_FIELDS = (
    "chunk_index", "first_line", "last_line", "program", "prompt_tokens", "latency_ms", "clipped_ops", "model_program",
)


class ChunkStage(ModelStage):
    name = "chunk"
    model_kinds = ("generative", "lines")
    schema = pa.schema(
        [
            ("chunks", pa.list_(CHUNK_PROGRAM_ARROW_TYPE)),
            ("chunk_program", pa.string()),
            ("chunk_exec", EXECUTOR_RESULT_ARROW_TYPE),
        ]
    )
    stored_fields = STORED_CHUNK_FIELDS

    def empty_program(self) -> list[ChunkProgram]:
        return []

    def write_programs(self, texts: list[str], models: ModelPrograms) -> Sequence[list[ChunkProgram]]:
        return models.write(self.name, texts)

    def read_stored(self, stored: Sequence[Mapping[str, Any]]) -> list[ChunkProgram]:
        """A document's chunk programs in chunk order, with where each one's lines sit in the merged program
        (``program_line_offset``, ``program_lines``: what ``program_rows`` slices a chunk's ops by)."""
        chunks, offset = [], 0
        for row in sorted(stored, key=lambda r: r["chunk_index"]):
            lines = row["program"].count("\n") + 1
            chunks.append(ChunkProgram(
                row["chunk_index"], row["first_line"], row["last_line"], row["program"], row["prompt_tokens"],
                row["latency_ms"], program_line_offset=offset, program_lines=lines, clipped_ops=row["clipped_ops"],
                model_program=row["model_program"],
            ))
            offset += lines
        return chunks

    def run(self, texts: list, programs: list | None, context: PassContext) -> StageRun:
        assert programs is not None
        merged = [merge_programs(chunks) for chunks in programs]
        chunk_exec = execute(texts, merged, self.name, context.settings)
        columns = {
            "chunks": pd.Series([[asdict(chunk) for chunk in chunks] for chunks in programs], dtype=object),
            "chunk_program": pd.Series(merged, dtype=object),
            "chunk_exec": chunk_exec,
        }
        return StageRun(columns, chunk_exec["text"].tolist(), chunk_exec["kept"].tolist())

    def program_rows(self, record: StageRecord) -> list[dict[str, Any]]:
        ops = record["chunk_exec"]["ops"]
        return [_chunk_row(chunk, ops) for chunk in record["chunks"]]

    def refined_program(self, record: StageRecord) -> str | None:
        return record["chunk_program"]


def _chunk_row(chunk: Mapping[str, Any], ops: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """A chunk's program row: its own lines of the merged program (``merge_programs``), so it shows its own ops."""
    start, stop = chunk["program_line_offset"], chunk["program_line_offset"] + chunk["program_lines"]
    own = [op for op in ops if start <= op["line"] < stop]
    return {
        "chunk_index": chunk["chunk_index"], "first_line": chunk["first_line"], "last_line": chunk["last_line"],
        "program": chunk["program"], "ops": own, "errors": sum(op["errors"] for op in own),
        "prompt_tokens": chunk["prompt_tokens"], "latency_ms": chunk["latency_ms"],
        "clipped_ops": chunk["clipped_ops"], "model_program": chunk["model_program"],
    }
