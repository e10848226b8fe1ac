"""ProX program grammar and executor (stdlib only, no Spark).

Public, stable API:

- ``execute(text, program, *, stage, dialect="reference", config=None) -> ExecutionResult``
- ``execute_batch(texts, programs, *, stage, dialect="reference", config=None) -> pandas.DataFrame``
  (one row per input, columns listed in ``BATCH_COLUMNS``; accepts lists, pandas Series or Arrow arrays)
- ``parse(program, *, stage, dialect="reference") -> ParsedProgram``

``stage`` is ``"doc"`` (keep_doc/drop_doc) or ``"chunk"`` (remove_lines/normalize/...).
``dialect`` is ``"reference"`` (bit-for-bit the released ProX executor, quirks included) or
``"strict"`` (real Python call syntax, every malformed op reported). ``config`` (``ExecutorConfig``)
holds the strict dialect's decision thresholds and, for both dialects, the bounds that keep any program
text cheap (``max_growth``, ``max_ops``, ``max_program_chars``): a program past one is ignored whole.
"""

from prox_spark.programs.config import ExecutorConfig
from prox_spark.programs.executor import execute, parse
from prox_spark.programs.batch import BATCH_COLUMNS, execute_batch
from prox_spark.programs.ops import (
    DropDoc,
    KeepChunk,
    KeepDoc,
    Normalize,
    Op,
    OpStatus,
    ParsedLine,
    ParsedProgram,
    RemoveAllLines,
    RemoveLines,
)
from prox_spark.programs.result import ExecutionResult, Outcome, Reason

__all__ = [
    "BATCH_COLUMNS",
    "DropDoc",
    "ExecutionResult",
    "ExecutorConfig",
    "KeepChunk",
    "KeepDoc",
    "Normalize",
    "Op",
    "OpStatus",
    "Outcome",
    "ParsedLine",
    "ParsedProgram",
    "Reason",
    "RemoveAllLines",
    "RemoveLines",
    "execute",
    "execute_batch",
    "parse",
]
