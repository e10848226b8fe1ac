"""Spark entry points (``python -m jobs.<name>`` / spark-submit) and their session set-up.

``jobs.spark`` builds or finds the SparkSession; ``jobs.delta_jars`` manages the Delta jars that a
local session loads (resolved once at set-up by ``make jars``, never downloaded at job start).
"""
