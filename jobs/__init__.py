"""The entry points (``python -m jobs.<name>`` in a checkout, ``prox-spark <name>``, spark-submit), imported as
``prox_spark.jobs``, and the session set-up they share; the Spark plan they run is in ``udfs/``.

``jobs.spark`` builds or finds the SparkSession; ``jobs.delta_jars`` manages the Delta jars that a
local session loads (resolved once at set-up by ``make jars``, never downloaded at job start).
"""
