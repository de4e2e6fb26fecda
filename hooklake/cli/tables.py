"""Commands that change the lake's tables as a whole: ``migrate``."""

from __future__ import annotations

from pathlib import Path

import click

from hooklake.cli.common import emit, format_option, lake_option


@click.command()
@lake_option
@format_option
def migrate(lake: Path, fmt: str) -> None:
    """Turn a lake written by Hooklake 0.1 (plain Parquet files) into Delta tables, in place.

    Every row is kept; the old files are deleted only after the tables hold their rows.
    Running it again (after an interruption, or on a migrated lake) is safe. Stop the
    collectors writing to the lake first.

    \b
    Example:
      hooklake migrate --lake lake/
    """
    from hooklake.migrate import migrate as run

    report = run(lake)
    emit(["table", "migrated"], report.rows(), fmt)


COMMANDS = [migrate]
