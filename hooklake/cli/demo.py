"""``hooklake demo``: see the whole path work in one command."""

from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("hooklake-demo"),
    show_default=True,
    help="Where the demo puts its lake, dataset and collector log.",
)
@click.option(
    "--customers",
    type=click.IntRange(1, 100_000),
    default=120,
    show_default=True,
    help="Simulated Landbot customers.",
)
@click.option("--seed", type=int, default=7, show_default=True, help="Traffic seed.")
@click.option(
    "--recipe",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Recipe to build (default: datasets/support-bot.toml if present).",
)
def demo(directory: Path, customers: int, seed: int, recipe: Path | None) -> None:
    """Start the collector on loopback, send it simulated Landbot traffic over HTTP, then
    show the lake and build a dataset. Leaves no process behind.

    \b
    Example:
      hooklake demo --dir /tmp/hooklake-demo --customers 200
    """
    from hooklake.demo import run_demo

    run_demo(directory, customers=customers, seed=seed, recipe=recipe, echo=click.echo)


COMMANDS = [demo]
