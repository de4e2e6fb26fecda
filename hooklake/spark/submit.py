"""The entry point for ``spark-submit``: the ``hooklake`` command, run as a Spark application.

::

    spark-submit --master yarn --deploy-mode client \
        $(python -c 'import hooklake.spark.submit as m; print(m.__file__)') \
        build datasets/support-bot.toml --lake s3a://bucket/hooklake --out out/support-bot

``build`` and ``index`` run on the session spark-submit started (its master and ``--conf``
settings); ``--engine spark`` is implied. Any other command runs as it would on its own.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

#: Commands that run on Spark when submitted.
SPARK_COMMANDS = ("build", "index")


def arguments(argv: Sequence[str]) -> list[str]:
    """``argv`` with ``--engine spark`` added to a build or index that names no engine."""
    args = list(argv)
    if (
        args
        and args[0] in SPARK_COMMANDS
        and not any(a == "--engine" or a.startswith("--engine=") for a in args)
    ):
        args[1:1] = ["--engine", "spark"]
    return args


def main(argv: Sequence[str] | None = None) -> None:
    from hooklake.cli import main as hooklake

    hooklake(arguments(sys.argv[1:] if argv is None else argv), prog_name="hooklake")


if __name__ == "__main__":
    main()
