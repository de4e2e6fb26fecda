"""The ``hooklake`` command: a thin shell over the library.

Each module of this package holds the commands of one area and lists them in ``COMMANDS``;
each command parses its options, calls one library function and prints the result. Errors
become one line on stderr and a non-zero exit (see :mod:`hooklake.cli.common`).
"""

from __future__ import annotations

import importlib
import pkgutil

import click

from hooklake import __version__
from hooklake.cli.common import HooklakeGroup


@click.group(
    "hooklake", cls=HooklakeGroup, context_settings={"help_option_names": ["-h", "--help"]}
)
@click.version_option(__version__, prog_name="hooklake")
def main() -> None:
    """Hooklake: Landbot MessageHooks into a lake of Delta tables and training datasets.

    \b
    Try it:   hooklake demo
    Collect:  hooklake serve --hooks hooks.toml --lake lake/
    Query:    hooklake sql "select count(*) from messages" --lake lake/
    Build:    hooklake build datasets/support-bot.toml --lake lake/ --out out/support-bot
    """


# Command modules keep heavy imports inside their functions, so discovering them is cheap.
for _info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
    if _info.name != "common":
        for _command in getattr(
            importlib.import_module(f"{__name__}.{_info.name}"), "COMMANDS", ()
        ):
            main.add_command(_command)
