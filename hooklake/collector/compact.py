"""Compaction: merge a partition's many small Parquet files into few large sorted ones.

The collector writes one file per flushed journal segment and date, so a busy lake gathers
thousands of small files, and every query pays for opening each one. ``hooklake compact``
rewrites the small files of each partition into files of up to ``max_file_rows`` rows, sorted
by conversation (channel, customer, time), and then:

1. writes each merged file under a temporary name and renames it (readers never see it half
   written);
2. writes a tombstone ``_superseded-<id>.json`` naming the files it replaced, so readers that
   list the lake from then on skip them;
3. deletes the replaced files only after ``grace`` has passed since the tombstone, so a query
   that listed them earlier still finishes, and drops the tombstone once they are all gone.

Files that arrive while compaction runs are not in its list and stay as they are. A crash
between steps 1 and 2 leaves the merged file beside the originals: the ``messages`` view removes
the duplicate rows, and the next run merges them again and drops the exact copies. Running it
twice changes nothing the second time. One compaction runs per lake at a time (a lock file).
"""

from __future__ import annotations

import fcntl
import os
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from hooklake import layout
from hooklake.errors import StorageError

DEFAULT_GRACE = timedelta(minutes=10)
#: Files at least this big, or with at least ``max_file_rows`` rows, are left alone.
SMALL_FILE_BYTES = 64 << 20
MAX_FILE_ROWS = 1_000_000
#: Temporary files older than this were left by a writer that crashed.
STALE_TEMP_SECONDS = 3600
LOCK_NAME = ".compact.lock"

# Sort keys put a conversation's rows together and in order; identity keys say which rows are
# copies of the same stored row (not retried deliveries, which have their own source).
_SORT_KEYS: dict[str, list[str]] = {
    layout.MESSAGES: [
        "channel_id",
        "customer_id",
        "ts",
        "seq",
        "received_at",
        "source",
        "message_key",
    ],
    layout.REJECTED: ["received_at", "source", "message_index"],
}
_IDENTITY: dict[str, list[str]] = {
    layout.MESSAGES: ["message_key", "source"],
    layout.REJECTED: ["source", "message_index"],
}


@dataclass(frozen=True)
class PartitionCompaction:
    """One group of small files of a partition merged into one new file."""

    table: str
    date: str
    files_merged: int
    rows_in: int
    rows_out: int
    written: str


@dataclass
class CompactReport:
    """What one ``compact`` run did."""

    merged: list[PartitionCompaction] = field(default_factory=list)
    files_deleted: int = 0
    tombstones_removed: int = 0
    temporaries_removed: int = 0
    #: Files that are not readable Parquet: left exactly as they are, for a person to look at.
    unreadable: list[str] = field(default_factory=list)

    @property
    def files_merged(self) -> int:
        return sum(m.files_merged for m in self.merged)

    @property
    def files_written(self) -> int:
        return len(self.merged)

    def rows(self) -> list[tuple[str, Any]]:
        """(name, value) pairs for printing: totals, then one line per merged file."""
        out: list[tuple[str, Any]] = [
            ("files merged", self.files_merged),
            ("files written", self.files_written),
            ("replaced files deleted", self.files_deleted),
            ("tombstones removed", self.tombstones_removed),
        ]
        if self.temporaries_removed:
            out.append(("stale temporary files removed", self.temporaries_removed))
        for name in self.unreadable:
            out.append(("unreadable, left alone", name))
        for m in self.merged:
            out.append(
                (
                    f"{m.table}/date={m.date}",
                    f"{m.files_merged} files, {m.rows_in} rows -> {m.written} ({m.rows_out} rows)",
                )
            )
        return out


def compact(
    lake: Path,
    *,
    grace: timedelta | float = DEFAULT_GRACE,
    small_file_bytes: int = SMALL_FILE_BYTES,
    max_file_rows: int = MAX_FILE_ROWS,
) -> CompactReport:
    """Merge the small files of every partition of ``lake``; delete what was replaced more
    than ``grace`` (a timedelta or seconds) ago. Safe beside a running collector and readers."""
    lake = Path(lake)
    grace_s = grace.total_seconds() if isinstance(grace, timedelta) else float(grace)
    if grace_s < 0:
        raise StorageError(f"the grace period cannot be negative ({grace_s} s)")
    if max_file_rows < 1:
        raise StorageError(f"max_file_rows must be at least 1, not {max_file_rows}")
    if not lake.is_dir():
        raise StorageError(f"no lake at {lake}: the directory does not exist (pass --lake)")
    report = CompactReport()
    with _exclusive(lake):
        for table in layout.TABLES:
            for part in layout.partitions(lake, table):
                report.merged.extend(
                    _merge_partition(part, table, small_file_bytes, max_file_rows, report)
                )
                _collect_garbage(part, grace_s, report)
    return report


