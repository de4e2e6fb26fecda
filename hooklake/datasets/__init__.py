"""The read side of Hooklake: lake views in DuckDB and, built on them, training datasets.

Start with :class:`hooklake.datasets.lake.Lake` (also importable as ``hooklake.Lake``).
"""
