"""``python -m jobs.delta_jars fetch|paths``: fetch the Delta jars a local session loads, or print them.

``make jars`` runs ``fetch`` once at set-up; the jar lookup itself is ``prox_spark.udfs.delta_jars``, where the
local session (``prox_spark.udfs.session``) reads it.
"""

from __future__ import annotations

import argparse
import sys

from prox_spark.udfs import delta_jars
from prox_spark.udfs.delta_jars import DEFAULT_JARS_DIR, DEFAULT_MAVEN_REPO, DELTA_LINES, JARS_DIR_ENV, delta_jar_paths, fetch


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m jobs.delta_jars", description=delta_jars.__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    fetch_cmd = sub.add_parser("fetch", help="download missing Delta jars (idempotent, checksum-verified)")
    fetch_cmd.add_argument("--dest", default=None, help=f"jar folder (default ${JARS_DIR_ENV} or {DEFAULT_JARS_DIR})")
    fetch_cmd.add_argument("--repo", default=None, help=f"Maven repository URL (default {DEFAULT_MAVEN_REPO})")
    paths_cmd = sub.add_parser("paths", help="print the comma-separated spark.jars value (fails when missing)")
    for command in (fetch_cmd, paths_cmd):
        command.add_argument("--spark-version", default=None,
                             help=f"the Spark line whose jars to use ({', '.join(DELTA_LINES)}; default: the installed pyspark's)")
    args = parser.parse_args(argv)
    try:
        if args.command == "fetch":
            fetch(args.dest, repo=args.repo, spark_version=args.spark_version)
        else:
            print(",".join(str(path) for path in delta_jar_paths(spark_version=args.spark_version)))
    except (RuntimeError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
