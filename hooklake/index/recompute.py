"""Recomputing the customers new rows touch: their spans' stored rows, merged with the new
rows and ordered by the views' own SQL."""

from __future__ import annotations

import concurrent.futures
import math
from pathlib import Path

import duckdb
import pyarrow as pa

from hooklake import db, layout, tables
from hooklake.db import connect, lake_errors, query_sql, view_sql
from hooklake.fields import view_fields
from hooklake.index.read import define_index_views
from hooklake.index.schema import (
    COMPUTED_VIEWS,
    DATE_PARTITION,
    HIVE_TYPES,
    INCREMENT,
    PENDING,
    microseconds,
    written_rows,
)
from hooklake.index.state import Changes, IndexState
from hooklake.storage import LakeLocation

#: An update reads the index rows of at most this many touched customers pair by pair, and
#: of more within the range of their ids (see _touched_condition).
PAIRS_SPELLED_OUT = 16

#: An update of no more than one customer per this many rows of the base locates their rows
#: before reading them (see _locates): up to 2,000 customers on a 10M-message index.
ROWS_PER_LOCATED_CUSTOMER = 5_000
#: An update reads up to this many of the files the messages table gained in the update's
#: own database, and more in databases of their own, one per thread (see _read_added).
FILES_PER_READER = 1_000


def pending_rows(
    con: duckdb.DuckDBPyConnection, loc: LakeLocation, state: IndexState, changes: Changes
) -> pa.Table:
    """The index rows of the customers that ``changes`` touch, computed but not committed (for
    readers of a lake whose index is behind). Runs on ``con``, which it leaves as it was."""
    cur = con.cursor()
    try:
        return recompute_touched(cur, loc, state, changes, PENDING).read_all()
    finally:
        cur.close()


def recompute_touched(
    con: duckdb.DuckDBPyConnection,
    loc: LakeLocation,
    state: IndexState,
    changes: Changes,
    generation: str,
    *,
    own_database: bool = False,
) -> pa.RecordBatchReader:
    """The touched customers' rows at ``changes.until``, from their index rows and the rows the
    messages table gained, sorted like the index; leaves ``hooklake_index_touched`` on ``con``
    (``own_database``: no other connection uses ``con``'s database)."""
    with lake_errors("cannot update the conversation index"):
        _define_new_rows(con, loc, changes, own_database=own_database)
        found = con.execute(
            "SELECT DISTINCT channel_id, customer_id FROM hooklake_index_new_rows"
        ).fetchall()
        define_index_views(con, loc, state, streams=found)
        con.execute("SET VARIABLE hooklake_session_gap_us = ?", [microseconds(state.session_gap)])
        touched = _touched_condition(found)
        con.execute(query_sql("index_touched", touched=touched))
        if loc.local is not None and _locates(len(found), state.base_rows):
            _read_located(con, touched)
        else:
            con.execute(query_sql("index_stored_all"))
        con.execute(query_sql("index_input", touched=touched))
        for view in COMPUTED_VIEWS:
            con.execute(view_sql(view, **view_fields()))
        return written_rows(con, INCREMENT, generation)


def _define_new_rows(
    con: duckdb.DuckDBPyConnection, loc: LakeLocation, changes: Changes, *, own_database: bool
) -> None:
    """Make ``hooklake_index_new_rows`` on ``con`` the rows ``changes`` added
    (queries/index_new_rows.sql).

    The files the table gained are read once, and there can be thousands (the collector commits
    one per flushed segment and date). DuckDB's footer cache would keep about 40 KB for each
    for as long as the database lives: 440 MB for the 10,859 files of a 10M-message lake's day
    of traffic, and 0.3 s of that update spent caching and freeing them. So they are read with
    the cache switched off (:func:`_read_new_rows`): on ``con`` itself when its database is the
    update's own (``own_database``), otherwise (a reader's database, shared with other Lakes:
    the setting belongs to the database) on a database of their own, whose rows ``con`` then
    takes. On object storage Arrow datasets read the files, and DuckDB caches none of their
    footers."""
    if own_database or loc.local is None:
        _read_new_rows(con, loc, changes)
        return
    # With the threads and memory limit the reader's database was given.
    ((threads,),) = con.execute("SELECT current_setting('threads')").fetchall()
    private = connect(threads=int(threads), memory_limit=f"{db.memory_limit_bytes(con):.0f}B")
    try:
        _read_new_rows(private, loc, changes)
        rows = private.sql("SELECT * FROM hooklake_index_new_rows").to_arrow_table()
    finally:
        private.close()
    db.register(con, "hooklake_index_new_arrow", rows)
    con.execute(
        "CREATE OR REPLACE TEMP TABLE hooklake_index_new_rows AS FROM hooklake_index_new_arrow"
    )
    db.forget(con, "hooklake_index_new_arrow")


def _read_new_rows(con: duckdb.DuckDBPyConnection, loc: LakeLocation, changes: Changes) -> None:
    """Run queries/index_new_rows.sql on ``con`` over the files ``changes`` added and removed,
    without keeping their footers in the cache of ``con``'s database (see
    :func:`_define_new_rows`)."""
    schema = tables.table_schema(layout.MESSAGES)
    db.register_table_files(
        con, "hooklake_index_removed", loc, layout.MESSAGES, changes.old,
        list(changes.removed), schema, DATE_PARTITION,
    )  # fmt: skip
    if loc.local is not None and len(changes.added) > FILES_PER_READER:
        added = _read_added(con, loc.local / layout.MESSAGES, changes.added)
        db.register(con, "hooklake_index_added", added)
    else:
        db.register_table_files(
            con, "hooklake_index_added", loc, layout.MESSAGES, changes.new,
            list(changes.added), schema, DATE_PARTITION,
        )  # fmt: skip
    if loc.local is None:
        con.execute(query_sql("index_new_rows"))
        return
    con.execute("SET GLOBAL parquet_metadata_cache = false")
    con.execute(query_sql("index_new_rows"))
    con.execute("SET GLOBAL parquet_metadata_cache = true")  # as db.connect sets it


