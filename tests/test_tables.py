"""The Delta layer: concurrent commits from several processes, statistics without personal data,
the layout of appended files."""

from __future__ import annotations

import multiprocessing as mp
import os
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable
from hypothesis import given, settings
from hypothesis import strategies as st

from hooklake import layout, tables
from hooklake.collector.flush import commit_rows
from hooklake.errors import LakeError
from hooklake.storage import lake_location
from tests.conftest import column_chunks, examples
from tests.datasets.test_lake_support import row

PROCESSES, COMMITS = 3, 8


def _committer(lake: str, writer: int, env: dict[str, str], start: mp.synchronize.Event) -> None:
    os.environ.update(env)
    loc = lake_location(lake)
    start.wait(30)  # every process commits at once
    for n in range(COMMITS):
        rows = [row(f"w{writer}-{n}-{i}", t=n * 10 + i, customer=writer) for i in range(5)]
        data = pa.Table.from_pylist(rows, schema=layout.MESSAGE_SCHEMA)
        tables.append(
            loc, layout.MESSAGES, tables.with_partition(layout.MESSAGES, data), f"w{writer}-{n}"
        )


def _commit_concurrently(lake: str, env: dict[str, str]) -> None:
    tables.ensure_table(lake_location(lake), layout.MESSAGES)
    # spawn: delta-rs, used in this process already, does not survive fork.
    ctx = mp.get_context("spawn")
    start = ctx.Event()
    procs = [ctx.Process(target=_committer, args=(lake, w, env, start)) for w in range(PROCESSES)]
    for p in procs:
        p.start()
    start.set()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0


@pytest.mark.parametrize("where", ["local", "s3"])
def test_concurrent_commits_from_several_processes_are_all_kept(
    tmp_path: Path, where: str, request: pytest.FixtureRequest
) -> None:
    env: dict[str, str] = {}
    lake = str(tmp_path / "lake")
    if where == "s3":
        lake, env = request.getfixturevalue("s3_lake"), request.getfixturevalue("seaweed").env
    _commit_concurrently(lake, env)
    dt = tables.open_table(lake_location(lake), layout.MESSAGES)
    assert dt is not None
    assert dt.version() == PROCESSES * COMMITS  # version 0 created the table
    keys = dt.to_pyarrow_dataset().to_table(columns=["message_key"])["message_key"].to_pylist()
    assert len(keys) == len(set(keys)) == PROCESSES * COMMITS * 5
    for w in range(PROCESSES):
        for n in range(COMMITS):
            assert tables.committed(dt, f"w{w}-{n}")


def test_the_delta_log_holds_no_personal_values(tmp_path: Path) -> None:
    secret = "maria.secret@example.org"
    data = pa.Table.from_pylist(
        [row("k1", text=f"write to {secret}") | {"sender_name": secret}],
        schema=layout.MESSAGE_SCHEMA,
    )
    loc = lake_location(tmp_path)
    tables.append(loc, layout.MESSAGES, tables.with_partition(layout.MESSAGES, data), "one")
    log = b"".join(p.read_bytes() for p in (tmp_path / "messages" / "_delta_log").iterdir())
    assert b"minValues" in log and b"customer_id" in log  # statistics are kept...
    assert secret.encode() not in log and b"k1" not in log  # ...for non-personal columns only


def _dictionary_pages(dt: DeltaTable, root: Path) -> set[bool]:
    """Whether each column chunk of the table's data files (under ``root``) has a dictionary
    page."""
    return {
        chunk.has_dictionary_page
        for f in tables.data_files(dt)
        for chunk in column_chunks(pq.ParquetFile(root / f.path).metadata)
    }


def test_a_flush_writes_files_without_dictionary_pages_a_bulk_append_with(tmp_path: Path) -> None:
    """A flush's files hold a segment's few rows of one date (the index update and compaction
    read them once): no dictionary pages. A bulk append (a migration's) keeps them. Both read
    back the rows they were given."""
    rows = [row(f"k{i}", t=i, customer=i % 3, text="same words") for i in range(50)]
    data = pa.Table.from_pylist(rows, schema=layout.MESSAGE_SCHEMA)
    commit_rows(lake_location(tmp_path / "flush"), "w1", 1, data, [])  # the collector's flush
    bulk = tables.with_partition(layout.MESSAGES, data)
    tables.append(
        lake_location(tmp_path / "bulk"), layout.MESSAGES, bulk, "bulk", writer=tables.BULK_WRITER
    )
    for name, dictionary in (("flush", {False}), ("bulk", {True})):
        dt = tables.open_table(lake_location(tmp_path / name), layout.MESSAGES)
        assert dt is not None
        assert _dictionary_pages(dt, tmp_path / name / layout.MESSAGES) == dictionary
        back = dt.to_pyarrow_dataset().to_table().sort_by("message_key")
        assert back.select(layout.MESSAGE_SCHEMA.names).equals(data.sort_by("message_key"))


@settings(max_examples=examples(25))
@given(
    st.lists(
        st.tuples(st.integers(0, 20), st.booleans()), min_size=1, max_size=12
    ),  # (age in days, a checkpoint after it) per commit, oldest first
    st.integers(0, 10),  # the retention, in days
    st.one_of(st.none(), st.integers(0, 13)),  # the version that must stay readable
)
def test_expiring_the_log_keeps_every_version_the_retention_promises(
    history: list[tuple[int, bool]], retention_days: int, keep_from: int | None
) -> None:
    """Whatever the history of commits and checkpoints, expiring the log keeps readable every
    version a reader may still ask for (the versions from the newest commit older than the
    retention on, and ``keep_from``), and, as Delta's own cleanup does, deletes the entries
    before the newest checkpoint at or before that horizon, and nothing else."""
    ages = sorted((age for age, _ in history), reverse=True)
    with tempfile.TemporaryDirectory() as tmp:
        loc = lake_location(tmp)
        log = Path(tmp) / layout.MESSAGES / "_delta_log"
        checkpoints = []
        for n, (_, checkpoint) in enumerate(history):
            data = pa.Table.from_pylist([row(f"k{n}", t=n)], schema=layout.MESSAGE_SCHEMA)
            version = tables.append(
                loc, layout.MESSAGES, tables.with_partition(layout.MESSAGES, data), f"w{n}"
            )
            assert version is not None
            if checkpoint:
                dt = tables.open_table(loc, layout.MESSAGES)
                assert dt is not None
                dt.create_checkpoint()
                checkpoints.append(version)
        # Commit n (and its checkpoint) is ages[n] days old; version 0 creates the table.
        now = time.time()
        for entry in log.iterdir():
            if entry.name[:20].isdigit():
                v = int(entry.name[:20])
                when = now - 86_400 * ages[max(v - 1, 0)]
                os.utime(entry, (when, when))
        latest = len(history)
        dt = tables.open_table(loc, layout.MESSAGES)
        assert dt is not None
        tables.expire_log(loc, layout.MESSAGES, timedelta(days=retention_days), keep_from)

        old = [v for v in range(latest + 1) if ages[max(v - 1, 0)] >= retention_days]
        horizon = max(old, default=None)
        if horizon is not None and keep_from is not None:
            horizon = min(horizon, keep_from)
        base = max((c for c in checkpoints if horizon is not None and c <= horizon), default=0)
        for v in range(latest + 1):
            if v >= base:
                opened = tables.open_table(loc, layout.MESSAGES, v)
                assert opened is not None and opened.version() == v
            else:
                with pytest.raises(LakeError, match=f"cannot read version {v} "):
                    tables.open_table(loc, layout.MESSAGES, v)
        assert tables.open_table(loc, layout.MESSAGES) is not None
