"""The write side of Hooklake: receive MessageHooks, journal them durably, flush to Parquet.

Modules: :mod:`~hooklake.collector.app` (HTTP shell), :mod:`~hooklake.collector.journal`
(durability), :mod:`~hooklake.collector.check` (request check),
:mod:`~hooklake.collector.extract` (journal records -> rows),
:mod:`~hooklake.collector.flush` (journal -> lake), :mod:`~hooklake.collector.ingest`
(backfill from saved bodies), :mod:`~hooklake.collector.service` (``hooklake serve``),
:mod:`~hooklake.collector.failures` (logging work that keeps failing).
"""
