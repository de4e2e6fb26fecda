"""The lake on object storage: a real SeaweedFS S3 server, no mocks."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from click.testing import CliRunner

from hooklake import index, layout, tables
from hooklake.cli import main
from hooklake.collector.compact import compact
from hooklake.collector.ingest import ingest_bodies
from hooklake.datasets.lake import Lake
from hooklake.errors import ConfigError
from hooklake.index import rebuild as index_rebuild
from hooklake.index import recompute as index_recompute
from hooklake.simulate import simulate
from hooklake.storage import lake_location
from tests.conftest import column_chunks, lake_rows, sample, start_collector
from tests.s3 import SeaweedS3

QUERIES = {
    "messages": "SELECT * EXCLUDE (source) FROM messages ORDER BY ALL",
    "conversations": "SELECT * FROM conversations ORDER BY ALL",
    "turns": "SELECT * FROM turns ORDER BY ALL",
    "turn_pairs": "SELECT * FROM turn_pairs ORDER BY ALL",
    "handovers": "SELECT * FROM handovers ORDER BY ALL",
    "rejected": "SELECT * EXCLUDE (source) FROM rejected ORDER BY ALL",
}


def _views(lake: Lake) -> dict[str, list[Any]]:
    return {name: lake.query(q).rows for name, q in QUERIES.items()}


def test_a_lake_on_s3_reads_like_a_local_one(
    s3_lake: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bodies = [d.body for d in simulate(15, seed=5)] + [b"not json"]
    local = tmp_path / "local"
    for i in range(0, len(bodies), 40):
        at = 1_740_000_000_000_000 + i
        ingest_bodies(s3_lake, bodies[i : i + 40], received_at_us=at, journal=tmp_path / "j")
        ingest_bodies(local, bodies[i : i + 40], received_at_us=at)
    with Lake(s3_lake) as remote, Lake(local) as here:
        assert _views(remote) == _views(here)
        assert [v.version for v in remote.versions()] == [v.version for v in here.versions()]
    with Lake(s3_lake, as_of=1) as old, Lake(local, as_of=1) as old_here:
        assert _views(old) == _views(old_here)
    # Optimize and vacuum work there too.
    report = compact(s3_lake, vacuum=True, retention=timedelta(0))
    assert report.files_merged > 0 and report.files_vacuumed == report.files_merged
    with Lake(s3_lake) as remote, Lake(local) as here:
        assert _views(remote) == _views(here)
    # The conversation index lives there too; a rebuild in many ranges splits the stored
    # rows, read from object storage, into local temporary folders first.
    monkeypatch.setattr(index_rebuild, "CHUNK_ROWS", 50)
    monkeypatch.setattr(index_rebuild, "SPLIT_RANGES", 0)
    assert index.update_index(s3_lake).action == "rebuilt"
    with Lake(s3_lake) as remote, Lake(local) as here:
        assert remote.index is not None and here.index is None
        assert _views(remote) == _views(here)
    # There every byte crosses the network: the index is ZSTD (LZ4 on local disk).
    dt = tables.open_table(lake_location(s3_lake), layout.INDEX)
    assert dt is not None
    codecs = {
        chunk.compression
        for f in dt.to_pyarrow_dataset().get_fragments()
        for chunk in column_chunks(f.metadata)
    }
    assert codecs == {"ZSTD"}


@pytest.mark.parametrize("condition", ["pairs", "range"])
def test_the_index_on_s3_follows_late_and_repeated_messages_like_a_full_recomputation(
    s3_lake: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, condition: str
) -> None:
    """On object storage the index's files are read through Arrow datasets, not DuckDB's
    reader: readers of an index that is behind, and its updates, must still give the rows a
    full recomputation gives, with the touched customers named pair by pair or by the range of
    their ids."""
    monkeypatch.setattr(index_recompute, "PAIRS_SPELLED_OUT", 2**62 if condition == "pairs" else 0)
    bodies = [d.body for d in simulate(12, seed=9)]
    batches = [bodies[i : i + 30] for i in range(0, len(bodies), 30)]
    # Later traffic first, then the earlier batches: late deliveries into indexed
    # conversations; the last batch is delivered again (Landbot retries).
    order = [0, 2, 1, 4, 3, *range(5, len(batches)), len(batches) - 1]
    local = tmp_path / "local"
    for step, b in enumerate(order):
        at = 1_740_000_000_000_000 + step * 1_000_000
        ingest_bodies(s3_lake, batches[b], received_at_us=at, journal=tmp_path / "j")
        ingest_bodies(local, batches[b], received_at_us=at)
        if step == 0:
            assert index.update_index(s3_lake).action == "rebuilt"
            continue
        with Lake(local, index=False) as expected:
            want = _views(expected)
        with Lake(s3_lake) as behind:  # computes the customers the new rows touch
            assert behind.index is not None and behind.pending_rows > 0
            assert _views(behind) == want
        if step % 2:  # every other step brings the index up to date
            assert index.update_index(s3_lake).action.startswith("updated")
            with Lake(s3_lake) as remote:
                assert remote.pending_rows == 0
                assert _views(remote) == want


def test_a_lake_on_s3_needs_a_local_journal(s3_lake: str) -> None:
    with pytest.raises(ConfigError, match="--journal"):
        ingest_bodies(s3_lake, [sample("dialog.json")])
    result = CliRunner().invoke(main, ["flush", "--lake", s3_lake])
    assert result.exit_code == 1 and "--journal DIR" in result.stderr


def test_serve_and_flush_into_s3(seaweed: SeaweedS3, s3_lake: str, tmp_path: Path) -> None:
    journal = tmp_path / "journal"
    c = start_collector(
        tmp_path / "unused",
        args=("--journal", str(journal)),
        env=seaweed.env,
        log_dir=tmp_path,
        lake_uri=s3_lake,
    )
    try:
        for name in ("dialog.json", "text_from_bot.json", "text_from_customer.json"):
            assert httpx.post(c.hook_url(), content=sample(name)).status_code == 200
    finally:
        assert c.stop() == 0, c.log.read_text()
    assert len(lake_rows(s3_lake)) == 3
    assert not any(journal.rglob("*.seg"))
    result = CliRunner().invoke(main, ["stats", "--lake", s3_lake, "--format", "csv"])
    assert result.exit_code == 0 and "messages,3" in result.stdout


def test_forget_and_vacuum_on_s3_leave_no_log_entry_naming_the_customer(
    seaweed: SeaweedS3, s3_lake: str, tmp_path: Path
) -> None:
    """The vacuum deletes the log entries of the versions it took the files of, on object
    storage as on disk: the erasure's commit, which names the customer, and the statistics of
    the versions before it. Read back with Arrow's own S3 client."""
    from pyarrow import fs

    from hooklake.forget import forget
    from tests.test_forget import GONE, KEPT, body

    journal = tmp_path / "journal"
    for n in range(3):
        ingest_bodies(s3_lake, [body(GONE, n), body(KEPT, n)], journal=journal)
    index.update_index(s3_lake)
    assert forget(s3_lake, GONE, journal=journal).messages_deleted == 3
    store = fs.S3FileSystem(
        access_key=seaweed.env["AWS_ACCESS_KEY_ID"],
        secret_key=seaweed.env["AWS_SECRET_ACCESS_KEY"],
        region=seaweed.env["AWS_REGION"],
        endpoint_override=seaweed.endpoint,
        scheme="http",
    )
    root = s3_lake.removeprefix("s3://")
    number = re.compile(rf"(?<![0-9]){GONE}(?![0-9])".encode())

    def naming() -> list[str]:
        found = []
        for table in (layout.MESSAGES, layout.INDEX):
            selector = fs.FileSelector(f"{root}/{table}/_delta_log", allow_not_found=True)
            for info in store.get_file_info(selector):
                if info.path.endswith(".json"):
                    with store.open_input_stream(info.path) as fh:
                        if number.search(fh.read()):
                            found.append(info.path)
        return found

    assert naming()
    compact(s3_lake, vacuum=True, retention=timedelta(0))
    assert naming() == []
    assert index.update_index(s3_lake).action == "up to date"
    with Lake(s3_lake) as lake:
        assert lake.query("SELECT DISTINCT customer_id FROM messages").rows == [(KEPT,)]


