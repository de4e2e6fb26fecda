"""Flush: sealed journal segments -> Parquet files in the lake, then retire the segments.

Each segment becomes at most one file per date partition, named after the writer and the
segment (``<writer>-<NNNNNNNN>.parquet``), written to a temporary name and renamed. Flushing a
segment twice (a crash between the rename and the retirement) therefore replaces the files
rather than duplicating them. Segments of dead writers, found through their free lock, are
recovered first: the torn tail of the open segment is cut off and the rest sealed.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import threading
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.resources import files
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from hooklake.collector.journal import (
    LOCK_NAME,
    Record,
    open_segments,
    read_segment,
    recover_open_segment,
    sealed_segments,
    segment_number,
    try_lock,
    unlock,
    writer_dirs,
)
from hooklake.layout import (
    MESSAGE_SCHEMA,
    MESSAGES,
    REJECT_SCHEMA,
    REJECTED,
    fsync_dir,
    partition_dir,
    write_table,
)

log = logging.getLogger("hooklake.collector")

Row = tuple[Any, ...]
_SORT = [("channel_id", "ascending"), ("customer_id", "ascending"), ("ts", "ascending")]


@dataclass
class FlushReport:
    segments: int = 0
    messages: int = 0
    rejected: int = 0
    files: list[Path] = field(default_factory=list)

    def add(self, other: FlushReport) -> None:
        self.segments += other.segments
        self.messages += other.messages
        self.rejected += other.rejected
        self.files.extend(other.files)


_SQL = (files("hooklake.collector") / "sql" / "normalize.sql").read_text(encoding="utf-8")
_BODIES = pa.schema(
    [
        ("body", pa.string()),
        ("hook", pa.string()),
        ("received_at", pa.int64()),
        ("source", pa.string()),
        ("sentry_trace", pa.string()),
        ("rec", pa.int32()),
    ]
)


_local = threading.local()


def _connection() -> duckdb.DuckDBPyConnection:
    """This thread's DuckDB connection with the normalisation view ready: a flusher runs
    every few seconds, so setting it up once matters."""
    con: duckdb.DuckDBPyConnection | None = getattr(_local, "con", None)
    if con is None:
        # One thread: the flusher shares the machine with the collector answering requests.
        con = duckdb.connect(config={"threads": 1})
        con.register("bodies", _BODIES.empty_table())
        con.execute(_SQL)
        _local.con = con
    return con


def _source(prefix: str, offset: int) -> str:
    """Lineage of a record: segment and byte offset, zero-padded so text order is file order
    (the views use it as the last tie-break between equal arrival times)."""
    return f"{prefix}@{offset:012d}"


def _reject_row(rec: Record, source: str, reason: str, index: int | None) -> Row:
    head = rec.header
    return (
        head["t"],
        head["hook"],
        reason,
        index,
        rec.body,
        orjson.dumps(head.get("h") or {}).decode(),
        source,
    )


def _normalise(
    con: duckdb.DuckDBPyConnection, records: list[Record], prefix: str, first: int = 0
) -> pa.Table:
    bodies = pa.Table.from_pydict(
        {
            # Bodies were valid JSON, hence UTF-8, when accepted: a cheap check, no copy.
            "body": pa.array([r.body for r in records], pa.binary()).cast(pa.string()),
            "hook": [r.header["hook"] for r in records],
            "received_at": [r.header["t"] for r in records],
            "source": [_source(prefix, r.offset) for r in records],
            "sentry_trace": [(r.header.get("h") or {}).get("sentry-trace") for r in records],
            "rec": list(range(first, first + len(records))),
        },
        schema=_BODIES,
    )
    con.register("bodies", bodies)
    try:
        return con.sql("SELECT * FROM hl_messages").to_arrow_table()
    finally:
        con.register("bodies", _BODIES.empty_table())


def records_to_tables(records: Iterable[Record], prefix: str) -> tuple[pa.Table, list[Row]]:
    """The message rows (a MESSAGE_SCHEMA table) and reject rows of journal records."""
    accepted: list[Record] = []
    rejects: list[Row] = []
    for rec in records:
        if rec.header.get("kind") == "reject":
            src = _source(prefix, rec.offset)
            rejects.append(_reject_row(rec, src, rec.header["reason"], rec.header.get("index")))
        else:
            accepted.append(rec)
    if not accepted:
        return MESSAGE_SCHEMA.empty_table(), rejects
    con = _connection()
    try:
        table = _normalise(con, accepted, prefix)
    except (duckdb.Error, pa.ArrowInvalid):
        # One body the bulk parser refuses must not hold back the others: go one by one.
        parts = []
        for i, rec in enumerate(accepted):
            try:
                parts.append(_normalise(con, [rec], prefix, i))
            except (duckdb.Error, pa.ArrowInvalid) as exc:
                src = _source(prefix, rec.offset)
                rejects.append(_reject_row(rec, src, f"unreadable at flush: {exc}", None))
        if not parts:
            return MESSAGE_SCHEMA.empty_table(), rejects
        table = pa.concat_tables(parts)
    bad = pc.or_(pc.is_null(table["ts"]), pc.is_null(table["customer_id"]))
    bad_indices: dict[int, set[int]] = defaultdict(set)
    if pc.any(bad).as_py():
        for row in table.filter(bad).select(["rec", "message_index"]).to_pylist():
            bad_indices[row["rec"]].add(row["message_index"])
            rec = accepted[row["rec"]]
            reason = "timestamp or customer.id unreadable at flush"
            rejects.append(
                _reject_row(rec, _source(prefix, rec.offset), reason, row["message_index"])
            )
        table = table.filter(pc.invert(bad))
    # Every message the collector acknowledged must come out as a row or a reject. The check
    # and the bulk parser can read a body differently (duplicate keys: last vs first wins).
    promised = np.array([rec.header.get("n", 0) for rec in accepted], dtype=np.int64)
    read = np.bincount(table["rec"].to_numpy(), minlength=len(accepted))
    read += np.array([len(bad_indices[i]) for i in range(len(accepted))], dtype=np.int64)
    for i in np.flatnonzero(read < promised).tolist():
        rec = accepted[i]
        rows = pc.equal(table["rec"], i)
        seen = set(table.filter(rows)["message_index"].to_pylist()) | bad_indices[i]
        for index in sorted(set(range(int(promised[i]))) - seen):
            reason = (
                f"message {index} of {promised[i]} accepted but unreadable at flush "
                "(duplicate keys?)"
            )
            rejects.append(_reject_row(rec, _source(prefix, rec.offset), reason, index))
    return _as_message_table(table), rejects


def _as_message_table(table: pa.Table) -> pa.Table:
    columns = []
    for f in MESSAGE_SCHEMA:
        col = table[f.name]
        if pa.types.is_timestamp(f.type):
            col = _as_timestamps(col)
        columns.append(col.cast(f.type) if col.type != f.type else col)
    return pa.Table.from_arrays(columns, schema=MESSAGE_SCHEMA)


def _reject_table(rows: list[Row]) -> pa.Table:
    columns = list(zip(*rows, strict=True))
    arrays = [pa.array(c, type=f.type) for c, f in zip(columns, REJECT_SCHEMA, strict=True)]
    return pa.Table.from_arrays(arrays, schema=REJECT_SCHEMA)


def _as_timestamps(us: pa.ChunkedArray) -> pa.ChunkedArray:
    """Epoch microseconds as UTC timestamps, without copying."""
    ts = pa.timestamp("us", tz="UTC")
    return pa.chunked_array([c.view(ts) for c in us.cast(pa.int64()).chunks], type=ts)


def _days(col: pa.ChunkedArray) -> pa.ChunkedArray:
    return pc.strftime(col, "%Y-%m-%d")


def write_tables(lake: Path, name: str, messages: pa.Table, rejects: list[Row]) -> list[Path]:
    """Write rows into their date partitions as ``<name>.parquet``; returns the files."""
    out: list[Path] = []
    for table_name, table, col, sort in (
        (MESSAGES, messages, "ts", _SORT),
        (REJECTED, _reject_table(rejects) if rejects else None, "received_at", None),
    ):
        if table is None or table.num_rows == 0:
            continue
        days = _days(table[col])
        for day in sorted(pc.unique(days).to_pylist()):
            part = table.filter(pc.equal(days, day))
            if sort:
                part = part.sort_by(sort)
            path = partition_dir(lake, table_name, day) / f"{name}.parquet"
            write_table(part, path)
            out.append(path)
    return out


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Reading a segment allocates a header dict and a body per record and no cycles; the
    cyclic GC would otherwise rescan them over and over (about 40% of the read time)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _damaged_tail(segment: Path, valid: int, prefix: str) -> Row | None:
    """A sealed segment holds only whole records, unless the disk damaged it. Whatever
    follows the first unreadable record is kept as one reject rather than dropped."""
    with open(segment, "rb") as fh:
        fh.seek(valid)
        tail = fh.read()
    if not tail:
        return None
    log.error(
        "journal segment %s is damaged at byte %d; %d bytes kept in rejects",
        prefix,
        valid,
        len(tail),
    )
    reason = f"journal segment damaged at byte {valid}: the rest of it is kept here unread"
    received_us = int(segment.stat().st_mtime * 1_000_000)
    return (received_us, "", reason, None, tail, "{}", _source(prefix, valid))


def flush_segment(lake: Path, segment: Path) -> FlushReport:
    """Turn one sealed segment into lake files, then delete it. Skips a segment that another
    flusher holds."""
    fd = try_lock(segment) if segment.exists() else None
    if fd is None:
        return FlushReport()
    try:
        if not segment.exists():  # retired by another flusher between our glob and lock
            return FlushReport()
        writer = segment.parent.name
        name = f"{writer}-{segment_number(segment):08d}"
        with _gc_paused():
            records, valid = read_segment(segment)
            messages, rejects = records_to_tables(records, f"{writer}/{segment.name}")
        damaged = _damaged_tail(segment, valid, f"{writer}/{segment.name}")
        if damaged is not None:
            rejects.append(damaged)
        files = write_tables(lake, name, messages, rejects)
        segment.unlink()
        fsync_dir(segment.parent)
    finally:
        unlock(fd)
    return FlushReport(1, messages.num_rows, len(rejects), files)


def flush_lake(lake: Path) -> FlushReport:
    """Flush every sealed segment in the lake, recovering the journals of dead writers."""
    report = FlushReport()
    for directory in writer_dirs(lake):
        try:
            lock = try_lock(directory / LOCK_NAME)
        except FileNotFoundError:  # another flusher just removed this dead writer
            continue
        dead = lock is not None
        try:
            if dead:
                for seg in open_segments(directory):
                    recover_open_segment(seg)
            for seg in sealed_segments(directory):
                report.add(flush_segment(lake, seg))
            if dead and not sealed_segments(directory) and not open_segments(directory):
                _remove_writer_dir(directory)
        finally:
            if lock is not None:
                unlock(lock)
    if report.segments:
        log.info(
            "flushed segments=%d messages=%d rejected=%d",
            report.segments,
            report.messages,
            report.rejected,
        )
    return report


def _remove_writer_dir(directory: Path) -> None:
    # Only an empty directory goes. Anything else in it is not ours to delete: it may be a
    # writer that is just starting there (it re-creates the lock we unlink, see
    # SegmentWriter.open), and a sweep would take its journal away.
    with contextlib.suppress(OSError):
        (directory / LOCK_NAME).unlink()
        directory.rmdir()
        fsync_dir(directory.parent)


def journal_backlog(lake: Path) -> tuple[int, float]:
    """Bytes waiting in journal segments and the age in seconds of the oldest one."""
    total, oldest = 0, None
    now = datetime.now(UTC).timestamp()
    for directory in writer_dirs(lake):
        for seg in [*sealed_segments(directory), *open_segments(directory)]:
            with contextlib.suppress(FileNotFoundError):
                st = seg.stat()
                total += st.st_size
                oldest = st.st_mtime if oldest is None else min(oldest, st.st_mtime)
    return total, (now - oldest) if oldest is not None else 0.0


__all__ = [
    "FlushReport",
    "flush_lake",
    "flush_segment",
    "journal_backlog",
    "records_to_tables",
    "write_tables",
]
