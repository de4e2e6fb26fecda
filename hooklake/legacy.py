"""Lakes written by Hooklake 0.1: plain Parquet files, read here only to migrate them.

::

    lake/messages/date=YYYY-MM-DD/<writer>-<NNNNNNNN>.parquet      schema version 1
    lake/messages/date=YYYY-MM-DD/<writer>-<NNNNNNNN>.v2.parquet   schema version 2
    lake/rejected/date=YYYY-MM-DD/<writer>-<NNNNNNNN>.parquet

Files whose name starts with ``.`` (temporaries being written) or ``_`` (tombstones) are not
data. 0.1's compaction wrote a merged file, then a tombstone ``_superseded-<id>.json`` naming
the files it replaced, which were deleted after a grace period: tombstoned files are skipped.
Version 1 message files lack the columns version 2 added (samurai, latitude, longitude).
"""

from __future__ import annotations

from pathlib import Path

import orjson
import pyarrow as pa

from hooklake import layout

TOMBSTONE_PREFIX = "_superseded-"
#: The message schema of Hooklake 0.1 files: what version 2 has, without its added columns.
MESSAGE_SCHEMA_V1 = pa.schema(
    list(layout.MESSAGE_SCHEMA)[: layout.MESSAGE_SCHEMA.get_field_index("source") + 1]
)


def schema_version(name: str) -> int:
    """The schema version of a message file, from its name (``*.v2.parquet``: version 2)."""
    stem = name.removesuffix(".parquet")
    _, dot, version = stem.rpartition(".v")
    return int(version) if dot and version.isdigit() else 1


def file_schema(table: str, name: str) -> pa.Schema:
    """The schema a 0.1 data file of ``table`` named ``name`` was written with."""
    if table != layout.MESSAGES:
        return layout.SCHEMAS[table]
    return MESSAGE_SCHEMA_V1 if schema_version(name) == 1 else layout.MESSAGE_SCHEMA


def is_data_file(name: str) -> bool:
    return name.endswith(".parquet") and not name.startswith((".", "_"))


def superseded(partition: Path) -> set[str]:
    """Names of files in ``partition`` that 0.1's compaction replaced."""
    names: set[str] = set()
    for tomb in sorted(partition.glob(f"{TOMBSTONE_PREFIX}*.json")):
        try:
            names.update(orjson.loads(tomb.read_bytes())["replaced"])
        except FileNotFoundError:
            continue
    return names


def live_files(lake: Path, table: str) -> list[Path]:
    """The data files a 0.1 reader would read: renamed, not tombstoned. Sorted."""
    out: list[Path] = []
    for part in layout.partitions(lake, table):
        gone = superseded(part)
        out.extend(sorted(p for p in part.iterdir() if is_data_file(p.name) and p.name not in gone))
    return out
