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
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from hooklake.collector.extract import Row, records_to_tables, reject_table, source_of
from hooklake.collector.journal import (
    LOCK_NAME,
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
    MESSAGES,
    REJECTED,
    data_file_name,
    fsync_dir,
    partition_dir,
    write_table,
)

log = logging.getLogger("hooklake.collector")

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


def _days(col: pa.ChunkedArray) -> pa.ChunkedArray:
    return pc.strftime(col, "%Y-%m-%d")


def write_tables(lake: Path, name: str, messages: pa.Table, rejects: list[Row]) -> list[Path]:
    """Write rows into their date partitions as ``<name>.parquet``; returns the files."""
    out: list[Path] = []
    for table_name, table, col, sort in (
        (MESSAGES, messages, "ts", _SORT),
        (REJECTED, reject_table(rejects) if rejects else None, "received_at", None),
    ):
        if table is None or table.num_rows == 0:
            continue
        days = _days(table[col])
        for day in sorted(pc.unique(days).to_pylist()):
            part = table.filter(pc.equal(days, day))
            if sort:
                part = part.sort_by(sort)
            directory = partition_dir(lake, table_name, day)
            path = directory / data_file_name(table_name, name)
            write_table(part, path)
            out.append(path)
            if path.name != f"{name}.parquet":
                # A flush of this segment by an earlier version that crashed before retiring it.
                (directory / f"{name}.parquet").unlink(missing_ok=True)
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
    return (received_us, "", reason, None, tail, "{}", source_of(prefix, valid))


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
    "write_tables",
]
