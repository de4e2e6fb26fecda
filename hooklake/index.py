"""The conversation index: the lake's messages deduplicated and in conversation order, kept up
to date one customer at a time.

Every view (``messages``, ``conversations``, ``turns``, ``handovers``) starts from the same
expensive step: deduplicate the stored rows, order each customer's stream and cut it into
conversations (``sql/views/messages_unique.sql``, ``messages_ordered.sql``). The index stores the
result, ``hooklake_messages_ordered``'s rows for one session gap, as a Delta table beside the
lake's own tables::

    lake/index/_delta_log/
    lake/index/layer=0/generation=<G>/kind=message/...        the base: every customer,
    lake/index/layer=0/generation=<G>/kind=conversation/...   sorted by customer
    lake/index/layer=1/generation=<G>/kind=.../...            increments: what new rows changed

Each message is a ``message`` row; each conversation also has a ``conversation`` row (its first
message's ids and times, with the conversation's figures), in files of their own, so the
``conversations`` view reads a few rows per conversation instead of filtering every message.

A customer's messages only ever depend on that customer's stored rows, so new rows change the
index for the customers they touch and no one else (the way incremental sessionisation
reprocesses only the sessions new events touch), and within a customer's stream only the
conversations they fall in or come within a session gap of: every row the index holds depends on
its conversation alone (``_rn`` and ``_run`` order and number rows within a conversation; their
values say nothing across conversations). An update reads the files the ``messages`` table
gained since the version the index covers, finds for each touched customer the spans of the
stream that change (from a changed conversation to the next unchanged one), takes those spans'
rows from the index, merges the new rows in, runs the same SQL the views run over just those
rows (``queries/index_touched.sql``, ``index_input.sql``), and appends the result as one
increment in one commit, each row marked with the span it was computed for (``_since``,
``_until``). A late delivery into an old conversation thus rewrites that conversation, not the
customer's stream after it; a duplicate delivery rewrites the conversation its stored copy is
in. The spans' rows of the base are located first from a few columns and then read from the
pages that hold them alone, unless the update touches so many customers that one pass over the
base costs less (see :func:`_locates`).

Generations are ``<messages version, 12 digits>-<random>``, so they sort by the state they
describe. A row counts unless a newer generation holds a span of its customer's stream that
its time falls in (``views/index_rows.sql``); increments not newer than the base are ignored.
That makes every interleaving safe: a crash leaves uncommitted files no version lists, two
updaters racing each write a complete state for their customers' spans (the one that saw more
has spans that contain the other's), and a fold (which rewrites base and increments as a new
base once the increments grow past a quarter of it), a merge (which rewrites the newest
increments as one, past 16 increment files, keeping their spans; see :func:`merge_run`) or a
rebuild never hides a newer increment.

The index commit carries two Delta transaction ids: the ``messages`` version it covers and
the session gap (microseconds) it was computed with. The raw tables stay the source of truth:
``hooklake index --rebuild`` recomputes the index from them, and any change other than
appends and compactions (an erasure) makes the next update a rebuild.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import itertools
import math
import os
import secrets
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
from deltalake import (
    BloomFilterProperties,
    ColumnProperties,
    CommitProperties,
    DeltaTable,
    Transaction,
    WriterProperties,
    write_deltalake,
)
from deltalake.exceptions import CommitFailedError, DeltaError

from hooklake import db, layout, tables
from hooklake.db import connect, lake_errors, query_sql, view_sql
from hooklake.errors import LakeError
from hooklake.fields import view_fields
from hooklake.storage import LakeLocation, lake_location

#: The columns the ordering adds to the stored message columns, in the views' order.
ORDERED_COLUMNS: tuple[tuple[str, pa.DataType], ...] = (
    ("role", pa.string()),
    ("_agent_evidence", pa.string()),
    ("_rn", pa.int64()),
    ("_started_at", pa.timestamp("us", tz="UTC")),
    ("_run", pa.int64()),
    ("conversation_id", pa.string()),
    ("position", pa.int64()),
)
_TS = pa.timestamp("us", tz="UTC")
#: What the index keeps on a conversation's first message (views/conversation_counts.sql) ...
CONVERSATION_SUMMARY = pa.struct(
    [
        ("ended_at", _TS),
        ("n_messages", pa.int64()),
        ("n_customer", pa.int64()),
        ("n_bot", pa.int64()),
        ("n_agent", pa.int64()),
        ("n_sys", pa.int64()),
        ("has_agent", pa.bool_()),
        ("channel_name", pa.string()),
        ("channel_type", pa.string()),
    ]
)
#: ... and on a turn's first message (views/turn_rows.sql, without conversation_id; and
#: views/turn_pair_rows.sql's answer on a customer turn).
TURN_SUMMARY = pa.struct(
    [
        ("turn_index", pa.int64()),
        ("role", pa.string()),
        ("sender_type", pa.string()),
        ("has_agent", pa.bool_()),
        ("text", pa.string()),
        ("started_at", _TS),
        ("ended_at", _TS),
        ("message_keys", pa.list_(pa.string())),
        ("n_messages", pa.int64()),
        ("first_position", pa.int64()),
        ("last_position", pa.int64()),
        # A customer turn's answer: the next turn (views/turn_pair_rows.sql).
        ("response", pa.string()),
        ("response_has_agent", pa.bool_()),
    ]
)
#: ... and on the message a hand-off starts at (views/handover_rows.sql, without the ids,
#: position and time_to_first_reply, which the view derives).
HANDOVER_SUMMARY = pa.struct(
    [
        ("agent_id", pa.int64()),
        ("assigned_at", _TS),
        ("unassigned_at", _TS),
        ("first_agent_reply_at", _TS),
        ("source", pa.string()),
    ]
)
BASE, INCREMENT = 0, 1
#: Rows a rebuild or a fold computes and sorts at once (one range of customer ids): memory
#: stays bounded whatever the size of the lake.
CHUNK_ROWS = 500_000
#: DuckDB's memory limit for index work unless $HOOKLAKE_MEMORY_LIMIT or the caller says
#: otherwise: enough for one chunk; past it DuckDB spills to disk.
DEFAULT_MEMORY_LIMIT = "2GB"
#: The limit CHUNK_ROWS is sized for, as DuckDB reports DEFAULT_MEMORY_LIMIT (binary units):
#: under a smaller limit chunks shrink in proportion (see _chunk_rows).
CHUNK_MEMORY = 1.8 * 2**30
#: A rebuild in more ranges than this splits the stored rows by range first (see
#: _split_by_range). The split costs about five filtered reads of the table: rebuilding 1M
#: simulated messages, filtering for each range took 22.0 CPU-s in 4 ranges (23.8 split),
#: 29.5 in 8 (30.5) and 46.3 in 16 (33.6 split); 10M in 40 ranges took 671 CPU-s (335 split).
SPLIT_RANGES = 8
#: Generation of rows a reader computed itself and did not commit: sorts after every other.
PENDING = "~pending"
#: Fold the increments into a new base when they hold this share of the base's rows.
FOLD_RATIO = 0.25
#: Merge the newest increments into one when there are more files than this (each query
#: opens every one; every update adds one or two). Merging at 16 rather than 64 cost the
#: flusher's 100 updates of the benchmark's day nothing (3M messages: 83.1 against 82.9 CPU-s,
#: 21 merges against 3; 1M: 44.0 against 47.6, as updates read fewer files), and spares
#: readers up to 48 files: through 62 of them a fresh Lake's point query took 92 ms, through 16
#: 75 ms.
MERGE_FILES = 16
#: Rows per Parquet row group, and at most per page. A point query finds a customer's pages
#: through the page index (DuckDB skips the pages whose statistics rule the customer out), so
#: row groups can be large; every row group costs every query a footer entry per column, and
#: the footers, not the rows read, are what point queries slowed down with as a lake grew
#: (16k-row groups: 616 of them, 5.4 MB of footers, at 10M messages). On object storage, where
#: Arrow reads whole row groups, 32k-row groups halved what an update of a few customers of a
#: 10M-message index reads (9 customers: 1.8-2.0 -> 0.9 s), but the views took 1.5-1.7x as
#: long and a 3M one's conversation turns 0.126 -> 0.197 s: one size for both.
ROW_GROUP_ROWS = 131_072
PAGE_ROWS = 8_192
#: Compression of the index's files. On local disk, LZ4: an update after a day of traffic
#: decompresses nearly every page of the index (the customers it touches are on all of them),
#: and LZ4 decompresses several times faster than ZSTD. On a 10M-message index, against ZSTD:
#: that read 2.3-2.6 -> 1.8 s and the one-shot update 7.0-7.2 -> 6.1-6.4 s (under a 1GB memory
#: limit), conversations + pairs 0.71-0.72 -> 0.64-0.65 s, point queries 0.041-0.046 ->
#: 0.038-0.043 s, the rebuild the same (128.5 s), 1.6 -> 2.5 GB on disk. On object storage
#: every byte crosses the network and Arrow reads whole row groups: ZSTD. Files of either
#: codec read alike, so an index written before keeps working and its folds convert it.
LOCAL_COMPRESSION: Literal["LZ4_RAW", "ZSTD"] = "LZ4_RAW"
OBJECT_STORE_COMPRESSION: Literal["LZ4_RAW", "ZSTD"] = "ZSTD"
#: Columns whose row groups carry a Bloom filter (see _file_layout).
BLOOM_COLUMNS = ("customer_id", "conversation_id")
#: Bytes per index data file. A point query opens every file of its kind and checks each
#: one's row groups (cached footers make that cheap, not free): with the Delta writer's
#: default of 100 MiB a 10M-message index had 16 message files against a 1M one's 2, and its
#: point queries took a few milliseconds longer.
FILE_BYTES = 2**30
#: Write a checkpoint of the index's log every this many commits. A collector's flusher
#: commits an update up to once a minute, and every reader replays the commits since the last
#: checkpoint (Delta's default interval is 100): 58 of them took 17 ms of every Lake's opening,
#: against 6 ms from a checkpoint.
CHECKPOINT_EVERY = 10
#: Rows per Arrow batch handed to the Delta writer. The writer holds several batches at once,
#: outside DuckDB's memory limit: with 64k-row batches a rebuild of 1M simulated messages
#: peaked at 2.3 GB under a 1GB limit, with 8k-row ones at 1.7 GB, in the same time.
WRITE_BATCH_ROWS = 8_192
#: An update reads the index rows of at most this many touched customers pair by pair, and
#: of more within the range of their ids (see _touched_condition).
PAIRS_SPELLED_OUT = 16
#: On object storage, an update of at most this many customers reads only the row groups
#: whose statistics may hold one of them (see define_index_views). Checking the statistics
#: costs 0.04 s for 10 customers of a 10M-message index (81 row groups) and 0.06 s for 100;
#: 1,000 customers take 0.5 s and rule out none.
PRUNED_STREAMS = 256
#: An update of no more than one customer per this many rows of the base locates their rows
#: before reading them (see _locates): up to 2,000 customers on a 10M-message index.
ROWS_PER_LOCATED_CUSTOMER = 5_000
#: An update reads up to this many of the files the messages table gained in the update's
#: own database, and more in databases of their own, one per thread (see _read_added).
FILES_PER_READER = 1_000
#: The views whose SQL an index write runs over the customers it writes.
_COMPUTED_VIEWS = (
    "macros", "messages_unique", "messages_ordered", "conversation_counts", "turn_rows",
    "turn_pair_rows", "handover_rows",
)  # fmt: skip
#: The messages table's partition column, as DuckDB reads it from directory names.
_DATE = {tables.PARTITION_COLUMN: "DATE"}
#: The index's partition columns, as DuckDB reads them from directory names.
_PARTITIONS = {"layer": "TINYINT", "generation": "VARCHAR", "kind": "VARCHAR"}
_PARTITION_BY = list(_PARTITIONS)
_HIVE_TYPES = db.hive_types_sql(_PARTITIONS)
_VERSION_TXN = "hooklake:index"
_GAP_TXN = "hooklake:index-gap-us"
#: Delta operations after which an update can still work from the files added and removed.
_INCREMENTAL_OPERATIONS = {"WRITE", "OPTIMIZE", "VACUUM START", "VACUUM END"}
#: Called at points of an index write ("start": nothing written yet; "rows": every row handed
#: to the writer, nothing committed): tests kill the process or raise there.
crash_point: Callable[[str], None] | None = None


def index_schema() -> pa.Schema:
    """The index table's schema: the stored message columns (partition date included), the
    ordering's columns, the summaries, the part of the stored message builds render
    (``_shown``), then the index's own partition columns."""
    schema = tables.table_schema(layout.MESSAGES)
    for name, dtype in ORDERED_COLUMNS:
        schema = schema.append(pa.field(name, dtype))
    schema = schema.append(pa.field("_conversation", CONVERSATION_SUMMARY))
    schema = schema.append(pa.field("_turn", TURN_SUMMARY))
    schema = schema.append(pa.field("_handover", HANDOVER_SUMMARY))
    schema = schema.append(pa.field("_shown", pa.string()))
    schema = schema.append(pa.field("_since", _TS))
    schema = schema.append(pa.field("_until", _TS))
    schema = schema.append(pa.field("layer", pa.int8(), nullable=False))
    schema = schema.append(pa.field("generation", pa.string(), nullable=False))
    return schema.append(pa.field("kind", pa.string(), nullable=False))


