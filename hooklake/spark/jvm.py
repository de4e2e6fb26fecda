"""What an error from Spark's JVM says, in one line a user can act on.

py4j hands Python the Java exception as text: a line naming the call (``An error occurred
while calling o39.parquet.``), the exception, then its whole stack. Hooklake's errors keep the
exception's own line. A missing filesystem (``s3a://`` on pyspark from PyPI, which ships no S3
connector) and a Python worker that cannot import Hooklake (a node without it, or a
``PYSPARK_PYTHON`` naming another interpreter) get their fix: the text alone names a class or
ends a worker's traceback, and says nothing of what to install where.
"""

from __future__ import annotations

import re

_PY4J_CALL = re.compile(r"^An error occurred while calling \S+\.$")
_NO_FILESYSTEM = re.compile(
    r'No FileSystem for scheme "(?P<scheme>[\w.+-]+)"'
    r"|Class org\.apache\.hadoop\.fs\.(?P<s3a>s3a)\.S3AFileSystem not found"
)
_NO_MODULE = re.compile(r"ModuleNotFoundError: No module named '(?P<module>[\w.]+)'")
_MAX_CHARS = 400


def java_message(text: str) -> str:
    """The first line of ``text`` that says what went wrong: not py4j's call line, not a
    stack frame, cut to a few hundred characters."""
    for line in text.splitlines():
        line = line.strip().removeprefix(":").strip()
        if line and not _PY4J_CALL.match(line) and not line.startswith(("at ", "...")):
            return line[:_MAX_CHARS]
    return " ".join(text.split())[:_MAX_CHARS]


def missing_filesystem(text: str) -> str | None:
    """What to do when ``text`` says Spark has no filesystem for a path's scheme, else None."""
    m = _NO_FILESYSTEM.search(text)
    if m is None:
        return None
    scheme = m.group("scheme") or m.group("s3a")
    return (
        f"this Spark has no filesystem for {scheme}:// (pyspark from PyPI ships no S3 "
        "connector): run on a cluster that has one (EMR, Dataproc and Databricks do) or add "
        "hadoop-aws for Spark's Hadoop version (spark-submit --packages "
        "org.apache.hadoop:hadoop-aws:VERSION), and write s3a:// paths"
    )


def missing_module(text: str) -> str | None:
    """What to do when ``text`` says a Spark Python worker could not import a module (the
    worker unpickles the build's function, which needs Hooklake and its dependencies)."""
    m = _NO_MODULE.search(text)
    if m is None:
        return None
    return (
        f"Spark's Python workers cannot import {m.group('module')} (No module named "
        f"'{m.group('module')}'): install hooklake[spark], the same version, in the Python "
        "Spark runs on every node (PYSPARK_PYTHON, spark.pyspark.python) or ship a packed "
        "virtualenv with --archives (README: Spark)"
    )
