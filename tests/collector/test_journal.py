"""The journal and the flush, without HTTP: torn tails, CRCs, re-flushing, dead writers.

These tests work on real segment files and real Parquet in ``tmp_path``; a writer that dies is
a real process that is killed.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
import tempfile
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hooklake import tables
from hooklake.collector import journal
from hooklake.collector.flush import FlushReport, flush_lake, flush_segment
from hooklake.collector.journal import (
    FLUSH_LOCK_NAME,
    LOCK_NAME,
    OPEN_SUFFIX,
    GroupCommitter,
    SegmentWriter,
    encode_record,
    open_segments,
    read_segment,
    recover_open_segment,
    sealed_segments,
    segment_number,
    try_lock,
    unlock,
    writer_dirs,
)
from hooklake.collector.service import recover
from hooklake.errors import StorageError
from hooklake.layout import MESSAGES, REJECTED
from hooklake.storage import lake_location
from tests.conftest import examples, lake_rows, wait_until

DAY = 86_400


def body(key: str, ts: float = 1_747_943_104.5, text: str = "hi") -> bytes:
    return orjson.dumps(
        {
            "messages": [
                {
                    "_raw": {"uuid": key, "seq": 1},
                    "channel": {"id": 7, "name": "Web", "type": "landbot"},
                    "customer": {"id": 42, "name": "Ada"},
                    "sender": {"id": 42, "type": "customer"},
                    "timestamp": ts,
                    "type": "text",
                    "data": {"body": text},
                }
            ]
        }
    )


def record(key: str, ts: float = 1_747_943_104.5, hook: str = "default") -> bytes:
    header = {"kind": "message", "hook": hook, "t": 1_747_943_105_000_000, "h": {}}
    return encode_record(header, body(key, ts))


# --- records and segments ------------------------------------------------------------------


def _segment(tmp_path: Path, keys: list[str]) -> tuple[Path, list[int]]:
    """A segment holding one record per key, and the end offset of each record."""
    path = tmp_path / "00000001.open"
    ends, data = [], b""
    for key in keys:
        data += record(key)
        ends.append(len(data))
    path.write_bytes(data)
    return path, ends


def test_a_torn_tail_is_cut_at_every_possible_byte(tmp_path: Path) -> None:
    full, ends = _segment(tmp_path, ["a", "b", "c"])
    data = full.read_bytes()
    cut = tmp_path / "cut.open"
    for size in range(len(data) + 1):
        cut.write_bytes(data[:size])
        records, valid = read_segment(cut)
        whole = [e for e in ends if e <= size]
        assert valid == (whole[-1] if whole else 0), size
        assert [orjson.loads(r.body)["messages"][0]["_raw"]["uuid"] for r in records] == [
            "a",
            "b",
            "c",
        ][: len(whole)]


def test_a_flipped_bit_anywhere_in_the_last_record_drops_only_that_record(tmp_path: Path) -> None:
    full, ends = _segment(tmp_path, ["a", "b", "c"])
    data = full.read_bytes()
    bad = tmp_path / "bad.open"
    for pos in range(ends[1], ends[2]):
        for bit in (0x01, 0x80):
            flipped = bytearray(data)
            flipped[pos] ^= bit
            bad.write_bytes(bytes(flipped))
            records, valid = read_segment(bad)
            assert (len(records), valid) == (2, ends[1]), (pos, bit)


def test_recovering_an_open_segment_cuts_the_torn_tail_and_seals_it(tmp_path: Path) -> None:
    full, ends = _segment(tmp_path, ["a", "b"])
    with open(full, "ab") as fh:
        fh.write(record("c")[:-5])  # a write the crash interrupted: never acknowledged
    sealed = recover_open_segment(full)
    assert sealed is not None and sealed.suffix == ".seg" and not full.exists()
    assert sealed.stat().st_size == ends[-1]
    records, valid = read_segment(sealed)
    assert len(records) == 2 and valid == ends[-1]

    only_garbage = tmp_path / "00000009.open"
    only_garbage.write_bytes(b"HLR1\x00\x01")
    assert recover_open_segment(only_garbage) is None and not only_garbage.exists()


# --- the writer -----------------------------------------------------------------------------


def test_segments_roll_over_by_size_and_a_writer_directory_has_one_owner(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    writer = SegmentWriter(lake, segment_max_bytes=1000)
    writer.open()
    try:
        for i in range(20):
            writer.write(record(f"k{i}"))
        twin = SegmentWriter(lake, writer_id=writer.writer_id, open_timeout=0.2)
        with pytest.raises(StorageError, match="in use"):
            twin.open()
        sealed = sealed_segments(writer.directory)
        assert len(sealed) >= 3
        assert all(s.stat().st_size >= 1000 for s in sealed)
    finally:
        writer.close()
    keys = [
        orjson.loads(r.body)["messages"][0]["_raw"]["uuid"]
        for seg in sealed_segments(writer.directory)
        for r in read_segment(seg)[0]
    ]
    assert keys == [f"k{i}" for i in range(20)]
    assert open_segments(writer.directory) == []


def test_group_commit_answers_each_append_after_its_record_is_written(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    batches: list[int] = []
    writer = SegmentWriter(lake)
    journal = GroupCommitter(writer, seal_interval=60, on_batch=batches.append)
    seen_on_disk: list[bool] = []

    async def one(i: int) -> None:
        await journal.append(record(f"k{i}"))
        (segment,) = open_segments(writer.directory)
        on_disk = {
            orjson.loads(r.body)["messages"][0]["_raw"]["uuid"] for r in read_segment(segment)[0]
        }
        seen_on_disk.append(f"k{i}" in on_disk)

    async def main() -> None:
        await journal.start()
        await asyncio.gather(*(one(i) for i in range(300)))
        await journal.close()

    asyncio.run(main())
    assert seen_on_disk == [True] * 300
    assert sum(batches) == 300
    assert len(batches) < 300  # concurrent appends shared fsyncs
    (segment,) = sealed_segments(writer.directory)
    assert len(read_segment(segment)[0]) == 300


def test_appends_after_close_are_refused_not_lost(tmp_path: Path) -> None:
    journal = GroupCommitter(SegmentWriter(tmp_path / "lake"), seal_interval=60)

    async def main() -> None:
        await journal.start()
        await journal.append(record("before"))
        await journal.close()
        with pytest.raises(StorageError, match="shutting down"):
            await journal.append(record("after"))

    asyncio.run(main())
    flush_lake(tmp_path / "lake")
    assert [r["message_key"] for r in lake_rows(tmp_path / "lake")] == ["before"]


# --- flush ----------------------------------------------------------------------------------


def _sealed_writer(lake: Path, records: list[bytes]) -> Path:
    writer = SegmentWriter(lake)
    writer.open()
    try:
        writer.write(b"".join(records))
        segment = writer.seal()
    finally:
        writer.close()
    assert segment is not None
    return segment


def test_flushing_a_segment_twice_replaces_its_files_instead_of_duplicating(
    tmp_path: Path,
) -> None:
    lake = tmp_path / "lake"
    ts = 1_747_943_104.5
    reject = encode_record(
        {"kind": "reject", "hook": "default", "t": 1_747_943_105_000_000, "reason": "bad"},
        b"nope",
    )
    segment = _sealed_writer(
        lake, [record("a", ts), record("b", ts + DAY), record("c", ts + 2 * DAY), reject]
    )
    saved = tmp_path / "saved.seg"
    shutil.copy(segment, saved)

    first = flush_lake(lake)
    assert (first.segments, first.messages, first.rejected) == (1, 3, 1)
    assert first.commits == [(MESSAGES, 1), (REJECTED, 1)]
    assert len({r["filename"] for r in lake_rows(lake)}) == 3  # one file per day
    assert not segment.exists()

    # A crash after the commits but before the segment was retired: the next flush finds the
    # segment's transaction id in both tables and appends nothing.
    segment.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(saved, segment)
    again = flush_segment(lake, segment)
    assert again.messages == 3 and again.commits == []
    assert not segment.exists()
    # A crash after the messages commit, before the rejected one: only rejects are appended.
    shutil.rmtree(lake / REJECTED)
    shutil.copy(saved, segment)
    assert flush_segment(lake, segment).commits == [(REJECTED, 1)]
    rows = lake_rows(lake)
    assert sorted(r["message_key"] for r in rows) == ["a", "b", "c"]
    assert len({r["source"] for r in rows}) == 3
    assert len(lake_rows(lake, REJECTED)) == 1


def test_files_of_a_crashed_flush_are_never_data(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    _sealed_writer(lake, [record("a")])
    flush_lake(lake)
    (good,) = {r["filename"] for r in lake_rows(lake)}
    # A flush killed after writing a data file but before committing it leaves the file.
    (lake / MESSAGES / good).with_name(
        "part-00000-00000000-0000-0000-0000-00000000dead-c000.zstd.parquet"
    ).write_bytes(b"PAR1 half")
    assert [r["filename"] for r in lake_rows(lake)] == [good]


def test_two_flushers_at_once_flush_each_segment_once(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    for w in range(4):
        writer = SegmentWriter(lake, segment_max_bytes=1)  # every write seals a segment
        writer.open()
        for i in range(10):
            writer.write(record(f"w{w}-{i}"))
        writer.close()
    errors: list[BaseException] = []

    def run() -> None:
        try:
            flush_lake(lake)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    flush_lake(lake)
    keys = Counter(r["message_key"] for r in lake_rows(lake))
    assert keys == Counter({f"w{w}-{i}": 1 for w in range(4) for i in range(10)})
    assert writer_dirs(lake) == []


_DYING_WRITER = """
import sys
from pathlib import Path
from hooklake.collector.journal import SegmentWriter
from tests.collector.test_journal import record
writer = SegmentWriter(Path(sys.argv[1]), segment_max_bytes=1500)
writer.open()
for i in range(int(sys.argv[2])):
    writer.write(record(f"k{i}"))  # acknowledged: fsynced
