"""Flush: sealed journal segments -> commits to the lake's Delta tables, then retire the segments.

Each segment becomes one commit to ``messages`` and one to ``rejected`` (when it holds rejects),
each carrying the transaction id ``flush:<writer>`` at the segment's number as its version
(see :mod:`hooklake.tables`). A writer's segments are committed strictly in order, by one
flusher at a time (the writer's flush lock, ``<writer>/flushing``), and never past a segment
still open: so a table holding the writer's id at version N holds every segment up to N, and
flushing a segment twice (a crash between the commit and the retirement) finds it there and
appends nothing. Segments of dead writers, found through their free lock, are recovered first:
the torn tail of the open segment is cut off and the rest sealed.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa

from hooklake import tables
from hooklake.collector.extract import Row, records_to_tables, reject_table, source_of
from hooklake.collector.journal import (
    FLUSH_LOCK_NAME,
    LOCK_NAME,
    lock_waiting,
    open_segments,
    read_segment,
    recover_open_segment,
    sealed_segments,
    segment_number,
    try_lock,
    unlock,
    writer_dirs,
)
from hooklake.errors import StorageError
from hooklake.layout import MESSAGES, REJECTED, TABLES, fsync_dir
from hooklake.storage import LakeLocation, lake_location

log = logging.getLogger("hooklake.collector")

_SORT = [("channel_id", "ascending"), ("customer_id", "ascending"), ("ts", "ascending")]


@dataclass
class FlushReport:
    segments: int = 0
    messages: int = 0
    rejected: int = 0
    #: Table versions this flush committed, as (table, version).
    commits: list[tuple[str, int]] = field(default_factory=list)

    def add(self, other: FlushReport) -> None:
        self.segments += other.segments
        self.messages += other.messages
        self.rejected += other.rejected
        self.commits.extend(other.commits)


def commit_rows(
    loc: LakeLocation, writer: str, segment: int, messages: pa.Table, rejects: list[Row]
) -> list[tuple[str, int]]:
    """Append the rows of ``writer``'s segment number ``segment`` to the tables, one commit per
    table under the transaction id ``flush:<writer>`` at version ``segment``; a table that
    already holds that version (or the segment's own id, as Hooklake wrote it before one id
    per writer) is left alone. Returns the (table, version) of each new commit."""
    out: list[tuple[str, int]] = []
    for table_name, table in (
        (MESSAGES, messages.sort_by(_SORT) if messages.num_rows else None),
        (REJECTED, reject_table(rejects) if rejects else None),
    ):
        if table is None or table.num_rows == 0:
            continue
        version = tables.append(
            loc,
            table_name,
            tables.with_partition(table_name, table),
            f"flush:{writer}",
            segment,
            also_committed_as=f"flush:{writer}-{segment:08d}",
        )
        if version is not None:
            out.append((table_name, version))
    return out


#: Lakes this process found migrated. Looking costs a listing of every partition, and a lake
#: does not turn back into a 0.1 lake, so the background flusher looks once, not every cycle.
_NOT_LEGACY: set[str] = set()


def check_not_legacy(loc: LakeLocation) -> None:
    """Refuse to write Delta tables over a lake of plain Parquet files written by Hooklake 0.1."""
    if loc.uri in _NOT_LEGACY:
        return
    for table in TABLES:
        if tables.is_legacy(loc, table):
            raise StorageError(
                f"the lake {loc} was written by Hooklake 0.1 (plain Parquet): "
                f"run `hooklake migrate --lake {loc}` once, then start again"
            )
    _NOT_LEGACY.add(loc.uri)


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


def flush_segment(lake: Path | str, segment: Path, loc: LakeLocation | None = None) -> FlushReport:
    """Commit one sealed segment's rows to the lake's tables (``loc``, by default the tables in
    ``lake``) and delete it, after the sealed segments its writer wrote before it (a writer's
    segments are committed in order). Does nothing while another flusher holds the writer."""
    with _flushing(segment.parent) as held:
        if not held:
            return FlushReport()
        return _flush_writer(segment.parent, loc or lake_location(lake), segment_number(segment))


@contextlib.contextmanager
def _flushing(directory: Path, wait: bool = False) -> Iterator[bool]:
    """The writer's flush lock, held for the block; yields False when another flusher has it
    (with ``wait``: once that flusher is done, only if it removed the writer's directory)."""
    path = directory / FLUSH_LOCK_NAME
    if wait:
        fd = lock_waiting(path)
    else:
        try:
            fd = try_lock(path)
        except FileNotFoundError:
            fd = None
    try:
        yield fd is not None
    finally:
        if fd is not None:
            unlock(fd)


def _flush_writer(directory: Path, loc: LakeLocation, upto: int | None = None) -> FlushReport:
    """Commit the writer's sealed segments in order (up to number ``upto``), stopping before
    the first one that comes after a segment still open: a segment whose sealing failed holds
    back the later ones until it is sealed. The caller holds the writer's flush lock."""
    report = FlushReport()
    # Open ones first: a segment sealed after this listing is then either below the lowest
    # open one (and listed as sealed next) or not flushed this time.
    bounds = [segment_number(p) for p in open_segments(directory)]
    if upto is not None:
        bounds.append(upto)
    last = min(bounds, default=math.inf)
    for segment in sealed_segments(directory):
        number = segment_number(segment)
        if number > last:
            break
        report.add(_flush_one(segment, number, loc))
    return report


def _flush_one(segment: Path, number: int, loc: LakeLocation) -> FlushReport:
    writer = segment.parent.name
    with _gc_paused():
        records, valid = read_segment(segment)
        messages, rejects = records_to_tables(records, f"{writer}/{segment.name}")
    damaged = _damaged_tail(segment, valid, f"{writer}/{segment.name}")
    if damaged is not None:
        rejects.append(damaged)
    commits = commit_rows(loc, writer, number, messages, rejects)
    segment.unlink()
    fsync_dir(segment.parent)
    return FlushReport(1, messages.num_rows, len(rejects), commits)


def flush_lake(lake: Path | str, journal: Path | None = None, wait: bool = False) -> FlushReport:
    """Flush every sealed segment of the journal (``journal``, by default the one inside the
    lake) into the lake's tables, recovering the journals of dead writers. A writer another
    flusher is busy with is left to it, unless ``wait``: then this waits for it, so that on
    return every segment sealed before the call is committed."""
    report = FlushReport()
    loc = lake_location(lake)
    directories = writer_dirs(lake, journal)
    if directories:
        check_not_legacy(loc)
    for directory in directories:
        try:
            lock = try_lock(directory / LOCK_NAME)
        except FileNotFoundError:  # another flusher just removed this dead writer
            continue
        dead = lock is not None
        try:
            with _flushing(directory, wait) as held:
                if not held:
                    continue  # another flusher is committing (or has removed) this writer
                if dead:
                    for seg in open_segments(directory):
                        recover_open_segment(seg)
                report.add(_flush_writer(directory, loc))
                if dead and not sealed_segments(directory) and not open_segments(directory):
                    _remove_writer_dir(directory)
        finally:
            if lock is not None:
                unlock(lock)
    if report.segments:  # a collector's flusher sums these up once a minute (INFO)
        log.debug(
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
        (directory / FLUSH_LOCK_NAME).unlink()
        (directory / LOCK_NAME).unlink()
        directory.rmdir()
        fsync_dir(directory.parent)


def journal_backlog(lake: Path | str, journal: Path | None = None) -> tuple[int, float]:
    """Bytes waiting in journal segments and the age in seconds of the oldest one."""
    total, oldest = 0, None
    now = datetime.now(UTC).timestamp()
    for directory in writer_dirs(lake, journal):
        for seg in [*sealed_segments(directory), *open_segments(directory)]:
            with contextlib.suppress(FileNotFoundError):
                st = seg.stat()
                total += st.st_size
                oldest = st.st_mtime if oldest is None else min(oldest, st.st_mtime)
    return total, (now - oldest) if oldest is not None else 0.0


__all__ = [
    "FlushReport",
    "commit_rows",
    "flush_lake",
    "flush_segment",
    "journal_backlog",
]
