"""Flush: sealed journal segments -> Parquet files in the lake, then retire the segments.

Each segment becomes at most one file per date partition, named after the writer and the
segment (``<writer>-<NNNNNNNN>.parquet``), written to a temporary name and renamed. Flushing a
segment twice (a crash between the rename and the retirement) therefore replaces the files
rather than duplicating them. Segments of dead writers, found through their free lock, are
recovered first: the torn tail of the open segment is cut off and the rest sealed.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pyarrow as pa

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
from hooklake.collector.normalize import BodyError, Row, normalize_body, parse_body
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

_DAY_US = 86_400_000_000
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


def _day(ts_us: int) -> str:
    return datetime.fromtimestamp((ts_us // _DAY_US) * 86_400, UTC).strftime("%Y-%m-%d")


def _table(rows: list[Row], schema: pa.Schema) -> pa.Table:
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in schema]
    arrays = [pa.array(col, type=f.type) for col, f in zip(columns, schema, strict=True)]
    return pa.Table.from_arrays(arrays, schema=schema)


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


def records_to_rows(records: Iterable[Record], prefix: str) -> tuple[list[Row], list[Row]]:
    """Message rows and reject rows of journal records (``prefix`` names the segment)."""
    messages: list[Row] = []
    rejects: list[Row] = []
    for rec in records:
        head = rec.header
        source = f"{prefix}@{rec.offset}"
        if head.get("kind") == "reject":
            rejects.append(_reject_row(rec, source, head["reason"], head.get("index")))
            continue
        try:
            body = parse_body(rec.body)
            messages.extend(
                normalize_body(
                    body,
                    hook=head["hook"],
                    received_at_us=head["t"],
                    source=source,
                    sentry_trace=(head.get("h") or {}).get("sentry-trace"),
                )
            )
        except BodyError as exc:
            # Accepted under older rules, refused by these: keep it where people look.
            rejects.append(_reject_row(rec, source, str(exc), exc.index))
    return messages, rejects


def write_rows(lake: Path, name: str, messages: list[Row], rejects: list[Row]) -> list[Path]:
    """Write rows into their date partitions as ``<name>.parquet``; returns the files."""
    out: list[Path] = []
    by_day: dict[str, list[Row]] = defaultdict(list)
    for row in messages:
        by_day[_day(row[7])].append(row)
    for day, rows in sorted(by_day.items()):
        path = partition_dir(lake, MESSAGES, day) / f"{name}.parquet"
        write_table(_table(rows, MESSAGE_SCHEMA).sort_by(_SORT), path)
        out.append(path)
    rej_by_day: dict[str, list[Row]] = defaultdict(list)
    for row in rejects:
        rej_by_day[_day(row[0])].append(row)
    for day, rows in sorted(rej_by_day.items()):
        path = partition_dir(lake, REJECTED, day) / f"{name}.parquet"
        write_table(_table(rows, REJECT_SCHEMA), path)
        out.append(path)
    return out


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
        records, _ = read_segment(segment)
        messages, rejects = records_to_rows(records, f"{writer}/{segment.name}")
        files = write_rows(lake, name, messages, rejects)
        segment.unlink()
        fsync_dir(segment.parent)
    finally:
        unlock(fd)
    return FlushReport(1, len(messages), len(rejects), files)


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
    with contextlib.suppress(OSError):
        (directory / LOCK_NAME).unlink()
        directory.rmdir()
        fsync_dir(directory.parent)
    if directory.exists():
        shutil.rmtree(directory, ignore_errors=True)


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
    "records_to_rows",
    "write_rows",
]
