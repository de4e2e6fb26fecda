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
@click.option(
    "--engine",
    type=click.Choice(["duckdb", "spark"]),
    default="duckdb",
    show_default=True,
    help="spark: run the ordering the index holds as a Spark job (hooklake[spark], Java 17; "
    "local unless started by spark-submit), counted and, with --out, written as Parquet.",
)
@click.option(
    "--as-of",
    metavar="VERSION|TIME",
    default=None,
    help="With --engine spark: order the lake as it was (a messages version or an ISO time).",
)
@click.option(
    "--out",
    default=None,
    help="With --engine spark: write the ordered rows there as Parquet, into a new folder or "
    "one an earlier run wrote (it is replaced; a folder holding anything else is refused).",
)
def index_command(
    lake: Path | str,
    fmt: str,
    rebuild: bool,
    gap_minutes: int | None,
    engine: str,
    as_of: str | None,
    out: str | None,
) -> None:
    """Create or update the conversation index: the lake's messages deduplicated and in
    conversation order, which the views read instead of recomputing them on every query.

    An update recomputes only the customers whose messages arrived since the last one; a
    collector's flusher does the same by itself once the index exists. Safe to interrupt
    and to run beside collectors and other readers.

    With --engine spark the same ordering runs as a Spark job over the whole lake, for lakes
    no single machine should order (the incremental index table itself is kept by DuckDB).

    \b
    Example:
      hooklake index --lake lake/
      hooklake index --lake lake/ --rebuild --gap-minutes 60
      hooklake index --lake lake/ --engine spark --out out/ordered
    """
    from datetime import timedelta

    if engine == "spark":
        if rebuild:
            # Spark orders the lake; it never writes the index, so it has nothing to rebuild.
            raise click.UsageError("--rebuild goes with the index itself: leave out --engine spark")
        from hooklake.spark.order import order_lake

        version: int | str | None = as_of
        if as_of is not None and as_of.strip().isdigit():
            version = int(as_of)
        ordered = order_lake(lake, version=version, session_gap=gap_minutes or 30, out=out)
        emit(["stat", "value"], ordered.rows(), fmt)
        return
    if as_of is not None or out is not None:
        raise click.UsageError("--as-of and --out go with --engine spark")
    from hooklake.index import update_index

    gap = timedelta(minutes=gap_minutes) if gap_minutes is not None else None
    report = update_index(lake, rebuild=rebuild, session_gap=gap)
    emit(["stat", "value"], report.rows(), fmt)


COMMANDS = [migrate, forget, index_command]
