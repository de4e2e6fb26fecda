"""``hooklake index --engine spark``: the conversation ordering as a Spark job.

The conversation index itself (an incrementally maintained Delta table) is DuckDB's; this
command runs the ordering it stores on Spark, so a lake too big for one machine can be ordered
where its data lives.
"""

from __future__ import annotations

from pathlib import Path

import click

from hooklake.cli.common import emit, format_option, lake_option


@click.command("index")
@lake_option
@click.option(
    "--engine",
    type=click.Choice(["spark"]),
    required=True,
    help="Order the messages as a Spark job (hooklake[spark], Java 17; local unless started "
    "by spark-submit).",
)
@click.option(
    "--gap",
    "gap_minutes",
    type=click.IntRange(min=1),
    default=30,
    show_default=True,
    help="Session gap in minutes: inactivity that starts a new conversation.",
)
@click.option(
    "--as-of",
    "as_of",
    metavar="VERSION|TIME",
    default=None,
    help="Read the lake as it was: a version of its messages table or an ISO time.",
)
@click.option(
    "--out",
    default=None,
    help="Write the ordered rows there as Parquet (a directory or s3a://…), replacing it.",
)
@format_option
def index_command(
    lake: Path | str,
    engine: str,
    gap_minutes: int,
    as_of: str | None,
    out: str | None,
    fmt: str,
) -> None:
    """Deduplicate the lake's messages, order them and cut them into conversations on Spark:
    the rows the views' ordering gives (conversation_id, position, role, ...), counted, and
    written as Parquet with --out.

    \b
    Examples:
      hooklake index --engine spark --lake lake/
      hooklake index --engine spark --lake lake/ --gap 45 --out out/ordered
    """
    from hooklake.spark import spark_session
    from hooklake.spark.order import order_lake

    version: int | str | None = as_of
    if as_of is not None and as_of.strip().isdigit():
        version = int(as_of)
    report = order_lake(spark_session(), lake, version=version, session_gap=gap_minutes, out=out)
    emit(["stat", "value"], report.rows(), fmt)


COMMANDS = [index_command]
