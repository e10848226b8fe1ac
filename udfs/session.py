"""The SparkSession a job runs on: the platform's session when there is one, else a local session with Delta.

- ``get_session()`` is what jobs call (``job_session(config)``: with a config's ``spark.*`` settings). On
  Databricks (and in any notebook or shell that already has a session) it returns the active session
  unchanged; under ``spark-submit`` (EMR, a cluster) it joins the JVM that spark-submit started, with the
  cluster's own configuration (Delta ships there). Only when Python runs on its own does it build a local
  session.
- ``build_local_session()`` is for local runs and tests: Delta extensions + catalog, ``spark.jars`` on the
  jars cached by ``make jars`` (``udfs.delta_jars``; never downloaded at start), workers on this interpreter,
  UTC, few shuffle partitions, no UI.
- ``get_session(remote=...)`` (or the ``SPARK_REMOTE`` environment variable) returns a Spark Connect session
  instead (``udfs.connect``): ``sc://host:port`` joins a running server, ``local[N]`` starts one here with
  the same local set-up.

``python -m jobs.spark fetch-jars|check`` is the command line over it.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Mapping

from pyspark.sql import SparkSession

import prox_spark
from prox_spark.config import RefineConfig
from prox_spark.udfs.connect import connect_session, is_connect
from prox_spark.udfs.delta_jars import delta_jar_paths

__all__ = ["build_local_session", "get_session", "job_session", "local_session_conf"]

log = logging.getLogger(__name__)

#: the folder holding the ``prox_spark`` package: a checkout's root, or site-packages
SOURCE_ROOT = Path(prox_spark.__file__).resolve().parents[1]


def local_session_conf(
    app_name: str = "prox-spark",
    *,
    shuffle_partitions: int = 4,
    master: str = "local[2]",
    warehouse_dir: str | os.PathLike | None = None,
    driver_memory: str = "2g",
    ui: bool = False,
    extra_conf: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The configuration ``build_local_session`` applies (raises ``udfs.delta_jars.DeltaJarsMissing`` naming
    ``make jars``)."""
    if shuffle_partitions < 1:
        raise ValueError(f"shuffle_partitions must be >= 1, got {shuffle_partitions}")
    jars = ",".join(str(path) for path in delta_jar_paths())
    conf = {
        "spark.master": master,
        "spark.app.name": app_name,
        "spark.jars": jars,
        "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
        "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
        "spark.pyspark.python": sys.executable,
        "spark.pyspark.driver.python": sys.executable,
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.shuffle.partitions": str(shuffle_partitions),
        "spark.default.parallelism": str(shuffle_partitions),
        # Delta rebuilds table state with 50 partitions by default: far too many for a laptop or a test.
        "spark.databricks.delta.snapshotPartitions": str(shuffle_partitions),
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.driver.memory": driver_memory,
        "spark.driver.host": "127.0.0.1",
        "spark.driver.bindAddress": "127.0.0.1",
        "spark.ui.enabled": "true" if ui else "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.python.worker.faulthandler.enabled": "true",
    }
    if warehouse_dir is not None:
        conf["spark.sql.warehouse.dir"] = str(Path(warehouse_dir).resolve())
    conf.update({str(key): str(value) for key, value in (extra_conf or {}).items()})
    return conf


#: Spark's JVM logging at WARN (its built-in default is INFO: 1.3 MB of it for a 5-document run); the job's own
#: Python logging is not affected. Shipped in the wheel next to this module; spark-submit passes it by hand.
LOG4J2_CONFIG = Path(__file__).resolve().with_name("log4j2.properties")


def build_local_session(
    app_name: str = "prox-spark",
    *,
    shuffle_partitions: int = 4,
    master: str = "local[2]",
    extra_conf: Mapping[str, str] | None = None,
    warehouse_dir: str | os.PathLike | None = None,
    driver_memory: str = "2g",
    ui: bool = False,
    log_level: str = "WARN",
) -> SparkSession:
    """A local SparkSession with Delta for development and tests (see the module doc).

    JVM-level settings (jars, driver memory, the log configuration) only take effect when this call starts
    the JVM; if a session already runs in this process it is returned with a warning. Unless
    ``spark.driver.extraJavaOptions`` already names a ``log4j2.configurationFile``, the JVM logs through
    ``LOG4J2_CONFIG`` (WARN), so nothing it prints before ``log_level`` applies floods the console.
    """
    conf = local_session_conf(
        app_name,
        shuffle_partitions=shuffle_partitions,
        master=master,
        warehouse_dir=warehouse_dir,
        driver_memory=driver_memory,
        ui=ui,
        extra_conf=extra_conf,
    )
    java_options = conf.get("spark.driver.extraJavaOptions", "")
    if "log4j2.configurationFile" not in java_options:
        conf["spark.driver.extraJavaOptions"] = f"-Dlog4j2.configurationFile={LOG4J2_CONFIG.as_uri()} {java_options}".strip()
    # pandas UDF workers are started by the JVM from its environment: without these they run whatever
    # `python3` is on PATH, which lacks the project's packages.
    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable
    _prepend_pythonpath(SOURCE_ROOT)
    if master.startswith("local"):
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")  # no hostname lookup, no loopback warning
    if SparkSession.getActiveSession() is not None:
        log.warning("a SparkSession is already running in this process: reusing it, JVM settings unchanged")
    builder = SparkSession.builder
    for key, value in conf.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    if not is_connect(session):  # a Connect session has no SparkContext; its server sets its own log level
        session.sparkContext.setLogLevel(log_level)
    return session


def get_session(app_name: str = "prox-spark", *, remote: str = "", **local_kwargs) -> SparkSession:
    """The session a job should use: the platform's when there is one, else one built here.

    - an active session (Databricks notebook/job, classic or Connect, pyspark shell): returned as-is;
    - ``remote`` (``spark.remote``): a Spark Connect session (``udfs.connect.connect_session``; ``local_kwargs``
      set up a ``local[N]`` server);
    - on Databricks (``DATABRICKS_RUNTIME_VERSION`` set; a serverless task's Python has no active session until
      one is asked for): the platform's session from ``SparkSession.builder.getOrCreate()``, nothing added;
    - the ``SPARK_REMOTE`` environment variable pyspark itself reads: a Spark Connect session, as ``remote``;
    - a JVM started by spark-submit (``PYSPARK_GATEWAY_PORT`` set): ``getOrCreate`` with the cluster's
      configuration, nothing local added;
    - otherwise: ``build_local_session(app_name, **local_kwargs)``.
    """
    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    if not remote and os.environ.get("DATABRICKS_RUNTIME_VERSION"):
        return SparkSession.builder.getOrCreate()
    remote = remote or os.environ.get("SPARK_REMOTE", "")
    if remote:
        return connect_session(remote, app_name, **local_kwargs)
    if os.environ.get("PYSPARK_GATEWAY_PORT"):
        return SparkSession.builder.appName(app_name).getOrCreate()
    return build_local_session(app_name, **local_kwargs)


def job_session(config: RefineConfig) -> SparkSession:
    """The session of a job run from a config (``refine``, ``apply``): ``get_session`` with ``spark.*``."""
    return get_session(
        "prox-spark-refine",
        remote=config.spark.remote,
        master=config.spark.master,
        shuffle_partitions=config.spark.shuffle_partitions,
        extra_conf=config.spark.conf,
    )


def _prepend_pythonpath(path: Path) -> None:
    """Let local Python workers import the project even when it is run from a checkout, not installed."""
    parts = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    if str(path) not in parts:
        os.environ["PYTHONPATH"] = os.pathsep.join([str(path), *parts])
