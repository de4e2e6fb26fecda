"""One version of the index as readers and writers see it, and what the messages table
gained since the version it covers."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

import pyarrow as pa
from deltalake import DeltaTable
from deltalake.exceptions import DeltaError
from pyarrow.fs import FileType

from hooklake import layout, tables
from hooklake.errors import LakeError
from hooklake.index.schema import BASE, GAP_TXN, INCREMENT, VERSION_TXN, index_schema
from hooklake.storage import LakeLocation

#: Fold the increments into a new base when they hold this share of the base's rows.
FOLD_RATIO = 0.25
#: Merge the newest increments into one when there are more files than this (each query
#: opens every one; every update adds one or two). Merging at 16 rather than 64 cost the
#: flusher's 100 updates of the benchmark's day nothing (3M messages: 83.1 against 82.9 CPU-s,
#: 21 merges against 3; 1M: 44.0 against 47.6, as updates read fewer files), and spares
#: readers up to 48 files: through 62 of them a fresh Lake's point query took 92 ms, through 16
#: 75 ms.
MERGE_FILES = 16

#: Delta operations after which an update can still work from the files added and removed.
_INCREMENTAL_OPERATIONS = {"WRITE", "OPTIMIZE", "VACUUM START", "VACUUM END"}
_VACUUM = {"VACUUM START", "VACUUM END"}


@dataclass(frozen=True, order=True)
class IndexFile:
    """One data file of the index version read."""

    #: Relative to the index table's root.
    path: str
    layer: int
    generation: str
    rows: int


@dataclass(frozen=True)
class IndexState:
    """One version of the index, as a reader uses it."""

    table: DeltaTable = field(repr=False)
    #: The index table's own version.
    version: int
    #: The ``messages`` table version whose rows the index holds.
    messages_version: int
    session_gap: timedelta
    #: The newest base's generation and files, and the increments newer than it.
    base_generation: str
    base: tuple[IndexFile, ...]
    increments: tuple[IndexFile, ...]

    @property
    def base_rows(self) -> int:
        return sum(f.rows for f in self.base)

    @property
    def increment_rows(self) -> int:
        return sum(f.rows for f in self.increments)


@dataclass(frozen=True)
class Changes:
    """What the ``messages`` table gained and lost between two versions, as data files."""

    since: int
    until: int
    added: tuple[str, ...]
    removed: tuple[str, ...]
    #: The table at ``since`` and at ``until`` (the files are read from them).
    old: DeltaTable = field(repr=False)
    new: DeltaTable = field(repr=False)


def read_state(loc: LakeLocation, dt: DeltaTable | None = None) -> IndexState | None:
    """The index's latest version, or None when the lake has no index yet."""
    with tables.delta_errors(f"cannot open the index of lake {loc}", LakeError):
        if dt is None:
            dt = tables.open_table(loc, layout.INDEX)
        if dt is None:
            return None
        covered = dt.transaction_version(VERSION_TXN)
        gap_us = dt.transaction_version(GAP_TXN)
        if covered is None or gap_us is None:
            return None  # created, but killed before its first rows were committed
        stored, wanted = pa.schema(dt.schema().to_arrow()), index_schema()
        if [(f.name, f.type) for f in stored] != [(f.name, f.type) for f in wanted]:
            return None  # written by another version of Hooklake: the next update rebuilds it
        actions = pa.table(dt.get_add_actions(flatten=True))
    files = sorted(
        IndexFile(a["path"], a["partition.layer"], a["partition.generation"], a["num_records"] or 0)
        for a in actions.select(
            ["path", "partition.layer", "partition.generation", "num_records"]
        ).to_pylist()
    )
    bases = [f.generation for f in files if f.layer == BASE]
    base_generation = max(bases, default="")
    return IndexState(
        table=dt,
        version=dt.version(),
        messages_version=covered,
        session_gap=timedelta(microseconds=gap_us),
        base_generation=base_generation,
        base=tuple(f for f in files if f.layer == BASE and f.generation == base_generation),
        increments=tuple(
            f for f in files if f.layer == INCREMENT and f.generation > base_generation
        ),
    )


