"""Compaction: merged, sorted, atomic, idempotent, and harmless to readers and the collector."""

from __future__ import annotations

import fcntl
import os
import threading
import time
from collections import deque
from collections.abc import Iterable
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from hooklake import layout
from hooklake.collector.compact import LOCK_NAME, STALE_TEMP_SECONDS, compact
from hooklake.collector.ingest import ingest_bodies
from hooklake.datasets.lake import Lake
from hooklake.errors import LakeError, StorageError
from hooklake.simulate import simulate
from tests.conftest import wait_until
from tests.datasets.test_lake_support import row, write_rows

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


def _data_files(lake: Path) -> list[Path]:
    return sorted(p for t in layout.TABLES for p in layout.table_dir(lake, t).rglob("*.parquet"))


def test_compaction_merges_each_partition_into_one_sorted_file(tmp_path: Path) -> None:
    _simulated_lake(tmp_path)
    with Lake(tmp_path) as lake:
        before = _views(lake)
        stored = lake.stats().stored_rows
    parts = layout.partitions(tmp_path, layout.MESSAGES)
    report = compact(tmp_path, grace=0)
    assert report.files_merged > report.files_written > 0
    for part in parts:
        [merged] = [p for p in part.iterdir() if layout.is_data_file(p.name)]
        table = pq.read_table(merged)
        keys = list(
            zip(*(table[c].to_pylist() for c in ("channel_id", "customer_id", "ts")), strict=True)
        )
        assert keys == sorted(keys), "rows sorted by conversation"
        assert pq.read_metadata(merged).schema.to_arrow_schema() == layout.MESSAGE_SCHEMA
        assert layout.tombstones(part) == [], "tombstones go once their files are gone"
    assert len(layout.live_files(tmp_path, layout.REJECTED)) == len(
        layout.partitions(tmp_path, layout.REJECTED)
    )
    with Lake(tmp_path) as lake:
        assert _views(lake) == before
        assert lake.stats().stored_rows == stored


def test_compaction_is_idempotent(tmp_path: Path) -> None:
    _simulated_lake(tmp_path, customers=10)
    compact(tmp_path, grace=0)
    files = _data_files(tmp_path)
    again = compact(tmp_path, grace=0)
    assert (again.files_merged, again.files_written, again.files_deleted) == (0, 0, 0)
    assert _data_files(tmp_path) == files


def test_replaced_files_stay_for_the_grace_period(tmp_path: Path) -> None:
    _simulated_lake(tmp_path, customers=10)
    old_snapshot = Lake(tmp_path)
    before = _views(old_snapshot)
    files_before = _data_files(tmp_path)

    report = compact(tmp_path, grace=600)
    assert report.files_deleted == 0
    assert set(files_before) <= set(_data_files(tmp_path)), "nothing deleted yet"
    assert _views(old_snapshot) == before, "a snapshot that listed the old files still works"
    with Lake(tmp_path) as fresh:
        live = {f for t in layout.TABLES for f in fresh.files(t)}
        replaced = set(files_before) - live
        assert len(replaced) == report.files_merged
        assert _views(fresh) == before

    later = compact(tmp_path, grace=0)
    assert later.files_deleted == report.files_merged
    assert later.tombstones_removed == report.files_written
    assert not replaced & set(_data_files(tmp_path))
    with pytest.raises(LakeError, match=r"refresh\(\)"):
        old_snapshot.query("SELECT count(*) FROM messages")
    old_snapshot.refresh()
    assert _views(old_snapshot) == before
    old_snapshot.close()


def test_a_crash_before_the_tombstone_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    write_rows(tmp_path, [row("a"), row("b", t=1)], name="one")
    write_rows(tmp_path, [row("c", t=2), row("d", t=3, sender="bot")], name="two")
    with Lake(tmp_path) as lake:
        before = _views(lake)
    compact(tmp_path, grace=600)
    # As if the process died after writing the merged file, before its tombstone.
    [part] = layout.partitions(tmp_path, layout.MESSAGES)
    for tomb in layout.tombstones(part):
        tomb.unlink()
    with Lake(tmp_path) as lake:
        assert lake.stats().stored_rows == 8
        assert _views(lake) == before, "the messages view drops the copies"
    report = compact(tmp_path, grace=0)
    assert [(m.rows_in, m.rows_out) for m in report.merged] == [(8, 4)]
    with Lake(tmp_path) as lake:
        assert lake.stats().stored_rows == 4
        assert _views(lake) == before


def test_large_partitions_become_several_files_of_bounded_rows(tmp_path: Path) -> None:
    for i in range(6):
        write_rows(tmp_path, [row(f"m{i}-{j}", t=i * 10 + j) for j in range(3)], name=f"f{i}")
    report = compact(tmp_path, grace=0, max_file_rows=7)
    assert [m.rows_out for m in report.merged] == [6, 6, 6]
    assert compact(tmp_path, grace=0, max_file_rows=7).files_written == 0
    with Lake(tmp_path) as lake:
        assert lake.stats().messages == 18