# A batch that was being written when the process died: never acknowledged.
(segment,) = writer.directory.glob("*.open")
with open(segment, "ab") as fh:
    fh.write(record("torn")[:-7])
print(writer.writer_id, flush=True)
sys.stdin.read()
"""


def test_a_dead_writers_journal_is_recovered_and_a_live_one_left_alone(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    root = Path(__file__).resolve().parents[2]
    with subprocess.Popen(
        [sys.executable, "-c", _DYING_WRITER, str(lake), "12"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        cwd=root,
    ) as child:
        assert child.stdout is not None
        writer_id = child.stdout.readline().decode().strip()
        directory = lake / "_journal" / writer_id
        assert open_segments(directory), "the child should have an open segment"
        sealed_before = len(sealed_segments(directory))
        assert sealed_before >= 1
        # Alive: its sealed segments are flushed, its open segment and directory are not touched.
        report = flush_lake(lake)
        assert report.segments == sealed_before
        assert open_segments(directory) and (directory / LOCK_NAME).exists()
        child.kill()  # kill -9: no seal, no unlock, a torn record at the end
    flush_lake(lake)
    keys = sorted(r["message_key"] for r in lake_rows(lake))
    assert keys == sorted(f"k{i}" for i in range(12))
    assert not directory.exists()


def test_a_dead_writer_directory_is_never_swept_from_under_a_new_owner(tmp_path: Path) -> None:
    """A flusher holding a dead writer's lock must not delete files it does not know about:
    whatever else sits in the directory (here a segment that appeared meanwhile) stays."""
    lake = tmp_path / "lake"
    writer = SegmentWriter(lake)
    writer.open()
    writer.write(record("a"))
    writer.close()
    flush_lake(lake)  # the writer's directory is gone: it was dead and empty
    directory = writer.directory
    directory.mkdir(parents=True)
    (directory / "notes.txt").write_text("not ours to delete")
    flush_lake(lake)
    assert (directory / "notes.txt").exists()


def test_a_held_flush_lock_keeps_other_flushers_off_the_writer(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    segment = _sealed_writer(lake, [record("a")])
    fd = try_lock(segment.parent / FLUSH_LOCK_NAME)
    assert fd is not None
    try:
        assert flush_segment(lake, segment).segments == 0
        assert flush_lake(lake).segments == 0
        assert segment.exists() and lake_rows(lake) == []
    finally:
        unlock(fd)
    assert flush_segment(lake, segment).segments == 1
    assert [r["message_key"] for r in lake_rows(lake)] == ["a"]


def _waiters(path: Path) -> int:
    """How many lock requests wait on ``path`` (the kernel lists them in /proc/locks)."""
    inode = f":{path.stat().st_ino} "
    lines = Path("/proc/locks").read_text().splitlines()
    return sum("->" in line and inode in line for line in lines)


def test_hooklake_flush_waits_for_a_flusher_busy_with_a_writer(tmp_path: Path) -> None:
    """``hooklake flush`` (and serve's start-up recovery, and forget) promise that every sealed
    segment is committed when they return: where the background flusher is busy with a writer,
    they wait for it rather than skip the writer."""
    lake = tmp_path / "lake"
    segment = _sealed_writer(lake, [record("a")])
    lock = segment.parent / FLUSH_LOCK_NAME
    fd = try_lock(lock)
    assert fd is not None
    done: list[FlushReport] = []
    flusher = threading.Thread(target=lambda: done.append(recover(lake)))
    try:
        flusher.start()
        wait_until(lambda: _waiters(lock) == 1, "hooklake flush waits for the writer's lock")
        assert done == [] and segment.exists()
    finally:
        unlock(fd)
    flusher.join()
    assert done[0].segments == 1
    assert [r["message_key"] for r in lake_rows(lake)] == ["a"]


def _segments(writer: SegmentWriter, keys: list[str]) -> list[Path]:
    """One sealed segment per key, in order."""
    out = []
    for key in keys:
        writer.write(record(key))
        segment = writer.seal()
        assert segment is not None
        out.append(segment)
    return out


def _flush_txn(lake: Path, txn: str, table: str = MESSAGES) -> int | None:
    dt = tables.open_table(lake_location(lake), table)
    assert dt is not None
    return tables.transaction_version(dt, txn)


def test_a_writers_segments_are_committed_in_order_under_one_transaction_id(
    tmp_path: Path,
) -> None:
    """The log holds one id per writer, at the number of its last segment committed, however
    many segments it flushed; a segment flushed again after a crash adds nothing."""
    lake = tmp_path / "lake"
    writer = SegmentWriter(lake)
    writer.open()
    try:
        segments = _segments(writer, ["a", "b", "c"])
        saved = tmp_path / "saved.seg"
        shutil.copy(segments[1], saved)
        # Flushing the third commits the two before it first, each in a commit of its own.
        report = flush_segment(lake, segments[2])
        assert report.commits == [(MESSAGES, 1), (MESSAGES, 2), (MESSAGES, 3)]
        assert [r["message_key"] for r in lake_rows(lake)] == ["a", "b", "c"]
        name = writer.writer_id
        assert _flush_txn(lake, f"flush:{name}") == 3
        assert _flush_txn(lake, f"flush:{name}-{1:08d}") is None
        # The second again (killed before it was retired): its version is behind the id's.
        shutil.copy(saved, segments[1])
        again = flush_lake(lake)
        assert (again.segments, again.messages, again.commits) == (1, 1, [])
        assert not segments[1].exists()
        assert [r["message_key"] for r in lake_rows(lake)] == ["a", "b", "c"]
    finally:
        writer.close()


def test_a_segment_left_open_holds_back_its_writers_later_segments(tmp_path: Path) -> None:
    """A segment whose sealing failed stays open while later ones are sealed: committing those
    first would put the writer's id past it, and it would be taken as committed and lost."""
    lake = tmp_path / "lake"
    writer = SegmentWriter(lake)
    writer.open()
    try:
        first, second, third = _segments(writer, ["a", "b", "c"])
        unsealed = second.with_suffix(OPEN_SUFFIX)
        second.rename(unsealed)
        assert flush_lake(lake).commits == [(MESSAGES, 1)]
        assert third.exists() and [r["message_key"] for r in lake_rows(lake)] == ["a"]
        unsealed.rename(second)
        assert flush_lake(lake).commits == [(MESSAGES, 2), (MESSAGES, 3)]
        assert [r["message_key"] for r in lake_rows(lake)] == ["a", "b", "c"]
        assert not first.exists() and not second.exists() and not third.exists()
    finally:
        writer.close()


def test_a_segment_committed_under_its_own_id_is_not_appended_again(tmp_path: Path) -> None:
    """Hooklake named a flush commit after the writer and the segment before it used one id per
    writer: a segment committed that way, then found again after an upgrade, is not
    appended twice."""
    lake = tmp_path / "lake"
    segment = _sealed_writer(lake, [record("a")])
    copy = tmp_path / "saved.seg"
    shutil.copy(segment, copy)
    assert flush_lake(lake).commits == [(MESSAGES, 1)]
    rows = pa.Table.from_pylist(lake_rows(lake)).drop_columns(["filename"])
    shutil.rmtree(lake / MESSAGES)
    old_id = f"flush:{segment.parent.name}-{segment_number(segment):08d}"
    loc = lake_location(lake)
    assert tables.append(loc, MESSAGES, rows.cast(tables.table_schema(MESSAGES)), old_id) == 1
    segment.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(copy, segment)
    assert flush_lake(lake).commits == []
    assert [r["message_key"] for r in lake_rows(lake)] == ["a"]


def test_a_writer_starting_while_a_flusher_sweeps_its_directory_still_owns_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A flusher that finds a just-created, still empty writer directory takes it for a dead
    writer's: it holds the lock, unlinks it and removes the directory. The starting writer
    waits, then owns a lock that is really linked in its directory, and journals there."""
    lake = tmp_path / "lake"
    writer = SegmentWriter(lake)
    writer.directory.mkdir(parents=True)
    lock = writer.directory / LOCK_NAME
    held = try_lock(lock)
    assert held is not None
    # Sweep only once the writer has found the lock busy: it is provably waiting, however the
    # threads are scheduled.
    refused = threading.Event()
    real_try_lock = journal.try_lock

    def watched_try_lock(path: Path) -> int | None:
        fd = real_try_lock(path)
        if fd is None:
            refused.set()
        return fd

    monkeypatch.setattr(journal, "try_lock", watched_try_lock)

    def sweep() -> None:
        try:
            refused.wait(60)
            lock.unlink()
            writer.directory.rmdir()
        finally:
            unlock(held)

    sweeper = threading.Thread(target=sweep)
    sweeper.start()
    writer.open_timeout = 120  # the sweep comes at once; this is for a machine that is busy
    writer.open()
    sweeper.join()
    assert refused.is_set(), "the writer never waited for the flusher's lock"
    try:
        writer.write(record("a"))
        flush_lake(lake)  # a live writer: nothing of it is touched
        assert open_segments(writer.directory) and lake_rows(lake) == []
        assert try_lock(lock) is None
    finally:
        writer.close()
    flush_lake(lake)
    assert [r["message_key"] for r in lake_rows(lake)] == ["a"]


def test_a_damaged_sealed_segment_keeps_what_follows_the_damage_in_rejects(
    tmp_path: Path,
) -> None:
    lake = tmp_path / "lake"
    records = [record(f"k{i}") for i in range(4)]
    segment = _sealed_writer(lake, records)
    data = bytearray(segment.read_bytes())
    second = len(records[0])
    data[second + 30] ^= 0xFF  # inside the second record: its CRC no longer matches
    segment.write_bytes(bytes(data))

    report = flush_segment(lake, segment)

    assert sorted(r["message_key"] for r in lake_rows(lake)) == ["k0"]
    (reject,) = lake_rows(lake, REJECTED)
    assert "damaged at byte" in reject["reason"] and reject["message_index"] is None
    assert reject["body"] == bytes(data[second:])  # records 2-4, unread but not lost
    assert report.rejected == 1 and not segment.exists()


# --- flush histories -----------------------------------------------------------------------

_REJECT = encode_record(
    {"kind": "reject", "hook": "default", "t": 1_747_943_105_000_000, "reason": "bad"}, b"nope"
)
#: One step of a writer's and its flushers' history (see the test below).
_STEP = st.one_of(
    st.tuples(st.just("write"), st.integers(1, 3), st.booleans()),
    st.tuples(st.just("seal")),
    st.tuples(st.just("seal, rename fails")),
    st.tuples(st.just("rename works again")),
    st.tuples(st.just("flush")),
    st.tuples(st.just("flush one segment"), st.integers(0, 7)),
    st.tuples(st.just("crash before retiring"), st.integers(0, 7)),
)


@settings(max_examples=examples(30), deadline=None)
@given(history=st.lists(_STEP, max_size=24))
def test_any_flush_history_stores_every_record_once(history: list[tuple[Any, ...]]) -> None:
    """A writer journals and seals; flushes of the whole journal and of single segments run
    in between; some seals fail to rename (the segment stays open while later ones are
    sealed) and work again later; a flushed segment comes back as if the flusher had been
    killed between its commit and its retirement. Whatever the order, once everything is
    sealed and flushed, every record is in the tables exactly once: one transaction id per
    writer never lets a later segment's version stand for one not yet committed."""
    with tempfile.TemporaryDirectory() as tmp:
        lake = Path(tmp) / "lake"
        writer = SegmentWriter(lake)
        writer.open()
        keys: list[str] = []
        rejects = 0
        flushed: dict[Path, bytes] = {}  # a sealed segment's bytes, while it may come back
        stuck: list[Path] = []
        try:
            for step, *args in history:
                if step == "write":
                    new = [f"k{len(keys) + i}" for i in range(args[0])]
                    keys += new
                    rejects += args[1]
                    writer.write(b"".join(record(k) for k in new) + (_REJECT if args[1] else b""))
                elif step in ("seal", "seal, rename fails"):
                    sealed = writer.seal()
                    if sealed is not None:
                        flushed[sealed] = sealed.read_bytes()
                        if step == "seal, rename fails":
                            sealed.rename(sealed.with_suffix(OPEN_SUFFIX))
                            stuck.append(sealed)
                elif step == "rename works again" and stuck:
                    stuck[0].with_suffix(OPEN_SUFFIX).rename(stuck.pop(0))
                elif step == "flush":
                    flush_lake(lake)
                elif step == "flush one segment":
                    ready = sealed_segments(writer.directory)
                    if ready:
                        flush_segment(lake, ready[args[0] % len(ready)])
                elif step == "crash before retiring":
                    gone = [p for p in flushed if not p.exists() and p not in stuck]
                    if gone:
                        back = gone[args[0] % len(gone)]
                        back.write_bytes(flushed[back])
            for segment in stuck:
                segment.with_suffix(OPEN_SUFFIX).rename(segment)
        finally:
            writer.close()
        flush_lake(lake)
        assert Counter(r["message_key"] for r in lake_rows(lake)) == Counter(keys)
        assert len(lake_rows(lake, REJECTED)) == rejects
        assert writer_dirs(lake) == []