def _file_layout(loc: LakeLocation) -> dict[str, Any]:
    """How every index write to ``loc`` lays out its files: partitions, file size, row groups,
    pages, compression and Bloom filters (keyword arguments of ``write_deltalake``)."""
    # Bloom filters on the columns point queries name: a row group's min/max of customer_id
    # spans every customer when the group straddles two channels, so without them one
    # customer's messages read 2-3 row groups of a 10M-message index (1 with them, as at 1M).
    # ~4 KB per row group and column in the bench's index; 0.3% false positives measured.
    bloom = ColumnProperties(
        bloom_filter_properties=BloomFilterProperties(True, fpp=0.01, ndv=ROW_GROUP_ROWS // 8)
    )
    properties = WriterProperties(
        compression=LOCAL_COMPRESSION if loc.local is not None else OBJECT_STORE_COMPRESSION,
        max_row_group_size=ROW_GROUP_ROWS,
        data_page_row_count_limit=PAGE_ROWS,
        column_properties={column: bloom for column in BLOOM_COLUMNS},
    )
    return {
        "partition_by": _PARTITION_BY,
        "writer_properties": properties,
        "target_file_size": FILE_BYTES,
    }


@dataclass(frozen=True, order=True)
class IndexFile:
    """One data file of the index version read."""

    #: Relative to the index table's root.
    path: str
    layer: int
    generation: str
    rows: int


@dataclass(frozen=True)
class IndexState:
    """One version of the index, as a reader uses it."""

    table: DeltaTable = field(repr=False)
    #: The index table's own version.
    version: int
    #: The ``messages`` table version whose rows the index holds.
    messages_version: int
    session_gap: timedelta
    #: The newest base's generation and files, and the increments newer than it.
    base_generation: str
    base: tuple[IndexFile, ...]
    increments: tuple[IndexFile, ...]

    @property
    def base_rows(self) -> int:
        return sum(f.rows for f in self.base)

    @property
    def increment_rows(self) -> int:
        return sum(f.rows for f in self.increments)


@dataclass(frozen=True)
class Changes:
    """What the ``messages`` table gained and lost between two versions, as data files."""

    since: int
    until: int
    added: tuple[str, ...]
    removed: tuple[str, ...]
    #: The table at ``since`` and at ``until`` (the files are read from them).
    old: DeltaTable = field(repr=False)
    new: DeltaTable = field(repr=False)


@dataclass(frozen=True)
class IndexReport:
    """What ``hooklake index`` did."""

    action: str
    messages_version: int | None
    index_version: int | None
    session_gap: timedelta
    customers: int
    rows_written: int
    seconds: float

    def rows(self) -> list[tuple[str, Any]]:
        return [
            ("action", self.action),
            ("messages version", self.messages_version),
            ("index version", self.index_version),
            ("session gap", str(self.session_gap)),
            ("customers recomputed", self.customers),
            ("rows written", self.rows_written),
            ("seconds", round(self.seconds, 2)),
        ]


def read_state(loc: LakeLocation, dt: DeltaTable | None = None) -> IndexState | None:
    """The index's latest version, or None when the lake has no index yet."""
    with tables.delta_errors(f"cannot open the index of lake {loc}", LakeError):
        if dt is None:
            dt = tables.open_table(loc, layout.INDEX)
        if dt is None:
            return None
        covered = dt.transaction_version(_VERSION_TXN)
        gap_us = dt.transaction_version(_GAP_TXN)
        if covered is None or gap_us is None:
            return None  # created, but killed before its first rows were committed
        stored, wanted = pa.schema(dt.schema().to_arrow()), index_schema()
        if [(f.name, f.type) for f in stored] != [(f.name, f.type) for f in wanted]:
            return None  # written by another version of Hooklake: the next update rebuilds it
        actions = pa.table(dt.get_add_actions(flatten=True))
    files = sorted(
        IndexFile(a["path"], a["partition.layer"], a["partition.generation"], a["num_records"] or 0)
        for a in actions.select(
            ["path", "partition.layer", "partition.generation", "num_records"]
        ).to_pylist()
    )
    bases = [f.generation for f in files if f.layer == BASE]
    base_generation = max(bases, default="")
    return IndexState(
        table=dt,
        version=dt.version(),
        messages_version=covered,
        session_gap=timedelta(microseconds=gap_us),
        base_generation=base_generation,
        base=tuple(f for f in files if f.layer == BASE and f.generation == base_generation),
        increments=tuple(
            f for f in files if f.layer == INCREMENT and f.generation > base_generation
        ),
    )


def changes_since(loc: LakeLocation, messages: DeltaTable, since: int) -> Changes | None:
    """The files ``messages`` (at its loaded version) added and removed since version ``since``,
    or None when only a rebuild can follow: a change other than appends and compactions (an
    erasure rewrites files and deletes rows), or a version the log no longer has."""
    until = messages.version()
    if since > until:
        return None  # the table was recreated
    with tables.delta_errors(f"cannot read the history of the messages table of {loc}", LakeError):
        try:
            old = tables.open_table(loc, layout.MESSAGES, since)
        except DeltaError:
            return None
        if old is None:
            return None
        before = {f.path for f in tables.data_files(old)}
        after = {f.path for f in tables.data_files(messages)}
        removed = before - after
        # Only a commit that removes files can take rows away. When every file of `since` is
        # still there, what came after only added rows (rows added and erased since never
        # reached the index), and the history, which reads every commit (0.47 s for the 10,859
        # of the 10M-message benchmark's update), is left unread.
        if removed and not _only_appends_and_compactions(messages, since, until):
            return None
    if loc.local is not None and any(
        not (loc.local / layout.MESSAGES / p).exists() for p in removed
    ):
        return None  # compacted and vacuumed since: what was new can no longer be told apart
    return Changes(
        since, until, tuple(sorted(after - before)), tuple(sorted(removed)), old, messages
    )


def _only_appends_and_compactions(messages: DeltaTable, since: int, until: int) -> bool:
    for entry in messages.history(limit=until - since):
        if not since < entry.get("version", -1) <= until:
            continue
        if entry.get("operation") not in _INCREMENTAL_OPERATIONS:
            return False
        if entry.get("operation") == "WRITE" and (
            entry.get("operationParameters", {}).get("mode") != "Append"
        ):
            return False
    return True


def update_index(
    lake: str | os.PathLike[str] | LakeLocation,
    *,
    rebuild: bool = False,
    session_gap: timedelta | None = None,
    memory_limit: str | None = None,
    threads: int | None = None,
    fold: bool = True,
) -> IndexReport:
    """Bring the lake's conversation index up to date with its ``messages`` table, creating it
    first if needed; ``rebuild`` recomputes it from the raw tables. ``session_gap`` defaults to
    the index's own (or 30 minutes for a new index); another gap rebuilds it. Unless ``fold``
    is False, an update that leaves many increments merges or folds them."""
    from hooklake.datasets.lake import DEFAULT_SESSION_GAP, as_session_gap, check_lake

    started = time.perf_counter()
    loc = lake_location(lake)
    check_lake(loc)
    with tables.delta_errors(f"cannot open the tables of lake {loc}", LakeError):
        messages = tables.open_table(loc, layout.MESSAGES)
    state = read_state(loc)
    gap = as_session_gap(session_gap) if session_gap is not None else None
    if gap is None:
        gap = state.session_gap if state is not None else DEFAULT_SESSION_GAP

    def report(
        action: str, customers: int = 0, rows: int = 0, now: IndexState | None = None
    ) -> IndexReport:
        # The index as the action left it (read again unless the caller just read it).
        now = now or read_state(loc)
        return IndexReport(
            action,
            now.messages_version if now else None,
            now.version if now else None,
            gap,
            customers,
            rows,
            time.perf_counter() - started,
        )

    if messages is None:
        return report("nothing to index: the lake has no messages yet")
    changes = None
    if state is not None and not rebuild and state.session_gap == gap:
        if state.messages_version == messages.version():
            return report("up to date")
        changes = changes_since(loc, messages, state.messages_version)
    limit = memory_limit or os.environ.get("HOOKLAKE_MEMORY_LIMIT") or DEFAULT_MEMORY_LIMIT
    con = connect(threads=threads, memory_limit=limit)
    try:
        if state is None or changes is None:
            rows = _rebuild(con, loc, messages, gap)
            return report("rebuilt", rows=rows)
        customers, rows = _increment(con, loc, state, messages, changes)
        after = read_state(loc)
        if fold and after is not None:
            if needs_fold(after):
                _fold(con, loc, after)
                return report("updated and folded", customers, rows)
            run = merge_run(after)
            if run and _merge(con, loc, after, run):
                return report("updated and merged", customers, rows)
        return report("updated", customers, rows, after)
    finally:
        con.close()


def needs_fold(state: IndexState) -> bool:
    """Whether the increments have grown enough to rewrite the whole index as one base."""
    return state.increment_rows > FOLD_RATIO * max(state.base_rows, 1)


def merge_run(state: IndexState) -> tuple[IndexFile, ...]:
    """The newest increments' files that a merge rewrites as one increment, once there are
    more than :data:`MERGE_FILES`; none before.

    Size-tiered, as log-structured stores compact: the run takes the newest generations and
    stops at the first older one holding more rows than all those newer than it. Merged
    increments thus roughly double in size from one level to the next, each row is rewritten
    about log2(increment rows / update rows) times, and a merge costs what the merged
    increments hold, never the base (a fold, which rewrites everything, waits until the
    increments hold :data:`FOLD_RATIO` of the base).
    """
    if len(state.increments) <= MERGE_FILES:
        return ()
    sizes: dict[str, int] = {}
    for f in state.increments:
        sizes[f.generation] = sizes.get(f.generation, 0) + f.rows
    run: set[str] = set()
    total = 0
    for generation in sorted(sizes, reverse=True):
        if len(run) >= 2 and sizes[generation] > total:
            break
        run.add(generation)
        total += sizes[generation]
    return tuple(f for f in state.increments if f.generation in run)


def pending_rows(
    con: duckdb.DuckDBPyConnection, loc: LakeLocation, state: IndexState, changes: Changes
) -> pa.Table:
    """The index rows of the customers that ``changes`` touch, computed but not committed (for
    readers of a lake whose index is behind). Runs on ``con``, which it leaves as it was."""
    cur = con.cursor()
    try:
        return _recompute(cur, loc, state, changes, PENDING).read_all()
    finally:
        cur.close()


def define_index_views(
    con: duckdb.DuckDBPyConnection,
    loc: LakeLocation,
    state: IndexState,
    pending: pa.Table | None = None,
    streams: list[tuple[int | None, int]] | None = None,
) -> None:
    """Define ``hooklake_index_rows`` (one row per message) and ``hooklake_index_conversations``
    on ``con``: the index version ``state`` plus ``pending`` rows, each row from the newest
    generation that holds its customer's stream at its time. With ``streams`` (channel,
    customer), the views hold those customers' rows and may leave out others."""
    # On object storage Arrow reads whole row groups, and a list of customer ids rules none
    # out: the row groups that hold none of the streams are left out here, from their
    # statistics (see _streams_expression). The touched customers' rows of a 10M-message
    # index on SeaweedFS, against pairs pushed down (as long as there were fewer pairs than
    # row groups) or the list over every row group: 31 customers 2.9-3.2 s against 3.2-4.2 s;
    # 107 customers 5.4-6.4 s against 6.5-8.6 s; 9 customers, or a 3M one's, the same.
    keep = None
    if streams and len(streams) <= PRUNED_STREAMS and loc.local is None:
        keep = _streams_expression(streams)
    db.register_table_files(
        con, "hooklake_index_base", loc, layout.INDEX, state.table,
        [f.path for f in state.base], index_schema(), _PARTITIONS, keep,
    )  # fmt: skip
    # What an earlier definition on ``con`` registered goes (pending rows are held in memory).
    db.forget(con, "hooklake_index_increments")
    db.forget(con, "hooklake_index_pending")
    if not state.increments and (pending is None or pending.num_rows == 0):
        con.execute(view_sql("index_base_rows"))  # nothing newer: no resolution to run
        con.execute(view_sql("index_spans"))
    else:
        sources = []
        if state.increments:
            db.register_table_files(
                con, "hooklake_index_increments", loc, layout.INDEX, state.table,
                [f.path for f in state.increments], index_schema(), _PARTITIONS, keep,
            )  # fmt: skip
            sources.append("SELECT * FROM hooklake_index_increments")
        if pending is not None and pending.num_rows:
            db.register(con, "hooklake_index_pending", pending)
            sources.append("SELECT * FROM hooklake_index_pending")
        con.execute(view_sql("index_newer", sources="\nUNION ALL BY NAME\n".join(sources)))
        con.execute(view_sql("index_spans"))
        con.execute(view_sql("index_rows"))
    con.execute(view_sql("index_kinds"))


def _rebuild(
    con: duckdb.DuckDBPyConnection, loc: LakeLocation, messages: DeltaTable, gap: timedelta
) -> int:
    generation = _generation(messages.version())
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
            _DATE,
        )
        con.execute("SET VARIABLE hooklake_session_gap_us = ?", [microseconds(gap)])
        con.execute(query_sql("index_whole"))
        ranges = _stream_ranges(con, "hooklake_message_files", sum(f.rows for f in stored))
        with _split_by_range(con, ranges, sum(f.bytes for f in stored)) as read_range:

            def chunks() -> Iterator[pa.RecordBatch]:
                for k in range(len(ranges)):
                    read_range(k)
                    for view in _COMPUTED_VIEWS:
                        con.execute(view_sql(view, **view_fields()))
                    yield from _written(con, BASE, generation)

            reader = pa.RecordBatchReader.from_batches(index_schema(), chunks())
            return _commit(loc, reader, "overwrite", messages.version(), gap)


