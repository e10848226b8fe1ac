"""The entry points (``python -m jobs.<name>`` in a checkout, ``prox-spark <name>``, spark-submit), imported as
``prox_spark.jobs``; the Spark plan they run, and the session they run it on (``udfs.session``), are in ``udfs/``.

``jobs.spark`` (``fetch-jars``, ``check``) and ``jobs.delta_jars`` (``fetch``, ``paths``) are the command lines
that set up a local session: the Delta jars it loads are fetched once by ``make jars``, never at job start.
"""
