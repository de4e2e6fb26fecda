"""Hooklake's ground floor for DuckDB: the one place that opens connections, loads the
packaged SQL and turns DuckDB errors into ours, for the collector and the read side alike.

Every connection Hooklake opens runs in UTC, with a known number of threads and a memory
limit, and spills to the system temporary directory rather than to ``./.tmp``. Any
``duckdb.Error`` raised while reading the lake comes out as a :class:`~hooklake.errors.LakeError`
whose message says what went wrong and what to do.

The SQL lives in ``hooklake/sql/``: ``views/`` defines the views a Lake runs, in the order
:mod:`hooklake.datasets.lake` lists; ``queries/`` holds the statements run over them (builds,
``explore``, ``stats``, index updates) and the collector's extraction; ``spark/`` the Spark
SQL of the Spark engine (:mod:`hooklake.spark`), each file naming the DuckDB one it mirrors.
``{{name}}`` placeholders are filled with Hooklake's own view names and generated SQL, never
with values (values are bound as parameters).
"""

from __future__ import annotations

import contextlib
import functools
import os
import tempfile
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.dataset as ds
from deltalake import DeltaTable

from hooklake import tables
from hooklake.errors import LakeError
from hooklake.storage import LakeLocation

#: Views every Lake defines; named in error messages so a user sees what can be queried.
VIEWS = ("messages", "conversations", "turns", "turn_pairs", "handovers", "rejected")


def connect(
    database: str | Path = ":memory:",
    *,
    threads: int | None = None,
    memory_limit: str | None = None,
    read_only: bool = False,
) -> duckdb.DuckDBPyConnection:
    """Open a DuckDB connection configured the Hooklake way.

    ``threads`` defaults to every core, ``memory_limit`` (e.g. ``"2GB"``) to
    ``$HOOKLAKE_MEMORY_LIMIT`` or DuckDB's own default (80% of RAM). Queries bigger than the
    limit spill to a ``hooklake-duckdb-*`` folder of their own in the system temporary
    directory.
    """
    # DuckDB creates the folder on the first spill and deletes it, contents and all, when the
    # database closes: each connection needs its own, or one would delete another's files.
    spill = Path(tempfile.gettempdir()) / f"hooklake-duckdb-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    config: dict[str, str | bool | int | float | list[str]] = {"temp_directory": str(spill)}
    if threads is not None:
        if threads < 1:
            raise LakeError(f"threads must be at least 1, not {threads}")
        config["threads"] = threads
    limit = memory_limit or os.environ.get("HOOKLAKE_MEMORY_LIMIT")
    if limit:
        config["memory_limit"] = limit
    try:
        con = duckdb.connect(str(database), read_only=read_only, config=config)
        # TimeZone needs the built-in ICU extension, which loads only after the connection opens.
        con.execute("SET GLOBAL TimeZone = 'UTC'")
        # Defining the views binds each one, and every binding of a view over the lake's files
        # would parse the same Parquet footers again. Data files never change once written, so
        # a cached footer is never stale. (Parquet is built in: LOAD downloads nothing.) Set
        # globally, so every connection to the database shares the one cache.
        con.execute("LOAD parquet")
        con.execute("SET GLOBAL parquet_metadata_cache = true")
        configure_session(con)
    except duckdb.Error as exc:
        raise lake_error(exc, f"cannot open DuckDB database {database}") from None
    return con


