"""A lake as DuckDB views: how analysts and dataset builds read what was collected.

::

    from hooklake import Lake

    lake = Lake("lake/", session_gap=timedelta(minutes=30))
    lake.sql("select * from conversations where has_agent").df()

The views (``messages``, ``conversations``, ``turns``, ``turn_pairs``, ``handovers``,
``rejected``) are defined in ``hooklake/sql/views/*.sql`` over the lake's Delta tables
(:mod:`hooklake.tables`). They read *one version* of each table: the latest when the Lake is
made (or :meth:`Lake.refresh` is called), or the one named by ``as_of``. Commits made
afterwards appear only after a refresh; a query over that version keeps working while
compaction rewrites files (vacuum keeps removed files for a retention period). DuckDB reads
each version through a pyarrow dataset of its files, so filters and projections are pushed
down and nothing is downloaded at run time.
"""

from __future__ import annotations

import os
import re
from collections import defaultdict
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
from deltalake import DeltaTable

from hooklake import layout, tables
from hooklake.db import (
    configure_session,
    forget,
    lake_errors,
    query_sql,
    register_table_files,
    shared_connection,
    view_sql,
)
from hooklake.errors import ConfigError, LakeError
from hooklake.fields import view_fields
from hooklake.index import (
    IndexState,
    changes_since,
    define_index_views,
    microseconds,
    pending_rows,
)
from hooklake.index import read_state as read_index_state
from hooklake.storage import LakeLocation, lake_location
from hooklake.wording import counted, utc_text

DEFAULT_SESSION_GAP = timedelta(minutes=30)

# Order matters: each file builds on the views of the ones before it.
# (message_rows.sql, the stored messages, comes first when the views need it.)
_RAW_VIEWS = ("rejected_rows", "macros")
_ORDERING_VIEWS = ("messages_unique", "messages_ordered")
_SUMMARY_VIEWS = ("conversation_counts", "turn_rows", "turn_pair_rows", "handover_rows")
_PUBLIC_VIEWS = ("messages", "conversations", "turns", "turn_pairs", "handovers", "rejected")
# Fields the views read from the stored message, where the field table says they are.
_FIELD_SQL = view_fields()
# The name each table's version is registered under in DuckDB (read by *_rows.sql).
_TABLE_NAMES = {
    layout.MESSAGES: "hooklake_message_files",
    layout.REJECTED: "hooklake_rejected_files",
}
#: The partition column of the lake's tables, as DuckDB reads it from directory names.
_DATE = {tables.PARTITION_COLUMN: "DATE"}
_KNOWN_ENTRIES = {layout.MESSAGES, layout.REJECTED, layout.INDEX, layout.JOURNAL_DIR}
#: What ``as_of`` accepts: a version of ``messages``, or a time (a datetime or ISO text).
AsOf = int | datetime | str
#: ISO text that is a version, not a time ("-1" too: it is refused as a version).
_VERSION_TEXT = re.compile(r"\s*[+-]?[0-9]+\s*")


@dataclass(frozen=True)
class PartitionFiles:
    """The files of one date partition of one table, in the version the Lake reads."""

    table: str
    date: str
    files: int
    rows: int
    bytes: int


@dataclass(frozen=True)
class QueryResult:
    """A query's column names and all of its rows."""

    columns: list[str]
    rows: list[tuple[Any, ...]]


