"""``hooklake build``: make a training dataset from a recipe."""

from __future__ import annotations

from pathlib import Path

import click

from hooklake.cli.common import lake_option


@click.command("build")
@click.argument("recipe", type=click.Path(dir_okay=False, path_type=Path))
@lake_option
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder the dataset files go into.  [default: out/<recipe name>]",
)
@click.option(
    "--progress/--no-progress",
    default=True,
    show_default=True,
    help="Show a progress bar on stderr.",
)
@click.option(
    "--as-of",
    "as_of",
    metavar="VERSION|TIME",
    default=None,
    help="Read the lake as it was: a version of its messages table (the card and manifest "
    "name the one a build read) or an ISO time such as 2026-11-27T10:00:00Z.",
)
@click.option(
    "--incremental",
    is_flag=True,
    help="Add the conversations that closed since the previous incremental build in --out "
    "as new shards (train-00001.jsonl, ...) and update the card and manifest.",
)
@click.option(
    "--closed-only",
    is_flag=True,
    help="Leave out conversations that are still open (a message within the recipe's gap of "
    "the newest message in the lake), as incremental builds do.",
)
@click.option(
    "--engine",
    type=click.Choice(["duckdb", "spark"]),
    default="duckdb",
    show_default=True,
    help="Run the build in DuckDB on this machine, or as a Spark job (hooklake[spark], Java 17; "
    "local unless started by spark-submit): the same files either way.",
)
def build_command(
    recipe: Path,
    lake: Path,
    out_dir: Path | None,
    progress: bool,
    as_of: str | None,
    incremental: bool,
    closed_only: bool,
    engine: str,
) -> None:
    """Build the dataset RECIPE describes (a TOML file in datasets/) from the lake.

    Writes train/validation/test files in the recipe's format (openai, hf, sharegpt,
    prompt-completion, preference, feedback), a README.md dataset card and a manifest.json,
    then prints one summary line. The same lake and recipe always give the same bytes;
    --as-of rebuilds from an earlier version after new traffic has landed. --incremental
    adds only what closed since the last run.

    \b
    Examples:
      hooklake build datasets/support-bot.toml --lake lake/ --out out/support-bot
      hooklake build datasets/bot-preference.toml --lake lake/ --out out/bot-preference
      hooklake build datasets/support-bot.toml --lake lake/ --as-of 12 --out out/again
      hooklake build datasets/support-bot.toml --lake lake/ --out out/daily --incremental
      hooklake build datasets/support-bot.toml --lake lake/ --engine spark
    """
    from hooklake.datasets.build import build

    version: int | str | None = as_of
    if as_of is not None and as_of.strip().isdigit():
        version = int(as_of)
    report = build(
        recipe,
        lake,
        out_dir,
        progress=progress,
        as_of=version,
        incremental=incremental,
        closed_only=closed_only,
        engine=engine,
    )
    click.echo(report.summary())
    click.echo(report.files_line())


COMMANDS = [build_command]
