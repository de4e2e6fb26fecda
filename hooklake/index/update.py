"""Bringing the index up to date: update, merge, fold, erase."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

import duckdb
import pyarrow as pa
from deltalake import CommitProperties, DeltaTable, Transaction, write_deltalake
from deltalake.exceptions import CommitFailedError

from hooklake import layout, tables
from hooklake.db import connect, lake_errors, query_sql
from hooklake.errors import LakeError, StorageError
from hooklake.index.commit import checkpoint_now_and_then, commit_index_rows
from hooklake.index.read import define_index_views
from hooklake.index.rebuild import DEFAULT_MEMORY_LIMIT, rebuild_index, stream_ranges
from hooklake.index.recompute import recompute_touched
from hooklake.index.schema import (
    BASE,
    INCREMENT,
    VERSION_TXN,
    as_index_rows,
    file_layout,
    index_schema,
    new_generation,
)
from hooklake.index.state import (
    Changes,
    IndexFile,
    IndexState,
    changes_since,
    merge_run,
    needs_fold,
    read_state,
)
from hooklake.storage import LakeLocation, lake_location


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
            rows = rebuild_index(con, loc, messages, gap)
            return report("rebuilt", rows=rows)
        try:
            customers, rows = _increment(con, loc, state, messages, changes)
        except StorageError as exc:
            if not isinstance(exc.__cause__, CommitFailedError):
                raise
            # Another process (a replica's flusher, `hooklake index`) committed an update of
            # the same index version first: appending ours too would hold rows twice.
            return report("left to another process, which updated it meanwhile")
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


def _increment(
    con: duckdb.DuckDBPyConnection,
    loc: LakeLocation,
    state: IndexState,
    messages: DeltaTable,
    changes: Changes,
) -> tuple[int, int]:
    """Append the touched customers' recomputed rows; returns (customers, rows)."""
    generation = new_generation(changes.until)
    reader = recompute_touched(con, loc, state, changes, generation, own_database=True)
    rows = commit_index_rows(loc, reader, "append", changes.until, state.session_gap, state.table)
    ((touched,),) = con.execute(
        "SELECT count(DISTINCT (channel_id, customer_id)) FROM hooklake_index_touched"
    ).fetchall()
    return int(touched), rows


def _fold(con: duckdb.DuckDBPyConnection, loc: LakeLocation, state: IndexState) -> int:
    """Rewrite the index version ``state`` as one sorted base of the same generation order."""
    generation = new_generation(state.messages_version)
    with lake_errors("cannot fold the conversation index"):
        define_index_views(con, loc, state)
        rows = state.base_rows + state.increment_rows
        ranges = stream_ranges(con, "hooklake_index_rows", rows)

        def chunks() -> Iterator[pa.RecordBatch]:
            for streams in ranges:
                query = query_sql("index_fold", streams=streams)
                params = {"layer": BASE, "generation": generation}
                yield from as_index_rows(con.sql(query, params=params))

        reader = pa.RecordBatchReader.from_batches(index_schema(), chunks())
        return commit_index_rows(
            loc, reader, "overwrite", state.messages_version, state.session_gap
        )


def _merge(
    con: duckdb.DuckDBPyConnection, loc: LakeLocation, state: IndexState, run: tuple[IndexFile, ...]
) -> bool:
    """Rewrite the newest increments ``run`` as one increment in one commit
    (queries/index_merge.sql); returns False when another writer's commit got in the way (the
    next update merges). What the index covers does not change, nor what readers see."""
    generations = sorted({f.generation for f in run})
    # The merged increment describes the state the newest of them does, and sorts with it.
    generation = new_generation(int(generations[-1].split("-")[0]))
    part = replace(state, base=(), increments=run)
    with lake_errors("cannot merge the conversation index's increments"):
        define_index_views(con, loc, part)
        rel = con.sql(
            query_sql("index_merge"), params={"layer": INCREMENT, "generation": generation}
        )
        rows = as_index_rows(rel)
    listed = ", ".join(f"'{g}'" for g in [*generations, generation])
    with tables.delta_errors(f"cannot write the conversation index of {loc}"):
        try:
            write_deltalake(
                state.table,
                rows,
                mode="overwrite",
                predicate=f"layer = {INCREMENT} AND generation IN ({listed})",
                **file_layout(loc),
            )
        except CommitFailedError:
            return False
        checkpoint_now_and_then(loc)
    return True


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
        txns = [Transaction(VERSION_TXN, after)] if current else []
        metrics = dt.delete(predicate, commit_properties=CommitProperties(app_transactions=txns))
    return int(metrics.get("num_deleted_rows", 0))
