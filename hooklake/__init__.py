"""Hooklake: Landbot MessageHooks into a Parquet lake and training-ready dialogue datasets.

Analysts start with :class:`hooklake.Lake`; the collector lives in :mod:`hooklake.collector`
and dataset builds in :mod:`hooklake.datasets`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

#: The one place the version is written; pyproject.toml reads it from here.
__version__ = "0.2.0"
__all__ = ["Lake", "__version__"]

if TYPE_CHECKING:
    from hooklake.datasets.lake import Lake


def __getattr__(name: str) -> Any:
    # Lazy so that the collector never pays for DuckDB and the read side on import.
    if name == "Lake":
        from hooklake.datasets.lake import Lake

        return Lake
    raise AttributeError(f"module 'hooklake' has no attribute {name!r}")
