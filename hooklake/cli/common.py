"""What every command shares: the lake option, output formats and one-line errors."""

from __future__ import annotations

import csv
import io
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import click
import orjson

from hooklake.errors import HooklakeError
from hooklake.settings import default_journal, default_lake
from hooklake.storage import is_remote

F = TypeVar("F", bound=Callable[..., Any])

FORMATS = ("table", "csv", "json")


class HooklakeGroup(click.Group):
    """Turns any error into one readable line and a non-zero exit (set HOOKLAKE_DEBUG=1 to
    see the traceback)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except BrokenPipeError:
            _closed_pipe()
        except HooklakeError as exc:
            _fail(str(exc))
        except KeyboardInterrupt:
            _fail("interrupted", code=130)
        except Exception as exc:
            if os.environ.get("HOOKLAKE_DEBUG"):
                raise
            _fail(f"{type(exc).__name__}: {exc} (set HOOKLAKE_DEBUG=1 for the traceback)")


def _closed_pipe() -> None:
    """The reader of our output went away (``hooklake sql ... | head``): stop quietly, as
    Unix tools do, with the exit status of a process that SIGPIPE ended."""
    # What is still buffered for stdout would fail again when Python flushes it on exit.
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    sys.exit(128 + 13)


def _fail(message: str, code: int = 1) -> None:
    click.echo(f"Error: {' '.join(message.split())}", err=True)
    sys.exit(code)


def _lake_value(ctx: click.Context, param: click.Parameter, value: str) -> Path | str:
    # s3://bucket/prefix stays text (a Path would fold its "//"); a directory becomes a Path.
    return value if is_remote(value) else Path(value)


def lake_option(f: F) -> F:
    return click.option(
        "--lake",
        default=default_lake,
        callback=_lake_value,
        show_default="$HOOKLAKE_LAKE or ./lake",
        help="Lake: a directory or s3://BUCKET/PREFIX (AWS_* variables give credentials, "
        "region and endpoint).",
    )(f)


def journal_option(f: F) -> F:
    return click.option(
        "--journal",
        type=click.Path(file_okay=False, path_type=Path),
        default=default_journal,
        show_default="$HOOKLAKE_JOURNAL or LAKE/_journal",
        help="Journal directory on this machine's disk (required for a lake on S3).",
    )(f)


def format_option(f: F) -> F:
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(FORMATS),
        default="table",
        show_default=True,
        help="Output format: an aligned table, CSV, or JSON (a list of objects).",
    )(f)


def _cell(value: Any) -> str:
    return "" if value is None else str(value)


def emit(columns: Sequence[str], rows: Sequence[Sequence[Any]], fmt: str) -> None:
    """Print rows in one of :data:`FORMATS`, the same way for every command."""
    if fmt == "json":
        objs = [dict(zip(columns, row, strict=True)) for row in rows]
        out = orjson.dumps(objs, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS, default=str)
        click.echo(out.decode())
    elif fmt == "csv":
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows([[_cell(v) for v in row] for row in rows])
        click.echo(buf.getvalue(), nl=False)
    else:
        cells = [[_cell(v).replace("\n", " ") for v in row] for row in rows]
        widths = [len(c) for c in columns]
        for row in cells:
            widths = [max(w, min(len(v), 60)) for w, v in zip(widths, row, strict=True)]

        def line(vals: Sequence[str]) -> str:
            # Values past 60 characters are cut to keep the columns aligned; the last column
            # aligns nothing after it, so it is shown whole (stats' descriptions end there).
            *first, last = vals
            parts = [
                (v if len(v) <= 60 else v[:59] + "…").ljust(w)
                for v, w in zip(first, widths[:-1], strict=True)
            ]
            return "  ".join([*parts, last]).rstrip()

        click.echo(line(list(columns)))
        click.echo("  ".join("-" * w for w in widths))
        for row in cells:
            click.echo(line(row))