@contextlib.contextmanager
def _split_by_range(
    con: duckdb.DuckDBPyConnection, ranges: list[str], stored_bytes: int
) -> Iterator[Callable[[int], None]]:
    """A function that defines ``hooklake_message_rows`` on ``con`` as the stored rows of range
    ``k`` of ``ranges`` (conditions of :func:`_stream_ranges` on ``hooklake_message_files``).

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
        con.execute(f"SET partitioned_write_flush_threshold = {max(1, _chunk_rows(con) // 4)}")
        con.execute(query_sql("index_split", cases=cases, folder=folder.replace("'", "''")))

        def read(k: int) -> None:
            files = sorted(str(p) for p in Path(folder, f"_range={k}").glob("*.parquet"))
            if not files:
                con.execute(view_sql("message_rows_chunk", streams="false"))
                return
            con.execute("SET VARIABLE hooklake_index_range_files = ?", [files])
            con.execute(view_sql("message_rows_range"))

        yield read


def _increment(
    con: duckdb.DuckDBPyConnection,
    loc: LakeLocation,
    state: IndexState,
    messages: DeltaTable,
    changes: Changes,
) -> tuple[int, int]:
    """Append the touched customers' recomputed rows; returns (customers, rows)."""
    generation = _generation(changes.until)
    reader = _recompute(con, loc, state, changes, generation, own_database=True)
    rows = _commit(loc, reader, "append", changes.until, state.session_gap, state.table)
    ((touched,),) = con.execute(
        "SELECT count(DISTINCT (channel_id, customer_id)) FROM hooklake_index_touched"
    ).fetchall()
    return int(touched), rows


