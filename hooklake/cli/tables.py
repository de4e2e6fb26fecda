"""Commands that change the lake's tables as a whole: ``migrate``, ``forget``."""

from __future__ import annotations

from pathlib import Path

import click

from hooklake.cli.common import emit, format_option, journal_option, lake_option


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


@click.command()
@lake_option
@journal_option
@format_option
@click.option("--customer", "customer_id", type=int, required=True, help="Landbot customer id.")
@click.option("--channel", "channel_id", type=int, default=None, help="Only in this channel.")
def forget(
    lake: Path | str, journal: Path | None, fmt: str, customer_id: int, channel_id: int | None
) -> None:
    """Erase a customer: delete their messages and rejects from the lake's tables.

    The local journal is flushed first, so nothing of theirs waits there. The deleted rows
    leave the disk (or bucket) with the next `hooklake compact --vacuum` past the retention;
    with --retention-hours 0, at once. Run it on every machine with a collector journal.

    \b
    Example:
      hooklake forget --lake lake/ --customer 4242
      hooklake compact --lake lake/ --vacuum --retention-hours 0
    """
    from hooklake.forget import forget as run

    report = run(lake, customer_id, channel_id, journal=journal)
    emit(["stat", "value"], report.rows(), fmt)


@click.command("index")
@lake_option
@format_option
@click.option("--rebuild", is_flag=True, help="Recompute the whole index from the raw tables.")
@click.option(
    "--gap-minutes",
    type=click.IntRange(min=1),
    default=None,
    help="Session gap in minutes (default: the index's own, 30 for a new one); "
    "another gap rebuilds it.",
)
def index_command(lake: Path | str, fmt: str, rebuild: bool, gap_minutes: int | None) -> None:
    """Create or update the conversation index: the lake's messages deduplicated and in
    conversation order, which the views read instead of recomputing them on every query.

    An update recomputes only the customers whose messages arrived since the last one; a
    collector's flusher does the same by itself once the index exists. Safe to interrupt
    and to run beside collectors and other readers.

    \b
    Example:
      hooklake index --lake lake/
      hooklake index --lake lake/ --rebuild --gap-minutes 60
    """
    from datetime import timedelta

    from hooklake.index import update_index

    gap = timedelta(minutes=gap_minutes) if gap_minutes is not None else None
    report = update_index(lake, rebuild=rebuild, session_gap=gap)
    emit(["stat", "value"], report.rows(), fmt)


COMMANDS = [migrate, forget, index_command]
