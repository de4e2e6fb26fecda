"""The lake's tables: ``messages`` and ``rejected`` as Delta tables (delta-rs), partitioned by date.

::

    lake/
      messages/_delta_log/        the table's commits; a reader reads one version of it
      messages/date=YYYY-MM-DD/   zstd Parquet data files named by delta-rs
      rejected/...                the same for rejected bodies and messages

Every change is one atomic commit: a flush of a journal segment, a compaction, an erasure.
Readers open one table version and never see a partial commit; writers on several machines
commit concurrently (appends never conflict, and on S3 conditional PUTs decide who gets a
version number).

A flush commit carries a Delta *transaction id* naming the collector process (journal writer)
it came from, with the segment's number as the transaction's version: Delta's idempotent-writer
pattern. A writer's segments are committed in order, so a segment flushed again after a crash
(committed, then killed before the segment was retired) is recognised by a version at or past
its number and not appended twice, and the log holds one id per writer rather than one per
segment (which, with a segment sealed every few seconds, made every open of the table replay
hundreds of thousands of ids after a month).

The Delta log keeps file statistics with column *values* in every commit. Those columns are
restricted (``delta.dataSkippingStatsColumns``) to ones that hold no personal data: times,
dates and the numeric channel and customer ids. Names, texts, phone numbers and e-mails never
reach the log, so erasing a customer (a delete, then a vacuum) leaves nothing of them behind.

delta-rs starts a Tokio runtime on first use that does not survive ``fork``: processes that
use this module start their children with ``spawn``.
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
from deltalake import (
    ColumnProperties,
    CommitProperties,
    DeltaTable,
    Transaction,
    WriterProperties,
    write_deltalake,
)
from deltalake.exceptions import DeltaError, TableNotFoundError

from hooklake import layout
from hooklake.errors import HooklakeError, LakeError, StorageError
from hooklake.storage import LakeLocation
from hooklake.wording import utc_text

PARTITION_COLUMN = "date"
#: Columns whose values the Delta log may hold as file statistics (none of them personal).
STATS_COLUMNS: dict[str, tuple[str, ...]] = {
    layout.MESSAGES: ("date", "ts", "received_at", "channel_id", "customer_id"),
    layout.REJECTED: ("date", "received_at"),
}
#: The column whose UTC date is a row's partition.
DATE_SOURCE = {layout.MESSAGES: "ts", layout.REJECTED: "received_at"}
#: How long files a commit removed stay on disk for readers of older versions (vacuum).
DEFAULT_RETENTION = timedelta(days=7)
#: Target size of the files optimize writes.
TARGET_FILE_BYTES = 128 << 20
_TXN_PREFIX = "hooklake:"
#: Files of many rows (a migration's bulk append, compaction): dictionary pages pay off.
BULK_WRITER = WriterProperties(compression="ZSTD")
#: Files of a flush's append: a segment's rows of one date, often a handful (a late delivery
#: alone on its date is a file of one row) and read once by the index update and once by the
#: compaction that merges them. A dictionary page doubles the pages per column and saves
#: nothing that ZSTD does not: 3,000 of a 10M-message lake's flush files read in 0.66 s
#: without against 0.73-0.87 s with (DuckDB, one thread), and came out 8% smaller.
FLUSH_WRITER = WriterProperties(
    compression="ZSTD", default_column_properties=ColumnProperties(dictionary_enabled=False)
)


def table_schema(table: str) -> pa.Schema:
    """The Arrow schema of a table: the row schema of ``layout`` plus the partition date."""
    return layout.SCHEMAS[table].append(pa.field(PARTITION_COLUMN, pa.date32(), nullable=False))


def configuration(table: str) -> dict[str, str | None]:
    return {
        "delta.dataSkippingStatsColumns": ",".join(STATS_COLUMNS[table]),
        # A flush transaction id (one per collector process) only needs to outlive the
        # restart that recovers a crashed collector's journal.
        "delta.setTransactionRetentionDuration": "interval 30 days",
    }


@contextmanager
def delta_errors(context: str, error: type[HooklakeError] = StorageError) -> Iterator[None]:
    """delta-rs and storage errors as one of ours (``error``: a :class:`StorageError` when
    writing, a :class:`~hooklake.errors.LakeError` when reading) saying what failed."""
    try:
        yield
    except (DeltaError, OSError) as exc:
        raise error(f"{context}: {one_line(exc)}") from exc


def check_reachable(loc: LakeLocation) -> None:
    """Raise :class:`StorageError` unless a lake on object storage can be listed: a collector
    checks before it answers anyone, so a missing bucket, a wrong endpoint or credentials stop
    it at once instead of failing every flush behind 200s (its journal keeps what it accepted,
    but nothing would reach the lake). A local lake's directory is checked as it is created."""
    if loc.local is not None:
        return
    from pyarrow import fs

    try:
        _store(loc, loc.uri).get_file_info(fs.FileSelector("", allow_not_found=True))
    except (DeltaError, OSError) as exc:
        raise StorageError(
            f"cannot reach the lake at {loc}: {one_line(exc)} (does the bucket exist, and do "
            "AWS_ENDPOINT_URL and the AWS credentials point at it?)"
        ) from exc