@dataclass(frozen=True)
class LakeStats:
    """What ``hooklake stats`` reports about a lake."""

    path: Path | str
    session_gap: timedelta
    #: Messages after removing duplicate deliveries.
    messages: int
    #: Stored message rows, duplicate deliveries included.
    stored_rows: int
    conversations: int
    customers: int
    channels: int
    first_message_at: datetime | None
    last_message_at: datetime | None
    rejects: int
    partitions: tuple[PartitionFiles, ...]
    #: The table versions read, and each table's history (see :class:`TableHistory`).
    versions: tuple[tables.TableVersion, ...] = ()
    history: tuple[TableHistory, ...] = ()
    #: What the views read the conversation index as (empty: no index was read).
    index: str = ""

    @property
    def duplicates(self) -> int:
        return self.stored_rows - self.messages

    def rows(self) -> list[tuple[str, Any]]:
        """The figures as (name, value) pairs, partitions last, for printing."""
        out: list[tuple[str, Any]] = [
            ("lake", str(self.path)),
            ("messages", self.messages),
            ("duplicate deliveries", self.duplicates),
            ("conversations", self.conversations),
            ("session gap", str(self.session_gap)),
            ("customers", self.customers),
            ("channels", self.channels),
            ("first message", self.first_message_at),
            ("last message", self.last_message_at),
            ("rejects", self.rejects),
            ("conversation index", self.index or "none (`hooklake index` makes queries faster)"),
        ]
        for v in self.versions:
            when = f"{v.committed_at:%Y-%m-%d %H:%M:%S} UTC"
            out.append((f"{v.table} version", f"{v.version} (committed {when})"))
        for h in self.history:
            ops = ", ".join(f"{n} {op}" for op, n in sorted(h.operations.items()))
            out.append((f"{h.table} history", f"{_count(h.commits, 'commit')}: {ops}"))
        for p in self.partitions:
            out.append(
                (
                    f"{p.table}/date={p.date}",
                    f"{_count(p.files, 'file')}, {_count(p.rows, 'row')}, {_size(p.bytes)}",
                )
            )
        return out


@dataclass(frozen=True)
class TableHistory:
    """A summary of a table's commits up to the version read."""

    table: str
    commits: int
    #: Delta operation (WRITE, OPTIMIZE, DELETE, ...) -> number of commits.
    operations: dict[str, int]
    first_commit_at: datetime | None
    last_commit_at: datetime | None


def _count(n: int, noun: str) -> str:
    return counted(n, noun, thousands=True)


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def as_session_gap(value: timedelta | int) -> timedelta:
    """A session gap from a timedelta or a whole number of minutes, at least one second (so two
    conversations of a customer never start in the same millisecond of a conversation_id)."""
    if isinstance(value, bool) or not isinstance(value, timedelta | int):
        raise ConfigError(f"session_gap must be a timedelta or minutes as an int, not {value!r}")
    gap = timedelta(minutes=value) if isinstance(value, int) else value
    if gap < timedelta(seconds=1):
        raise ConfigError(f"session_gap must be at least one second, not {gap}")
    return gap


