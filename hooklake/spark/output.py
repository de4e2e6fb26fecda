"""Where ``hooklake index --engine spark --out`` may write.

Spark's overwrite deletes the whole target folder before writing, so an ``--out`` that names
the lake, the folder of other datasets or the working directory would be erased with
everything in it. The ordering replaces only a folder that is empty or holds what an earlier
Spark write left there (its part files, markers and their checksums); anything else stops the
command before Spark deletes a byte. The folder is looked at through the cluster's own Hadoop
filesystem, the one that would delete it, so ``s3a://`` and local paths are checked alike.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hooklake.errors import SparkError
from hooklake.spark.jvm import java_message, missing_filesystem

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

#: The names Spark's Parquet writer (and its commit protocols) leaves in a folder it wrote.
_WRITTEN_BY_SPARK = (
    "part-", ".part-", "_SUCCESS", "._SUCCESS", "_temporary", "_committed_", "_started_",
)  # fmt: skip


def check_replaceable(spark: SparkSession, target: str) -> None:
    """Raise :class:`SparkError` unless ``target`` is missing, empty or a folder of Spark's
    own output, which ``mode("overwrite")`` may replace."""
    jvm: Any = spark.sparkContext._jvm
    conf = spark.sparkContext._jsc.hadoopConfiguration()
    try:
        path = jvm.org.apache.hadoop.fs.Path(target)
        fs = path.getFileSystem(conf)
        if not fs.exists(path):
            return
        if not fs.getFileStatus(path).isDirectory():
            raise SparkError(f"--out {target} is a file: pass a folder for the ordered rows")
        others = sorted(
            str(status.getPath().getName())
            for status in fs.listStatus(path)
            if not str(status.getPath().getName()).startswith(_WRITTEN_BY_SPARK)
        )
    except SparkError:
        raise
    except Exception as exc:  # py4j's Py4JJavaError: a bad URI, no filesystem for the scheme
        error = str(exc)
        fix = missing_filesystem(error) or java_message(error)
        raise SparkError(f"cannot write the ordered rows to --out {target}: {fix}") from exc
    if others:
        shown = ", ".join(others[:3]) + (", ..." if len(others) > 3 else "")
        raise SparkError(
            f"--out {target} holds files Spark did not write ({shown}); writing the ordered "
            "rows replaces the whole folder: pass a new or empty folder"
        )