def configure_session(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    """Settings each connection holds for itself (the database's own are set by connect)."""
    # A progress bar would scribble over the output of `hooklake sql` and notebooks.
    # In Jupyter without ipywidgets it is already off and DuckDB refuses to touch it.
    with contextlib.suppress(duckdb.InvalidInputException):
        con.execute("SET enable_progress_bar = false")
    return con


#: The database each process's Lakes share, one per (process, threads, memory limit).
_SHARED: dict[tuple[int, int | None, str | None], duckdb.DuckDBPyConnection] = {}
_SHARED_LOCK = threading.Lock()


def shared_connection(
    *, threads: int | None = None, memory_limit: str | None = None
) -> duckdb.DuckDBPyConnection:
    """A new connection to the in-memory database this process's Lakes share, configured as
    :func:`connect` configures its own.

    Connections to one database keep their own views, registrations and variables, and share
    its Parquet footer cache, so a Lake opened after another parses none of the footers that
    one read. Parsing them again was most of what made a point query from a fresh Lake slower
    on a 10M-message lake than on a 1M one (and opening and closing a database of its own
    cost each Lake ~18 ms). ``threads`` and the memory limit belong to the database, so each
    combination has its own; a forked child makes its own rather than touch its parent's.
    """
    limit = memory_limit or os.environ.get("HOOKLAKE_MEMORY_LIMIT")
    key = (os.getpid(), threads, limit)
    with _SHARED_LOCK:
        root = _SHARED.get(key)
        if root is None:
            root = _SHARED[key] = connect(threads=threads, memory_limit=limit)
        try:
            # One thread at a time: a DuckDB connection object is not safe to share.
            con = root.cursor()
        except duckdb.Error as exc:
            raise lake_error(exc, "cannot open a DuckDB connection") from None
    return configure_session(con)


#: The units DuckDB reports its memory limit in.
_UNITS = {"bytes": 1, "KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "TiB": 2**40}


def memory_limit_bytes(con: duckdb.DuckDBPyConnection) -> float:
    """``con``'s memory limit in bytes, read back from DuckDB (which reports it rounded, e.g.
    ``"953.6 MiB"`` for ``"1GB"``)."""
    ((setting,),) = con.execute("SELECT current_setting('memory_limit')").fetchall()
    number, _, unit = str(setting).partition(" ")
    return float(number) * _UNITS.get(unit, 1)


def lake_error(
    exc: duckdb.Error, context: str = "query failed", vanished: str | None = None
) -> LakeError:
    """A :class:`LakeError` that explains ``exc`` in one readable message. ``vanished`` is the
    whole message for files of the table version read that are gone (the caller knows why)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    # DuckDB puts the reason first, then hints ("Did you mean ...") and a LINE/caret display.
    detail = " ".join(line for line in lines if not line.startswith("LINE ") and set(line) != {"^"})
    hint = ""
    if isinstance(exc, duckdb.CatalogException):
        hint = f" (Hooklake views: {', '.join(VIEWS)})"
    elif isinstance(exc, duckdb.IOException) and "No files found" in detail:
        if vanished is not None:
            return LakeError(vanished)
        hint = (
            " (the lake's files changed since it was opened, as a vacuum does: run again, "
            "or call Lake.refresh() in Python)"
        )
    return LakeError(f"{context}: {detail or type(exc).__name__}{hint}")


@contextmanager
def lake_errors(context: str = "query failed", vanished: str | None = None) -> Iterator[None]:
    """Run a block that talks to DuckDB; its errors become :class:`LakeError` (see
    :func:`lake_error`)."""
    try:
        yield
    except duckdb.Error as exc:
        raise lake_error(exc, context, vanished) from exc


def view_sql(name: str, **names: str) -> str:
    """``hooklake/sql/views/<name>.sql``, its ``{{placeholders}}`` replaced by ``names``."""
    return _sql("views", name, names)


def query_sql(name: str, **names: str) -> str:
    """``hooklake/sql/queries/<name>.sql``, its ``{{placeholders}}`` replaced by ``names``."""
    return _sql("queries", name, names)


def spark_sql(name: str, **names: str) -> str:
    """``hooklake/sql/spark/<name>.sql``: the Spark SQL twin of a view or query, beside it."""
    return _sql("spark", name, names)


def _sql(folder: str, name: str, names: dict[str, str]) -> str:
    text = _packaged_sql(folder, name)
    for key, value in names.items():
        text = text.replace("{{" + key + "}}", value)
    return text


@functools.cache
def _packaged_sql(folder: str, name: str) -> str:
    """A packaged SQL file's text, read once per process: every ``Lake`` defines a dozen views
    from them, and reading the files was 2 ms of a 40 ms point query from a fresh ``Lake``."""
    try:
        return (
            resources.files("hooklake")
            .joinpath("sql", folder, f"{name}.sql")
            .read_text(encoding="utf-8")
        )
    except FileNotFoundError:
        raise LakeError(f"Hooklake is missing sql/{folder}/{name}.sql; reinstall it") from None


def register(con: duckdb.DuckDBPyConnection, name: str, data: object) -> None:
    """Make ``name`` on ``con`` read ``data`` (an Arrow table or dataset), replacing whatever
    view or registration had that name."""
    forget(con, name)
    con.register(name, data)


def register_parquet(
    con: duckdb.DuckDBPyConnection, name: str, paths: list[str], hive_types: dict[str, str]
) -> None:
    """Make ``name`` on ``con`` read the Parquet files ``paths`` (at least one), with the
    partition columns ``hive_types`` (column -> DuckDB type) from their directory names."""
    forget(con, name)
    con.execute(f"SET VARIABLE {name} = ?", [paths])
    con.execute(
        view_sql("table_files", view=name, variable=name, hive_types=hive_types_sql(hive_types))
    )


def hive_types_sql(hive_types: dict[str, str]) -> str:
    """``read_parquet``'s ``hive_types`` argument for ``hive_types`` (column -> DuckDB type)."""
    return "{" + ", ".join(f"'{column}': {kind}" for column, kind in hive_types.items()) + "}"


def register_table_files(
    con: duckdb.DuckDBPyConnection,
    name: str,
    loc: LakeLocation,
    table: str,
    dt: DeltaTable | None,
    paths: list[str],
    schema: pa.Schema,
    hive_types: dict[str, str],
    keep: ds.Expression | None = None,
) -> None:
    """Make ``name`` on ``con`` read the data files ``paths`` (relative to the table's root) of
    ``table``'s version ``dt``; ``schema`` gives the columns when there are none. ``keep``
    (object storage only) leaves out the row groups whose statistics rule it out."""
    if dt is None or not paths:
        register(con, name, schema.empty_table())
    elif loc.local is not None:
        # On local disk DuckDB's own Parquet reader over the files is several times faster
        # than an Arrow dataset, and reads exactly the same rows.
        root = loc.local / table
        register_parquet(con, name, [str(root / p) for p in paths], hive_types)
    else:
        # DuckDB cannot reach object storage without an extension download; an Arrow dataset
        # of the files can, with filter and projection pushdown.
        with tables.delta_errors(f"cannot read the {table} table", LakeError):
            register(con, name, tables.file_dataset(dt, paths, keep))


def forget(con: duckdb.DuckDBPyConnection, name: str) -> None:
    """Drop ``name`` from ``con``, whether a view or a registered Arrow object."""
    with contextlib.suppress(duckdb.Error):
        con.execute(f"DROP VIEW IF EXISTS {name}")
    with contextlib.suppress(duckdb.Error):
        con.unregister(name)
