"""``hooklake migrate``: a lake written by Hooklake 0.1 becomes Delta tables, losing nothing."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from hooklake import layout, legacy, tables
from hooklake.cli import main
from hooklake.collector.flush import flush_lake
from hooklake.collector.ingest import ingest_bodies
from hooklake.datasets.lake import Lake
from hooklake.errors import ConfigError, LakeError, StorageError
from hooklake.migrate import migrate
from hooklake.simulate import simulate
from hooklake.storage import lake_location
from tests.conftest import lake_rows
from tests.datasets.test_lake_support import legacy_ingest

T0 = 1_740_000_000_000_000
BAD = [b"not json", b'{"no": "messages"}']
# Views as analysts see them. source names the journal writer, which differs between lakes.
QUERIES = {
    "messages": "SELECT * EXCLUDE (source) FROM messages ORDER BY ALL",
    "conversations": "SELECT * FROM conversations ORDER BY ALL",
    "turns": "SELECT * FROM turns ORDER BY ALL",
    "handovers": "SELECT * FROM handovers ORDER BY ALL",
    "rejected": "SELECT * EXCLUDE (source) FROM rejected ORDER BY ALL",
}
V1_COLUMNS = ("samurai", "latitude", "longitude")


def _views(path: Path) -> dict[str, list[tuple[object, ...]]]:
    with Lake(path) as lake:
        views = {name: lake.query(q).rows for name, q in QUERIES.items()}
        return views | {"stored": [(lake.stats().stored_rows,)]}


def _chunks() -> list[list[bytes]]:
    bodies = [d.body for d in simulate(25, seed=11)]
    third = len(bodies) // 3
    return [bodies[:third], bodies[third : 2 * third] + BAD, bodies[2 * third :]]


@pytest.fixture
def lakes(tmp_path: Path) -> tuple[Path, Path]:
    """The same traffic stored by 0.1 (``old``; its first segment by 0.1.0, without the
    version-2 columns, and one partition compacted by 0.1) and by today's flush (``new``)."""
    old, new = tmp_path / "old", tmp_path / "new"
    for i, chunk in enumerate(_chunks()):
        at = T0 + i * 1_000_000
        legacy_ingest(old, chunk, received_at_us=at, version=1 if i == 0 else 2)
        ingest_bodies(new, chunk, received_at_us=at)
    # 0.1's compaction: a merged copy of a partition's files, and a tombstone naming them.
    part = max(layout.partitions(old, layout.MESSAGES), key=lambda p: len(list(p.iterdir())))
    files = sorted(part.glob("*.v2.parquet"))
    assert len(files) >= 2
    merged = pa.concat_tables([pq.read_table(f) for f in files])
    layout.write_table(merged, part / "compacted-0001.v2.parquet")
    layout.atomic_write_bytes(
        orjson.dumps({"by": "compacted-0001.v2.parquet", "replaced": [f.name for f in files]}),
        part / f"{legacy.TOMBSTONE_PREFIX}1.json",
    )
    (part / ".tmp-abc-half.parquet").write_bytes(b"PAR1 torn")
    return old, new


def _without_v2_columns(views: dict[str, list[tuple[object, ...]]]) -> dict[str, object]:
    # Version-1 files never stored samurai/latitude/longitude: those read as NULL after
    # migration, as they did in 0.1's views. Compare messages on the other columns.
    return {k: v for k, v in views.items() if k != "messages"}


def test_a_01_lake_is_refused_until_migrated_then_reads_like_a_new_one(
    lakes: tuple[Path, Path],
) -> None:
    old, new = lakes
    with pytest.raises(LakeError, match=r"hooklake migrate --lake"):
        Lake(old)
    (old / "_journal" / "w").mkdir(parents=True)
    with pytest.raises(StorageError, match=r"hooklake migrate --lake"):
        flush_lake(old)
    (old / "_journal" / "w").rmdir()

    report = migrate(old)
    assert [t.version for t in report.tables] == [1, 1]
    assert not tables.is_legacy(lake_location(old), layout.MESSAGES)
    got, want = _views(old), _views(new)
    assert _without_v2_columns(got) == _without_v2_columns(want)
    with Lake(old) as a, Lake(new) as b:
        cols = "* EXCLUDE (source, samurai, latitude, longitude)"
        q = f"SELECT {cols} FROM messages ORDER BY ALL"
        assert a.query(q).rows == b.query(q).rows
        # Rows of version-2 files keep their version-2 columns.
        q2 = "SELECT message_key, samurai, latitude, longitude FROM messages ORDER BY ALL"
        old_v2 = {r[0]: r for r in a.query(q2).rows if any(v is not None for v in r[1:])}
        new_v2 = {r[0]: r for r in b.query(q2).rows}
        assert all(new_v2[k] == r for k, r in old_v2.items())
    # Nothing of 0.1 is left on disk: only Delta's files.
    leftovers = [
        p for t in layout.TABLES for p in (old / t).rglob("*")
        if p.is_file() and "_delta_log" not in p.parts and not tables.is_delta_file(p.name)
    ]  # fmt: skip
    assert leftovers == []