def changes_since(loc: LakeLocation, messages: DeltaTable, since: int) -> Changes | None:
    """The files ``messages`` (at its loaded version) added and removed since version ``since``,
    or None when only a rebuild can follow: a change other than appends and compactions (an
    erasure rewrites files and deletes rows), or a version the log no longer has."""
    until = messages.version()
    if since > until:
        return None  # the table was recreated
    with tables.delta_errors(f"cannot read the history of the messages table of {loc}", LakeError):
        try:
            old = tables.open_table(loc, layout.MESSAGES, since)
        except (DeltaError, LakeError):  # its log entries are gone (a vacuum, Delta's cleanup)
            return None
        if old is None:
            return None
        before = {f.path for f in tables.data_files(old)}
        after = {f.path for f in tables.data_files(messages)}
        removed = before - after
        # Only a commit that removes files can take rows away. When every file of `since` is
        # still there, what came after only added rows (rows added and erased since never
        # reached the index), and the history, which reads every commit (0.47 s for the 10,859
        # of the 10M-message benchmark's update), is left unread.
        operations = _operations(messages, since, until) if removed else set()
        if not operations <= _INCREMENTAL_OPERATIONS:
            return None
        # Compacted and vacuumed since: what was new can no longer be told apart. On object
        # storage, where asking costs a request per file, only a vacuum since is worth it.
        if (loc.local is not None or operations & _VACUUM) and _any_missing(loc, old, removed):
            return None
    return Changes(
        since, until, tuple(sorted(after - before)), tuple(sorted(removed)), old, messages
    )


def _operations(messages: DeltaTable, since: int, until: int) -> set[str]:
    """The operations of the commits after ``since``; a write that did not append counts as
    an operation of its own (``WRITE Overwrite``, say), which no update follows."""
    out: set[str] = set()
    for entry in messages.history(limit=until - since):
        if not since < entry.get("version", -1) <= until:
            continue
        operation = str(entry.get("operation"))
        mode = entry.get("operationParameters", {}).get("mode")
        out.add(f"{operation} {mode}" if operation == "WRITE" and mode != "Append" else operation)
    return out


def _any_missing(loc: LakeLocation, table: DeltaTable, paths: set[str]) -> bool:
    """Whether any of the data files ``paths`` of the messages table is gone from storage."""
    if loc.local is not None:
        return any(not (loc.local / layout.MESSAGES / p).exists() for p in paths)
    dataset = tables.file_dataset(table, sorted(paths))
    found = dataset.filesystem.get_file_info(dataset.files)
    return len(found) < len(paths) or any(f.type == FileType.NotFound for f in found)


def needs_fold(state: IndexState) -> bool:
    """Whether the increments have grown enough to rewrite the whole index as one base."""
    return state.increment_rows > FOLD_RATIO * max(state.base_rows, 1)


def merge_run(state: IndexState) -> tuple[IndexFile, ...]:
    """The newest increments' files that a merge rewrites as one increment, once there are
    more than :data:`MERGE_FILES`; none before.

    Size-tiered, as log-structured stores compact: the run takes the newest generations and
    stops at the first older one holding more rows than all those newer than it. Merged
    increments thus roughly double in size from one level to the next, each row is rewritten
    about log2(increment rows / update rows) times, and a merge costs what the merged
    increments hold, never the base (a fold, which rewrites everything, waits until the
    increments hold :data:`FOLD_RATIO` of the base).
    """
    if len(state.increments) <= MERGE_FILES:
        return ()
    sizes: dict[str, int] = {}
    for f in state.increments:
        sizes[f.generation] = sizes.get(f.generation, 0) + f.rows
    run: set[str] = set()
    total = 0
    for generation in sorted(sizes, reverse=True):
        if len(run) >= 2 and sizes[generation] > total:
            break
        run.add(generation)
        total += sizes[generation]
    return tuple(f for f in state.increments if f.generation in run)