def _fold(con: duckdb.DuckDBPyConnection, loc: LakeLocation, state: IndexState) -> int:
    """Rewrite the index version ``state`` as one sorted base of the same generation order."""
    generation = _generation(state.messages_version)
    with lake_errors("cannot fold the conversation index"):
        define_index_views(con, loc, state)
        rows = state.base_rows + state.increment_rows
        ranges = _stream_ranges(con, "hooklake_index_rows", rows)

        def chunks() -> Iterator[pa.RecordBatch]:
            for streams in ranges:
                query = query_sql("index_fold", streams=streams)
                params = {"layer": BASE, "generation": generation}
                yield from _stream(con.sql(query, params=params))

        reader = pa.RecordBatchReader.from_batches(index_schema(), chunks())
        return _commit(loc, reader, "overwrite", state.messages_version, state.session_gap)


def _merge(
    con: duckdb.DuckDBPyConnection, loc: LakeLocation, state: IndexState, run: tuple[IndexFile, ...]
) -> bool:
    """Rewrite the newest increments ``run`` as one increment in one commit
    (queries/index_merge.sql); returns False when another writer's commit got in the way (the
    next update merges). What the index covers does not change, nor what readers see."""
    generations = sorted({f.generation for f in run})
    # The merged increment describes the state the newest of them does, and sorts with it.
    generation = _generation(int(generations[-1].split("-")[0]))
    part = replace(state, base=(), increments=run)
    with lake_errors("cannot merge the conversation index's increments"):
        define_index_views(con, loc, part)
        rel = con.sql(
            query_sql("index_merge"), params={"layer": INCREMENT, "generation": generation}
        )
        rows = _stream(rel)
    listed = ", ".join(f"'{g}'" for g in [*generations, generation])
    with tables.delta_errors(f"cannot write the conversation index of {loc}"):
        try:
            write_deltalake(
                state.table,
                rows,
                mode="overwrite",
                predicate=f"layer = {INCREMENT} AND generation IN ({listed})",
                **_file_layout(loc),
            )
        except CommitFailedError:
            return False
        _checkpoint_now_and_then(loc)
    return True