class Lake:
    """A Hooklake lake, readable through DuckDB views.

    ``path`` is a directory or ``s3://bucket/prefix`` (credentials and endpoint from the
    ``AWS_*`` environment variables). ``session_gap`` (a timedelta, or minutes as an int) is the
    inactivity that splits a customer's messages into conversations. ``as_of`` reads an earlier
    state of the lake: a version of the ``messages`` table (the ``rejected`` table is then read
    as it was when that version was committed) or a time (a datetime or ISO text; both tables as
    they were then). ``threads`` and ``memory_limit`` (e.g. ``"2GB"``) tune the DuckDB database
    the Lake's connection belongs to: the Lakes of a process with the same two share one
    (:func:`hooklake.db.shared_connection`), and with it the Parquet footers any of them read.

    When the lake has a conversation index (``hooklake index``; :mod:`hooklake.index`), the
    views read it instead of deduplicating and ordering every stored row on every query; rows
    the index does not cover yet are computed for the customers they touch when the Lake is
    made or refreshed. ``index=False`` (and any ``as_of``) recomputes from the raw tables; the
    rows are the same either way.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | LakeLocation,
        session_gap: timedelta | int = DEFAULT_SESSION_GAP,
        *,
        threads: int | None = None,
        memory_limit: str | None = None,
        as_of: AsOf | None = None,
        index: bool = True,
    ) -> None:
        self.location = lake_location(path)
        self.use_index = index
        self.path: Path | str = self.location.local or self.location.uri
        self.session_gap = as_session_gap(session_gap)
        self.as_of = as_of
        self._tables: dict[str, DeltaTable | None] = {}
        #: Tables not loaded yet, with the version to load (see :meth:`_table`).
        self._deferred: dict[str, int] = {}
        self._index: IndexState | None = None
        self._pending: pa.Table | None = None
        self._con = shared_connection(threads=threads, memory_limit=memory_limit)
        try:
            self.refresh()
        except BaseException:
            self._con.close()
            raise

    def __repr__(self) -> str:
        return f"Lake({str(self.path)!r}, session_gap={self.session_gap!r})"

    def __enter__(self) -> Lake:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def connection(self) -> duckdb.DuckDBPyConnection:
        """The Lake's own DuckDB connection, with the views defined. Its views, registrations
        and variables are its own; settings of the database (``SET GLOBAL``, threads, memory
        limit) reach every Lake that shares it."""
        return self._con

    def files(self, table: str = layout.MESSAGES) -> list[tables.DataFile]:
        """The data files of the version of ``table`` the views read."""
        dt = self._table(table)
        return tables.data_files(dt) if dt is not None else []

    def versions(self) -> tuple[tables.TableVersion, ...]:
        """The version of each table the views read (tables not created yet are left out)."""
        out = []
        for name in layout.TABLES:
            dt = self._table(name)
            if dt is not None:
                out.append(tables.version_of(self.location, name, dt))
        return tuple(out)

    def _table(self, name: str) -> DeltaTable | None:
        """The version of table ``name`` this Lake reads, loaded now if it was deferred."""
        version = self._deferred.get(name)
        if version is not None:  # (two threads asking at once both load it: harmless)
            with tables.delta_errors(f"cannot open the {name} table of {self.location}", LakeError):
                self._tables[name] = tables.open_table(self.location, name, version)
            self._deferred.pop(name, None)
        return self._tables.get(name)

    def refresh(self) -> None:
        """Read the latest version of each table (or the one ``as_of`` names) from now on.

        Connections passed to :meth:`attach` keep the version they were given; attach them again
        to refresh them.
        """
        check_lake(self.location)
        self._deferred = {}
        use_index = self.use_index and self.as_of is None
        state = read_index_state(self.location) if use_index else None
        if state is not None and self._covers_latest(state):
            # The views read the index alone: the messages table's log (which grows with
            # every commit the collector makes) is replayed only if something asks for it.
            self._tables = _open_tables(self.location, None, skip=(layout.MESSAGES,))
            self._deferred = {layout.MESSAGES: state.messages_version}
            self._index, self._pending = state, None
        else:
            self._tables = _open_tables(self.location, self.as_of)
            self._index, self._pending = self._open_index(state)
        self._define_views(self._con)

    @property
    def index(self) -> IndexState | None:
        """The conversation index version the views read (None: they recompute everything
        from the raw tables, because the lake has no index, ``index=False`` or ``as_of``)."""
        return self._index

    @property
    def reads_index_order(self) -> bool:
        """Whether the views read conversations, turns and what builds render as the index
        stores them: it was computed for this Lake's session gap. With another gap they reuse
        only its deduplication and cut conversations again."""
        return self._index is not None and self._index.session_gap == self.session_gap

    @property
    def pending_rows(self) -> int:
        """Rows this Lake computed for customers whose messages the index does not cover yet."""
        return 0 if self._pending is None else self._pending.num_rows

    def _covers_latest(self, state: IndexState) -> bool:
        """Whether the index ``state`` was computed for this Lake's session gap and covers the
        messages table's latest version, told without loading the table: its log holds no
        commit after the one the index covers. False when that cannot be told so cheaply (on
        object storage); :meth:`_open_index` then decides."""
        if state.session_gap != self.session_gap:
            return False
        return tables.is_latest_version(self.location, layout.MESSAGES, state.messages_version)

    def _open_index(self, state: IndexState | None) -> tuple[IndexState | None, pa.Table | None]:
        """The index to read (``state``, the latest version, or None when the views must not
        read it), and the rows of customers it is behind on (computed here)."""
        messages = self._tables.get(layout.MESSAGES)
        if state is None or messages is None or state.messages_version > messages.version():
            return None, None
        if state.messages_version == messages.version():
            return state, None
        changes = changes_since(self.location, messages, state.messages_version)
        if changes is None:
            return None, None  # an erasure since: only `hooklake index` (a rebuild) can follow
        return state, pending_rows(self._con, self.location, state, changes)

    def attach(self, con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
        """Define the views on ``con``, a DuckDB connection of your own, and return it.

        The views are temporary (they vanish with the connection and never enter a database
        file) and read the same table versions as this Lake. They do not depend on the
        connection's time zone. Attaching a second Lake to the same connection replaces the
        first one's views.
        """
        self._define_views(con)
        return con

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A new connection to the Lake's database with the views defined, for another thread."""
        return self.attach(configure_session(self._con.cursor()))

    def sql(self, query: str, params: object = None) -> duckdb.DuckDBPyRelation:
        """Run ``query`` over the views; values in ``params`` are bound to ``?`` or ``$name``.

        Returns a DuckDB relation, so ``.df()``, ``.arrow()`` and ``.fetchall()`` work. Errors in
        the query text raise :class:`LakeError` here; errors found while the rows are computed
        come from DuckDB when you fetch them (use :meth:`query` to get both as LakeError).
        """
        with self._errors("query failed"):
            rel = self._con.sql(query, params=params)
        if rel is None:
            # DuckDB gives None for text without a statement (empty, or only comments), which
            # would fail later as an AttributeError far from the cause.
            raise LakeError(f"the query holds no SQL statement: {query.strip()[:60]!r}")
        return rel

    def query(self, query: str, params: object = None) -> QueryResult:
        """Run ``query`` and fetch every row; any failure raises :class:`LakeError`."""
        rel = self.sql(query, params)
        with self._errors("query failed"):
            return QueryResult(columns=list(rel.columns), rows=rel.fetchall())

    def stats(self) -> LakeStats:
        """Counts of messages, conversations and rejects, table versions and history, and the
        files of each partition."""
        with self._errors("cannot compute lake statistics"):
            # The stored rows: not defined with the views when they read an up-to-date index.
            self._define_stored_messages(self._con)
            # An aggregate without GROUP BY returns exactly one row.
            (row,) = self._con.sql(query_sql("stats")).fetchall()
        messages, stored, conversations, customers, channels, first, last, rejects = row
        return LakeStats(
            path=self.path,
            session_gap=self.session_gap,
            messages=messages,
            stored_rows=stored,
            conversations=conversations,
            customers=customers,
            channels=channels,
            first_message_at=first,
            last_message_at=last,
            rejects=rejects,
            partitions=self._partition_files(),
            versions=self.versions(),
            history=self._history(),
            index=self._index_summary(),
        )

    def _index_summary(self) -> str:
        state = self._index
        if state is None:
            stale = self.use_index and self.as_of is None
            if stale and tables.open_table(self.location, layout.INDEX) is not None:
                return (
                    "not read: `hooklake index` must rebuild it (another version of Hooklake "
                    "wrote it, or rows were erased while it was behind)"
                )
            return ""
        text = (
            f"version {state.version}, covers messages version {state.messages_version}, "
            f"gap {state.session_gap}, {_count(state.base_rows, 'row')} in the base, "
            f"{_count(state.increment_rows, 'row')} in "
            f"{_count(len(state.increments), 'increment file')}"
        )
        if self.pending_rows:
            text += f", {_count(self.pending_rows, 'row')} computed on reading"
        return text

    def close(self) -> None:
        self._con.close()

    def _errors(self, context: str) -> AbstractContextManager[None]:
        """:func:`~hooklake.db.lake_errors` for this Lake: files of an older version (``as_of``)
        that are gone were vacuumed, and the message says so."""
        vanished = None
        if self.as_of is not None:
            messages = self._tables.get(layout.MESSAGES)
            version = f" (messages version {messages.version()})" if messages is not None else ""
            vanished = (
                f"cannot read lake {self.path} as of {self.as_of}{version}: the files of that "
                "version were vacuumed (hooklake compact --vacuum deletes them once "
                "--retention-hours have passed); pick a later --as-of, or none to read the latest"
            )
        return lake_errors(context, vanished)

    def _partition_files(self) -> tuple[PartitionFiles, ...]:
        out: list[PartitionFiles] = []
        for table in layout.TABLES:
            by_date: dict[str, list[tables.DataFile]] = defaultdict(list)
            for f in self.files(table):
                by_date[f.date].append(f)
            for date, group in sorted(by_date.items()):
                out.append(
                    PartitionFiles(
                        table=table,
                        date=date,
                        files=len(group),
                        rows=sum(f.rows for f in group),
                        bytes=sum(f.bytes for f in group),
                    )
                )
        return tuple(out)

    def _history(self) -> tuple[TableHistory, ...]:
        out = []
        for name in layout.TABLES:
            dt = self._table(name)
            if dt is None:
                continue
            with tables.delta_errors(f"cannot read the history of the {name} table", LakeError):
                # history() of a table loaded at an older version lists that version's past.
                entries = dt.history()
            ops: dict[str, int] = defaultdict(int)
            for e in entries:
                ops[str(e.get("operation", "?"))] += 1
            times = [datetime.fromtimestamp(e["timestamp"] / 1000, UTC) for e in entries]
            first, last = min(times, default=None), max(times, default=None)
            out.append(TableHistory(name, len(entries), dict(ops), first, last))
        return tuple(out)

    def _define_views(self, con: duckdb.DuckDBPyConnection) -> None:
        with self._errors(f"cannot define the views of lake {self.path}"):
            con.execute(
                "SET VARIABLE hooklake_session_gap_us = ?", [microseconds(self.session_gap)]
            )
            if layout.MESSAGES not in self._deferred:
                self._define_stored_messages(con)
            else:  # and none from an earlier version either
                forget(con, "hooklake_message_rows")
                forget(con, _TABLE_NAMES[layout.MESSAGES])
            self._register_table(con, layout.REJECTED, _TABLE_NAMES[layout.REJECTED])
            for view in _RAW_VIEWS:
                con.execute(view_sql(view, **_FIELD_SQL))
            state = self._index
            if state is None:
                views: tuple[str, ...] = (*_ORDERING_VIEWS, *_SUMMARY_VIEWS)
            else:
                define_index_views(con, self.location, state, self._pending)
                if self.reads_index_order:
                    # Everything up to conversations' counts and turns is stored.
                    views = ("index_ordered", "index_summaries")
                else:
                    # The index is deduplicated already; only the ordering windows run again.
                    views = ("index_unique", *_ORDERING_VIEWS[1:], *_SUMMARY_VIEWS)
            for view in (*views, *_PUBLIC_VIEWS):
                con.execute(view_sql(view, **_FIELD_SQL))

    def _define_stored_messages(self, con: duckdb.DuckDBPyConnection) -> None:
        """Define ``hooklake_message_rows`` on ``con``: the stored rows, duplicates included.
        Views that read the index up to date never need it, so then it waits for a caller
        that does (:meth:`stats`)."""
        self._register_table(con, layout.MESSAGES, _TABLE_NAMES[layout.MESSAGES])
        con.execute(view_sql("message_rows", **_FIELD_SQL))

    def _register_table(self, con: duckdb.DuckDBPyConnection, table: str, name: str) -> None:
        """Make ``name`` on ``con`` read the version of ``table`` this Lake reads."""
        paths = [f.path for f in self.files(table)]
        schema = tables.table_schema(table)
        dt = self._table(table)
        register_table_files(con, name, self.location, table, dt, paths, schema, _DATE)