def _store(loc: LakeLocation, uri: str) -> Any:
    """The files under ``uri`` (in ``loc``) through delta-rs's own object store, as a
    ``pyarrow.fs.FileSystem``: what the tables are read and written through, local or S3."""
    from deltalake.fs import DeltaStorageHandler
    from pyarrow import fs

    return fs.PyFileSystem(DeltaStorageHandler(uri, loc.storage_options or None))


#: Terminal colours delta-rs puts in the chains of causes of its storage errors.
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def one_line(exc: BaseException) -> str:
    """An error's message on one line, without terminal colours: delta-rs spreads a storage
    error's causes over several coloured lines."""
    return " ".join(_ANSI.sub("", str(exc)).split()) or type(exc).__name__


def is_latest_version(loc: LakeLocation, table: str, version: int) -> bool:
    """Whether ``version`` is the latest commit of local ``table``, told from two file names
    of its log without replaying it; False on object storage, where that is not so cheap."""
    if loc.local is None:
        return False
    log = loc.local / table / "_delta_log"
    return (log / f"{version:020d}.json").exists() and not (
        log / f"{version + 1:020d}.json"
    ).exists()


def open_table(
    loc: LakeLocation, table: str, version: int | str | datetime | None = None
) -> DeltaTable | None:
    """The table at its latest version (or ``version``: a number, an ISO time or a datetime),
    or None when it does not exist yet."""
    uri = loc.table_uri(table)
    options = loc.storage_options or None
    try:
        if isinstance(version, int) and version >= 0:
            # Straight to that version: loading the latest first replays the whole log for
            # nothing (58 ms against 19 ms for an index update's look back over 1,529 commits).
            return DeltaTable(uri, version=version, storage_options=options)
        dt = DeltaTable(uri, storage_options=options)
    except DeltaError as exc:
        # A version whose log entries are gone reads as no table, or as a log without its
        # table's metadata; the table itself is there.
        if isinstance(version, int) and open_table(loc, table) is not None:
            raise LakeError(
                f"cannot read version {version} of the {table} table of lake {loc}: its log "
                "entries are gone (hooklake compact --vacuum deletes them with its files once "
                "--retention-hours have passed); pick a later --as-of, or none to read the latest"
            ) from None
        if isinstance(exc, TableNotFoundError):
            return None
        raise
    if version is not None:
        dt.load_as_version(version)
    return dt


def ensure_table(loc: LakeLocation, table: str) -> DeltaTable:
    """The table, created empty first if it does not exist (safe when several processes race)."""
    dt = open_table(loc, table)
    if dt is not None:
        return dt
    # Another process may create it between our check and our commit: then use theirs.
    with contextlib.suppress(DeltaError):
        DeltaTable.create(
            loc.table_uri(table),
            schema=table_schema(table),
            partition_by=[PARTITION_COLUMN],
            mode="ignore",
            configuration=configuration(table),
            storage_options=loc.storage_options or None,
        )
    dt = open_table(loc, table)
    if dt is None:
        raise StorageError(f"cannot create the {table} table at {loc.table_uri(table)}")
    return dt


def with_partition(table: str, rows: pa.Table) -> pa.Table:
    """``rows`` of ``table`` with the partition date (the UTC date of their time) added."""
    days = pc.cast(rows[DATE_SOURCE[table]], pa.timestamp("us", tz="UTC")).cast(pa.date32())
    return rows.append_column(table_schema(table).field(PARTITION_COLUMN), days)


