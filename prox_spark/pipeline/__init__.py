"""The refining pipeline without Spark: doc stage → executor → chunk stage → executor, on a batch.

The Spark job (``run_stages``, one pass per Arrow batch), ``prox-spark clean`` and notebooks all call
these functions, so a document is refined the same way wherever it runs.
"""

from prox_spark.pipeline.guard import ClippedProgram, clip_to_chunk
from prox_spark.pipeline.model_kinds import ServedModel, Serving, load_stage_model, verify_stage_model
from prox_spark.pipeline.generative_model import StageModel
from prox_spark.pipeline.refine import DOC_COLUMNS, PROGRAM_COLUMNS, refine_batch
from prox_spark.pipeline.settings import RefineSettings, serving_of, settings_of
from prox_spark.pipeline.stage_pass import run_stages, staged_columns
from prox_spark.pipeline.model_stages import (
    ChunkProgram,
    DocProgram,
    merge_programs,
    write_chunk_programs,
    write_doc_programs,
)

__all__ = [
    "DOC_COLUMNS",
    "PROGRAM_COLUMNS",
    "ChunkProgram",
    "ClippedProgram",
    "DocProgram",
    "RefineSettings",
    "ServedModel",
    "StageModel",
    "Serving",
    "load_stage_model",
    "verify_stage_model",
    "clip_to_chunk",
    "merge_programs",
    "refine_batch",
    "run_stages",
    "serving_of",
    "settings_of",
    "staged_columns",
    "write_chunk_programs",
    "write_doc_programs",
]
