"""``prox-spark``: one command line for every job (``prox-spark COMMAND --help`` for each command).

Each command names the module that implements it and is imported only when it runs, so ``prox-spark --help``
(and the help of a command that needs no model) starts neither Spark nor torch, and a light install (no
training extra) still runs ``refine`` and ``clean``. Every job keeps its ``python -m prox_spark.jobs.<name>`` entry
point (``python -m jobs.<name>`` in a checkout); the commands call the same ``main(argv)``.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import re
import sys
from dataclasses import dataclass
from pathlib import Path

PACKAGE = "prox-spark"


@dataclass(frozen=True)
class Command:
    """A subcommand: ``module.function(argv)`` returns the exit code."""

    module: str
    summary: str
    function: str = "main"


#: every command, in the order the usage lists them
COMMANDS: dict[str, Command] = {
    "refine": Command("prox_spark.jobs.refine", "the Spark job: a corpus -> Delta tables refined, programs, quarantine, runs, shards"),
    "apply": Command("prox_spark.jobs.apply", "re-execute a run's stored programs under new executor settings, no model: a new run in the same tables"),
    "clean": Command("prox_spark.cli", "the same pipeline without Spark: JSONL in -> one JSON record per input out", "clean_main"),
    "pretrain": Command("prox_spark.jobs.pretrain", "pre-train a language model on a refined Delta table (torch)"),
    "compare": Command("prox_spark.jobs.compare", "raw vs rules vs ProX: refine one corpus four ways, pre-train on each"),
    "build-seed": Command("prox_spark.jobs.build_seed", "build the fine-tuning seed data (doc labels, chunk programs, splits)"),
    "annotate-seed": Command("prox_spark.jobs.annotate_seed", "annotate seed programs through an OpenAI-compatible endpoint"),
    "train-refiner": Command("prox_spark.jobs.train_refiner", "fine-tune a refining model on seed data and export it to ONNX"),
    "train-line-refiner": Command("prox_spark.jobs.train_line_refiner", "train the line refiner on the gold cleaning pages and export it to ONNX"),
    "evaluate-refiner": Command("prox_spark.jobs.evaluate_refiner", "evaluate exported refining models (markdown + JSON reports)"),
    "eval": Command("prox_spark.jobs.evaluate_cleaning", "score configs on the human-gold cleaning sets (shingle F1, drops, pages/s)"),
}

#: which extra installs a third-party module a command may need (for the error when it is missing)
_EXTRA_OF = {
    "pyspark": "spark", "delta": "spark",
    "onnxruntime": "cpu", "tokenizers": "cpu",
    "torch": "train", "transformers": "train", "optimum": "train", "onnx": "train", "httpx": "train",
    "deltalake": "train", "py3langid": "train",
    "fastwarc": "warc", "resiliparse": "warc",
    "papermill": "notebooks", "matplotlib": "notebooks",
}


def usage() -> str:
    """The plain listing printed by ``prox-spark``, ``prox-spark --help`` and after an unknown command."""
    width = max(map(len, COMMANDS))
    lines = [
        f"usage: {PACKAGE} COMMAND [ARGS ...]      ({PACKAGE} COMMAND --help for a command's options)",
        f"       {PACKAGE} --version",
        "",
        "commands:",
        *(f"  {name:<{width}}  {command.summary}" for name, command in COMMANDS.items()),
        "",
        "Jobs that read a YAML config take --conf FILE and key.sub=value overrides.",
    ]
    return "\n".join(lines)


def version() -> str:
    """The installed distribution's version; from a checkout that is not installed, ``pyproject.toml``'s."""
    try:
        return importlib.metadata.version(PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        pyproject = Path(__file__).resolve().parents[1] / "pyproject.toml"
        found = re.search(r'^version\s*=\s*"([^"]+)"', pyproject.read_text(encoding="utf-8"), re.MULTILINE) if pyproject.is_file() else None
        return found.group(1) if found else "unknown"


def clean_main(argv: list[str]) -> int:
    """``prox-spark clean``: the refining pipeline on a JSONL file, no Spark (also the quickest model check)."""
    from prox_spark.config import ConfigError, load_config

    parser = argparse.ArgumentParser(
        prog=f"{PACKAGE} clean",
        description="Refine a JSONL file of {id, text} records without Spark, through the stages of "
        "pipeline.mode (prox, prox-doc, rules, rules+prox); writes one record per input with id, text "
        "(\"\" when dropped), kept, reason, drop_stage, rules_program, doc_program, chunk_program. "
        "Without --conf and model paths it serves the bundled demo models.",
    )
    parser.add_argument("--input", required=True, help="input .jsonl or .jsonl.gz")
    parser.add_argument("--output", required=True, help="output .jsonl ('-' for stdout)")
    parser.add_argument("--conf", help="YAML config (pipeline.mode, models, rules, executor, input columns); default: the built-in defaults")
    parser.add_argument("overrides", nargs="*", metavar="key.sub=value", help="config overrides")
    args = parser.parse_args(argv)
    from prox_spark.clean import clean_file
    from prox_spark.inference import ModelLoadError
    from prox_spark.readers.warc import WarcUnavailableError

    try:
        config = load_config(args.conf, args.overrides)
        if args.output == "-":
            stats = clean_file(args.input, sys.stdout, config)
        else:
            with open(args.output, "w", encoding="utf-8") as out:
                stats = clean_file(args.input, out, config)
    except (ConfigError, ModelLoadError, FileNotFoundError, ValueError, WarcUnavailableError) as exc:
        print(f"{PACKAGE} clean: {exc}", file=sys.stderr)
        return 2
    print(
        f"{PACKAGE} clean: {stats.records} records: {stats.kept} kept, {stats.dropped} dropped, "
        f"{stats.quarantined} quarantined in {stats.seconds:.1f}s",
        file=sys.stderr,
    )
    return 0


def _run(name: str, argv: list[str]) -> int:
    """Import the command's module and call it; a missing dependency is reported with the extra to install."""
    command = COMMANDS[name]
    try:
        module = importlib.import_module(command.module)
    except ModuleNotFoundError as exc:
        missing = (exc.name or "").split(".")[0]
        if exc.name == command.module:
            print(f"{PACKAGE} {name}: its module {command.module} is not in this installation", file=sys.stderr)
        else:
            extra = _EXTRA_OF.get(missing)
            hint = f" (pip install '{PACKAGE}[{extra}]')" if extra else ""
            print(f"{PACKAGE} {name}: needs the Python package {missing!r}, which is not installed{hint}", file=sys.stderr)
        return 2
    # argparse names the program after sys.argv[0] when a job does not set prog: make it the command.
    saved, sys.argv[0] = sys.argv[0], f"{PACKAGE} {name}"
    try:
        return int(getattr(module, command.function)(argv) or 0)
    finally:
        sys.argv[0] = saved


def main(argv: list[str] | None = None) -> int:
    """Run ``prox-spark COMMAND ...``; returns the exit code.

    Called without ``argv`` it reads ``sys.argv``, as the ``prox-spark`` console script and a Databricks
    ``python_wheel_task`` (entry point ``prox-spark``) call it, and raises a non-zero code as ``SystemExit``:
    the task ignores what its entry point returns, and a run that failed its checks must fail the task."""
    if argv is not None:
        return _main(list(argv))
    code = _main(sys.argv[1:])
    if code:
        raise SystemExit(code)
    return code


def _main(argv: list[str]) -> int:
    if not argv:
        print(usage(), file=sys.stderr)
        return 2
    first, rest = argv[0], argv[1:]
    if first in ("-h", "--help"):
        print(usage())
        return 0
    if first == "--version":
        print(f"{PACKAGE} {version()}")
        return 0
    if first not in COMMANDS:
        print(f"{PACKAGE}: unknown command {first!r}\n\n{usage()}", file=sys.stderr)
        return 2
    return _run(first, rest)


if __name__ == "__main__":
    sys.exit(main())