def _open_tables(
    loc: LakeLocation, as_of: AsOf | None, skip: tuple[str, ...] = ()
) -> dict[str, DeltaTable | None]:
    """Each table but those in ``skip`` at its latest version, or at ``as_of``."""
    out: dict[str, DeltaTable | None] = {}
    with tables.delta_errors(f"cannot open the tables of lake {loc}", LakeError):
        for table in layout.TABLES:
            if table not in skip:
                out[table] = tables.open_table(loc, table)
        if as_of is None:
            return out
        at: datetime | str | int = as_of
        messages = out[layout.MESSAGES]
        if isinstance(as_of, str) and _VERSION_TEXT.fullmatch(as_of):
            as_of = int(as_of)
        if isinstance(as_of, int) and not isinstance(as_of, bool):
            if messages is None or not 0 <= as_of <= messages.version():
                raise LakeError(_no_version(loc, as_of, messages))
            # Opened at that version (a LakeError if a vacuum expired its log entries).
            messages = out[layout.MESSAGES] = tables.open_table(loc, layout.MESSAGES, as_of)
            assert messages is not None  # it has a later version
            at = tables.version_of(loc, layout.MESSAGES, messages).committed_at
            rest = [t for t in layout.TABLES if t != layout.MESSAGES]
        else:
            at = _as_time(as_of)
            rest = list(layout.TABLES)
        for table in rest:
            dt = out[table]
            if dt is None:
                continue
            # The commit times of the history, not the log files' modification times (which
            # delta-rs's own time travel uses): they are the times builds record.
            # In whole milliseconds, as they are stored: a commit time given back as text (the
            # card's, or the first commit's an error names) finds its own commit again.
            stamp = (at - _EPOCH) // timedelta(milliseconds=1)
            history = dt.history()
            versions = [e["version"] for e in history if e["timestamp"] <= stamp]
            if versions:
                dt.load_as_version(max(versions))
            elif table == layout.MESSAGES:
                first = min((int(e["timestamp"]) for e in history), default=None)
                since = ""
                if first is not None:
                    # To the millisecond, as stored: as_of reads the time back to this commit.
                    when = utc_text(_EPOCH + timedelta(milliseconds=first), "milliseconds")
                    since = f": its first commit is at {when}"
                raise LakeError(f"lake {loc} has no version at or before {utc_text(at)}{since}")
            else:
                out[table] = None  # the table did not exist yet at that time
    return out


