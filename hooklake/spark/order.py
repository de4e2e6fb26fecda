"""The conversation ordering on Spark: the rows of DuckDB's ``hooklake_messages_ordered``.

::

    from hooklake.spark import ordered_messages, spark_session

    spark = spark_session()
    rows = ordered_messages(spark, "lake/", session_gap=45)   # a Spark DataFrame
    rows.groupBy("conversation_id").count().show()

Deduplicated, ordered and cut into conversations exactly as the views do
(``hooklake/spark/sql/messages_ordered.sql`` beside ``hooklake/datasets/sql/messages.sql``):
the stored columns of ``messages`` followed by ``role``, ``_agent_evidence``, ``_rn``,
``_started_at``, ``_run``, ``conversation_id`` and ``position``.
"""

from __future__ import annotations

import itertools
from datetime import timedelta
from typing import TYPE_CHECKING

from hooklake.datasets.lake import DEFAULT_SESSION_GAP, AsOf, as_session_gap
from hooklake.spark.read import LakePath, message_rows, open_lake, sql_text

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

_view_ids = itertools.count()


def ordered_rows(
    spark: SparkSession, rows: DataFrame, session_gap: timedelta | int = DEFAULT_SESSION_GAP
) -> DataFrame:
    """Order ``rows`` (stored message rows in the ``messages`` table's schema, duplicates
    included, e.g. from ``spark.read.format("delta")``) into conversations."""
    gap = as_session_gap(session_gap)
    # A view name of our own per call, so two orderings in one session never meet.
    view = f"hooklake_message_rows_{next(_view_ids)}"
    rows.createOrReplaceTempView(view)
    return spark.sql(
        sql_text("messages_ordered", rows=view),
        args={"session_gap_us": gap // timedelta(microseconds=1)},
    )


def ordered_messages(
    spark: SparkSession,
    lake: LakePath,
    *,
    version: AsOf | None = None,
    session_gap: timedelta | int = DEFAULT_SESSION_GAP,
) -> DataFrame:
    """The lake's messages in conversation order (``hooklake_messages_ordered``'s rows), from
    the latest version of the ``messages`` table or the one ``version`` names (a version
    number or a time, as ``hooklake build --as-of``). ``session_gap`` is a timedelta or
    minutes."""
    with open_lake(lake, version) as opened:
        rows = message_rows(spark, lake, opened)
    return ordered_rows(spark, rows, session_gap)
