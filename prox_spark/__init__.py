"""prox-spark: ProX ("Programming Every Example") corpus refining for Spark and plain Python.

The core package never imports pyspark, so the same logic runs in a pandas UDF, a test or a notebook.

The Spark layers live beside the core in a checkout (``jobs/``, ``udfs/``) and are imported everywhere as
``prox_spark.jobs`` and ``prox_spark.udfs``: the wheel installs them under those names (pyproject's
``package-dir``), so nothing named ``jobs`` or ``udfs`` lands in a cluster's site-packages. In a checkout,
``_CheckoutLayers`` resolves the two names to the folders beside this package, so a checkout (and the Spark
workers it starts, which find it on ``PYTHONPATH``) always imports its own layers, never another clone's
editable install.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import sys
from pathlib import Path

__version__ = "0.1.0"

#: the folders that ship as ``prox_spark.<name>``
LAYERS = ("jobs", "udfs")


class _CheckoutLayers(importlib.abc.MetaPathFinder):
    """Finds ``prox_spark.jobs`` / ``prox_spark.udfs`` in the checkout root (their submodules then load
    through the package's ``__path__`` as usual)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def find_spec(self, fullname, path=None, target=None):
        package, _, name = fullname.partition(".")
        if package != __name__ or name not in LAYERS:
            return None
        folder = self.root / name
        return importlib.util.spec_from_file_location(
            fullname, folder / "__init__.py", submodule_search_locations=[str(folder)]
        )


def _install_checkout_layers() -> None:
    root = Path(__file__).resolve().parent.parent
    is_checkout = (root / "pyproject.toml").is_file() and all((root / n / "__init__.py").is_file() for n in LAYERS)
    if is_checkout and not any(isinstance(f, _CheckoutLayers) and f.root == root for f in sys.meta_path):
        sys.meta_path.insert(0, _CheckoutLayers(root))


_install_checkout_layers()
