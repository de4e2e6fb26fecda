"""Commands that read or tidy the lake: ``sql``, ``stats``, ``compact``."""

from __future__ import annotations

from pathlib import Path

import click

from hooklake.cli.common import emit, format_option, lake_option

gap_option = click.option(
    "--gap-minutes",
    type=click.IntRange(1),
    default=30,
    show_default=True,
    help="Inactivity that splits a customer's messages into conversations.",
)


@click.command()
@lake_option
@format_option
@gap_option
@click.argument("query")
def sql(lake: Path, fmt: str, gap_minutes: int, query: str) -> None:
    """Run a SQL QUERY over the lake's views and print the rows.

    Views: messages, conversations, turns, handovers, rejected (DuckDB SQL).

    \b
    Examples:
      hooklake sql "select * from conversations order by started_at desc limit 10"
      hooklake sql --format json "select role, text from turns where conversation_id = '1-2-3'"
      hooklake sql --gap-minutes 60 "select count(*) from conversations" --lake lake/
    """
    from hooklake.datasets.lake import Lake

    with Lake(lake, session_gap=gap_minutes) as lk:
        result = lk.query(query)
    emit(result.columns, result.rows, fmt)


@click.command()
@lake_option
@format_option
@gap_option
def stats(lake: Path, fmt: str, gap_minutes: int) -> None:
    """Print what the lake holds: messages, conversations, channels, time range, rejects and
    the files of each partition.

    \b
    Example:
      hooklake stats --lake lake/
    """
    from hooklake.datasets.lake import Lake

    with Lake(lake, session_gap=gap_minutes) as lk:
        figures = lk.stats()
    emit(["stat", "value"], figures.rows(), fmt)


@click.command()
@lake_option
@format_option
@click.option(
    "--grace-seconds",
    type=click.FloatRange(0),
    default=600,
    show_default=True,
    help="Keep replaced files this long so queries that already listed them can finish.",
)
def compact(lake: Path, fmt: str, grace_seconds: float) -> None:
    """Merge each partition's small Parquet files into few large ones sorted by conversation.

    Safe while a collector runs and while others query: files are swapped atomically and the
    replaced ones deleted only after the grace period (by a later run). Running it twice does
    nothing the second time.

    \b
    Example:
      hooklake compact --lake lake/
    """
    from hooklake.collector.compact import compact as run

    report = run(lake, grace=grace_seconds)
    emit(["stat", "value"], report.rows(), fmt)


COMMANDS = [sql, stats, compact]
