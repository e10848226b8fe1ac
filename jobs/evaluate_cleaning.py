"""Score a cleaning config on every gold set and the trafilatura test split; write one report (issue #19).

    python -m jobs.evaluate_cleaning --conf conf/local.yaml [key.sub=value ...] \\
        [--variant NAME=CONF_PATH[,key=value...]] [--data-dir ../shared/data] [--sets cleaneval,trafilatura] \\
        [--max-pages N] [--out prox_spark/resources/models/reports]

Variants: the baselines (``none``, ``lines>=12 words``, ``rules`` = the config with ``pipeline.mode=rules``),
the config itself as ``default`` (with the trailing overrides), and each ``--variant`` (a YAML config
and its own overrides; an empty CONF_PATH means the built-in defaults). Every variant runs through the
code ``prox-spark clean`` runs (``prox_spark.evaluation.harness``). Writes ``cleaning.md`` and
``cleaning.json`` into ``--out`` and prints the markdown. Model paths in a config are read from the
current directory, as ``prox-spark clean`` reads them: run it from the checkout's root.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import shlex
import sys
from datetime import datetime, timezone
from pathlib import Path

from prox_spark.config import ConfigError, load_config
from prox_spark.evaluation.harness import REPORT_SETS, Variant, baseline_variants, evaluate, report_pages
from prox_spark.evaluation.report import render_markdown, write_report
from prox_spark.inference import ModelLoadError

DEFAULT_DATA_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data"
DEFAULT_OUT = "prox_spark/resources/models/reports"


def parse_variant(spec: str) -> Variant:
    """``NAME=CONF_PATH[,key=value...]`` as a config variant (commas cannot appear inside a value)."""
    name, sep, rest = spec.partition("=")
    if not sep or not name.strip():
        raise ConfigError(f"--variant {spec!r} is not of the form NAME=CONF_PATH[,key=value...]")
    conf, *overrides = rest.split(",")
    return Variant(name.strip(), load_config(conf or None, overrides))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="prox-spark eval", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--conf", default="conf/local.yaml", help="the config scored as the 'default' variant")
    parser.add_argument("overrides", nargs="*", metavar="key.sub=value", help="overrides of --conf")
    parser.add_argument("--variant", action="append", default=[], metavar="NAME=CONF_PATH[,key=value...]",
                        help="another config to score (repeatable)")
    parser.add_argument("--data-dir", default=str(DEFAULT_DATA_DIR), help="the shared data folder (cleaning/gold/ ...)")
    parser.add_argument("--sets", default=None, help=f"comma-separated sets (default: all present of {','.join(REPORT_SETS)})")
    parser.add_argument("--max-pages", type=int, default=None, help="report pages per set (default: all), for quick runs")
    parser.add_argument("--out", default=DEFAULT_OUT, help="folder for cleaning.md and cleaning.json")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    if not Path(args.data_dir).is_dir():
        print(f"prox-spark eval: data folder {args.data_dir} not found (--data-dir)", file=sys.stderr)
        return 2
    if args.max_pages is not None and args.max_pages < 1:
        print(f"prox-spark eval: --max-pages must be >= 1, got {args.max_pages}", file=sys.stderr)
        return 2
    load_at_start = os.getloadavg()[0]
    try:
        config = load_config(args.conf, args.overrides)
        variants = [*baseline_variants(config), Variant("default", config), *map(parse_variant, args.variant)]
        sets = [s.strip() for s in args.sets.split(",") if s.strip()] if args.sets else None
        pages = report_pages(args.data_dir, sets, args.max_pages)
        if not pages:
            raise ValueError(f"no report pages under {args.data_dir}")
        report = evaluate(variants, pages)
    except (ConfigError, ModelLoadError, FileNotFoundError, ValueError) as exc:
        print(f"prox-spark eval: {exc}", file=sys.stderr)
        return 2
    command = shlex.join(["prox-spark", "eval", *(sys.argv[1:] if argv is None else argv)])
    report = {
        "generated_at": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "command": command,
        "data_dir": args.data_dir,
        "max_pages": args.max_pages,
        # a shared machine's load moves pages/s: the report says what it was
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, load average {load_at_start:.1f} at the start",
        **report,
    }
    md, js = write_report(report, args.out)
    print(render_markdown(report))
    print(f"wrote {md} and {js}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
