"""Independent Spark actions from driver threads at once: Delta commits to different tables, small reads.

Each Delta write or read-back of a small run is mostly driver time (planning, the transaction log, the
commit) with tasks too small to fill the cores, so the job's fixed cost per run is a chain of such
waits. Run side by side from threads they overlap: Spark schedules jobs from several threads, and
commits to different Delta tables never conflict. Threads are wrapped with
``pyspark.inheritable_thread_target`` so each job keeps the run's job tags (the UI, cancellation), and
run in a copy of the caller's context so log records still carry the run id.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from pyspark import inheritable_thread_target
from pyspark.sql import SparkSession

from prox_spark.udfs.spark_line import SPARK4


def run_concurrently(spark: SparkSession, actions: Mapping[str, Callable[[], Any]]) -> dict[str, Any]:
    """Run ``actions`` (name -> no-argument callable) in threads; their results by name.

    All actions run to completion; the first failure (in ``actions``' order) is then raised, so a
    caller that commits after them (the shard commit) never commits over a failed write.
    """
    if len(actions) <= 1:
        return {name: action() for name, action in actions.items()}
    with ThreadPoolExecutor(max_workers=len(actions), thread_name_prefix="prox-spark-action") as pool:
        futures = {
            name: pool.submit(contextvars.copy_context().run, inheriting(spark, action))
            for name, action in actions.items()
        }
        return {name: future.result() for name, future in futures.items()}


def inheriting(spark: SparkSession, action: Callable[[], Any]) -> Callable[[], Any]:
    """``action`` wrapped to run with the calling thread's job tags and properties: pyspark 4.0 takes the session
    (classic or Connect) first, 3.5 the thread target itself (classic sessions only)."""
    if SPARK4:
        return inheritable_thread_target(spark)(action)
    return inheritable_thread_target(action)
