"""The Delta Lake jars a *local* SparkSession loads, cached once at set-up.

``make jars`` (or ``python -m jobs.delta_jars fetch``) downloads them from Maven Central into
``~/.cache/prox-spark/jars`` (override with ``PROX_SPARK_JARS_DIR``) and checks each file's SHA-1
against the value pinned here *and* the ``.sha1`` Maven publishes. When the files are present and
intact, nothing touches the network. Sessions never download: they point ``spark.jars`` at these files
and fail with a message naming ``make jars`` when one is missing.

Two lines are supported, picked from the installed pyspark (``delta_line``): Spark 3.5 gets Delta 3.3.2
built for Scala 2.12 (``io.delta:delta-spark_2.12:3.3.2``), Spark 4.0 gets Delta 4.0.1 built for Scala 2.13
(``io.delta:delta-spark_2.13:4.0.1``); the jar names differ, so both lines' jars may share a folder
(``make test-spark35`` keeps the 3.5 line's in its own one anyway). Any other pyspark is refused with a message.

Only ``delta-spark`` and ``delta-storage`` are needed: delta-spark's other compile dependencies
(``antlr4-runtime``: 4.9.3 for Delta 3.3, 4.13.1 for Delta 4.0; ``scala-library``) already ship in pyspark's
own ``jars/`` folder. On Databricks and EMR the platform provides Delta; none of this is used there.

Stdlib only, so ``make jars`` runs without starting a JVM.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

DEFAULT_JARS_DIR = Path.home() / ".cache" / "prox-spark" / "jars"
DEFAULT_MAVEN_REPO = "https://repo1.maven.org/maven2"
JARS_DIR_ENV = "PROX_SPARK_JARS_DIR"
MAVEN_REPO_ENV = "PROX_SPARK_MAVEN_REPO"


@dataclass(frozen=True)
class Artifact:
    group: str
    name: str
    version: str
    #: SHA-1 of the released jar (the value Maven Central publishes), pinned so a mirror cannot swap it
    sha1: str

    @property
    def coordinate(self) -> str:
        return f"{self.group}:{self.name}:{self.version}"

    @property
    def file_name(self) -> str:
        return f"{self.name}-{self.version}.jar"

    def url(self, repo: str) -> str:
        return f"{repo.rstrip('/')}/{self.group.replace('.', '/')}/{self.name}/{self.version}/{self.file_name}"


@dataclass(frozen=True)
class DeltaLine:
    """The Delta release a Spark line runs with locally, and its two jars (Scala suffix of that Spark build)."""

    spark: str  # "major.minor" of pyspark
    delta: str
    scala: str
    #: SHA-1s of delta-spark_<scala> and delta-storage
    sha1s: tuple[str, str]

    @property
    def artifacts(self) -> tuple[Artifact, Artifact]:
        spark_sha1, storage_sha1 = self.sha1s
        return (
            Artifact("io.delta", f"delta-spark_{self.scala}", self.delta, spark_sha1),
            Artifact("io.delta", "delta-storage", self.delta, storage_sha1),
        )


#: pyspark "major.minor" -> its Delta line (the versions constraints-spark35.txt and constraints.txt pin)
DELTA_LINES = {
    "3.5": DeltaLine("3.5", "3.3.2", "2.12", ("07fff11b74e7284eec27fe106f31c95b3acc8018", "e24b01486ee7a26df8a2735eb186f4ee1821fc9e")),
    "4.0": DeltaLine("4.0", "4.0.1", "2.13", ("3e469898dc4ed083c735ae360beb063adcd12e9d", "ebc5384d953c1d70d0ce4ceee42892da74051a81")),
}


class DeltaJarsMissing(RuntimeError):
    """The cached Delta jars are absent or damaged; the message says how to fetch them."""


class UnsupportedSpark(RuntimeError):
    """The installed pyspark is on no line ``DELTA_LINES`` knows."""


def installed_pyspark_version() -> str:
    """The installed pyspark's version, from its package metadata (no JVM, no pyspark import)."""
    try:
        return importlib.metadata.version("pyspark")
    except importlib.metadata.PackageNotFoundError:
        import pyspark  # a pyspark without metadata (SPARK_HOME/python on sys.path): its own version

        return pyspark.__version__


