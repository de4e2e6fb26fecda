"""Stream a recipe's messages out of DuckDB as Arrow batches of whole conversations.

``build_messages.sql`` (``build_messages_indexed.sql`` for a lake read through its
conversation index) returns the messages in build order (conversation, then position); DuckDB
hands them over in batches of :data:`BATCH_ROWS` rows that cut conversations anywhere.
:func:`conversation_batches` re-cuts them so each batch ends where a conversation ends (the
last conversation waits for the next batch), puts each message's stored JSON (a row of its
own in the query without an index) on the message's row, and yields tables
:func:`.shape.shape_batch` takes.
Through the conversation index DuckDB sorts the lake a range of conversations at a time and
makes the next batch on a thread of its own while the caller shapes this one, so memory holds
two batches (and one conversation of the next) whatever the size of the lake; DuckDB spills
its sort past its memory limit.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Generator, Iterable, Iterator
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from hooklake import layout
from hooklake.datasets.ahead import ahead
from hooklake.datasets.lake import Lake
from hooklake.datasets.recipe import Recipe
from hooklake.datasets.shape import BUILD_COLUMNS
from hooklake.db import lake_errors, query_sql

#: Messages per range of conversations a build through the index sorts at a time: enough that
#: the per-range scan is small beside the sort, few enough that the first range is ready soon
#: and DuckDB's sort holds a fraction of the lake.
RANGE_ROWS = 200_000

#: Rows per Arrow batch pulled from DuckDB: big enough that per-batch costs (a regex pass
#: over the batch, a few Arrow kernels) vanish, small enough to keep memory flat.
BATCH_ROWS = 65_536


def _with_stored(table: pa.Table) -> pa.Table:
    """The message rows (``_part`` 0) of ``table``, each with the stored message of its first
    delivery (the ``_part`` 1 row right after it, if any) as ``message``."""
    part = table.column("_part").to_numpy()
    n = len(part)
    first = np.zeros(n, dtype=bool)  # the first stored row after each message row
    first[1:] = (part[1:] == 1) & (part[:-1] == 0)
    messages = np.flatnonzero(part == 0)
    source = np.full(n, -1, dtype=np.int64)
    source[np.flatnonzero(first) - 1] = np.flatnonzero(first)
    picks = source[messages]
    stored = pc.take(table.column("message"), pa.array(picks, mask=picks < 0, type=pa.int64()))
    # Only the columns the core reads are carried over.
    rows = table.select(list(BUILD_COLUMNS)).take(pa.array(messages))
    return rows.set_column(rows.schema.get_field_index("message"), "message", stored)


def cut_whole(batches: Iterable[pa.RecordBatch]) -> Iterator[pa.Table]:
    """Re-cut batches of rows ordered by conversation so that none splits a conversation
    (the last conversation of a batch waits for the next one)."""
    carry: pa.Table | None = None
    for batch in batches:
        if batch.num_rows == 0:
            continue
        table = pa.Table.from_batches([batch])
        if carry is not None:
            table = pa.concat_tables([carry, table])
        ids = table.column("conversation_id")
        last = pc.index(ids, ids[-1]).as_py()
        carry = table.slice(last)
        if last:
            yield table.slice(0, last).combine_chunks()
    if carry is not None and carry.num_rows:
        yield carry.combine_chunks()


def whole_conversations(batches: Iterable[pa.RecordBatch]) -> Iterator[pa.Table]:
    """The build query's batches as tables of whole conversations, stored messages merged
    (when they come as rows of their own)."""
    for table in cut_whole(batches):
        yield _with_stored(table) if "_part" in table.column_names else table


def conversation_ranges(lake: Lake, range_rows: int) -> list[tuple[str | None, str | None]]:
    """The ranges of conversation ids (first inclusive, last exclusive; ``None`` open-ended)
    a build through the index reads one by one: about ``range_rows`` stored messages each."""
    rows = sum(f.rows for f in lake.files(layout.MESSAGES))
    count = -(-rows // range_rows)
    if count <= 1:
        return [(None, None)]
    ((bounds,),) = lake.connection.sql(
        query_sql("build_ranges"), params={"count": count}
    ).fetchall()
    cuts: list[str | None] = [None, *(bounds or []), None]
    return list(itertools.pairwise(cuts))


def conversation_batches(
    lake: Lake,
    recipe: Recipe,
    *,
    skip: Callable[[pa.Table], pa.Table] | None = None,
    on_wait: Callable[[str], Any] | None = None,
    range_rows: int = RANGE_ROWS,
) -> Generator[pa.Table, None, None]:
    """The recipe's messages (its channels, hooks and senders; dates are the core's) as
    tables of whole conversations with the :data:`~.shape.BUILD_COLUMNS`, in build order.

    ``skip`` may drop conversations from each table (an incremental build leaves out those it
    holds already and those still open); ``on_wait`` is called with ``"query"`` after
    waiting for the next table (for the build's clock). Through the index, the messages are
    sorted in ranges of conversations of about ``range_rows`` stored messages
    (:func:`conversation_ranges`).

    Through the index, DuckDB sorts the next range and hands over the next table on another
    thread while the caller works on this one (:func:`.ahead.ahead`), so memory holds two
    tables at most.
    """
    src = recipe.source
    params = {
        "channels": list(src.channels) or None,
        "hooks": list(src.hooks) or None,
        "with_customer": recipe.redact.pii,
    }
    with lake_errors("cannot read the recipe's messages from the lake"):
        # The query ends in ORDER BY: keeping the order of its inputs on the way there only
        # holds memory (without this it ran out of a 512MB limit now and then). For this
        # connection only: other Lakes share its database.
        lake.connection.execute("SET SESSION preserve_insertion_order = false")
        # Through the conversation index the stored messages' rendered parts are a column like
        # any other, and a range of conversations costs a range's share of the sort. Without
        # an index, or with one computed for another session gap, every range would run the
        # views' windows over the whole lake: one range.
        ranges: list[dict[str, str | None]] = [{}]
        if not lake.reads_index_order:
            query = "build_messages"
        else:
            query = "build_messages_indexed"
            ranges = [{"lo": lo, "hi": hi} for lo, hi in conversation_ranges(lake, range_rows)]

        def readers() -> Iterator[pa.RecordBatch]:
            for bounds in ranges:
                rel = lake.connection.sql(query_sql(query), params=params | bounds)
                # DuckDB 1.4 renamed fetch_record_batch() to to_arrow_reader().
                if hasattr(rel, "to_arrow_reader"):
                    yield from rel.to_arrow_reader(BATCH_ROWS)
                else:  # pragma: no cover - older DuckDB
                    yield from rel.fetch_record_batch(BATCH_ROWS)

        def cut() -> Iterator[pa.Table]:
            # On a thread of its own: DuckDB's next batch is made and re-cut while the
            # caller shapes this one.
            for table in whole_conversations(readers()):
                if skip is not None:
                    table = skip(table)
                yield table.select(list(BUILD_COLUMNS))

        # One range is one blocking sort: nothing to overlap, only a batch more to hold.
        for table in ahead(cut()) if len(ranges) > 1 else cut():
            if on_wait is not None:
                on_wait("query")
            if table.num_rows:
                yield table