def test_big_files_are_left_alone(tmp_path: Path) -> None:
    [big] = write_rows(tmp_path, [row(f"k{i}", t=i) for i in range(50)], name="big")
    write_rows(tmp_path, [row("c", t=2)], name="small1")
    write_rows(tmp_path, [row("d", t=3)], name="small2")
    report = compact(tmp_path, grace=0, small_file_bytes=big.stat().st_size)
    assert [m.files_merged for m in report.merged] == [2]
    live = layout.live_files(tmp_path, layout.MESSAGES)
    assert big in live and len(live) == 2


def test_one_compaction_at_a_time(tmp_path: Path) -> None:
    write_rows(tmp_path, [row("a")], name="one")
    fd = os.open(tmp_path / LOCK_NAME, os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        with pytest.raises(StorageError, match="another compaction is running"):
            compact(tmp_path, grace=0)
    finally:
        os.close(fd)
    compact(tmp_path, grace=0)


def test_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="no lake"):
        compact(tmp_path / "missing")
    with pytest.raises(StorageError, match="negative"):
        compact(tmp_path, grace=-1)


def test_stale_temporaries_are_removed(tmp_path: Path) -> None:
    [f] = write_rows(tmp_path, [row("a")])
    stale = f.parent / ".tmp-dead-x.parquet"
    fresh = f.parent / ".tmp-live-y.parquet"
    stale.write_bytes(b"half")
    fresh.write_bytes(b"being written")
    old = time.time() - STALE_TEMP_SECONDS - 60
    os.utime(stale, (old, old))
    report = compact(tmp_path, grace=0)
    assert report.temporaries_removed == 1
    assert fresh.exists() and not stale.exists()


def test_compaction_beside_a_collector_and_readers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
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
        # Every snapshot taken while compaction runs sees exactly the first half.
        try:
            while not stop.is_set():
                with Lake(tmp_path) as lk:
                    readings.append(_views(lk) == baseline)
        except BaseException as exc:
            errors.append(exc)

    reader = threading.Thread(target=read)

    def snapshots(n: int) -> None:
        """Wait until the reader has finished ``n`` more snapshots."""
        want = len(readings) + n
        wait_until(lambda: len(readings) >= want or not reader.is_alive(), "a reader snapshot")

    # Hold each merge at its two in-between moments until readers have looked at the lake:
    # the merged file beside the files it replaces, then the tombstone naming them. Of two
    # snapshots, the second starts after the moment began, however the threads are scheduled.
    real_tombstone = layout.write_tombstone
    seen_mid_way = 0

    def tombstone_between_snapshots(part: Path, replaced: Iterable[str], by: str) -> Path:
        nonlocal seen_mid_way
        snapshots(2)
        tomb = real_tombstone(part, replaced, by)
        snapshots(2)
        seen_mid_way += 1
        return tomb

    monkeypatch.setattr(layout, "write_tombstone", tombstone_between_snapshots)
    reader.start()
    try:
        for _ in range(3):
            compact(tmp_path, grace=600)
    finally:
        stop.set()
        reader.join()
    assert not errors
    assert seen_mid_way > 0, "nothing was merged"
    assert readings and all(readings)

    # A collector's files land after a compaction listed the partition, before its tombstone.
    arrivals = deque(rest[i : i + 20] for i in range(0, len(rest), 20))
    arrived_mid_way = 0

    def arrive_then_tombstone(part: Path, replaced: Iterable[str], by: str) -> Path:
        nonlocal arrived_mid_way
        if arrivals:
            ingest_bodies(tmp_path, [d.body for d in arrivals.popleft()])
            arrived_mid_way += 1
        return real_tombstone(part, replaced, by)

    monkeypatch.setattr(layout, "write_tombstone", arrive_then_tombstone)
    while arrivals:
        ingest_bodies(tmp_path, [d.body for d in arrivals.popleft()])
        compact(tmp_path, grace=0)
    compact(tmp_path, grace=0)
    assert arrived_mid_way > 0, "no files arrived while a compaction ran"
    expected = len({(d.truth.customer_id, d.truth.ts, d.truth.seq) for d in deliveries})
    with Lake(tmp_path) as lake:
        assert lake.stats().messages == expected, "files that arrived during compaction kept"


def test_unreadable_files_are_reported_and_left_alone(tmp_path: Path) -> None:
    [good] = write_rows(tmp_path, [row("a")], name="good")
    write_rows(tmp_path, [row("b", t=1)], name="also-good")
    broken = good.parent / "broken.parquet"
    broken.write_bytes(b"PAR1 this is not parquet")
    report = compact(tmp_path, grace=0)
    assert report.unreadable == [str(broken)]
    assert report.files_merged == 2 and broken.read_bytes() == b"PAR1 this is not parquet"
    assert ("unreadable, left alone", str(broken)) in report.rows()