def transaction_version(dt: DeltaTable, txn: str) -> int | None:
    """The version of the last commit with transaction id ``txn`` in the table's current
    version, or None when there is none."""
    return dt.transaction_version(_TXN_PREFIX + txn)


def committed(dt: DeltaTable, txn: str, version: int = 1) -> bool:
    """Whether the table's current version holds a commit with transaction id ``txn`` at
    ``version`` or later."""
    found = transaction_version(dt, txn)
    return found is not None and found >= version


def append(
    loc: LakeLocation,
    table: str,
    rows: pa.Table | pa.RecordBatchReader,
    txn: str,
    version: int = 1,
    *,
    also_committed_as: str | None = None,
    writer: WriterProperties = FLUSH_WRITER,
) -> int | None:
    """Append ``rows`` (in the table's schema, partition column included) in one commit carrying
    transaction id ``txn`` at ``version``. Returns the new table version, or None when the
    table already holds ``txn`` at ``version`` or later, or a commit with the id
    ``also_committed_as`` (nothing is written then). ``writer``: the data files' layout.

    The check and the commit are not one step, and a later version stands for the earlier
    ones: callers make sure one process at a time appends under a given id, in increasing
    versions (flush holds the writer's flush lock and goes through its segments in order).
    """
    with delta_errors(f"cannot write to the {table} table at {loc.table_uri(table)}"):
        dt = ensure_table(loc, table)
        if committed(dt, txn, version) or (
            also_committed_as is not None and committed(dt, also_committed_as)
        ):
            return None
        now_ms = int(time.time() * 1000)
        write_deltalake(
            dt,
            rows,
            mode="append",
            writer_properties=writer,
            commit_properties=CommitProperties(
                app_transactions=[Transaction(_TXN_PREFIX + txn, version, last_updated=now_ms)],
                custom_metadata={"hooklake.txn": f"{txn}@{version}"},
            ),
        )
        return dt.version()


#: The log's own files, by the version they describe: commits, checksums and checkpoints
#: (``<version>.json``, ``.crc``, ``.checkpoint.parquet``, ``.checkpoint.<part>.<parts>.parquet``)
#: and compacted commits (``<first>.<last>.compacted.json``, by their last version).
_LOG_ENTRY = re.compile(
    r"(?:\d{20}\.)?(?P<version>\d{20})\.(?:json|crc|checkpoint(?:\.\d+\.\d+)?\.parquet|compacted\.json)"
)


def expire_log(
    loc: LakeLocation, table: str, retention: timedelta, keep_from: int | None = None
) -> int:
    """Delete the log entries of ``table`` that no version younger than ``retention`` (nor
    version ``keep_from``) needs to be read; returns how many went.

    A vacuum deletes the data files old versions read, but their commits stay, and an
    erasure's commit names the customer it erased (``customer_id = N``), as the file
    statistics of the versions before it do. Delta's own rule decides what can go: reading
    a version takes a checkpoint at or before it and the commits after that checkpoint. So
    the entries before the newest checkpoint at or before the horizon go, the horizon being
    the newest commit older than ``retention`` (and no later than ``keep_from``); without
    such a checkpoint, nothing does. Delta itself drops entries only past
    ``delta.logRetentionDuration`` (30 days), and only as it checkpoints on its own."""
    from pyarrow import fs

    store = _store(loc, loc.table_uri(table))
    cutoff_ns = time.time_ns() - int(retention.total_seconds() * 1e9)
    entries = []  # (version, path)
    old_commits, checkpoints = [], set()
    for info in store.get_file_info(fs.FileSelector("_delta_log", allow_not_found=True)):
        found = _LOG_ENTRY.fullmatch(info.base_name)
        if found is None:
            continue
        version = int(found["version"])
        entries.append((version, info.path))
        if ".checkpoint." in info.base_name:
            checkpoints.add(version)
        elif (
            info.base_name == f"{version:020d}.json"
            # A commit's time is its file's: unknown (None), it counts as young.
            and info.mtime_ns is not None
            and info.mtime_ns <= cutoff_ns
        ):
            old_commits.append(version)
    if not old_commits:
        return 0
    horizon = max(old_commits) if keep_from is None else min(max(old_commits), keep_from)
    kept_from = max((c for c in checkpoints if c <= horizon), default=None)
    if kept_from is None:
        return 0  # every commit is still needed to reach the versions after the horizon
    expired = [path for version, path in entries if version < kept_from]
    for path in expired:
        store.delete_file(path)
    return len(expired)


