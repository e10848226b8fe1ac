"""What a run reads, pinned once and kept by every resume: ONE refine run of the refined Delta table at ONE version.

A fresh run takes ``data.version`` (or the table's latest version at start) and ``data.run_id`` (or the latest
succeeded run); a resumed run takes both from its checkpoint, so the data does not move under a long training
run. Under DDP rank 0 resolves "latest" and every rank pins what it found. A resume also refuses a checkpoint
whose data identity (table, version, run, files, tokenizer, packing settings, world size, workers) differs from
the run's: the data position in it only carries over to unchanged data.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import torch.distributed as dist

from prox_spark.config import ConfigError
from prox_spark.pretrain.data import DataSettings
from prox_spark.pretrain.delta import TableSnapshot, open_table, resolve_run_id
from prox_spark.pretrain.distributed import Dist


def pin_snapshot(data: DataSettings, env: Dist, state: dict[str, Any] | None, resume_from: Path | None) -> TableSnapshot:
    """The table at the run's version, for the run's refine run (``state``: the checkpoint resumed from, if any)."""
    version = data.version if data.version >= 0 else None
    if state is not None:
        if version is not None and version != state["data"]["table_version"]:
            raise ConfigError(
                f"data.version {version} differs from the checkpoint's table version {state['data']['table_version']} "
                f"({resume_from}); resume with the same version or a fresh checkpoint.dir"
            )
        version = state["data"]["table_version"]
    run_id = data.run_id or (state["data"].get("run_id") if state is not None else None)
    if env.ddp:
        box = [version if env.main else None, run_id]
        if env.main and version is None:
            box[0] = open_table(data.table, None, storage_options=data.storage_options).version
        if env.main and run_id is None:
            box[1] = resolve_run_id(data)
        dist.broadcast_object_list(box, src=0)
        version, run_id = box
    return open_table(
        data.table,
        version,
        storage_options=data.storage_options,
        text_column=data.text_column,
        kept_column=data.kept_column,
        run_id=run_id or resolve_run_id(data),
        run_column=data.run_column,
    )


def data_identity(data: DataSettings, env: Dist, snapshot: TableSnapshot, tokenizer_json: str) -> dict[str, Any]:
    """What the data position of a checkpoint depends on; recorded in every checkpoint."""
    return {
        "table": snapshot.uri,
        "table_version": snapshot.version,
        "run_id": snapshot.run_id,
        "files": len(snapshot.files),
        "files_fingerprint": snapshot.fingerprint,
        "tokenizer_sha256": _sha256(tokenizer_json),
        "block_size": data.block_size,
        "shuffle_buffer": data.shuffle_buffer,
        "seed": data.seed,
        "world_size": env.world,
        "num_workers": data.num_workers,
    }


def check_resumable(state: dict[str, Any], identity: dict[str, Any], resume_from: Path | None) -> None:
    """Raise ``ConfigError`` naming every part of the data identity that differs from the checkpoint's."""
    saved = {k: state["data"].get(k) for k in identity}
    changed = {k: (saved[k], v) for k, v in identity.items() if saved[k] != v}
    if changed:
        raise ConfigError(
            f"cannot resume {resume_from}: "
            + ", ".join(f"{k} was {a!r}, now {b!r}" for k, (a, b) in changed.items())
            + " (the data position only carries over unchanged)"
        )


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]
