"""Batch form of the executor over lists, pandas Series or Arrow arrays.

The executor UDF and the plain-Python pipeline both call this, so a Spark run and a notebook run of the
same inputs give identical rows. Per-document work is string processing (no array kernel does
``str.replace`` chains and line masks with per-op audit), so the batch is a tight loop over ``execute``.
"""

from __future__ import annotations

from typing import Any, Iterable, Sequence

import pandas as pd
import pyarrow as pa

from prox_spark.programs.config import ExecutorConfig
from prox_spark.programs.executor import Dialect, Stage, _check_mode, execute
from prox_spark.text import is_missing

#: one parsed program line with its status (an ``ops`` entry, ``ExecutionResult.as_record``), as Arrow
OP_ARROW_TYPE = pa.struct(
    [
        ("line", pa.int64()),
        ("op", pa.string()),
        ("start", pa.int64()),
        ("end", pa.int64()),
        ("source", pa.string()),
        ("target", pa.string()),
        ("status", pa.string()),
        ("errors", pa.int64()),
        ("detail", pa.string()),
    ]
)
OPS_ARROW_TYPE = pa.list_(OP_ARROW_TYPE)

#: one row of ``execute_batch`` as Arrow: the executor stages' result columns (``doc_exec``, ``chunk_exec``).
#: Spark's types are derived from it (``udfs.executor``), so this is the one place the layout is written.
EXECUTOR_RESULT_ARROW_TYPE = pa.struct(
    [
        ("text", pa.string()),
        ("kept", pa.bool_()),
        ("outcome", pa.string()),
        ("reason", pa.string()),
        ("errors", pa.int64()),
        ("n_ops", pa.int64()),
        ("words_before", pa.int64()),
        ("words_after", pa.int64()),
        ("lines_before", pa.int64()),
        ("lines_after", pa.int64()),
        ("ops", OPS_ARROW_TYPE),
    ]
)

BATCH_COLUMNS = tuple(field.name for field in EXECUTOR_RESULT_ARROW_TYPE)

OP_FIELDS = tuple(field.name for field in OP_ARROW_TYPE)


def _as_list(values: Any) -> list:
    if isinstance(values, (pa.Array, pa.ChunkedArray)):
        return values.to_pylist()
    if isinstance(values, pd.Series):
        return [None if is_missing(v) else v for v in values.tolist()]
    return list(values)


def execute_batch(
    texts: Sequence[Any] | pd.Series | pa.Array | Iterable[Any],
    programs: Sequence[Any] | pd.Series | pa.Array | Iterable[Any],
    *,
    stage: Stage,
    dialect: Dialect = "reference",
    config: ExecutorConfig | None = None,
) -> pd.DataFrame:
    """Execute one program per document; returns a DataFrame with ``BATCH_COLUMNS``, one row per input."""
    _check_mode(stage, dialect)
    text_list, program_list = _as_list(texts), _as_list(programs)
    if len(text_list) != len(program_list):
        raise ValueError(f"{len(text_list)} texts but {len(program_list)} programs: one program per document")
    records = [
        execute(text, program, stage=stage, dialect=dialect, config=config).as_record()
        for text, program in zip(text_list, program_list)
    ]
    if not records:
        return pd.DataFrame({column: pd.Series(dtype=object) for column in BATCH_COLUMNS})
    return pd.DataFrame.from_records(records, columns=list(BATCH_COLUMNS))
