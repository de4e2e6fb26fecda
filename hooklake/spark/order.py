"""The conversation ordering on Spark: the rows of DuckDB's ``hooklake_messages_ordered``.

::

    from hooklake.spark import ordered_messages, spark_session

    spark = spark_session()
    rows = ordered_messages(spark, "lake/", session_gap=45)   # a Spark DataFrame
    rows.groupBy("conversation_id").count().show()

Deduplicated, ordered and cut into conversations exactly as the views do
(``hooklake/sql/spark/messages_ordered.sql`` beside ``hooklake/sql/views/messages_unique.sql``
and ``messages_ordered.sql``):
the stored columns of ``messages`` followed by ``role``, ``_agent_evidence``, ``_rn``,
``_started_at``, ``_run``, ``conversation_id`` and ``position``.
"""

from __future__ import annotations

import itertools
import os
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from hooklake.datasets.lake import DEFAULT_SESSION_GAP, AsOf, as_session_gap
from hooklake.db import spark_sql as sql_text
from hooklake.spark.output import check_replaceable
from hooklake.spark.read import LakePath, message_rows, snapshot
from hooklake.spark.session import quiet, spark_session

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
    rows = message_rows(spark, lake, snapshot(lake, version))
    return ordered_rows(spark, rows, session_gap)


@dataclass(frozen=True)
class OrderedReport:
    """What :func:`order_lake` computed: counts of the ordered rows, and where they went."""

    messages: int
    conversations: int
    customers: int
    session_gap: timedelta
    seconds: float
    out: str | None

    def rows(self) -> list[tuple[str, object]]:
        return [
            ("messages", self.messages),
            ("conversations", self.conversations),
            ("customers", self.customers),
            ("session gap", str(self.session_gap)),
            ("seconds", round(self.seconds, 1)),
            ("written to", self.out or "-"),
        ]


def order_lake(
    lake: LakePath,
    *,
    spark: SparkSession | None = None,
    version: AsOf | None = None,
    session_gap: timedelta | int = DEFAULT_SESSION_GAP,
    out: str | os.PathLike[str] | None = None,
) -> OrderedReport:
    """Order the lake's messages on Spark (``hooklake index --engine spark``): count messages,
    conversations and customers, and with ``out`` write the rows there as Parquet (any path
    the cluster can write: a directory, ``s3a://…``), replacing an earlier ordering there; a
    folder holding anything else is refused (:func:`~hooklake.spark.output.check_replaceable`).
    Uses ``spark``, else the active session (``spark-submit``'s), else a new local one."""
    from pyspark.sql import functions as F

    started = time.perf_counter()
    gap = as_session_gap(session_gap)
    # The lake and the version first: a mistyped --lake or --as-of is one line at once, not
    # after the JVM's start-up (10 s or more) and its log lines.
    snap = snapshot(lake, version)
    spark = spark or spark_session()
    target = None if out is None else os.fspath(out)
    if target is not None:
        check_replaceable(spark, target)
    rows = ordered_rows(spark, message_rows(spark, lake, snap), gap)
    with quiet():
        if target is not None:
            rows = rows.persist()
            rows.write.mode("overwrite").parquet(target)
        counts = rows.agg(
            F.count(F.lit(1)).alias("messages"),
            F.countDistinct("conversation_id").alias("conversations"),
            F.countDistinct("channel_id", "customer_id").alias("customers"),
        ).collect()[0]
        if target is not None:
            rows.unpersist()
    return OrderedReport(
        messages=int(counts["messages"]),
        conversations=int(counts["conversations"]),
        customers=int(counts["customers"]),
        session_gap=gap,
        seconds=time.perf_counter() - started,
        out=target,
    )
