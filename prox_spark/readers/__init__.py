"""Corpus readers: one file -> an iterator of :class:`Document` | :class:`Quarantined`.

Every input record ends up as a document or as a quarantine record with a reason code; no reader
raises for bad data. Plain Python generators over ONE file (no pyspark), so the Spark job can call
them inside ``mapInPandas`` over a DataFrame of file paths. See :mod:`prox_spark.readers.dispatch`
for the output schema.

The WARC reader needs the ``warc`` extra (fastwarc, resiliparse); without it this package still imports and
reads JSONL and parquet, and :func:`read_warc` raises :class:`WarcUnavailableError` naming the extra.
"""

from prox_spark.readers.dispatch import (
    FORMATS,
    RECORD_COLUMNS,
    RECORD_SPARK_DDL,
    detect_format,
    iter_record_frames,
    list_local_files,
    read_file,
)
from prox_spark.readers.jsonl import read_jsonl, read_parquet
from prox_spark.readers.records import (
    DEFAULT_MAX_TEXT_BYTES,
    MAX_RAW_BYTES,
    Document,
    Quarantined,
    Reason,
    Record,
    content_doc_id,
)
from prox_spark.readers.warc import WarcUnavailableError, read_warc

__all__ = [
    "DEFAULT_MAX_TEXT_BYTES",
    "FORMATS",
    "MAX_RAW_BYTES",
    "RECORD_COLUMNS",
    "RECORD_SPARK_DDL",
    "Document",
    "Quarantined",
    "Reason",
    "Record",
    "WarcUnavailableError",
    "content_doc_id",
    "detect_format",
    "iter_record_frames",
    "list_local_files",
    "read_file",
    "read_jsonl",
    "read_parquet",
    "read_warc",
]
