"""int8 vs fp32 quality of the trained default models: doc F1 and chunk line F1 on the held-out seed split.

The issue's int8 target is ">= 1.5x fp32 end to end with <= 1 point F1 loss once trained models exist";
``benchmarks/inference.py`` measures the speed on random weights, this script the F1 on trained ones.
Per stage (doc, chunk), all evaluated by ``evaluate_model_on_seed`` on the same split:

- ``fp32 committed``: the model directory as committed (``prox_spark/resources/models/<kind>``);
- ``int8 committed``: that same graph through the export's ``quantize_int8`` (what ``precision="int8"``
  does), so the two differ by quantization only;
- with ``--checkpoints`` (the ``make models`` work folder holding ``<kind>_tiny/best``): the checkpoint
  exported again with the default fused attention, fp32 and int8: what the next retraining commits.

    python -m benchmarks.int8_quality [--seed-dir out/models/seed] [--checkpoints out/models/train] [--json out.json]

Exports go to a temporary folder; the committed models are only read. Needs the seed files built by
``python -m jobs.build_seed`` (``make models`` writes them to ``out/models/seed``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import shutil
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MODELS = REPO / "prox_spark" / "resources" / "models"
METRIC = {"doc": "doc_f1", "chunk": "line_f1"}


def int8_copy(source: Path, target: Path) -> Path:
    """``source`` (an exported fp32 model directory) quantized to int8 in ``target``, with its own manifest."""
    from prox_spark.inference import MODEL_FILE, load_manifest, sha256_file, verify_model_dir, write_manifest
    from prox_spark.training.export import quantize_int8

    manifest = load_manifest(source)
    if manifest.precision != "fp32":
        raise SystemExit(f"{source}: expected an fp32 model, found {manifest.precision}")
    target.mkdir(parents=True)
    quantize_int8(source / MODEL_FILE, target / MODEL_FILE)
    shutil.copyfile(source / manifest.tokenizer_file, target / manifest.tokenizer_file)
    files = {name: sha256_file(target / name) for name in (MODEL_FILE, manifest.tokenizer_file)}
    write_manifest(target, dataclasses.replace(manifest, precision="int8", files=files))
    verify_model_dir(target)
    return target


def fused_exports(checkpoint: Path, committed: Path, work: Path) -> dict[str, Path]:
    """fp32 and int8 fused-attention exports of ``checkpoint`` with the committed model's manifest settings."""
    from prox_spark.inference import load_manifest
    from prox_spark.training.export import export_model

    manifest = load_manifest(committed)
    dirs = {}
    for precision in ("fp32", "int8"):
        dirs[f"{precision} fused re-export"] = work / f"{manifest.kind}-fused-{precision}"
        export_model(
            checkpoint,
            dirs[f"{precision} fused re-export"],
            model_id=f"{manifest.model_id}-fused",
            kind=manifest.kind,
            tokenizer_file=manifest.tokenizer_file,
            prompt_template=manifest.prompt_template,
            max_prompt_tokens=manifest.max_prompt_tokens,
            max_new_tokens=manifest.max_new_tokens,
            doc_keep_threshold=manifest.doc_keep_threshold,
            precision=precision,
        )
    return dirs


def main(argv: Sequence[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed-dir", type=Path, default=REPO / "out" / "models" / "seed")
    parser.add_argument("--checkpoints", type=Path, help="folder with <kind>_tiny/best checkpoints (make models)")
    parser.add_argument("--split", default="test")
    parser.add_argument("--max-examples", type=int, help="first N examples of the split (default: all)")
    parser.add_argument("--json", type=Path, help="write the results as JSON to this path")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    warnings.filterwarnings("ignore")
    for name in ("onnxruntime", "prox_spark", "root"):
        logging.getLogger(name).setLevel(logging.ERROR)

    from prox_spark.training.evaluate import evaluate_model_on_seed

    results: dict = {"split": args.split, "stages": {}}
    with tempfile.TemporaryDirectory(prefix="prox-int8-") as tmp:
        work = Path(tmp)
        for kind in ("doc", "chunk"):
            seed_file = args.seed_dir / f"{kind}.jsonl"
            if not seed_file.is_file():
                raise SystemExit(f"{seed_file}: seed file missing; build it with python -m jobs.build_seed (make models)")
            committed = MODELS / kind
            variants = {"fp32 committed": committed, "int8 committed": int8_copy(committed, work / f"{kind}-int8")}
            checkpoint = args.checkpoints / f"{kind}_tiny" / "best" if args.checkpoints else None
            if checkpoint and checkpoint.is_dir():
                variants.update(fused_exports(checkpoint, committed, work))
            rows = {}
            for name, directory in variants.items():
                metrics = evaluate_model_on_seed(directory, seed_file, split=args.split, max_examples=args.max_examples)
                rows[name] = {"f1": metrics[METRIC[kind]], "n": metrics["n"], "seconds": metrics["seconds"]}
                print(f"{kind:5s} {name:22s} {METRIC[kind]} {rows[name]['f1']:.4f}  (n={metrics['n']}, {metrics['seconds']:.1f} s)")
            for precision_pair in (("fp32 committed", "int8 committed"), ("fp32 fused re-export", "int8 fused re-export")):
                if all(p in rows for p in precision_pair):
                    loss = 100 * (rows[precision_pair[0]]["f1"] - rows[precision_pair[1]]["f1"])
                    rows[f"int8 loss in points ({precision_pair[0]})"] = loss
                    print(f"{kind:5s} int8 loss vs {precision_pair[0]}: {loss:+.2f} F1 points (target <= 1)")
            results["stages"][kind] = rows
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return results


if __name__ == "__main__":
    main()