def test_a_collector_on_a_bucket_that_is_not_there_refuses_to_start(
    seaweed: SeaweedS3, tmp_path: Path
) -> None:
    """Before it answers anyone: started, it would acknowledge deliveries into its journal
    while every flush failed. One line says what is wrong; no traceback, no colours."""
    lake = f"s3://no-such-bucket-{uuid.uuid4().hex[:8]}/lake"
    proc = subprocess.run(
        [sys.executable, "-m", "hooklake", "serve", "--lake", lake, "--journal",
         str(tmp_path / "journal"), "--port", "0"],
        env={**os.environ, **seaweed.env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )  # fmt: skip
    assert proc.returncode == 1
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith(f"Error: cannot reach the lake at {lake}: "), proc.stderr
    assert "NoSuchBucket" in last and "does the bucket exist" in last
    assert "Traceback" not in proc.stderr and "\x1b[" not in proc.stderr
    assert "Collecting into" not in proc.stderr  # it never did


def test_compact_and_vacuum_on_s3_keep_the_index_incremental_and_the_views_readable(
    s3_lake: str, tmp_path: Path
) -> None:
    """`hooklake compact --vacuum --retention-hours 0` (the erasure's second step) on a lake
    with an index: the index is brought past the compaction before the vacuum deletes the
    files it replaced, so no update or reader ever needs them. An index left behind such a
    vacuum by another Delta tool is rebuilt, and readers recompute, as on local disk."""
    from deltalake import DeltaTable

    journal = tmp_path / "journal"
    local = tmp_path / "local"
    bodies = [d.body for d in simulate(6, seed=3)]
    for i in range(0, len(bodies), 25):  # several files in each date partition
        ingest_bodies(s3_lake, bodies[i : i + 25], received_at_us=1_740_000_000_000_000 + i,
                      journal=journal)  # fmt: skip
        ingest_bodies(local, bodies[i : i + 25], received_at_us=1_740_000_000_000_000 + i)
    assert index.update_index(s3_lake).action == "rebuilt"
    with Lake(local, index=False) as expected:
        want = _views(expected)

    report = compact(s3_lake, vacuum=True, retention=timedelta(0))
    assert report.files_merged > 0 and report.files_vacuumed > 0
    assert index.update_index(s3_lake).action == "up to date"
    with Lake(s3_lake) as remote:
        assert remote.pending_rows == 0 and _views(remote) == want

    # Another Delta tool compacts and vacuums behind the index's back: while the replaced
    # files are kept the index follows, once they are gone it is rebuilt.
    for hours, at in ((168, 1_750_000_000_000_000), (0, 1_760_000_000_000_000)):
        ingest_bodies(s3_lake, bodies[:25], received_at_us=at, journal=journal)
        ingest_bodies(local, bodies[:25], received_at_us=at)
        dt = DeltaTable(lake_location(s3_lake).table_uri(layout.MESSAGES))
        assert dt.optimize.compact()["numFilesRemoved"] > 0
        dt.vacuum(retention_hours=hours, dry_run=False, enforce_retention_duration=False)
        if hours:
            assert index.update_index(s3_lake).action.startswith("updated")
    with Lake(local, index=False) as expected:
        want = _views(expected)
    with Lake(s3_lake) as behind:
        assert _views(behind) == want
    assert index.update_index(s3_lake).action == "rebuilt"
    with Lake(s3_lake) as remote:
        assert _views(remote) == want


def test_a_flush_failing_on_object_storage_is_one_error_however_often_it_is_retried(
    s3_lake: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Each answer of the store names its own request (``<RequestId>``) and how long it took
    (in ms or µs): a bucket gone for an hour is still one error, logged once and then once a
    minute, not in full every 2 s."""
    from hooklake.collector.failures import RepeatedFailure
    from hooklake.collector.flush import flush_lake
    from hooklake.collector.journal import SegmentWriter, encode_record
    from hooklake.errors import StorageError

    lake = f"s3://no-such-bucket-{uuid.uuid4().hex[:8]}/lake"
    journal = tmp_path / "journal"
    writer = SegmentWriter(lake, journal=journal)
    writer.open()
    header = {"kind": "message", "hook": "default", "t": 1, "h": {}, "n": 1}
    writer.write(encode_record(header, sample("dialog.json")))
    writer.close()
    failing = RepeatedFailure("flush", "retrying every 2.0 s")
    errors = []
    with caplog.at_level("INFO", logger="hooklake.collector"):
        for _ in range(4):
            with pytest.raises(StorageError) as raised:
                flush_lake(lake, journal)
            errors.append(str(raised.value))
            failing.failed(raised.value)
    assert len(set(errors)) > 1  # what the store said differed from one attempt to the next
    (logged,) = [r.getMessage() for r in caplog.records]
    assert (
        logged.startswith("flush failed, retrying every 2.0 s: cannot write")
        and "NoSuchBucket" in logged
    )


def test_forget_on_s3_without_a_journal_says_it_flushed_none(s3_lake: str, tmp_path: Path) -> None:
    """Run where a collector journals, without --journal, forget could not flush its journal:
    the customer's acknowledged messages would come back with the collector's next flush. The
    report must not read "0 segments flushed" then."""
    from tests.test_forget import GONE, body

    ingest_bodies(s3_lake, [body(GONE, 1)], journal=tmp_path / "journal")
    args = ["forget", "--lake", s3_lake, "--customer", str(GONE), "--format", "json"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    rows = {r["stat"]: r["value"] for r in orjson.loads(result.stdout)}
    assert rows["messages deleted"] == 1
    assert rows["journal segments flushed first"].startswith("none: no --journal given")
    result = CliRunner().invoke(main, [*args, "--journal", str(tmp_path / "journal")])
    rows = {r["stat"]: r["value"] for r in orjson.loads(result.stdout)}
    assert rows["journal segments flushed first"] == 0
