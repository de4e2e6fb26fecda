"""The lake on disk: where things live and what a stored row looks like.

This module is the whole contract between the write side (:mod:`hooklake.collector`) and the
read side (:mod:`hooklake.datasets`)::

    lake/
      _journal/<writer>/          one directory per collector process: lock, *.open, *.seg
      messages/date=YYYY-MM-DD/   message rows, one Parquet file per flushed segment and date
      rejected/date=YYYY-MM-DD/   bodies and messages that could not be stored as rows

Files whose name starts with ``.`` (temporaries being written) or ``_`` (tombstones) are never
data. Compaction replaces files by writing the merged file first and then a tombstone
``_superseded-<id>.json`` naming what it replaced; readers skip tombstoned files, and the files
themselves are deleted only after a grace period so a query that listed them still finishes.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

JOURNAL_DIR = "_journal"
MESSAGES = "messages"
REJECTED = "rejected"
TABLES = (MESSAGES, REJECTED)
TOMBSTONE_PREFIX = "_superseded-"
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


def partition_dir(lake: Path, table: str, date: str) -> Path:
    return lake / table / f"date={date}"


def is_data_file(name: str) -> bool:
    return name.endswith(".parquet") and not name.startswith((".", "_"))


def partitions(lake: Path, table: str) -> list[Path]:
    """Partition directories of ``table``, sorted by date."""
    root = table_dir(lake, table)
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and p.name.startswith("date="))


def tombstones(partition: Path) -> list[Path]:
    return sorted(partition.glob(f"{TOMBSTONE_PREFIX}*.json"))


def superseded(partition: Path) -> set[str]:
    """Names of files in ``partition`` that compaction has replaced."""
    names: set[str] = set()
    for tomb in tombstones(partition):
        try:
            names.update(orjson.loads(tomb.read_bytes())["replaced"])
        except FileNotFoundError:
            continue
    return names


def live_files(lake: Path, table: str) -> list[Path]:
    """The sealed data files a reader should read now: renamed, not tombstoned. Sorted."""
    out: list[Path] = []
    for part in partitions(lake, table):
        gone = superseded(part)
        out.extend(sorted(p for p in part.iterdir() if is_data_file(p.name) and p.name not in gone))
    return out


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


def write_tombstone(partition: Path, replaced: Iterable[str], by: str) -> Path:
    """Record that the files ``replaced`` in ``partition`` now live in ``by``."""
    tomb = partition / f"{TOMBSTONE_PREFIX}{uuid.uuid4().hex}.json"
    atomic_write_bytes(orjson.dumps({"by": by, "replaced": sorted(replaced)}), tomb)
    return tomb