def _no_version(loc: LakeLocation, as_of: int, messages: DeltaTable | None) -> str:
    have = (
        "it does not exist yet"
        if messages is None
        else f"its versions are 0 to {messages.version()}"
    )
    whole = ": versions are whole numbers from 0" if as_of < 0 else ""
    return f"the messages table of lake {loc} has no version {as_of}{whole} ({have})"


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _as_time(value: AsOf) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    try:
        t = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(
            f"as-of {value!r} is neither a table version (a whole number from 0) nor an ISO time "
            "such as 2026-11-27T10:00:00Z"
        ) from None
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def check_lake(loc: LakeLocation) -> None:
    path = loc.local
    if path is None:
        return  # a bucket prefix: an empty one is an empty lake
    if not path.exists():
        raise LakeError(
            f"no lake at {path}: the directory does not exist "
            "(pass --lake or set HOOKLAKE_LAKE to the directory your collector writes)"
        )
    if not path.is_dir():
        raise LakeError(f"{path} is a file, not a lake directory")
    entries = {p.name for p in path.iterdir()}
    if entries and not entries & _KNOWN_ENTRIES:
        raise LakeError(
            f"{path} is not a Hooklake lake: it has no messages/, rejected/ or _journal/ "
            "(pass --lake or set HOOKLAKE_LAKE to the directory your collector writes)"
        )
    for table in layout.TABLES:
        if tables.is_legacy(loc, table):
            raise LakeError(
                f"the lake {path} was written by Hooklake 0.1 (plain Parquet files): run "
                f"`hooklake migrate --lake {path}` once to turn it into Delta tables"
            )
