"""The lake on disk: where things live and what a stored row looks like.

This module is the whole contract between the write side (:mod:`hooklake.collector`) and the
read side (:mod:`hooklake.datasets`)::

    lake/
      _journal/<writer>/          one directory per collector process: lock, *.open, *.seg
      messages/date=YYYY-MM-DD/   message rows, one Parquet file per flushed segment and date
                                  (``*.v2.parquet``; 0.1 wrote ``*.parquet`` without a version)
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
        # Added in schema version 2 (Hooklake 0.2).
        pa.field("samurai", pa.int64()),
        pa.field("latitude", pa.float64()),
        pa.field("longitude", pa.float64()),
    ]
)
#: The message schema of Hooklake 0.1 files: what version 2 has, without its added columns.
MESSAGE_SCHEMA_V1 = pa.schema(list(MESSAGE_SCHEMA)[: MESSAGE_SCHEMA.get_field_index("source") + 1])
#: The schema version of message files written now. Their names end in ``.v2.parquet``; files
#: without a version in their name were written by 0.1 (:func:`schema_version`).
SCHEMA_VERSION = 2
MESSAGE_SCHEMAS = {1: MESSAGE_SCHEMA_V1, 2: MESSAGE_SCHEMA}

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


def data_file_name(table: str, stem: str, version: int = SCHEMA_VERSION) -> str:
    """The name of a data file of ``table``: message files carry their schema version, so
    readers can tell files of different versions apart without opening them."""
    return f"{stem}.v{version}.parquet" if table == MESSAGES and version > 1 else f"{stem}.parquet"


def file_schema(table: str, name: str) -> pa.Schema:
    """The schema a data file of ``table`` named ``name`` was written with."""
    return MESSAGE_SCHEMAS[schema_version(name)] if table == MESSAGES else SCHEMAS[table]


def schema_version(name: str) -> int:
    """The schema version of a message file, from its name (see :func:`data_file_name`)."""
    stem = name.removesuffix(".parquet")
    _, dot, version = stem.rpartition(".v")
    return int(version) if dot and version.isdigit() else 1


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
