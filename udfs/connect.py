"""Spark Connect sessions: what Databricks serverless jobs and standard (shared) access mode clusters give a job.

A Connect session is a gRPC client: there is no ``SparkContext``, no JVM in the job's process and no RDD API,
so the job path uses only what both kinds of session offer (``spark.conf``, ``spark.addTag``, DataFrames,
SQL). This module tells the two apart and builds Connect sessions:

- ``sc://host:port[/;token=...]``: connect to a running server (the platform's). Its Spark and Delta set-up
  are the server's; the job adds nothing.
- ``local`` / ``local[N]``: start a Connect server inside this process on a free loopback port, with the
  same Delta jars, extensions and settings as ``udfs.session.build_local_session``, then connect to it. This
  is how tests and local runs exercise the Connect path. pyspark's own ``builder.remote("local[N]")`` always
  listens on port 15002, so two such runs on one machine would share (or fail to start) one server.
  Spark 4.0 only: pyspark 3.5's package ships no Connect server, so on the 3.5 line ``local[N]`` is refused
  with that reason (``sc://`` remotes are the server's business; the job's Connect path is tested on 4.0).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import secrets
import socket
from collections.abc import Iterator
from typing import Any

from pyspark.sql import SparkSession

from prox_spark.udfs.spark_line import PYSPARK_VERSION, SPARK4

log = logging.getLogger(__name__)

#: what ``spark.plugins`` names to start the Connect server inside a classic driver
CONNECT_PLUGIN = "org.apache.spark.sql.connect.SparkConnectPlugin"
#: the environment variable both the server and the client read the local server's token from
TOKEN_ENV = "SPARK_CONNECT_AUTHENTICATE_TOKEN"
_LOCAL_REMOTE = re.compile(r"local(\[[0-9*]+\])?")


def is_connect(spark: Any) -> bool:
    """Whether ``spark`` is a Spark Connect session (no ``sparkContext``, no JVM).

    Decided from the session's class, not ``pyspark.sql.utils.is_remote()``: that reads a process-wide
    environment variable, which a process that started a local Connect server has set while its classic
    session still exists. Importing ``pyspark.sql.connect`` would need the Connect client's packages, which a
    classic-only install lacks."""
    return type(spark).__module__.startswith("pyspark.sql.connect")


def is_local_remote(remote: str) -> bool:
    """Whether ``remote`` asks for a Connect server started here (``local``, ``local[2]``, ``local[*]``)."""
    return bool(_LOCAL_REMOTE.fullmatch(remote))


def redact_remote(remote: str) -> str:
    """``remote`` as logs and ``runs.config_json`` may show it: parameters after ``/;`` (``token=...``,
    ``user_id=...``) replaced by a marker, since a Databricks Connect URL carries a personal access token."""
    base, sep, params = remote.partition("/;")
    if not sep:
        return remote
    names = [part.split("=", 1)[0] for part in params.split(";") if part]
    return base + "/;" + ";".join(f"{name}=***redacted***" for name in names)


def get_conf(spark: SparkSession, key: str) -> str | None:
    """``spark.conf.get(key)``, None when unset or when the server refuses to show it (Databricks serverless
    answers some keys with an error instead of a value)."""
    try:
        return spark.conf.get(key, None)
    except Exception:  # noqa: BLE001 - a hidden setting is the same as an unset one here
        return None


def set_conf(spark: SparkSession, key: str, value: str | None) -> bool:
    """``spark.conf.set(key, value)`` (``unset`` for None); False, with a warning, where the server refuses the
    key: Databricks serverless lets a job set only some session settings, and the job's own ones tune batch
    sizes and commit metadata, which it can run without."""
    try:
        if value is None:
            spark.conf.unset(key)
        else:
            spark.conf.set(key, value)
        return True
    except Exception as exc:  # noqa: BLE001 - a refused setting leaves the server's value in place
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        log.warning("session setting %s refused by the server, its value left as it is: %s", key, first)
        return False


@contextlib.contextmanager
def session_conf(spark: SparkSession, key: str, value: str) -> Iterator[bool]:
    """Within the block the session setting ``key`` is ``value`` (the block gets whether it took), restored
    afterwards; a setting the server refuses is left alone and the block runs anyway (``set_conf``)."""
    previous = get_conf(spark, key)
    changed = set_conf(spark, key, value)
    try:
        yield changed
    finally:
        if changed:
            set_conf(spark, key, previous)


def connect_session(remote: str, app_name: str = "prox-spark", **local_kwargs: Any) -> SparkSession:
    """A Spark Connect session for ``remote`` (see the module doc); ``local_kwargs`` go to the local server's
    ``udfs.session.local_session_conf`` (``shuffle_partitions``, ``extra_conf``, ...) and are ignored for
    ``sc://`` remotes, whose server is configured by its owner."""
    if is_local_remote(remote) and not SPARK4:
        raise RuntimeError(
            f"spark.remote={remote}: a local Spark Connect server needs the Spark 4.0 line; pyspark "
            f"{'.'.join(map(str, PYSPARK_VERSION))} ships no Connect server. Run without spark.remote (a classic "
            f"local session) or name a running server (sc://host:port)."
        )
    _require_connect_client()
    if is_local_remote(remote):
        local_kwargs.pop("master", None)  # the remote's local[N] is the local server's master
        url = start_local_server(app_name, master=remote, **local_kwargs)
    elif remote.startswith("sc://"):
        url = remote
    else:
        raise ValueError(f"spark.remote: expected sc://host:port or local[N], got {remote!r}")
    from pyspark.sql.connect.session import SparkSession as ConnectSession

    # pyspark's functions (F.col, F.lit, ...) build Connect columns only while this is set; the classic
    # builder sets it too when it hands out a Connect session
    os.environ["SPARK_CONNECT_MODE_ENABLED"] = "1"
    session = ConnectSession.builder.remote(url).config("spark.app.name", app_name).getOrCreate()
    log.info("Spark Connect session on %s (server Spark %s)", redact_remote(url), session.version)
    return session  # type: ignore[return-value]


