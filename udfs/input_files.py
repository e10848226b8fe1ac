"""The refine job's input listing: plain paths with ``prox_spark.readers``, URIs through Spark's Hadoop FileSystem.

Cloud storage (``s3://``, ``s3a://``, ``abfss://``, ``gs://``, ``dbfs:/``, ``hdfs://``, ``file:``) is
listed by the Spark session's own file index, so it uses the connectors and credentials the cluster is
configured with (EMR's EMRFS, Databricks' Unity Catalog / instance profiles), handles globs, recurses
into directories and skips hidden and ``_``-prefixed files as Spark does. The listing runs on the
driver before any stage; the tasks then open each file with ``prox_spark.readers.storage.open_input``.
Plain paths (including FUSE mounts such as ``/dbfs/`` and ``/Volumes/``) need no session.
"""

from __future__ import annotations

from pyspark.errors import AnalysisException
from pyspark.sql import SparkSession

from prox_spark.readers import dispatch
from prox_spark.readers.storage import uri_scheme


def needs_session(spec: str) -> bool:
    """Whether listing ``spec`` needs a SparkSession (it is a URI, not a plain path)."""
    return uri_scheme(spec) is not None


def list_input_files(spec: str, spark: SparkSession | None = None) -> list[str]:
    """The corpus' files, sorted; ``FileNotFoundError`` when nothing is there (an empty run is a config error).

    The one listing of a run's input: the refine job's preflight and the document audit's re-read both call it."""
    if not needs_session(spec):
        return dispatch.list_local_files(spec)
    if spark is None:
        raise ValueError(f"listing {spec!r} needs a SparkSession (Hadoop FileSystem)")
    return hadoop_input_files(spark, spec)


def hadoop_input_files(spark: SparkSession, uri: str) -> list[str]:
    """Every file under ``uri`` (a file, a directory, recursively, or a glob) as fully qualified URIs.

    ``binaryFile`` is only used for its file index: ``inputFiles()`` lists without reading any content
    and without a Spark job (Spark lists large directories in parallel on its own).
    """
    try:
        index = spark.read.format("binaryFile").option("recursiveFileLookup", "true").load(uri)
        files = index.inputFiles()
    except AnalysisException as exc:
        if "PATH_NOT_FOUND" in str(exc) or "Path does not exist" in str(exc):
            raise FileNotFoundError(f"input path does not exist or matches nothing: {uri!r}") from None
        raise
    if not files:
        raise FileNotFoundError(f"no input files under {uri!r}")
    return sorted(files)
