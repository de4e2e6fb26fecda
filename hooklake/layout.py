"""The lake: where things live and what a stored row looks like.

This module is the whole contract between the write side (:mod:`hooklake.collector`) and the
read side (:mod:`hooklake.datasets`)::

    lake/
      _journal/<writer>/   one directory per collector process: lock, *.open, *.seg
      messages/            Delta table of message rows, partitioned by date (hooklake.tables)
      rejected/            Delta table of bodies and messages that could not be stored as rows

The tables' row schemas are here; how they are stored is :mod:`hooklake.tables`. Lakes written
by Hooklake 0.1 (plain Parquet files under ``date=`` directories) are read by
:mod:`hooklake.legacy` only, to migrate them.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import pyarrow as pa
import pyarrow.parquet as pq

JOURNAL_DIR = "_journal"
MESSAGES = "messages"
REJECTED = "rejected"
TABLES = (MESSAGES, REJECTED)
#: The conversation index (hooklake.index): derived from messages, never the source of truth.
INDEX = "index"
ROW_GROUP_SIZE = 100_000

_TS = pa.timestamp("us", tz="UTC")

#: One row per message. Columns are never inferred; new columns go at the end.
MESSAGE_SCHEMA = pa.schema(
    [
        pa.field("message_key", pa.string(), nullable=False),
        pa.field("hook", pa.string(), nullable=False),
        pa.field("channel_id", pa.int64()),
        pa.field("channel_name", pa.string()),
        pa.field("channel_type", pa.string()),
        pa.field("customer_id", pa.int64()),
        pa.field("chat_id", pa.int64()),
        pa.field("ts", _TS, nullable=False),
        pa.field("seq", pa.int64()),
        pa.field("type", pa.string()),
        pa.field("sender_type", pa.string()),
        pa.field("sender_id", pa.int64()),
        pa.field("sender_name", pa.string()),
        pa.field("text", pa.string()),
        pa.field("payload", pa.string()),
        pa.field("action", pa.string()),
        pa.field("url", pa.string()),
        pa.field("agent_id", pa.int64()),
        pa.field("data", pa.string()),
        pa.field("customer", pa.string()),
        pa.field("raw", pa.string()),
        pa.field("sentry_trace", pa.string()),
        pa.field("received_at", _TS, nullable=False),
        pa.field("source", pa.string(), nullable=False),
        # Added in schema version 2 (Hooklake 0.2).
        pa.field("samurai", pa.int64()),
        pa.field("latitude", pa.float64()),
        pa.field("longitude", pa.float64()),
    ]
)
#: One row per rejected body (``message_index`` null) or rejected message of a body.
REJECT_SCHEMA = pa.schema(
    [
        pa.field("received_at", _TS, nullable=False),
        pa.field("hook", pa.string(), nullable=False),
        pa.field("reason", pa.string(), nullable=False),
        pa.field("message_index", pa.int32()),
        pa.field("body", pa.binary(), nullable=False),
        pa.field("headers", pa.string()),
        pa.field("source", pa.string(), nullable=False),
    ]
)

SCHEMAS = {MESSAGES: MESSAGE_SCHEMA, REJECTED: REJECT_SCHEMA}


def journal_dir(lake: Path) -> Path:
    return lake / JOURNAL_DIR


def table_dir(lake: Path, table: str) -> Path:
    return lake / table


def partitions(lake: Path, table: str) -> list[Path]:
    """The ``date=`` directories of ``table`` on disk, sorted by date."""
    root = table_dir(lake, table)
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and p.name.startswith("date="))


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_file(path: Path) -> Iterator[BinaryIO]:
    """A file handle whose contents appear at ``path`` all at once when the block ends: written
    under a temporary name, fsynced, renamed, and the directory fsynced. On error nothing
    appears and the temporary file is removed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".tmp-{uuid.uuid4().hex}-{path.name}")
    try:
        with open(tmp, "wb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def atomic_write_bytes(data: bytes, path: Path) -> None:
    """Write ``data`` to ``path`` so that readers see either nothing or all of it."""
    with atomic_file(path) as fh:
        fh.write(data)


def write_table(table: pa.Table, path: Path) -> None:
    """Write ``table`` as zstd Parquet to ``path`` via a temporary name and an atomic rename."""
    with atomic_file(path) as fh:
        pq.write_table(
            table, fh, compression="zstd", row_group_size=ROW_GROUP_SIZE, write_statistics=True
        )
