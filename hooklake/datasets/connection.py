"""The one place where Hooklake opens DuckDB connections and turns DuckDB errors into ours.

Every connection Hooklake opens runs in UTC, with a known number of threads and a memory
limit, and spills to the system temporary directory rather than to ``./.tmp``. Any
``duckdb.Error`` raised while reading the lake comes out as a :class:`~hooklake.errors.LakeError`
whose message says what went wrong and what to do.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path

import duckdb

from hooklake.errors import LakeError

#: Views every Lake defines; named in error messages so a user sees what can be queried.
VIEWS = ("messages", "conversations", "turns", "handovers", "rejected")


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
        con.execute("SET TimeZone = 'UTC'")
        # A progress bar would scribble over the output of `hooklake sql` and notebooks.
        # In Jupyter without ipywidgets it is already off and DuckDB refuses to touch it.
        with contextlib.suppress(duckdb.InvalidInputException):
            con.execute("SET enable_progress_bar = false")
    except duckdb.Error as exc:
        raise lake_error(exc, f"cannot open DuckDB database {database}") from None
    return con


def lake_error(exc: duckdb.Error, context: str = "query failed") -> LakeError:
    """A :class:`LakeError` that explains ``exc`` in one readable message."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    # DuckDB puts the reason first, then hints ("Did you mean ...") and a LINE/caret display.
    detail = " ".join(line for line in lines if not line.startswith("LINE ") and set(line) != {"^"})
    hint = ""
    if isinstance(exc, duckdb.CatalogException):
        hint = f" (Hooklake views: {', '.join(VIEWS)})"
    elif isinstance(exc, duckdb.IOException) and "No files found" in detail:
        hint = " (the lake's files changed since the views were made: call Lake.refresh())"
    return LakeError(f"{context}: {detail or type(exc).__name__}{hint}")


@contextmanager
def lake_errors(context: str = "query failed") -> Iterator[None]:
    """Run a block that talks to DuckDB; its errors become :class:`LakeError`."""
    try:
        yield
    except duckdb.Error as exc:
        raise lake_error(exc, context) from exc


def sql_text(name: str) -> str:
    """The text of ``hooklake/datasets/sql/<name>.sql``, shipped as package data."""
    try:
        return (
            resources.files("hooklake.datasets")
            .joinpath("sql", f"{name}.sql")
            .read_text(encoding="utf-8")
        )
    except FileNotFoundError:
        raise LakeError(
            f"Hooklake is missing its view definition sql/{name}.sql; reinstall it"
        ) from None