def delta_line(spark_version: str | None = None) -> DeltaLine:
    """The Delta line for ``spark_version`` (default: the installed pyspark's). Raises ``UnsupportedSpark``."""
    version = spark_version or installed_pyspark_version()
    major_minor = ".".join(version.split(".")[:2])
    line = DELTA_LINES.get(major_minor)
    if line is None:
        supported = ", ".join(f"Spark {k} + Delta {v.delta}" for k, v in DELTA_LINES.items())
        raise UnsupportedSpark(f"pyspark {version} is not supported locally; supported lines: {supported}")
    return line


def delta_artifacts(spark_version: str | None = None) -> tuple[Artifact, Artifact]:
    """The jars a local session of ``spark_version`` (default: the installed pyspark) loads."""
    return delta_line(spark_version).artifacts


def jars_dir() -> Path:
    """The jar cache: ``$PROX_SPARK_JARS_DIR`` when set, else ``~/.cache/prox-spark/jars``."""
    value = os.environ.get(JARS_DIR_ENV, "").strip()
    return Path(value).expanduser() if value else DEFAULT_JARS_DIR


def _sha1(path: Path) -> str:
    digest = hashlib.sha1()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def delta_jar_paths(directory: Path | str | None = None, *, spark_version: str | None = None) -> list[Path]:
    """Paths of the cached Delta jars of the installed pyspark's line (or ``spark_version``'s), for
    ``spark.jars``. Raises ``DeltaJarsMissing`` naming ``make jars``.

    Only checks presence (cheap, runs at every session start); ``fetch`` verifies checksums.
    """
    root = Path(directory).expanduser() if directory is not None else jars_dir()
    line = delta_line(spark_version)
    paths = [root / artifact.file_name for artifact in line.artifacts]
    missing = [path.name for path in paths if not path.is_file() or path.stat().st_size == 0]
    if missing:
        raise DeltaJarsMissing(
            f"Delta jars for Spark {line.spark} (Delta {line.delta}) missing from {root}: {', '.join(missing)}. "
            f"Run `make jars` once at set-up (`make jars-spark35` for the Spark 3.5 venv; or "
            f"`python -m jobs.spark fetch-jars` with this venv's python); jobs and tests never download jars at "
            f"start. Set {JARS_DIR_ENV} to use another folder."
        )
    return paths


def fetch(
    directory: Path | str | None = None,
    *,
    repo: str | None = None,
    quiet: bool = False,
    spark_version: str | None = None,
) -> list[Path]:
    """Make sure every Delta jar of the installed pyspark's line (or ``spark_version``'s) is in ``directory``
    with its pinned SHA-1; download only what is not.

    Idempotent: a present jar whose checksum matches is left alone and no network is used.
    """
    root = Path(directory).expanduser() if directory is not None else jars_dir()
    repo = repo or os.environ.get(MAVEN_REPO_ENV, "").strip() or DEFAULT_MAVEN_REPO
    artifacts = delta_artifacts(spark_version)
    root.mkdir(parents=True, exist_ok=True)
    paths = []
    for artifact in artifacts:
        target = root / artifact.file_name
        if target.is_file() and _sha1(target) == artifact.sha1:
            if not quiet:
                print(f"ok       {target}")
            paths.append(target)
            continue
        _download(artifact, target, repo)
        if not quiet:
            print(f"fetched  {target}  ({artifact.coordinate})")
        paths.append(target)
    return paths


def _download(artifact: Artifact, target: Path, repo: str) -> None:
    url = artifact.url(repo)
    try:
        with urllib.request.urlopen(url + ".sha1", timeout=60) as response:
            published = response.read().decode("ascii", "replace").split()[0].strip().lower()
    except Exception as exc:  # noqa: BLE001 - any network failure gets the same explanation
        raise RuntimeError(f"cannot read {url}.sha1: {exc}") from exc
    if published != artifact.sha1:
        raise RuntimeError(
            f"{url}.sha1 says {published}, but {artifact.coordinate} is pinned to {artifact.sha1}: refusing it"
        )
    fd, tmp_name = tempfile.mkstemp(prefix=f".{artifact.file_name}.", dir=target.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=300) as response:
            for block in iter(lambda: response.read(1 << 20), b""):
                out.write(block)
        actual = _sha1(tmp)
        if actual != artifact.sha1:
            raise RuntimeError(f"{url}: downloaded SHA-1 {actual} does not match the pinned {artifact.sha1}")
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; the cache is shared by clones and users
        tmp.replace(target)  # atomic: a killed download never leaves a half jar under the real name
    except Exception as exc:
        tmp.unlink(missing_ok=True)
        if isinstance(exc, RuntimeError):
            raise
        raise RuntimeError(f"cannot download {url}: {exc}") from exc
