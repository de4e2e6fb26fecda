"""``hooklake build RECIPE --engine spark``: the same dataset, bytes and all, built by Spark.

:func:`hooklake.datasets.build.build` runs one outline for both engines; with
``engine="spark"`` its batches of shaped conversations come from here instead of DuckDB:

1. **Order** (Spark SQL, ``hooklake/sql/spark/``, beside the DuckDB views it mirrors): the
   snapshot's messages deduplicated, ordered and cut into conversations, cut to what a build
   reads (``build_rows.sql``) and cached.
2. **Stream** (``build_messages.sql``): the recipe's messages, range-partitioned by
   ``conversation_id`` and sorted by position inside each partition, so a partition holds
   whole conversations and partition *i* comes before partition *i + 1* in build order.
3. **Shape** in Spark tasks (``mapInArrow``): each task cuts its Arrow batches into whole
   conversations and runs the build's engine-neutral core,
   :func:`hooklake.datasets.shape.shape_batch` (render, redact, split, shape, validate).
4. The driver reads the shaped batches partition by partition, in order
   (``toLocalIterator``); the build's outline drops duplicate examples (first one wins, in
   build order) and writes files, card and manifest exactly as for DuckDB.

The shaped rows are persisted before the driver reads them, so every partition is shaped in
parallel first; the driver then holds one partition at a time.
"""

from __future__ import annotations

import math
import pickle
from collections.abc import Callable, Iterator
from datetime import timedelta
from functools import partial
from typing import TYPE_CHECKING, TypeVar

import pyarrow as pa

from hooklake.datasets.formats import writer_class
from hooklake.datasets.recipe import Recipe
from hooklake.datasets.shape import BUILD_COLUMNS, BUILD_SCHEMA, ShapedBatch, shape_batch
from hooklake.datasets.signals import Rules
from hooklake.datasets.stream import cut_whole
from hooklake.db import spark_sql as sql_text
from hooklake.errors import SparkError
from hooklake.spark.jvm import missing_module
from hooklake.spark.order import ordered_rows
from hooklake.spark.read import LakePath, cannot_read, message_rows, snapshot
from hooklake.spark.session import quiet, spark_session

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

#: Messages per partition of the shaping stage: enough work per task to amortise its start,
#: small enough that the driver holds one partition's examples at a time.
PARTITION_MESSAGES = 100_000
_SHAPED_SCHEMA = "shaped binary"
#: What Spark says when an executor cannot open a file of the lake.
_UNREADABLE = ("FileNotFound", "PATH_NOT_FOUND", "No FileSystem for scheme")
T = TypeVar("T")


def shape_partition(
    batches: Iterator[pa.RecordBatch], recipe: Recipe, signals: bool
) -> Iterator[pa.RecordBatch]:
    """A Spark task: a partition's Arrow batches (whole conversations, in order, though a
    conversation may straddle two batches) in, one pickled :class:`ShapedBatch` per batch
    of whole conversations out."""
    rules = Rules(recipe) if signals else None
    for rows in cut_whole(batches):
        yield _encode(rows, recipe, rules)


def _encode(rows: pa.Table, recipe: Recipe, rules: Rules | None) -> pa.RecordBatch:
    shaped = shape_batch(rows.cast(BUILD_SCHEMA), recipe, rules)
    data = pickle.dumps(shaped, protocol=pickle.HIGHEST_PROTOCOL)
    return pa.record_batch({"shaped": pa.array([data], pa.binary())})


def shaped_batches(
    lake_path: LakePath,
    version: int | None,
    recipe: Recipe,
    *,
    spark: SparkSession | None = None,
) -> Iterator[ShapedBatch]:
    """The recipe's conversations of the lake's ``messages`` version ``version``, shaped in
    Spark tasks, in build order (what :func:`hooklake.datasets.build.build` writes). Uses
    ``spark``, else the active session (``spark-submit``'s), else a new local one."""
    spark = spark or spark_session()
    snap = snapshot(lake_path, version)
    gap = timedelta(minutes=recipe.conversations.gap_minutes)
    with quiet():
        ordered = ordered_rows(spark, message_rows(spark, lake_path, snap), gap)
        ordered.createOrReplaceTempView("hooklake_spark_ordered")
        cached = spark.sql(
            sql_text("build_rows", messages="hooklake_spark_ordered"),
            args={"with_customer": recipe.redact.pii},
        ).persist()
    cached.createOrReplaceTempView("hooklake_spark_build_rows")
    try:
        src = recipe.source
        params = {"channels": list(src.channels) or None, "hooks": list(src.hooks) or None}
        rows = spark.sql(
            sql_text("build_messages", messages="hooklake_spark_build_rows"), args=params
        )
        total = _job(rows.count, lake_path)
        parts = max(spark.sparkContext.defaultParallelism, math.ceil(total / PARTITION_MESSAGES))
        signals = writer_class(recipe.format).from_signals
        with quiet():
            shaped = (
                rows.repartitionByRange(parts, "conversation_id")
                .sortWithinPartitions("conversation_id", "position")
                .select(*BUILD_COLUMNS)
                .mapInArrow(
                    partial(shape_partition, recipe=recipe, signals=signals), _SHAPED_SCHEMA
                )
                .persist()
            )
        try:
            # Shape every partition in parallel before the driver reads them one by one.
            _job(shaped.count, lake_path)
            cached.unpersist()
            for row in shaped.toLocalIterator(prefetchPartitions=True):
                batch: ShapedBatch = pickle.loads(row["shaped"])
                yield batch
        finally:
            shaped.unpersist()
    finally:
        cached.unpersist()


def _job(run: Callable[[], T], lake_path: LakePath) -> T:
    """Run a Spark action; a failure to read the lake's files or to import Hooklake in the
    workers becomes a :class:`SparkError`."""
    try:
        with quiet():
            return run()
    except Exception as exc:
        if any(sign in str(exc) for sign in _UNREADABLE):
            raise cannot_read(lake_path, str(exc)) from exc
        fix = missing_module(str(exc))
        if fix is not None:
            raise SparkError(fix) from exc
        raise
