"""A lake directory as DuckDB views: how analysts and dataset builds read what was collected.

::

    from hooklake import Lake

    lake = Lake("lake/", session_gap=timedelta(minutes=30))
    lake.sql("select * from conversations where has_agent").df()

The views (``messages``, ``conversations``, ``turns``, ``handovers``, ``rejected``) are defined
in ``hooklake/datasets/sql/*.sql`` over the lake's sealed Parquet files. They are a *snapshot*:
the file list is taken when the Lake is made (or :meth:`Lake.refresh` is called), so files the
collector writes afterwards appear only after a refresh, and a query over the snapshot keeps
working while compaction replaces files (replaced files stay on disk for a grace period).
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb

from hooklake import layout
from hooklake.datasets.connection import connect, lake_errors, sql_text
from hooklake.errors import ConfigError, LakeError
from hooklake.fields import json_sql

DEFAULT_SESSION_GAP = timedelta(minutes=30)

# Order matters: each file builds on the views of the ones before it.
_VIEW_FILES = (
    "message_rows", "rejected_rows", "messages", "conversations", "turns", "handovers", "rejected",
)  # fmt: skip
# Fields the views read from the stored message, where the field table says they are.
_FIELD_SQL = {"event_agent_id": json_sql("event_agent_id", "m.raw")}
# The files of each table and schema version are read by a view of their own (files.sql):
# (view, table, schema version).
_FILE_VIEWS = (
    ("hooklake_message_files_v2", layout.MESSAGES, 2),
    ("hooklake_message_files_v1", layout.MESSAGES, 1),
    ("hooklake_rejected_files", layout.REJECTED, 1),
)
_KNOWN_ENTRIES = {layout.MESSAGES, layout.REJECTED, layout.JOURNAL_DIR}


@dataclass(frozen=True)
class PartitionFiles:
    """The live files of one date partition of one table."""

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

    path: Path
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
        ]
        for p in self.partitions:
            out.append(
                (
                    f"{p.table}/date={p.date}",
                    f"{_count(p.files, 'file')}, {_count(p.rows, 'row')}, {_size(p.bytes)}",
                )
            )
        return out


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}" + ("" if n == 1 else "s")


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
    """A Hooklake lake directory, readable through DuckDB views.

    ``session_gap`` (a timedelta, or minutes as an int) is the inactivity that splits a
    customer's messages into conversations. ``threads`` and ``memory_limit`` (e.g. ``"2GB"``)
    tune the Lake's own DuckDB connection.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        session_gap: timedelta | int = DEFAULT_SESSION_GAP,
        *,
        threads: int | None = None,
        memory_limit: str | None = None,
    ) -> None:
        self.path = Path(path).absolute()
        self.session_gap = as_session_gap(session_gap)
        _check_lake_dir(self.path)
        self._files: dict[str, list[Path]] = {}
        self._con = connect(threads=threads, memory_limit=memory_limit)
        self.refresh()

    def __repr__(self) -> str:
        return f"Lake({str(self.path)!r}, session_gap={self.session_gap!r})"

    def __enter__(self) -> Lake:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def connection(self) -> duckdb.DuckDBPyConnection:
        """The Lake's own DuckDB connection, with the views defined."""
        return self._con

    def files(self, table: str = layout.MESSAGES) -> list[Path]:
        """The files of ``table`` the views currently read (the snapshot)."""
        return list(self._files.get(table, []))

    def refresh(self) -> None:
        """Re-list the lake's files so the views see what was written since.

        Connections passed to :meth:`attach` keep their own snapshot; attach them again to
        refresh them.
        """
        _check_lake_dir(self.path)
        self._files = {table: layout.live_files(self.path, table) for table in layout.TABLES}
        self._define_views(self._con)

    def attach(self, con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
        """Define the views on ``con``, a DuckDB connection of your own, and return it.

        The views are temporary (they vanish with the connection and never enter a database
        file) and read the same file snapshot as this Lake. They do not depend on the
        connection's time zone. Attaching a second Lake to the same connection replaces the
        first one's views.
        """
        self._define_views(con)
        return con

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A new connection to the Lake's database with the views defined, for another thread."""
        return self.attach(self._con.cursor())

    def sql(self, query: str, params: object = None) -> duckdb.DuckDBPyRelation:
        """Run ``query`` over the views; values in ``params`` are bound to ``?`` or ``$name``.

        Returns a DuckDB relation, so ``.df()``, ``.arrow()`` and ``.fetchall()`` work. Errors in
        the query text raise :class:`LakeError` here; errors found while the rows are computed
        come from DuckDB when you fetch them (use :meth:`query` to get both as LakeError).
        """
        with lake_errors("query failed"):
            return self._con.sql(query, params=params)

    def query(self, query: str, params: object = None) -> QueryResult:
        """Run ``query`` and fetch every row; any failure raises :class:`LakeError`."""
        with lake_errors("query failed"):
            rel = self._con.sql(query, params=params)
            return QueryResult(columns=list(rel.columns), rows=rel.fetchall())

    def stats(self) -> LakeStats:
        """Counts of messages, conversations and rejects, and the files of each partition."""
        with lake_errors("cannot compute lake statistics"):
            # An aggregate without GROUP BY returns exactly one row.
            (row,) = self._con.sql(sql_text("stats")).fetchall()
            partitions = self._partition_files()
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
            partitions=partitions,
        )

    def close(self) -> None:
        self._con.close()

    def _partition_files(self) -> tuple[PartitionFiles, ...]:
        out: list[PartitionFiles] = []
        for table in layout.TABLES:
            files = self._files.get(table, [])
            if not files:
                continue
            rows: Counter[str] = Counter()
            for name, n in self._con.execute(
                "SELECT file_name, num_rows FROM parquet_file_metadata(?)",
                [[str(f) for f in files]],
            ).fetchall():
                rows[name] += n
            by_date: dict[str, list[Path]] = {}
            for f in files:
                by_date.setdefault(f.parent.name.removeprefix("date="), []).append(f)
            for date, group in sorted(by_date.items()):
                out.append(
                    PartitionFiles(
                        table=table,
                        date=date,
                        files=len(group),
                        rows=sum(rows[str(f)] for f in group),
                        bytes=sum(_file_size(f) for f in group),
                    )
                )
        return tuple(out)

    def _define_views(self, con: duckdb.DuckDBPyConnection) -> None:
        files = self._files
        with lake_errors(f"cannot define the views of lake {self.path}"):
            con.execute(
                "SET VARIABLE hooklake_session_gap_us = ?", [_microseconds(self.session_gap)]
            )
            for view, table, version in _FILE_VIEWS:
                paths = [
                    str(p)
                    for p in files.get(table, [])
                    if table != layout.MESSAGES or layout.schema_version(p.name) == version
                ]
                con.execute(f"SET VARIABLE {view} = ?", [paths])
                if paths:
                    con.execute(_template("files", view=view, variable=view))
                else:
                    schema = layout.MESSAGE_SCHEMAS[version]
                    if table != layout.MESSAGES:
                        schema = layout.REJECT_SCHEMA
                    con.register(f"{view}_schema", schema.empty_table())
                    con.execute(_template("files_empty", view=view))
            for name in _VIEW_FILES:
                con.execute(_template(name, **_FIELD_SQL))


def _template(name: str, **names: str) -> str:
    """A packaged SQL file whose {{placeholders}} are our own view and variable names."""
    text = sql_text(name)
    for key, value in names.items():
        text = text.replace("{{" + key + "}}", value)
    return text


def _microseconds(gap: timedelta) -> int:
    return (gap.days * 86_400 + gap.seconds) * 1_000_000 + gap.microseconds


def _file_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:  # removed by compaction after its grace period
        return 0


def _check_lake_dir(path: Path) -> None:
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
