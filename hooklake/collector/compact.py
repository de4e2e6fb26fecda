"""Compaction: Delta optimize (merge small files) and, on request, vacuum (delete old files).

The collector commits one small file per flushed segment and date, so a busy lake gathers
thousands of small files, and every query pays for opening each one. ``hooklake compact``
runs Delta's optimize on each table: the small files of each partition are rewritten into
files of up to :data:`~hooklake.tables.TARGET_FILE_BYTES` in one commit. Readers of earlier
versions keep reading the old files, which stay on disk.

``vacuum`` then deletes files that no version younger than ``retention`` needs (and files no
commit refers to any more). Keep ``retention`` longer than your
longest query or build and as far back as you want ``--as-of`` to reach: a reader of a
version older than that may find its files gone. Erasure (``hooklake forget``) needs a vacuum
to remove the deleted rows' old files from disk. A vacuum then deletes the log entries of the
versions past its retention (:func:`hooklake.tables.expire_log`): the erasure's commit names
the customer, and Delta itself would keep it 30 days.

Compaction is safe beside collectors and readers: optimize and appends never conflict, and
a compaction that loses a race with an erasure's commit is retried by delta-rs or fails with
nothing changed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

from deltalake import DeltaTable

from hooklake import index, layout, tables
from hooklake.collector.flush import check_not_legacy
from hooklake.errors import ConfigError
from hooklake.storage import LakeLocation, lake_location

DEFAULT_RETENTION = tables.DEFAULT_RETENTION


@dataclass(frozen=True)
class TableCompaction:
    """What compaction did to one table."""

    table: str
    version_before: int
    version_after: int
    files_merged: int
    files_written: int
    files_vacuumed: int
    #: Log entries of versions before the vacuum's horizon, deleted with their files.
    log_entries_expired: int = 0


@dataclass
class CompactReport:
    tables: list[TableCompaction] = field(default_factory=list)
    vacuumed: bool = False
    retention: timedelta = DEFAULT_RETENTION

    @property
    def files_merged(self) -> int:
        return sum(t.files_merged for t in self.tables)

    @property
    def files_written(self) -> int:
        return sum(t.files_written for t in self.tables)

    @property
    def files_vacuumed(self) -> int:
        return sum(t.files_vacuumed for t in self.tables)

    @property
    def log_entries_expired(self) -> int:
        return sum(t.log_entries_expired for t in self.tables)

    def rows(self) -> list[tuple[str, Any]]:
        out: list[tuple[str, Any]] = [
            ("files merged", self.files_merged),
            ("files written", self.files_written),
            (
                "old files deleted",
                self.files_vacuumed if self.vacuumed else "none (run with --vacuum)",
            ),
        ]
        if self.vacuumed:
            out.append(("old log entries deleted", self.log_entries_expired))
            out.append(("retention", str(self.retention)))
        for t in self.tables:
            out.append((f"{t.table} version", f"{t.version_before} -> {t.version_after}"))
        return out


def compact(
    lake: str | os.PathLike[str] | LakeLocation,
    *,
    vacuum: bool = False,
    retention: timedelta = DEFAULT_RETENTION,
    target_size: int = tables.TARGET_FILE_BYTES,
) -> CompactReport:
    """Optimize each table of ``lake``; with ``vacuum``, then delete files that versions
    younger than ``retention`` do not need."""
    if retention < timedelta(0):
        raise ConfigError(f"retention must not be negative, not {retention}")
    if target_size < 1:
        raise ConfigError(f"target_size must be positive, not {target_size}")
    from hooklake.datasets.lake import check_lake

    loc = lake_location(lake)
    check_not_legacy(loc)
    check_lake(loc)
    report = CompactReport(vacuumed=vacuum, retention=retention)
    optimized: list[tuple[str, DeltaTable, int, dict[str, Any]]] = []
    for table in layout.TABLES:
        with tables.delta_errors(f"cannot compact the {table} table of {loc}"):
            dt = tables.open_table(loc, table)
            if dt is None:
                continue
            before = dt.version()
            metrics = dt.optimize.compact(
                target_size=target_size, writer_properties=tables.BULK_WRITER
            )
            optimized.append((table, dt, before, metrics))
    with tables.delta_errors(f"cannot compact the conversation index of {loc}"):
        index_table = tables.open_table(loc, layout.INDEX)
    if vacuum and index_table is not None:
        # Past this compaction before its vacuum deletes the files it replaced: an update
        # behind it reads them (and an index covering an expired version could only be
        # rebuilt, see _expire_logs).
        index.update_index(loc, fold=False)
    for table, dt, before, metrics in optimized:
        with tables.delta_errors(f"cannot compact the {table} table of {loc}"):
            deleted = _vacuum(dt, retention) if vacuum else []
            _checkpoint(dt)
        report.tables.append(
            TableCompaction(
                table=table,
                version_before=before,
                version_after=dt.version(),
                files_merged=int(metrics.get("numFilesRemoved", 0)),
                files_written=int(metrics.get("numFilesAdded", 0)),
                files_vacuumed=len(deleted),
            )
        )
    if index_table is not None:
        _compact_index(loc, index_table, report, vacuum, retention)
    if vacuum:
        _expire_logs(loc, report, retention)
    return report


def _vacuum(dt: DeltaTable, retention: timedelta) -> list[str]:
    """Delete the files of ``dt`` that no version younger than ``retention`` needs."""
    deleted: list[str] = dt.vacuum(
        retention_hours=int(retention.total_seconds() // 3600),
        dry_run=False,
        # Delta refuses less than a week unless told; the user chose the retention.
        enforce_retention_duration=False,
    )
    return deleted


def _checkpoint(dt: DeltaTable) -> None:
    """Checkpoint ``dt``'s latest version, so opening the table reads one Parquet file of the
    files it has now instead of replaying the commits (a compaction's removes, thousands of
    collector appends) since the last checkpoint: a fresh ``Lake`` opens several times faster."""
    dt.update_incremental()
    dt.create_checkpoint()


def _compact_index(
    loc: LakeLocation, dt: DeltaTable, report: CompactReport, vacuum: bool, retention: timedelta
) -> None:
    """The index's compaction is a fold (one sorted base); vacuum deletes what folds replaced.
    ``dt`` is the index as the compaction found it."""
    with tables.delta_errors(f"cannot compact the conversation index of {loc}"):
        before = dt.version()
        if vacuum:
            # Past the vacuum's own commits too (they change no file), so the log before
            # them can go (_expire_logs).
            index.update_index(loc, fold=False)
        dt = tables.open_table(loc, layout.INDEX) or dt
        files_before = len(dt.file_uris())
        folded = index.fold_index(loc)
        dt = tables.open_table(loc, layout.INDEX) or dt
        deleted = _vacuum(dt, retention) if vacuum else []
        _checkpoint(dt)
        report.tables.append(
            TableCompaction(
                table=layout.INDEX,
                version_before=before,
                version_after=dt.version(),
                files_merged=files_before if folded else 0,
                files_written=len(dt.file_uris()) if folded else 0,
                files_vacuumed=len(deleted),
            )
        )


def _expire_logs(loc: LakeLocation, report: CompactReport, retention: timedelta) -> None:
    """Delete the log entries the vacuum left without files (:func:`tables.expire_log`): an
    erasure's commit names the customer. The messages table's log is kept from the version
    the index covers, which an index update reads its changes from."""
    state = index.read_state(loc)
    keep = {layout.MESSAGES: state.messages_version if state is not None else None}
    for i, done in enumerate(report.tables):
        with tables.delta_errors(f"cannot expire the log of the {done.table} table of {loc}"):
            expired = tables.expire_log(loc, done.table, retention, keep.get(done.table))
        report.tables[i] = replace(done, log_entries_expired=expired)
