"""``python -m jobs.spark fetch-jars|check``: set up and check the local SparkSession of this machine.

``fetch-jars`` fetches the Delta jars a local session loads (what ``make jars`` does); ``check`` starts a local
session (``prox_spark.udfs.session.build_local_session``) and round-trips a tiny Delta table, the quickest proof
that Java, pyspark and the jars fit together.
"""

from __future__ import annotations

import argparse
import os
import sys

from prox_spark.udfs.delta_jars import DeltaJarsMissing, fetch
from prox_spark.udfs.session import build_local_session


def _check(tmp: str | None) -> int:
    import tempfile

    spark = build_local_session("prox-spark-check", shuffle_partitions=1)
    try:
        with tempfile.TemporaryDirectory(dir=tmp) as folder:
            path = os.path.join(folder, "t")
            spark.range(3).write.format("delta").save(path)
            rows = spark.read.format("delta").load(path).count()
        print(f"spark {spark.version}, python {sys.executable}, delta round trip ok ({rows} rows)")
        return 0
    finally:
        spark.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m jobs.spark")
    sub = parser.add_subparsers(dest="command", required=True)
    fetch_cmd = sub.add_parser("fetch-jars", help="fetch the Delta jars into the cache (idempotent)")
    fetch_cmd.add_argument("--dest", default=None)
    check_cmd = sub.add_parser("check", help="start a local session and round-trip a tiny Delta table")
    check_cmd.add_argument("--tmp", default=None)
    args = parser.parse_args(argv)
    try:
        if args.command == "fetch-jars":
            fetch(args.dest)
            return 0
        return _check(args.tmp)
    except (DeltaJarsMissing, RuntimeError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