def _recompute(
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
        for view in _COMPUTED_VIEWS:
            con.execute(view_sql(view, **view_fields()))
        return _written(con, INCREMENT, generation)


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
        list(changes.removed), schema, _DATE,
    )  # fmt: skip
    if loc.local is not None and len(changes.added) > FILES_PER_READER:
        added = _read_added(con, loc.local / layout.MESSAGES, changes.added)
        db.register(con, "hooklake_index_added", added)
    else:
        db.register_table_files(
            con, "hooklake_index_added", loc, layout.MESSAGES, changes.new,
            list(changes.added), schema, _DATE,
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
                private, "hooklake_index_files", [str(root / p) for p in share], _DATE
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
    con.execute(query_sql("index_located", touched=touched, hive_types=_HIVE_TYPES))
    found = con.execute(
        "SELECT filename, list(file_row_number ORDER BY file_row_number) "
        "FROM hooklake_index_located GROUP BY filename ORDER BY filename"
    ).fetchall()
    reads = [
        query_sql(
            "index_located_rows",
            file=str(name).replace("'", "''"),
            rows=", ".join(str(int(r)) for r in numbers),
            hive_types=_HIVE_TYPES,
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


def _streams_expression(streams: list[tuple[int | None, int]]) -> ds.Expression:
    """An Arrow filter that keeps the customer ``streams`` (channel, customer), pair by pair:
    a row group's statistics rule out a pair by its channel and customer together (those of
    customer_id alone rule out none when the group straddles two channels)."""

    def pair(channel: int | None, customer: int) -> ds.Expression:
        on = ds.field("channel_id")
        return (on.is_null() if channel is None else on == channel) & (
            ds.field("customer_id") == customer
        )

    def any_of(pairs: list[ds.Expression]) -> ds.Expression:
        if len(pairs) <= 1:
            return pairs[0] if pairs else ds.scalar(False)
        half = len(pairs) // 2  # a balanced tree: Arrow simplifies it recursively
        return any_of(pairs[:half]) | any_of(pairs[half:])

    return any_of([pair(c, u) for c, u in streams])


def _chunk_rows(con: duckdb.DuckDBPyConnection) -> int:
    """:data:`CHUNK_ROWS`, or fewer under a memory limit below :data:`CHUNK_MEMORY`. A chunk's
    joins and groupings of turns hold memory DuckDB cannot spill: a rebuild of one million
    simulated Landbot messages in 500k-row chunks ran out of a 1 GB limit."""
    limit = db.memory_limit_bytes(con)
    return max(1, min(CHUNK_ROWS, int(CHUNK_ROWS * limit / CHUNK_MEMORY)))


def _stream_ranges(con: duckdb.DuckDBPyConnection, relation: str, rows: int) -> list[str]:
    """Conditions that cut ``relation`` (``rows`` rows) into chunks of about
    :func:`_chunk_rows` rows, together covering every row once, each a range of customer
    streams in index order: by channel, then customer (null ids last).

    Ranges of that order, rather than of customer ids alone, keep the chunks' rows in one
    order, so each row group spans a narrow range of channels, customers and conversation ids
    and a point query's filters skip all but a few (1-2 of 78 row groups for a conversation of a
    10M-message index). With chunks by customer id, every chunk restarted the channels, and
    the row groups where it did spanned wide ranges of conversation ids. (The Delta writer
    takes its input's batches in turns, not in order, so a row group can still span two
    batches that were not adjacent.)
    """
    n = max(1, math.ceil(rows / _chunk_rows(con)))
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


def _written(con: duckdb.DuckDBPyConnection, layer: int, generation: str) -> pa.RecordBatchReader:
    """``hooklake_messages_ordered`` as the index stores it (queries/index_write.sql)."""
    con.execute(query_sql("index_ordered_once"))
    rel = con.sql(query_sql("index_write"), params={"layer": layer, "generation": generation})
    return _stream(rel)


def _stream(rel: duckdb.DuckDBPyRelation) -> pa.RecordBatchReader:
    """``rel``'s rows in the index's schema, batch by batch (:data:`WRITE_BATCH_ROWS`)."""
    schema = index_schema()
    reader = rel.to_arrow_reader(WRITE_BATCH_ROWS)
    return pa.RecordBatchReader.from_batches(schema, (b.cast(schema) for b in reader))


def _commit(
    loc: LakeLocation,
    rows: pa.RecordBatchReader,
    mode: str,
    messages_version: int,
    gap: timedelta,
    dt: DeltaTable | None = None,
) -> int:
    """Write ``rows`` in one commit that also records what the index now covers; returns the
    message rows written."""
    counted = 0

    def count(batches: pa.RecordBatchReader) -> Any:
        nonlocal counted
        for b in batches:
            counted += pc.sum(pc.equal(b.column("kind"), "message")).as_py() or 0
            yield b
        if crash_point is not None:
            crash_point("rows")

    stream = pa.RecordBatchReader.from_batches(index_schema(), count(rows))
    with tables.delta_errors(f"cannot write the conversation index of {loc}"):
        target: DeltaTable | str = dt if dt is not None else _ensure_index(loc)
        if crash_point is not None:
            crash_point("start")
        write_deltalake(
            target,
            stream,
            mode="overwrite" if mode == "overwrite" else "append",
            # A rebuild replaces an index another version of Hooklake wrote, schema and all.
            schema_mode="overwrite" if mode == "overwrite" else None,
            **_file_layout(loc),
            storage_options=loc.storage_options or None if dt is None else None,
            commit_properties=CommitProperties(
                app_transactions=[
                    Transaction(_VERSION_TXN, messages_version),
                    Transaction(_GAP_TXN, microseconds(gap)),
                ]
            ),
        )
        _checkpoint_now_and_then(loc)
    return counted


def _checkpoint_now_and_then(loc: LakeLocation) -> None:
    """Write a checkpoint of the index's log when its latest version is a multiple of
    :data:`CHECKPOINT_EVERY`. A checkpoint is not a commit: it conflicts with no writer, and
    a crash before it leaves only a longer log to replay."""
    dt = tables.open_table(loc, layout.INDEX)
    if dt is not None and dt.version() > 0 and dt.version() % CHECKPOINT_EVERY == 0:
        dt.create_checkpoint()


def _ensure_index(loc: LakeLocation) -> DeltaTable:
    dt = tables.open_table(loc, layout.INDEX)
    if dt is not None:
        return dt
    with contextlib.suppress(DeltaError):  # another process may create it first
        DeltaTable.create(
            loc.table_uri(layout.INDEX),
            schema=index_schema(),
            partition_by=_PARTITION_BY,
            mode="ignore",
            # The log keeps per-file statistics; none of these columns hold personal data.
            configuration={
                "delta.dataSkippingStatsColumns": "channel_id,customer_id,ts,date",
            },
            storage_options=loc.storage_options or None,
        )
    dt = tables.open_table(loc, layout.INDEX)
    if dt is None:
        raise LakeError(f"cannot create the conversation index at {loc.table_uri(layout.INDEX)}")
    return dt


def _generation(messages_version: int) -> str:
    return f"{messages_version:012d}-{secrets.token_hex(4)}"


def microseconds(gap: timedelta) -> int:
    """``gap`` in whole microseconds, as the views' session gap variable holds it."""
    return (gap.days * 86_400 + gap.seconds) * 1_000_000 + gap.microseconds


def fold_index(
    lake: str | os.PathLike[str] | LakeLocation,
    *,
    memory_limit: str | None = None,
    threads: int | None = None,
) -> bool:
    """Rewrite the index's base and increments as one sorted base (what compaction does to an
    index); returns whether there was anything to fold."""
    loc = lake_location(lake)
    state = read_state(loc)
    if state is None or not state.increments:
        return False
    con = connect(threads=threads, memory_limit=memory_limit)
    try:
        _fold(con, loc, state)
    finally:
        con.close()
    return True


def erase(loc: LakeLocation, predicate: str, before: int, after: int) -> int:
    """Delete the rows ``predicate`` matches from the index, after the same delete took the
    ``messages`` table from version ``before`` to ``after``. When the index covered ``before``
    it now covers ``after``; otherwise its next update is a rebuild, unless the delete rewrote
    only files committed after the version it covers. Returns rows deleted."""
    with tables.delta_errors(f"cannot erase from the conversation index of {loc}"):
        dt = tables.open_table(loc, layout.INDEX)
        if dt is None:
            return 0
        state = read_state(loc, dt)
        current = state is not None and state.messages_version == before
        txns = [Transaction(_VERSION_TXN, after)] if current else []
        metrics = dt.delete(predicate, commit_properties=CommitProperties(app_transactions=txns))
    return int(metrics.get("num_deleted_rows", 0))