def start_local_server(app_name: str, *, master: str = "local[2]", **local_kwargs: Any) -> str:
    """Start a Spark Connect server in this process (a classic local driver with the Connect plugin, Delta
    and the project's Python workers, as ``build_local_session`` sets them up); returns its ``sc://`` URL.

    It listens on a free port of 127.0.0.1 only and requires a fresh token, which the client reads from
    ``SPARK_CONNECT_AUTHENTICATE_TOKEN`` (the server reads it at JVM start). The server lives as long as
    this process."""
    from prox_spark.udfs.session import build_local_session  # not at the top: udfs.session imports this module

    port = _free_port()
    os.environ.setdefault(TOKEN_ENV, secrets.token_hex(16))
    extra = dict(local_kwargs.pop("extra_conf", None) or {})
    extra.update({
        "spark.plugins": CONNECT_PLUGIN,
        "spark.connect.grpc.binding.address": "127.0.0.1",
        "spark.connect.grpc.binding.port": str(port),
        # what pyspark's own local Connect start sets: each Connect session's artifacts stay its own
        "spark.sql.artifact.isolation.enabled": "true",
        "spark.sql.artifact.isolation.alwaysApplyClassloader": "true",
    })
    build_local_session(app_name, master=master, extra_conf=extra, **local_kwargs)
    return f"sc://localhost:{port}"


def _free_port() -> int:
    """A TCP port free on the loopback interface right now (the server binds it moments later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _require_connect_client() -> None:
    """Fail with the fix when the Connect client's packages (grpcio, ...) are missing."""
    try:
        from pyspark.sql.connect.utils import check_dependencies

        check_dependencies("pyspark.sql.connect.session")
    except ImportError as exc:
        raise RuntimeError(
            f"spark.remote needs the Spark Connect client: pip install 'prox-spark[connect]' ({exc})"
        ) from None