@contextmanager
def _exclusive(lake: Path) -> Iterator[None]:
    fd = os.open(lake / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise StorageError(
                f"another compaction is running on {lake}; try again when it has finished"
            ) from None
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _merge_partition(
    part: Path, table: str, small_file_bytes: int, max_file_rows: int, report: CompactReport
) -> list[PartitionCompaction]:
    gone = layout.superseded(part)
    small: list[tuple[Path, int]] = []
    for path in sorted(part.iterdir()):
        if not layout.is_data_file(path.name) or path.name in gone:
            continue
        try:
            rows = pq.read_metadata(path).num_rows
        except (OSError, pa.ArrowException):
            report.unreadable.append(str(path))
            continue
        if path.stat().st_size < small_file_bytes and rows < max_file_rows:
            small.append((path, rows))
    done: list[PartitionCompaction] = []
    # Files of one schema version merge into one of that version: a 0.1 file stays readable
    # as 0.1 (its added columns are not in it to be read).
    for version in sorted({layout.schema_version(path.name) for path, _ in small}):
        same = [(path, rows) for path, rows in small if layout.schema_version(path.name) == version]
        for group in _groups(same, max_file_rows):
            if len(group) > 1:
                done.append(_merge(part, table, group, version))
    return done


def _groups(files: list[tuple[Path, int]], max_rows: int) -> Iterator[list[Path]]:
    """Consecutive runs of files whose rows add up to at most ``max_rows`` (bounded memory)."""
    group: list[Path] = []
    total = 0
    for path, rows in files:
        if group and total + rows > max_rows:
            yield group
            group, total = [], 0
        group.append(path)
        total += rows
    if group:
        yield group


def _merge(part: Path, table: str, files: list[Path], version: int) -> PartitionCompaction:
    schema = layout.file_schema(table, files[0].name)
    merged = ds.dataset([str(f) for f in files], schema=schema, format="parquet").to_table()
    rows_in = merged.num_rows
    merged = merged.sort_by([(key, "ascending") for key in _SORT_KEYS[table]])
    merged = _drop_copies(merged, _IDENTITY[table])
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    name = layout.data_file_name(table, f"compacted-{stamp}-{uuid.uuid4().hex[:12]}", version)
    layout.write_table(merged, part / name)
    layout.write_tombstone(part, [f.name for f in files], by=name)
    return PartitionCompaction(
        table=table,
        date=part.name.removeprefix("date="),
        files_merged=len(files),
        rows_in=rows_in,
        rows_out=merged.num_rows,
        written=name,
    )


def _drop_copies(table: pa.Table, keys: list[str]) -> pa.Table:
    """Drop rows equal on ``keys`` to the row before them (sorting put copies side by side)."""
    if table.num_rows < 2:
        return table
    same = pa.array([True] * (table.num_rows - 1))
    for key in keys:
        col = table.column(key).combine_chunks()
        prev, cur = col.slice(0, len(col) - 1), col.slice(1)
        equal = pc.or_kleene(
            pc.equal(prev, cur), pc.and_(pc.is_null(prev), pc.is_null(cur))
        ).fill_null(False)
        same = pc.and_(same, equal)
    keep = pa.concat_arrays([pa.array([True]), pc.invert(same)])
    return table.filter(keep)


def _collect_garbage(part: Path, grace_s: float, report: CompactReport) -> None:
    now = time.time()
    for tomb in layout.tombstones(part):
        try:
            if now - tomb.stat().st_mtime < grace_s:
                continue
            replaced = orjson.loads(tomb.read_bytes())["replaced"]
        except FileNotFoundError:
            continue
        for name in replaced:
            try:
                (part / name).unlink()
                report.files_deleted += 1
            except FileNotFoundError:
                pass
        # The tombstone goes only once its files are gone for good, or they would come back.
        layout.fsync_dir(part)
        tomb.unlink(missing_ok=True)
        layout.fsync_dir(part)
        report.tombstones_removed += 1
    for tmp in part.glob(".tmp-*"):
        try:
            if now - tmp.stat().st_mtime > max(grace_s, STALE_TEMP_SECONDS):
                tmp.unlink()
                report.temporaries_removed += 1
        except FileNotFoundError:
            continue
