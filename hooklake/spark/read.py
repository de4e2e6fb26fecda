"""Reading one version of the lake's ``messages`` table from Spark, with no extra jars.

The version's files come from the Delta log, read on the driver by ``deltalake`` (the same
list DuckDB reads, :meth:`hooklake.Lake.files`; the driver opens no data file). Spark reads
exactly those Parquet files with the table's schema, the ``date`` partition from their
``date=YYYY-MM-DD`` directories. Files never change once written, so the list pins the
version, as ``format("delta")`` would.

A cluster that has Delta Lake's jars can read the table itself::

    spark.read.format("delta").option("versionAsOf", 12).load("s3a://bucket/lake/messages")

and give that DataFrame to :func:`hooklake.spark.order.ordered_rows`.

Paths go to the cluster as the user wrote them: a local directory (every executor must see
it: local mode, or a shared mount), or ``s3a://`` / ``s3://`` read with the cluster's own
Hadoop configuration (``--conf spark.hadoop.fs.s3a.…``). The driver reads the Delta log with
the ``AWS_*`` environment variables, like every other Hooklake command.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from deltalake import DeltaTable

from hooklake import layout, tables
from hooklake.datasets.lake import AsOf, _open_tables, check_lake
from hooklake.errors import SparkError
from hooklake.spark.jvm import java_message, missing_filesystem
from hooklake.spark.session import quiet
from hooklake.storage import LakeLocation, lake_location

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

LakePath = str | os.PathLike[str]


def spark_root(path: LakePath) -> str:
    """The lake's root as Spark should see it: ``s3a://`` stays ``s3a://`` (Hooklake itself
    normalises it to ``s3://`` for delta-rs), a directory becomes absolute."""
    text = os.fspath(path)
    loc = lake_location(text)
    if text.startswith("s3a://"):
        return "s3a://" + loc.uri.removeprefix("s3://")
    return loc.uri


@dataclass(frozen=True)
class Snapshot:
    """One version of the lake's ``messages`` table as its Delta log describes it: what Spark
    reads, and what a build's card and manifest name."""

    location: LakeLocation
    #: The table at the version read; None when the lake has no messages table yet.
    table: DeltaTable | None

    @property
    def path(self) -> Path | str:
        return self.location.local or self.location.uri

    def files(self) -> list[tables.DataFile]:
        return tables.data_files(self.table) if self.table is not None else []

    def version(self) -> tables.TableVersion | None:
        if self.table is None:
            return None
        return tables.version_of(self.location, layout.MESSAGES, self.table)


def snapshot(path: LakePath, version: AsOf | None = None) -> Snapshot:
    """The ``messages`` table at ``version`` (a version number or a time, as ``--as-of``; by
    default the latest), read from the Delta log alone: no data file is opened here."""
    loc = lake_location(path)
    # The Lake's own checks and version resolution, so both engines read the same version and
    # fail the same way on a missing or unmigrated lake.
    check_lake(loc)
    return Snapshot(loc, _open_tables(loc, version)[layout.MESSAGES])


def message_rows(spark: SparkSession, path: LakePath, snap: Snapshot) -> DataFrame:
    """The stored rows (duplicates included) of the ``messages`` version ``snap`` names."""
    from pyspark.sql.pandas.types import from_arrow_schema

    schema = from_arrow_schema(tables.table_schema(layout.MESSAGES))
    root = f"{spark_root(path)}/{layout.MESSAGES}"
    files = [f"{root}/{f.path}" for f in snap.files()]
    if not files:
        return spark.createDataFrame([], schema)
    try:
        with quiet():
            return spark.read.schema(schema).option("basePath", root).parquet(*files)
    except Exception as exc:  # AnalysisException, Py4JJavaError, ...: the cluster cannot read
        raise cannot_read(path, str(exc)) from exc


def cannot_read(path: LakePath, error: str) -> SparkError:
    """The error for files of the lake that Spark cannot open (``error``: what Spark raised),
    with what usually fixes it."""
    detail = java_message(error)
    fix = missing_filesystem(error)
    if fix is not None:
        return SparkError(f"the Spark cluster cannot read lake {os.fspath(path)}: {fix}")
    return SparkError(
        f"the Spark cluster cannot read lake {os.fspath(path)} ({detail}): every executor needs "
        "the lake's path (a shared directory, or s3a:// with the cluster's spark.hadoop.fs.s3a.* "
        "settings), and the files of the version read must still exist "
        "(`hooklake compact --vacuum` deletes old ones)"
    )
