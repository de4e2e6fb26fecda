"""Compaction: Delta optimize and vacuum — atomic, idempotent, harmless to readers and writers."""

from __future__ import annotations

import json
import threading
from datetime import timedelta
from pathlib import Path

import pytest

from hooklake import layout
from hooklake.collector.compact import compact
from hooklake.collector.ingest import ingest_bodies
from hooklake.datasets.lake import Lake
from hooklake.errors import ConfigError, LakeError, StorageError
from hooklake.simulate import simulate
from tests.datasets.test_lake_support import row, write_legacy_rows, write_rows

VIEW_QUERIES = {
    "messages": "SELECT * EXCLUDE (source, received_at) FROM messages ORDER BY ALL",
    "conversations": "SELECT * FROM conversations ORDER BY ALL",
    "turns": "SELECT * FROM turns ORDER BY ALL",
    "handovers": "SELECT * FROM handovers ORDER BY ALL",
    "rejected": "SELECT * FROM rejected ORDER BY ALL",
}


def _views(lake: Lake) -> dict[str, list[tuple[object, ...]]]:
    return {name: lake.query(q).rows for name, q in VIEW_QUERIES.items()}


def _simulated_lake(lake: Path, customers: int = 30, chunk: int = 25) -> None:
    deliveries = list(simulate(customers, seed=3))
    for i in range(0, len(deliveries), chunk):
        part = deliveries[i : i + chunk]
        ingest_bodies(lake, [d.body for d in part], received_at_us=int(part[-1].deliver_at * 1e6))
    ingest_bodies(lake, [b"not json", b'{"no": "messages"}'])
    ingest_bodies(lake, [b"\xff\xfe not utf-8"])


def _parquet_on_disk(lake: Path) -> list[Path]:
    """The data files on disk (checkpoints in the Delta log are not data)."""
    return sorted(
        p
        for t in layout.TABLES
        for p in layout.table_dir(lake, t).rglob("*.parquet")
        if "_delta_log" not in p.parts
    )


def test_compaction_merges_each_partition_into_one_file_in_one_commit(tmp_path: Path) -> None:
    _simulated_lake(tmp_path)
    with Lake(tmp_path) as lake:
        before = _views(lake)
        stored = lake.stats().stored_rows
        files_before = len(lake.files())
        versions = {v.table: v.version for v in lake.versions()}
    report = compact(tmp_path)
    assert report.files_merged > report.files_written > 0
    with Lake(tmp_path) as lake:
        assert _views(lake) == before
        assert lake.stats().stored_rows == stored
        files = lake.files()
        assert len(files) < files_before
        assert len({f.date for f in files}) == len(files), "one file per partition"
        after = {v.table: v.version for v in lake.versions()}
    assert after[layout.MESSAGES] == versions[layout.MESSAGES] + 1
    # A checkpoint of the compacted version: the next reader replays no commit.
    checkpoint = json.loads((tmp_path / "messages" / "_delta_log" / "_last_checkpoint").read_text())
    assert checkpoint["version"] == after[layout.MESSAGES]


def test_compaction_is_idempotent(tmp_path: Path) -> None:
    _simulated_lake(tmp_path, customers=5)
    compact(tmp_path)
    again = compact(tmp_path)
    assert again.files_merged == 0 and again.files_written == 0
    assert all(t.version_after == t.version_before for t in again.tables)


def test_readers_of_older_versions_keep_their_files_until_vacuum_past_retention(
    tmp_path: Path,
) -> None:
    write_rows(tmp_path, [row("a")], name="one")
    write_rows(tmp_path, [row("b", t=1)], name="two")
    with Lake(tmp_path) as reader:  # opened before compaction
        compact(tmp_path)
        kept = compact(tmp_path, vacuum=True)  # default retention: a week
        assert kept.files_vacuumed == 0
        assert reader.query("SELECT message_key FROM messages ORDER BY 1").rows == [("a",), ("b",)]
        assert len(_parquet_on_disk(tmp_path)) == 3
        gone = compact(tmp_path, vacuum=True, retention=timedelta(0))
        assert gone.files_vacuumed == 2
        assert len(_parquet_on_disk(tmp_path)) == 1
        with pytest.raises(LakeError):  # the reader's version lost its files
            reader.query("SELECT * FROM messages")
        reader.refresh()
        assert reader.query("SELECT message_key FROM messages ORDER BY 1").rows == [("a",), ("b",)]


def test_bad_arguments_and_old_lakes_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="retention"):
        compact(tmp_path, retention=timedelta(hours=-1))
    write_legacy_rows(tmp_path, [row("a")])
    with pytest.raises(StorageError, match="hooklake migrate"):
        compact(tmp_path)


def test_compaction_beside_a_collector_and_readers(tmp_path: Path) -> None:
    deliveries = list(simulate(40, seed=8))
    first, rest = deliveries[: len(deliveries) // 2], deliveries[len(deliveries) // 2 :]
    for i in range(0, len(first), 20):
        ingest_bodies(tmp_path, [d.body for d in first[i : i + 20]])
    with Lake(tmp_path) as lake:
        baseline = _views(lake)

    errors: list[BaseException] = []
    readings: list[bool] = []
    stop = threading.Event()

    def read() -> None:
        # Every version read while compaction runs holds exactly the first half (read at
        # least once, however fast the compactions are).
        try:
            while True:
                with Lake(tmp_path) as lk:
                    readings.append(_views(lk) == baseline)
                if stop.is_set():
                    break
        except BaseException as exc:
            errors.append(exc)

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for _ in range(3):
            compact(tmp_path)
    finally:
        stop.set()
        reader.join()
    assert not errors
    assert readings and all(readings)

    def collect() -> None:
        for i in range(0, len(rest), 20):
            ingest_bodies(tmp_path, [d.body for d in rest[i : i + 20]])

    collector = threading.Thread(target=collect)
    collector.start()
    try:
        while collector.is_alive():
            compact(tmp_path)
    finally:
        collector.join()
    compact(tmp_path, vacuum=True, retention=timedelta(0))
    expected = len({(d.truth.customer_id, d.truth.ts, d.truth.seq) for d in deliveries})
    with Lake(tmp_path) as lake:
        assert lake.stats().messages == expected, "commits made during compaction kept"
