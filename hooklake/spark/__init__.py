"""Hooklake on Apache Spark: the conversation ordering and dataset builds as Spark jobs over the
same lake, giving the same rows and the same bytes as the DuckDB engine.

Needs the ``spark`` extra (``pip install 'hooklake[spark]'``) and Java 17 or newer.

- :mod:`.session`: the active or ``spark-submit``'s session, or a new local one; clear errors.
- :mod:`.jvm`: the one line a JVM error becomes (and the fix for a missing S3 connector).
- :mod:`.read`: one version of the ``messages`` table from the Delta log's file list, no jars.
- :mod:`.order`: :func:`ordered_messages`, the rows of the views' ``hooklake_messages_ordered``.
- :mod:`.build`: ``hooklake build RECIPE --engine spark``; the per-conversation Python runs in
  Spark tasks, the driver dedupes and writes.
- :mod:`.output`: which folder ``index --engine spark --out`` may replace.
- :mod:`.submit`: the entry point for ``spark-submit``.

Spark SQL lives in ``hooklake/sql/spark/``, beside the DuckDB ``views/`` and ``queries/``, each
file naming the DuckDB file it mirrors.
"""

from __future__ import annotations

from hooklake.spark.order import ordered_messages, ordered_rows
from hooklake.spark.session import spark_session

__all__ = ["ordered_messages", "ordered_rows", "spark_session"]