def _read_added(con: duckdb.DuckDBPyConnection, root: Path, paths: tuple[str, ...]) -> pa.Table:
    """The rows of the data files ``paths`` (relative to the messages table's folder ``root``),
    read by as many DuckDB databases of their own as ``con`` has threads, each in a thread of
    its own.

    One database opens a query's files one after another, parsing each footer under a lock,
    and the collector commits one small file per flushed segment and date: thousands a day,
    and more than that when late deliveries fall on many dates. The 10,859 files of a
    10M-message lake's day of traffic took 1.99-2.04 s in one database and 1.57-1.66 s in
    two (with one thread each, or two)."""
    ((threads,),) = con.execute("SELECT current_setting('threads')").fetchall()
    readers = max(1, min(int(threads), math.ceil(len(paths) / FILES_PER_READER)))
    memory = f"{db.memory_limit_bytes(con) / readers:.0f}B"

    def read(share: tuple[str, ...]) -> pa.Table:
        private = connect(threads=1, memory_limit=memory)
        try:
            private.execute("SET GLOBAL parquet_metadata_cache = false")  # read once
            db.register_parquet(
                private, "hooklake_index_files", [str(root / p) for p in share], DATE_PARTITION
            )
            return private.sql("SELECT * FROM hooklake_index_files").to_arrow_table()
        finally:
            private.close()

    with concurrent.futures.ThreadPoolExecutor(readers) as pool:
        # map hands back the tables in order, and raises a reader's error here.
        return pa.concat_tables(pool.map(read, [paths[k::readers] for k in range(readers)]))


def _locates(customers: int, base_rows: int) -> bool:
    """Whether an update touching ``customers`` reads their rows of a base of ``base_rows``
    rows in two steps (:func:`_read_located`) rather than in one pass.

    One pass decodes every column of every page that holds a touched customer, and a hundred
    customers are on most pages: 1.9 s on a 10M-message index for an update of 400 customers.
    Finding their rows from a few columns first, then reading only the pages that hold them,
    took 0.1 + 0.35 s. A collector's updates, one after another (increments included), with
    the touched customers' condition of :func:`_touched_condition`: ~100 customers of that
    index, 0.67 s located against 2.12 s in one pass; of a 3M one, 0.49 against 0.97 s; ~25
    customers of a 1M one, 0.31 against 0.44 s; 1-3 customers, 0.20 s either way. The second
    step grows with the pages it reads, so for thousands of customers one pass costs less
    (12,930 customers of the 10M index, 1% of its messages: 2.4 s in one pass, 4 s or more in
    two).
    """
    return 0 < customers <= base_rows // ROWS_PER_LOCATED_CUSTOMER


def _read_located(con: duckdb.DuckDBPyConnection, touched: str) -> None:
    """Define ``hooklake_index_stored`` as the base's rows of the update's spans, found by
    queries/index_located.sql and read file by file from the pages that hold them
    (queries/index_located_rows.sql), and the newer generations' message rows."""
    con.execute(query_sql("index_located", touched=touched, hive_types=HIVE_TYPES))
    found = con.execute(
        "SELECT filename, list(file_row_number ORDER BY file_row_number) "
        "FROM hooklake_index_located GROUP BY filename ORDER BY filename"
    ).fetchall()
    reads = [
        query_sql(
            "index_located_rows",
            file=str(name).replace("'", "''"),
            rows=", ".join(str(int(r)) for r in numbers),
            hive_types=HIVE_TYPES,
        )
        for name, numbers in found
    ] or ["SELECT * FROM hooklake_index_base WHERE false"]
    con.execute(
        "CREATE OR REPLACE TEMP VIEW hooklake_index_located_rows AS\n"
        + "\nUNION ALL BY NAME\n".join(reads)
    )
    con.execute(query_sql("index_stored_located"))


def _touched_condition(streams: list[tuple[int | None, int]]) -> str:
    """A condition on an index scan ``i`` that lets the Parquet scan skip what cannot hold the
    customer ``streams`` (channel, customer). It only narrows the scan: every query that uses
    it also joins the streams themselves, so it may keep other customers' rows too.

    A few streams are spelled out pair by pair: DuckDB then reads only the row groups whose
    statistics hold a pair. It checks the pairs one after another on every row it reads,
    though. Past :data:`PAIRS_SPELLED_OUT` pairs the condition is the range of their customer
    ids: the scan skips the row groups outside it and checks the rest at no cost per row. A
    list of the ids (0.52 s against 0.79 s with pairs, for a collector's updates of ~100
    customers of a 3M-message index, located first) is a lookup for every row the scan reads,
    and skipped no more: a collector's 102 updates of ~100 customers of a 1M index took
    49-56 s with the list, 51-52 s with the range. Of 12,930 customers of a 10M index, which
    the scan reads whole, looking for the stored copies of new keys took 0.36-0.43 s with the
    list and 0.27-0.30 s without a condition. customer_id is never null in stored rows.
    """
    if len(streams) > PAIRS_SPELLED_OUT:
        ids = [int(u) for _, u in streams]
        return f"i.customer_id BETWEEN {min(ids)} AND {max(ids)}"

    def pair(channel: int | None, customer: int) -> str:
        on = "i.channel_id IS NULL" if channel is None else f"i.channel_id = {int(channel)}"
        return f"({on} AND i.customer_id = {int(customer)})"

    return "(" + (" OR ".join(pair(c, u) for c, u in sorted(streams, key=str)) or "false") + ")"
