"""prox-spark: ProX ("Programming Every Example") corpus refining for Spark and plain Python.

The core package never imports pyspark, so the same logic runs in a pandas UDF, a test or a notebook.
"""

__version__ = "0.1.0"
