"""The views readers see: the index's base resolved against its newer generations."""

from __future__ import annotations

import duckdb
import pyarrow as pa
import pyarrow.dataset as ds

from hooklake import db, layout
from hooklake.db import view_sql
from hooklake.index.schema import PARTITIONS, index_schema
from hooklake.index.state import IndexState
from hooklake.storage import LakeLocation

#: On object storage, an update of at most this many customers reads only the row groups
#: whose statistics may hold one of them (see define_index_views). Checking the statistics
#: costs 0.04 s for 10 customers of a 10M-message index (81 row groups) and 0.06 s for 100;
#: 1,000 customers take 0.5 s and rule out none.
PRUNED_STREAMS = 256


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
        [f.path for f in state.base], index_schema(), PARTITIONS, keep,
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
                [f.path for f in state.increments], index_schema(), PARTITIONS, keep,
            )  # fmt: skip
            sources.append("SELECT * FROM hooklake_index_increments")
        if pending is not None and pending.num_rows:
            db.register(con, "hooklake_index_pending", pending)
            sources.append("SELECT * FROM hooklake_index_pending")
        con.execute(view_sql("index_newer", sources="\nUNION ALL BY NAME\n".join(sources)))
        con.execute(view_sql("index_spans"))
        con.execute(view_sql("index_rows"))
    con.execute(view_sql("index_kinds"))


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
