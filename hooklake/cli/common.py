"""What every command shares: the lake option, output formats and one-line errors."""

from __future__ import annotations

import csv
import io
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click
import orjson

from hooklake.errors import HooklakeError
from hooklake.settings import default_journal, default_lake
from hooklake.storage import is_remote

F = TypeVar("F", bound=Callable[..., Any])

FORMATS = ("table", "csv", "json")


class HooklakeGroup(click.Group):
    """Turns any error into one readable line and a non-zero exit: 2 for a wrong command line,
    1 (or the error's own) otherwise. With HOOKLAKE_DEBUG=1 the traceback comes first."""

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: click.Context | None = None,
        **extra: Any,
    ) -> click.Context:
        # The group's own options and arguments are parsed here, outside invoke().
        try:
            return super().make_context(info_name, args, parent, **extra)
        except click.exceptions.NoArgsIsHelpError:
            raise  # `hooklake` alone prints the help
        except click.ClickException as exc:
            _fail(_click_message(exc), code=exc.exit_code)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.exceptions.NoArgsIsHelpError, click.Abort):
            raise
        except click.ClickException as exc:
            _fail(_click_message(exc), code=exc.exit_code)
        except BrokenPipeError:
            _closed_pipe()
        except HooklakeError as exc:
            _fail(str(exc))
        except KeyboardInterrupt:
            _fail("interrupted", code=130)
        except Exception as exc:
            hint = "" if _debug() else " (set HOOKLAKE_DEBUG=1 for the traceback)"
            _fail(f"{type(exc).__name__}: {exc}{hint}")


def _debug() -> bool:
    return bool(os.environ.get("HOOKLAKE_DEBUG"))


def _click_message(exc: click.ClickException) -> str:
    """Click's message for ``exc``; a usage error also names the command's help, in place of
    Click's usage synopsis and hint lines."""
    message = exc.format_message()
    if isinstance(exc, click.UsageError):
        path = exc.ctx.command_path if exc.ctx is not None else "hooklake"
        message = f"{message.removesuffix('.')} (see {path} --help)"
    return message


def _closed_pipe() -> NoReturn:
    """The reader of our output went away (``hooklake sql ... | head``): stop quietly, as
    Unix tools do, with the exit status of a process that SIGPIPE ended."""
    # What is still buffered for stdout would fail again when Python flushes it on exit.
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    sys.exit(128 + 13)


def _fail(message: str, code: int = 1) -> NoReturn:
    """Print ``message`` as one line (after the traceback of the error being handled, with
    HOOKLAKE_DEBUG=1) and exit with ``code``."""
    if _debug() and sys.exc_info()[1] is not None:
        traceback.print_exc()
        sys.stderr.flush()
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


def _escapes() -> dict[int, str]:
    # What customers write reaches the analyst's terminal through the table: a control
    # character there acts instead of showing (a Windows "\r\n" sends the cursor back over the
    # row, an ESC sequence can rewrite the screen) and a bidi override reverses the columns
    # after it. Line breaks and tabs become spaces; the others show as escapes.
    controls = [*range(0x20), *range(0x7F, 0xA0)]
    codes = [*controls, *range(0x202A, 0x202F), *range(0x2066, 0x206A)]
    table = {c: f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}" for c in codes}
    table.update({ord(c): " " for c in "\n\r\t\v\f\x85\u2028\u2029"})
    return table


_TABLE_ESCAPES = _escapes()


def _table_cell(value: Any) -> str:
    return _cell(value).replace("\r\n", "\n").translate(_TABLE_ESCAPES)


def _unique_names(columns: Sequence[str]) -> list[str]:
    """``columns`` with each repeat renamed with ``_1`` suffixes (``a``, ``a_1``), never to a
    name the query gave. A JSON object keeps one value per key: ``SELECT * FROM conversations
    c LEFT JOIN handovers h ON ...`` printed the handover's null conversation_id over the
    conversation's."""
    taken = set(columns)
    out: list[str] = []
    for name in columns:
        if name in out:
            while name in taken:
                name += "_1"
            taken.add(name)
        out.append(name)
    return out


def emit(columns: Sequence[str], rows: Sequence[Sequence[Any]], fmt: str) -> None:
    """Print rows in one of :data:`FORMATS`, the same way for every command."""
    if fmt == "json":
        keys = _unique_names(columns)
        objs = [dict(zip(keys, row, strict=True)) for row in rows]
        out = orjson.dumps(objs, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS, default=str)
        click.echo(out.decode())
    elif fmt == "csv":
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows([[_cell(v) for v in row] for row in rows])
        click.echo(buf.getvalue(), nl=False)
    else:
        cells = [[_table_cell(v) for v in row] for row in rows]
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
