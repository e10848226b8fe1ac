"""``prox-spark``: command line entry point (``prox-spark COMMAND --help`` for each command).

- ``refine``: the Spark job (corpus → Delta tables); needs pyspark + delta (or a cluster's).
- ``clean``: the same pipeline without Spark, JSONL in → JSONL out.
"""

from __future__ import annotations

import argparse
import sys

from prox_spark.config import ConfigError, load_config


def _clean(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="prox-spark clean",
        description="Refine a JSONL file of {id, text} records without Spark, through the stages of "
        "pipeline.mode (prox, prox-doc, rules, rules+prox); writes one record per input with id, text "
        "(\"\" when dropped), kept, reason, drop_stage, rules_program, doc_program, chunk_program.",
    )
    parser.add_argument("--input", required=True, help="input .jsonl or .jsonl.gz")
    parser.add_argument("--output", required=True, help="output .jsonl ('-' for stdout)")
    parser.add_argument("--conf", help="YAML config (pipeline.mode, models, rules, executor, input columns); default: the built-in defaults")
    parser.add_argument("overrides", nargs="*", metavar="key.sub=value", help="config overrides")
    args = parser.parse_args(argv)
    from prox_spark.clean import clean_file
    from prox_spark.inference import ModelLoadError

    try:
        config = load_config(args.conf, args.overrides)
        if args.output == "-":
            stats = clean_file(args.input, sys.stdout, config)
        else:
            with open(args.output, "w", encoding="utf-8") as out:
                stats = clean_file(args.input, out, config)
    except (ConfigError, ModelLoadError, FileNotFoundError, ValueError) as exc:
        print(f"prox-spark clean: {exc}", file=sys.stderr)
        return 2
    print(
        f"prox-spark clean: {stats.records} records: {stats.kept} kept, {stats.dropped} dropped, "
        f"{stats.quarantined} quarantined in {stats.seconds:.1f}s",
        file=sys.stderr,
    )
    return 0


def _refine(argv: list[str]) -> int:
    from jobs.refine import main

    return main(argv)


COMMANDS = {"refine": _refine, "clean": _clean}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        print(__doc__.strip(), file=sys.stderr if argv and argv[0] not in ("-h", "--help") else sys.stdout)
        return 0 if not argv or argv[0] in ("-h", "--help") else 2
    return COMMANDS[argv[0]](argv[1:])


if __name__ == "__main__":
    sys.exit(main())
