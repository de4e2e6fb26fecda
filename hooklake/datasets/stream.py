"""Stream a recipe's messages out of DuckDB as Arrow batches of whole conversations.

``build_messages.sql`` returns the messages in build order (conversation, then position);
DuckDB hands them over in batches of :data:`BATCH_ROWS` rows that cut conversations anywhere.
:func:`conversation_batches` re-cuts them so each batch ends where a conversation ends (the
last conversation waits for the next batch), drops the extra rows of messages delivered more
than once, and yields tables :func:`.shape.shape_batch` takes. Memory holds one batch (and one
conversation of the next) whatever the size of the lake; DuckDB spills its sort past its
memory limit.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from hooklake.datasets.connection import lake_errors, sql_text
from hooklake.datasets.lake import Lake
from hooklake.datasets.recipe import Recipe
from hooklake.datasets.shape import BUILD_COLUMNS

#: Rows per Arrow batch pulled from DuckDB: big enough that per-batch costs (a regex pass
#: over the batch, a few Arrow kernels) vanish, small enough to keep memory flat.
BATCH_ROWS = 65_536


def _first_rows(table: pa.Table) -> pa.Table:
    """``table`` without the second and later rows of a (conversation_id, position): a
    message delivered twice joins its stored rows twice, first arrival first."""
    n = table.num_rows
    if n < 2:
        return table
    ids, pos = table.column("conversation_id"), table.column("position")
    same = pc.and_(pc.equal(ids[1:], ids[:-1]), pc.equal(pos[1:], pos[:-1]))
    repeated = same.to_numpy(zero_copy_only=False)
    if not repeated.any():
        return table
    keep = np.concatenate(([True], ~repeated))
    return table.filter(pa.array(keep))


def whole_conversations(batches: Iterable[pa.RecordBatch]) -> Iterator[pa.Table]:
    """Re-cut batches of rows ordered by conversation so that none splits a conversation."""
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
            yield _first_rows(table.slice(0, last).combine_chunks())
    if carry is not None and carry.num_rows:
        yield _first_rows(carry.combine_chunks())


def conversation_batches(
    lake: Lake,
    recipe: Recipe,
    *,
    skip: Callable[[pa.Table], pa.Table] | None = None,
    on_rows: Callable[[int], Any] | None = None,
    on_wait: Callable[[str], Any] | None = None,
) -> Iterator[pa.Table]:
    """The recipe's messages (its channels, hooks and senders; dates are the core's) as
    tables of whole conversations with the :data:`~.shape.BUILD_COLUMNS`, in build order.

    ``skip`` may drop conversations from each table (an incremental build leaves out those it
    holds already and those still open); ``on_rows`` hears how many rows each DuckDB batch
    held (the progress bar); ``on_wait`` is called with ``"query"`` after waiting on DuckDB
    and ``"stream"`` after the re-cutting (for the build's clock).
    """
    src = recipe.source
    params = {
        "channels": list(src.channels) or None,
        "hooks": list(src.hooks) or None,
        "with_customer": recipe.redact.pii,
    }
    with lake_errors("cannot read the recipe's messages from the lake"):
        rel = lake.connection.sql(sql_text("build_messages"), params=params)
        # DuckDB 1.4 renamed fetch_record_batch() to to_arrow_reader().
        if hasattr(rel, "to_arrow_reader"):
            reader = rel.to_arrow_reader(BATCH_ROWS)
        else:  # pragma: no cover - older DuckDB
            reader = rel.fetch_record_batch(BATCH_ROWS)

        def counted() -> Iterator[pa.RecordBatch]:
            for batch in reader:
                if on_wait is not None:
                    on_wait("query")
                if on_rows is not None:
                    on_rows(batch.num_rows)
                yield batch

        for table in whole_conversations(counted()):
            if skip is not None:
                table = skip(table)
            if on_wait is not None:
                on_wait("stream")
            if table.num_rows:
                yield table.select(list(BUILD_COLUMNS))
