"""Writing index rows in one commit that records what the index covers."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from deltalake import CommitProperties, DeltaTable, Transaction, write_deltalake
from deltalake.exceptions import DeltaError

from hooklake import layout, tables
from hooklake.errors import LakeError
from hooklake.index.schema import (
    GAP_TXN,
    PARTITION_BY,
    VERSION_TXN,
    file_layout,
    index_schema,
    microseconds,
)
from hooklake.storage import LakeLocation

#: Write a checkpoint of the index's log every this many commits. A collector's flusher
#: commits an update up to once a minute, and every reader replays the commits since the last
#: checkpoint (Delta's default interval is 100): 58 of them took 17 ms of every Lake's opening,
#: against 6 ms from a checkpoint.
CHECKPOINT_EVERY = 10

#: Called at points of an index write ("start": nothing written yet; "rows": every row handed
#: to the writer, nothing committed): tests kill the process or raise there.
crash_point: Callable[[str], None] | None = None


def commit_index_rows(
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
            **file_layout(loc),
            storage_options=loc.storage_options or None if dt is None else None,
            commit_properties=CommitProperties(
                app_transactions=[
                    Transaction(VERSION_TXN, messages_version),
                    Transaction(GAP_TXN, microseconds(gap)),
                ]
            ),
        )
        checkpoint_now_and_then(loc)
    return counted


def checkpoint_now_and_then(loc: LakeLocation) -> None:
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
            partition_by=PARTITION_BY,
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
