"""Rebuilding the index from the raw tables, one range of customer streams at a time."""

from __future__ import annotations

import contextlib
import itertools
import math
import shutil
import tempfile
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import duckdb
import pyarrow as pa
from deltalake import DeltaTable

from hooklake import db, layout, tables
from hooklake.db import lake_errors, query_sql, view_sql
from hooklake.fields import view_fields
from hooklake.index.commit import commit_index_rows
from hooklake.index.schema import (
    BASE,
    COMPUTED_VIEWS,
    DATE_PARTITION,
    index_schema,
    microseconds,
    new_generation,
    written_rows,
)
from hooklake.storage import LakeLocation

#: Rows a rebuild or a fold computes and sorts at once (one range of customer ids): memory
#: stays bounded whatever the size of the lake.
CHUNK_ROWS = 500_000
#: DuckDB's memory limit for index work unless $HOOKLAKE_MEMORY_LIMIT or the caller says
#: otherwise: enough for one chunk; past it DuckDB spills to disk.
DEFAULT_MEMORY_LIMIT = "2GB"
#: The limit CHUNK_ROWS is sized for, as DuckDB reports DEFAULT_MEMORY_LIMIT (binary units):
#: under a smaller limit chunks shrink in proportion (see chunk_rows).
CHUNK_MEMORY = 1.8 * 2**30
#: A rebuild in more ranges than this splits the stored rows by range first (see
#: _split_by_range). The split costs about five filtered reads of the table: rebuilding 1M
#: simulated messages, filtering for each range took 22.0 CPU-s in 4 ranges (23.8 split),
#: 29.5 in 8 (30.5) and 46.3 in 16 (33.6 split); 10M in 40 ranges took 671 CPU-s (335 split).
SPLIT_RANGES = 8


def rebuild_index(
    con: duckdb.DuckDBPyConnection, loc: LakeLocation, messages: DeltaTable, gap: timedelta
) -> int:
    """Recompute the whole index from ``messages`` at its loaded version with session gap
    ``gap``, chunk by chunk, and write it in one commit that replaces what was there; returns
    the message rows written."""
    generation = new_generation(messages.version())
    stored = tables.data_files(messages)
    with lake_errors("cannot compute the conversation index"):
        db.register_table_files(
            con,
            "hooklake_message_files",
            loc,
            layout.MESSAGES,
            messages,
            [f.path for f in stored],
            tables.table_schema(layout.MESSAGES),
            DATE_PARTITION,
        )
        con.execute("SET VARIABLE hooklake_session_gap_us = ?", [microseconds(gap)])
        con.execute(query_sql("index_whole"))
        ranges = stream_ranges(con, "hooklake_message_files", sum(f.rows for f in stored))
        with _split_by_range(con, ranges, sum(f.bytes for f in stored)) as read_range:

            def chunks() -> Iterator[pa.RecordBatch]:
                for k in range(len(ranges)):
                    read_range(k)
                    for view in COMPUTED_VIEWS:
                        con.execute(view_sql(view, **view_fields()))
                    yield from written_rows(con, BASE, generation)

            reader = pa.RecordBatchReader.from_batches(index_schema(), chunks())
            return commit_index_rows(loc, reader, "overwrite", messages.version(), gap)