def test_migration_is_idempotent_and_finishes_after_a_crash(
    lakes: tuple[Path, Path], tmp_path: Path
) -> None:
    old, _ = lakes
    backup = tmp_path / "backup"
    shutil.copytree(old, backup)
    # Killed before its commit, after creating the empty table: the next run does it all.
    tables.ensure_table(lake_location(old), layout.MESSAGES)
    migrate(old)
    views = _views(old)
    stored = len(lake_rows(old))
    again = migrate(old)
    assert [t.removed for t in again.tables] == [0, 0]
    assert [t.version for t in again.tables] == [1, 1]
    assert _views(old) == views
    # Killed after its commit, before deleting the 0.1 files: the rows are not appended twice.
    for part in layout.partitions(backup, layout.MESSAGES):
        for f in part.iterdir():
            shutil.copy(f, old / layout.MESSAGES / part.name / f.name)
    with pytest.raises(LakeError, match="migrate"):
        Lake(old)
    finish = migrate(old)
    assert finish.tables[0].removed > 0 and finish.tables[0].version == 1
    assert len(lake_rows(old)) == stored
    assert _views(old) == views


def test_migrate_cli(lakes: tuple[Path, Path], tmp_path: Path) -> None:
    old, _ = lakes
    result = CliRunner().invoke(main, ["migrate", "--lake", str(old), "--format", "json"])
    assert result.exit_code == 0, result.output
    rows = {d["table"]: d["migrated"] for d in orjson.loads(result.stdout)}
    assert rows["messages"].endswith("-> version 1")
    result = CliRunner().invoke(main, ["migrate", "--lake", str(tmp_path / "nowhere")])
    assert result.exit_code == 1 and "does not exist" in result.stderr
    with pytest.raises(ConfigError, match="local"):
        migrate("s3://bucket/lake")


def test_migrating_a_lake_written_by_this_version_changes_nothing(tmp_path: Path) -> None:
    ingest_bodies(tmp_path, _chunks()[1])
    before = _views(tmp_path)
    report = migrate(tmp_path)
    assert [(t.files, t.rows, t.version, t.removed) for t in report.tables] == [(0, 0, None, 0)] * 2
    assert _views(tmp_path) == before
    with Lake(tmp_path) as lake:
        assert [v.version for v in lake.versions()] == [1, 1]


def test_a_01_file_written_after_a_clean_look_is_still_found(
    lakes: tuple[Path, Path],
) -> None:
    """Readers remember the partitions they found free of 0.1 files (listing them all took a
    Lake's opening 17 ms on a 10M-message lake), by their directories' modification times: a
    0.1 file written there later changes that time, and the next reader finds it."""
    old, new = lakes
    loc = lake_location(new)
    partitions = layout.partitions(new, layout.MESSAGES)
    for part in partitions:  # settled: older than a timestamp tick could hide
        part_stat = part.stat()
        os.utime(part, ns=(part_stat.st_atime_ns, part_stat.st_mtime_ns - 60 * 10**9))
    assert not tables.is_legacy(loc, layout.MESSAGES)
    assert not tables.is_legacy(loc, layout.MESSAGES)  # from what it remembered
    Lake(new).close()
    stray = next(p for p in sorted(old.rglob("*.parquet")) if not tables.is_delta_file(p.name))
    shutil.copy(stray, partitions[-1] / stray.name)
    assert tables.is_legacy(loc, layout.MESSAGES)
    with pytest.raises(LakeError, match=r"hooklake migrate --lake"):
        Lake(new)
