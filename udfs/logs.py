"""Driver logging of the Spark jobs (``refine``, ``apply``) and the notebooks: every record carries the run id.

``configure_logging`` installs one stderr handler on the root logger, as text or one JSON object per line for
log pipelines; ``RunIdFilter`` adds ``record.run_id`` to each record it sees: the run in progress
(``logging_run``), ``-`` outside one. Python workers (the UDFs) log in their executors' logs, without the run id.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
from collections.abc import Iterator
from datetime import datetime, timezone

#: the run in progress in this driver (set by ``logging_run``), read by ``RunIdFilter``
_RUN_ID: contextvars.ContextVar[str] = contextvars.ContextVar("prox_spark_run_id", default="-")

TEXT_LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s [run=%(run_id)s]: %(message)s"


@contextlib.contextmanager
def logging_run(run_id: str) -> Iterator[None]:
    """Every record logged inside the block (in this context and the threads that copy it) names ``run_id``."""
    token = _RUN_ID.set(run_id)
    try:
        yield
    finally:
        _RUN_ID.reset(token)


class RunIdFilter(logging.Filter):
    """Adds ``run_id`` (the refine run in progress, ``-`` outside one) to every record a handler sees."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "run_id"):
            record.run_id = _RUN_ID.get()
        return True


class JsonLogFormatter(logging.Formatter):
    """One JSON object per record: time (UTC), level, logger, run_id, message (+ exception)."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "run_id": getattr(record, "run_id", _RUN_ID.get()),
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(fmt: str = "text", level: int = logging.INFO) -> logging.Handler:
    """Install (once) a stderr handler on the root logger whose records carry the run id; returns it.

    Notebooks call it too: it adds its own handler and leaves any the platform installed alone."""
    root = logging.getLogger()
    handler = next((h for h in root.handlers if getattr(h, "_prox_spark", False)), None)
    if handler is None:
        handler = logging.StreamHandler()
        handler._prox_spark = True  # type: ignore[attr-defined]
        handler.addFilter(RunIdFilter())
        root.addHandler(handler)
    handler.setFormatter(JsonLogFormatter() if fmt == "json" else logging.Formatter(TEXT_LOG_FORMAT))
    root.setLevel(level)
    # py4j logs every closed gateway connection at INFO: one per driver thread the job's side-by-side writes use
    logging.getLogger("py4j").setLevel(max(level, logging.WARNING))
    return handler