@contextlib.contextmanager
def _split_by_range(
    con: duckdb.DuckDBPyConnection, ranges: list[str], stored_bytes: int
) -> Iterator[Callable[[int], None]]:
    """A function that defines ``hooklake_message_rows`` on ``con`` as the stored rows of range
    ``k`` of ``ranges`` (conditions of :func:`stream_ranges` on ``hooklake_message_files``).

    The stored files are in arrival order, so a range's customers are in every one of them,
    and filtering the table for a range reads and decompresses all of it: a rebuild in R
    ranges reads the lake R times, and R grows with the lake. Past :data:`SPLIT_RANGES` the
    stored rows are therefore first split into a temporary folder per range, in one pass
    (queries/index_split.sql), and each range reads only its own rows. The folders take about
    what the stored files take (``stored_bytes``); without twice that free in the temporary
    directory, the rebuild filters for each range instead: slower, but it completes."""
    few = len(ranges) <= SPLIT_RANGES
    if few or shutil.disk_usage(tempfile.gettempdir()).free < 2 * stored_bytes:

        def filtered(k: int) -> None:
            con.execute(view_sql("message_rows_chunk", streams=ranges[k]))

        yield filtered
        return
    with tempfile.TemporaryDirectory(prefix="hooklake-index-") as folder:
        cases = " ".join(f"WHEN {streams} THEN {k}" for k, streams in enumerate(ranges))
        # What DuckDB holds for the folders before writing them out: a share of a range.
        con.execute(f"SET partitioned_write_flush_threshold = {max(1, chunk_rows(con) // 4)}")
        con.execute(query_sql("index_split", cases=cases, folder=folder.replace("'", "''")))

        def read(k: int) -> None:
            files = sorted(str(p) for p in Path(folder, f"_range={k}").glob("*.parquet"))
            if not files:
                con.execute(view_sql("message_rows_chunk", streams="false"))
                return
            con.execute("SET VARIABLE hooklake_index_range_files = ?", [files])
            con.execute(view_sql("message_rows_range"))

        yield read


def chunk_rows(con: duckdb.DuckDBPyConnection) -> int:
    """:data:`CHUNK_ROWS`, or fewer under a memory limit below :data:`CHUNK_MEMORY`. A chunk's
    joins and groupings of turns hold memory DuckDB cannot spill: a rebuild of one million
    simulated Landbot messages in 500k-row chunks ran out of a 1 GB limit."""
    limit = db.memory_limit_bytes(con)
    return max(1, min(CHUNK_ROWS, int(CHUNK_ROWS * limit / CHUNK_MEMORY)))


def stream_ranges(con: duckdb.DuckDBPyConnection, relation: str, rows: int) -> list[str]:
    """Conditions that cut ``relation`` (``rows`` rows) into chunks of about
    :func:`chunk_rows` rows, together covering every row once, each a range of customer
    streams in index order: by channel, then customer (null ids last).

    Ranges of that order, rather than of customer ids alone, keep the chunks' rows in one
    order, so each row group spans a narrow range of channels, customers and conversation ids
    and a point query's filters skip all but a few (1-2 of 78 row groups for a conversation of a
    10M-message index). With chunks by customer id, every chunk restarted the channels, and
    the row groups where it did spanned wide ranges of conversation ids. (The Delta writer
    takes its input's batches in turns, not in order, so a row group can still span two
    batches that were not adjacent.)
    """
    n = max(1, math.ceil(rows / chunk_rows(con)))
    if n == 1:
        return ["true"]
    points = [i / n for i in range(1, n)]
    found = con.execute(
        "SELECT quantile_disc({'c': channel_id, 'u': customer_id}, ?) "
        f"FROM {relation} WHERE channel_id IS NOT NULL AND customer_id IS NOT NULL",
        [points],
    )
    ((cuts,),) = found.fetchall()
    bounds = sorted({(int(c["c"]), int(c["u"])) for c in cuts or ()})
    if not bounds:
        return ["true"]

    def upto(channel: int, customer: int) -> str:
        return f"(channel_id < {channel} OR (channel_id = {channel} AND customer_id <= {customer}))"

    def after(channel: int, customer: int) -> str:
        # A null customer id sorts after every other of its channel, as in the index order.
        return (
            f"(channel_id > {channel} OR (channel_id = {channel} AND "
            f"(customer_id > {customer} OR customer_id IS NULL)))"
        )

    # The plain range on channel_id beside each condition is what reaches a Parquet scan's
    # statistics, so a chunk of a sorted index reads only its own row groups.
    (c, u), (lc, lu) = bounds[0], bounds[-1]
    out = [f"channel_id <= {c} AND {upto(c, u)}"]
    out += [
        f"channel_id BETWEEN {c0} AND {c1} AND {after(c0, u0)} AND {upto(c1, u1)}"
        for (c0, u0), (c1, u1) in itertools.pairwise(bounds)
    ]
    out.append(f"(channel_id IS NULL OR (channel_id >= {lc} AND {after(lc, lu)}))")
    return out
