"""``hooklake migrate``: turn a lake written by Hooklake 0.1 (plain Parquet) into Delta tables.

For each table, every live 0.1 file (not tombstoned, not a temporary; see
:mod:`hooklake.legacy`) is read, widened to today's schema (version 1 message files get NULL
for the columns version 2 added) and appended to the Delta table in **one** commit carrying the
transaction id ``migrate:0.1``. Only after that commit are the 0.1 files, tombstones and
temporaries deleted. So:

- a migration killed before its commit leaves the 0.1 lake as it was (delta-rs may leave
  uncommitted data files, which no version reads and ``compact --vacuum`` removes);
- a migration killed after its commit is finished by running it again: the transaction id
  says the rows are in, and only the 0.1 files are deleted;
- running it on a migrated lake changes nothing.

Collectors must be stopped while it runs (they refuse to flush into a 0.1 lake anyway).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from hooklake import layout, legacy, tables
from hooklake.errors import ConfigError, StorageError
from hooklake.storage import LakeLocation, lake_location
from hooklake.wording import counted

TXN = "migrate:0.1"


@dataclass
class TableMigration:
    table: str
    files: int = 0
    rows: int = 0
    #: The Delta version holding the migrated rows (None: nothing to migrate).
    version: int | None = None
    removed: int = 0


@dataclass
class MigrateReport:
    tables: list[TableMigration] = field(default_factory=list)

    def rows(self) -> list[tuple[str, object]]:
        out: list[tuple[str, object]] = []
        for t in self.tables:
            state = "nothing to migrate" if t.version is None else f"version {t.version}"
            out.append(
                (t.table, f"{counted(t.files, 'file')}, {counted(t.rows, 'row')} -> {state}")
            )
            out.append((f"{t.table} 0.1 files removed", t.removed))
        return out


def migrate(lake: str | os.PathLike[str] | LakeLocation) -> MigrateReport:
    """Migrate the 0.1 lake at ``lake`` (a local directory) in place; idempotent."""
    loc = lake_location(lake)
    if loc.local is None:
        raise ConfigError(
            "hooklake migrate works on a local 0.1 lake directory; migrate it there, then "
            "copy the migrated lake (Delta tables) to object storage"
        )
    if not loc.local.is_dir():
        raise ConfigError(f"no lake at {loc.local}: the directory does not exist")
    report = MigrateReport()
    for table in layout.TABLES:
        report.tables.append(_migrate_table(loc, loc.local, table))
    return report


def _migrate_table(loc: LakeLocation, root: Path, table: str) -> TableMigration:
    out = TableMigration(table)
    # Files delta-rs wrote (this table's own, committed or not) are never 0.1's.
    files = [f for f in legacy.live_files(root, table) if not tables.is_delta_file(f.name)]
    with tables.delta_errors(f"cannot migrate the {table} table of {root}"):
        dt = tables.open_table(loc, table)
        done = dt is not None and tables.committed(dt, TXN)
        if not done and files:
            out.files = len(files)
            out.rows = sum(pq.ParquetFile(f).metadata.num_rows for f in files)
            reader = pa.RecordBatchReader.from_batches(
                tables.table_schema(table), _widened_batches(table, files)
            )
            out.version = tables.append(loc, table, reader, TXN, writer=tables.BULK_WRITER)
        elif done:
            assert dt is not None
            out.version = dt.version()
        dt = tables.open_table(loc, table)
    if dt is None:
        return out
    # Only now, with the rows committed, do the 0.1 files go.
    committed = {f.path for f in tables.data_files(dt)}
    out.removed = _remove_legacy_files(root, table, committed)
    return out


def _widened_batches(table: str, files: list[Path]) -> Iterator[pa.RecordBatch]:
    """The rows of 0.1 files in today's schema, with the partition date, file by file."""
    schema = layout.SCHEMAS[table]
    for path in files:
        old = legacy.file_schema(table, path.name)
        try:
            parquet = pq.ParquetFile(path)
        except (OSError, pa.ArrowInvalid) as exc:
            raise StorageError(
                f"cannot read {path} ({exc}); move it out of the lake and run migrate again"
            ) from None
        for batch in parquet.iter_batches(batch_size=layout.ROW_GROUP_SIZE):
            data = pa.Table.from_batches([batch]).cast(old)
            columns = [
                data[f.name] if f.name in old.names else pa.nulls(data.num_rows, f.type)
                for f in schema
            ]
            widened = tables.with_partition(table, pa.Table.from_arrays(columns, schema=schema))
            yield from widened.to_batches()


def _remove_legacy_files(root: Path, table: str, committed: set[str]) -> int:
    """Delete what 0.1 left in ``table``'s partitions: its data files, tombstones and
    temporaries. Files of the Delta table are never touched."""
    removed = 0
    for part in layout.partitions(root, table):
        for path in part.iterdir():
            rel = f"{part.name}/{path.name}"
            if rel in committed or tables.is_delta_file(path.name) or not path.is_file():
                continue  # Delta's own (committed, or written by a commit in progress)
            if path.suffix in (".parquet", ".json") or path.name.startswith(".tmp-"):
                path.unlink()
                removed += 1
        with contextlib.suppress(OSError):
            layout.fsync_dir(part)
    return removed