#: How delta-rs names the data files it writes; Hooklake 0.1 named them after journal segments.
_DELTA_FILE = re.compile(r"part-\d{5}-[0-9a-f-]{36}-c\d{3}(\.\w+)?\.parquet")


def is_delta_file(name: str) -> bool:
    return _DELTA_FILE.fullmatch(name) is not None


#: Partition directories found without 0.1 files, with their modification time then.
_CLEAN_PARTITIONS: dict[str, int] = {}
#: A directory modified this recently may still change within the same timestamp tick.
_SETTLED_NS = 2 * 10**9


def is_legacy(loc: LakeLocation, table: str) -> bool:
    """Whether ``table`` holds Parquet files written by Hooklake 0.1 (not yet migrated)."""
    if loc.local is None:
        return False  # 0.1 wrote local directories only
    for part in layout.partitions(loc.local, table):
        # Every reader opening a lake looks. Listing both tables of a 10M-message lake after a
        # day of flushes (21,760 files) took 17 ms of every Lake's opening, so a partition
        # found clean is listed again only once its directory has changed. A change within
        # the same timestamp tick would not show: only settled directories are remembered.
        key = str(part)
        modified = part.stat().st_mtime_ns
        if _CLEAN_PARTITIONS.get(key) == modified:
            continue
        with os.scandir(part) as entries:
            for entry in entries:
                if entry.name.endswith(".parquet") and not is_delta_file(entry.name):
                    return True
        if time.time_ns() - modified > _SETTLED_NS:
            _CLEAN_PARTITIONS[key] = modified
    return False


@dataclass(frozen=True)
class TableVersion:
    """One table version as a reader saw it."""

    table: str
    version: int
    #: When that version was committed (UTC).
    committed_at: datetime

    def as_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "committed_at": utc_text(self.committed_at),
        }


def version_of(loc: LakeLocation, table: str, dt: DeltaTable) -> TableVersion:
    """The version ``dt`` has loaded and when it was committed."""
    version = dt.version()
    # delta-rs numbers the history of a table loaded at an older version as if that version
    # were the latest; the latest table's history has the true numbers.
    latest = DeltaTable(dt.table_uri, storage_options=loc.storage_options or None)
    entries = [e for e in latest.history() if e.get("version") == version]
    stamp = entries[0]["timestamp"] if entries else 0
    return TableVersion(table, version, datetime.fromtimestamp(stamp / 1000, UTC))


@dataclass(frozen=True)
class DataFile:
    """One Parquet file of a table version."""

    #: Relative to the table's root, e.g. ``date=2026-11-27/part-00000-<uuid>.zstd.parquet``.
    path: str
    date: str
    rows: int
    bytes: int


def data_files(dt: DeltaTable) -> list[DataFile]:
    """The files of the loaded version of ``dt``, sorted by path."""
    actions = pa.table(dt.get_add_actions(flatten=True))
    out = [
        DataFile(
            a["path"],
            str(a[f"partition.{PARTITION_COLUMN}"]),
            a["num_records"] or 0,
            a["size_bytes"],
        )
        for a in actions.select(
            ["path", f"partition.{PARTITION_COLUMN}", "num_records", "size_bytes"]
        ).to_pylist()
    ]
    return sorted(out, key=lambda f: f.path)


def file_dataset(
    dt: DeltaTable, paths: list[str] | tuple[str, ...], keep: ds.Expression | None = None
) -> ds.Dataset:
    """The rows of some data files of ``dt``'s version (paths relative to the table's root),
    partition columns included, as an Arrow dataset (for object storage, where DuckDB's own
    reader cannot go). With ``keep``, only the row groups whose statistics do not rule it out
    (the dataset then holds every row that satisfies ``keep``, and others)."""
    full = dt.to_pyarrow_dataset()
    wanted = set(paths)
    root = dt.table_uri.rstrip("/")
    prefixes = (root + "/", root.split("://", 1)[-1] + "/")
    fragments = [
        f
        for f in full.get_fragments()
        if next((f.path[len(p) :] for p in prefixes if f.path.startswith(p)), f.path) in wanted
    ]
    if keep is not None:
        kept = (f.subset(filter=keep) for f in fragments)
        fragments = [f for f in kept if f.num_row_groups > 0]
    return ds.FileSystemDataset(fragments, full.schema, full.format, full.filesystem)
