"""Which Spark line this process runs: 3.5 (with Delta 3.3) or 4.0 (with Delta 4.0), from pyspark's version.

The job supports both (``udfs.delta_jars`` fetches the Delta jars of the installed line). The few APIs it calls
that Spark 3.5 lacks are bridged where they are called, on ``SPARK4``:

- ``SparkSession.addTag``/``removeTag`` (classic sessions from 4.0; 3.5 has them for Spark Connect only):
  ``SparkContext.addJobTag``/``removeJobTag`` on 3.5 (``udfs.job_tags``);
- ``pyspark.inheritable_thread_target(session)`` (4.0; 3.5 takes the thread target itself:
  ``udfs.side_by_side``);
- ``DataFrameWriter.saveAsTable`` in overwrite mode with ``replaceWhere`` on a Delta metastore table (3.5 takes
  Spark's v1 path there): ``DataFrameWriterV2.overwrite(condition)`` on 3.5 (``udfs.tables.replace_rows``).

Spark Connect is used on the 4.0 line only (the tests run it there; the Spark 3.5 venv has no Connect client).
"""

from __future__ import annotations

import re

import pyspark

#: (major, minor) of the pyspark in this process
PYSPARK_VERSION: tuple[int, int] = tuple(int(part) for part in re.findall(r"\d+", pyspark.__version__)[:2])  # type: ignore[assignment]
#: whether it is Spark 4 (the 4.0 line) rather than 3.5
SPARK4 = PYSPARK_VERSION >= (4, 0)
