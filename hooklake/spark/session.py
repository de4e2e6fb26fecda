"""Getting a SparkSession, or one clear line saying why there is none.

Inside ``spark-submit`` (or a notebook that already made a session) Hooklake uses the session
it finds, with the cluster's own master and configuration. Anywhere else it starts a local one
(``local[*]`` unless told otherwise) after checking what pyspark would otherwise report as a
page of JVM output: that pyspark is installed (``pip install 'hooklake[spark]'``) and that a
Java 17 or newer is on ``JAVA_HOME`` or ``PATH``.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import sys
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from hooklake.errors import SparkError
from hooklake.spark.jvm import java_message

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

#: Spark 4 runs on Java 17 and 21.
MIN_JAVA = 17
INSTALL_PYSPARK = "pip install 'hooklake[spark]'"
INSTALL_JAVA = (
    "install Java 17 (Debian/Ubuntu: apt-get install openjdk-17-jre-headless) "
    "or point JAVA_HOME at one"
)
#: Settings of a session Hooklake starts itself. Builds do their own partitioning, so the
#: shuffle default of 200 partitions would only add empty tasks on one machine.
LOCAL_CONF: Mapping[str, str] = {
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    # Local mode talks to itself: never bind the machine's public address.
    "spark.driver.host": "127.0.0.1",
    "spark.driver.bindAddress": "127.0.0.1",
}
_VERSION = re.compile(r'version "(\d+)(?:\.(\d+))?')


def require_pyspark() -> None:
    """Raise :class:`SparkError` naming the extra to install when pyspark is missing."""
    try:
        import pyspark  # noqa: F401
    except ImportError:
        raise SparkError(f"Spark builds need pyspark: {INSTALL_PYSPARK}") from None


def java_major(version_output: str) -> int | None:
    """The major version in ``java -version`` output (``1.8.0_292`` is 8), or None."""
    m = _VERSION.search(version_output)
    if m is None:
        return None
    major = int(m.group(1))
    return int(m.group(2) or 0) if major == 1 else major


def find_java() -> str | None:
    """The java Spark's launcher would run: ``$JAVA_HOME/bin/java``, else ``java`` on PATH."""
    home = os.environ.get("JAVA_HOME")
    if home:
        candidate = Path(home) / "bin" / "java"
        return str(candidate) if os.access(candidate, os.X_OK) else None
    return shutil.which("java")


def check_java() -> int:
    """The major version of the Java Spark would start, or :class:`SparkError` when there is
    none or it is older than :data:`MIN_JAVA`."""
    java = find_java()
    if java is None:
        where = (
            f"JAVA_HOME={os.environ['JAVA_HOME']} has no bin/java"
            if os.environ.get("JAVA_HOME")
            else "no java on PATH and JAVA_HOME is not set"
        )
        raise SparkError(f"Spark needs Java {MIN_JAVA} or newer, and {where}: {INSTALL_JAVA}")
    try:
        out = subprocess.run(
            [java, "-version"], capture_output=True, text=True, timeout=60, check=False
        )
    except OSError as exc:
        raise SparkError(f"cannot run {java} ({exc}): {INSTALL_JAVA}") from None
    major = java_major(out.stderr + out.stdout)
    if major is None:
        raise SparkError(f"cannot tell the version of {java}: {INSTALL_JAVA}")
    if major < MIN_JAVA:
        raise SparkError(
            f"Spark needs Java {MIN_JAVA} or newer, and {java} is Java {major}: {INSTALL_JAVA}"
        )
    return major


def _under_spark_submit() -> bool:
    # spark-submit starts the JVM first and tells the Python driver where to find it.
    return "PYSPARK_GATEWAY_PORT" in os.environ


def spark_session(
    master: str | None = None, config: Mapping[str, str] | None = None
) -> SparkSession:
    """The active session, the one ``spark-submit`` started, or a new local one on
    ``master`` (default ``local[*]``) with ``config`` on top of :data:`LOCAL_CONF`.

    Every session Hooklake uses runs its SQL in UTC (``spark.sql.session.timeZone``).
    """
    require_pyspark()
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is None:
        builder = SparkSession.builder.appName("hooklake")
        if not _under_spark_submit():
            check_java()
            # Workers must run this interpreter (the one Hooklake is installed in), and a
            # local driver needs no address other machines can reach.
            os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
            os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
            builder = builder.master(master or "local[*]")
            for key, value in {**LOCAL_CONF, **(config or {})}.items():
                builder = builder.config(key, value)
        try:
            with quiet():
                active = builder.getOrCreate()
        except Exception as exc:  # py4j and pyspark raise many kinds; all mean "no session"
            raise SparkError(f"cannot start Spark: {java_message(str(exc))}") from exc
        if not _under_spark_submit():
            # FATAL, not ERROR: a failed task's ERROR lines are Java and Python stacks, dozens
            # of lines per task before the one line Hooklake prints for the same failure
            # (HOOKLAKE_DEBUG=1 prints it with its traceback).
            active.sparkContext.setLogLevel("FATAL")
    active.conf.set("spark.sql.session.timeZone", "UTC")
    return active


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Silence pyspark's warning that it does not fully support pandas 3: Hooklake hands
    Spark Arrow batches, never pandas frames."""
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message="PySpark does not yet fully support pandas", category=FutureWarning
        )
        yield
