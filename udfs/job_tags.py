"""Spark job tags for the job's steps: what ``setJobGroup``/``setJobDescription`` did, on classic and Connect.

``SparkContext.setJobGroup`` and ``setJobDescription`` do not exist under Spark Connect (Databricks
serverless, standard access mode): there is no SparkContext. ``SparkSession.addTag`` exists on both kinds
of session in pyspark 4.0. A tag marks every Spark job the calling thread starts while it is set; the UI
lists it with the job, and ``spark.interruptTag(tag)`` cancels those jobs (the run's tag cancels the run).
Tags are per thread: ``udfs.side_by_side`` copies them into its worker threads.

On Spark 3.5 a classic session has no ``addTag`` (3.5 offers it to Spark Connect sessions only): the tag goes
on the SparkContext instead (``addJobTag``, the same per-thread job tag), and
``spark.sparkContext.cancelJobsWithTag(tag)`` cancels the jobs.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator

from pyspark.sql import SparkSession

from prox_spark.udfs.connect import is_connect
from prox_spark.udfs.spark_line import SPARK4


def tag_of(*parts: str) -> str:
    """A valid tag from ``parts`` joined by ``-``: Spark refuses an empty tag or one with a comma, and a run id
    may hold anything, so commas and whitespace become ``_``."""
    tag = re.sub(r"[,\s]+", "_", "-".join(part for part in parts if part))
    return tag or "prox"


def run_tag(run_id: str) -> str:
    """The tag on every Spark job of run ``run_id``: ``spark.interruptTag(run_tag(run_id))`` cancels them."""
    return tag_of("prox-refine", run_id)


@contextlib.contextmanager
def job_tag(spark: SparkSession, tag: str) -> Iterator[str]:
    """Within the block, Spark jobs this thread starts carry ``tag`` (made valid by ``tag_of``); yields it."""
    tag = tag_of(tag)
    if SPARK4 or is_connect(spark):
        add, remove = spark.addTag, spark.removeTag
    else:  # Spark 3.5, classic
        add, remove = spark.sparkContext.addJobTag, spark.sparkContext.removeJobTag
    add(tag)
    try:
        yield tag
    finally:
        remove(tag)
