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

    Views: messages, conversations, turns, turn_pairs, handovers, rejected (DuckDB SQL).

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
    "--vacuum",
    is_flag=True,
    help="Then delete the files (and log entries) no version younger than the retention needs.",
)
@click.option(
    "--retention-hours",
    type=click.IntRange(0),
    default=168,
    show_default=True,
    help="With --vacuum: keep files older versions need for this long (readers, --as-of).",
)
def compact(lake: Path, fmt: str, vacuum: bool, retention_hours: int) -> None:
    """Merge each partition's small files into few large ones (Delta optimize), in one commit.

    Safe while collectors write and others query: readers keep the version they opened. With
    --vacuum, files that versions younger than --retention-hours do not need are deleted, and
    the log entries of older versions; queries, builds and --as-of reaching further back than
    that will fail.

    \b
    Examples:
      hooklake compact --lake lake/
      hooklake compact --lake lake/ --vacuum --retention-hours 720
    """
    from datetime import timedelta

    from hooklake.collector.compact import compact as run

    report = run(lake, vacuum=vacuum, retention=timedelta(hours=retention_hours))
    emit(["stat", "value"], report.rows(), fmt)


COMMANDS = [sql, stats, compact]
