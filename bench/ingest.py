"""Ingest benchmark: the collector against a no-op FastAPI endpoint, and flush against pyarrow.

    python bench/ingest.py [--seconds 8] [--concurrency 16 64]

HTTP: one load generator (raw asyncio HTTP/1.1, keep-alive, real-shaped bodies) drives
(a) ``bench/noop_app.py``, which only parses the JSON, and (b) ``hooklake serve`` with its
journal (fsync per group commit) and background flusher, both under uvicorn with one worker.
Prints requests/s, p50/p99 latency and the ratio (b)/(a) per concurrency.

Flush: one journal segment of N messages flushed into the Delta table (read and check the
segment, parse, normalise, partition by date, write, commit), against the peer a user would
write instead and the physical floor, in rows/s:
- peer: pandas, the natural way that survives real payload shapes: ``orjson`` per body,
  ``json_normalize``, every mixed-type column made text (JSON for nested values; pandas alone
  fails on ids that are sometimes numbers and sometimes strings, ``pyarrow.json`` on buttons
  that are sometimes strings and sometimes objects), ``to_parquet`` with ZSTD;
- floor: ``pyarrow.parquet.write_table`` of the rows the flush extracted, already in memory;
  the collector's goal is half its speed (not reached: DuckDB's JSON parse per message and the
  segment's checks cost more than the write).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def bodies(n: int, seed: int = 7) -> list[bytes]:
    """``n`` real-shaped bodies from the simulator (every payload shape, retries included)."""
    from hooklake.simulate import bodies as simulated

    return list(itertools.islice(simulated(None, seed=seed, customers_per_hour=600), n))


def request_bytes(port: int, body: bytes) -> bytes:
    head = (
        f"POST /hooks/default HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        "Content-Type: application/json\r\nUser-Agent: landbot/webhooks\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def _connection(
    port: int, reqs: list[bytes], stop_at: float, latencies: list[float], errors: list[int]
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    i = random.randrange(len(reqs))
    try:
        while time.perf_counter() < stop_at:
            start = time.perf_counter()
            writer.write(reqs[i % len(reqs)])
            i += 1
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - start)
            if status != 200:
                errors.append(status)
    finally:
        writer.close()


async def _load(port: int, reqs: list[bytes], concurrency: int, seconds: float) -> dict[str, float]:
    latencies: list[float] = []
    errors: list[int] = []
    # Warm up connections and code paths, then measure.
    await asyncio.gather(
        *(_connection(port, reqs, time.perf_counter() + 0.5, [], []) for _ in range(concurrency))
    )
    t0 = time.perf_counter()
    stop_at = t0 + seconds
    await asyncio.gather(
        *(_connection(port, reqs, stop_at, latencies, errors) for _ in range(concurrency))
    )
    elapsed = time.perf_counter() - t0
    qs = statistics.quantiles(latencies, n=100)
    return {
        "rps": len(latencies) / elapsed,
        "p50_ms": qs[49] * 1000,
        "p99_ms": qs[98] * 1000,
        "errors": float(len(errors)),
    }


def load(port: int, reqs: list[bytes], concurrency: int, seconds: float) -> dict[str, float]:
    try:
        import uvloop

        return uvloop.run(_load(port, reqs, concurrency, seconds))
    except ImportError:
        return asyncio.run(_load(port, reqs, concurrency, seconds))


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited: {proc.returncode}")
        try:
            httpx.post(f"http://127.0.0.1:{port}/hooks/default", content=b'{"messages": []}')
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise SystemExit("server did not start")


def start(kind: str, lake: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    if kind == "noop":
        cmd = [
            sys.executable,
            "-m",
            "uvicorn",
            "bench.noop_app:app",
            "--port",
            str(port),
            "--no-access-log",
            "--log-level",
            "warning",
        ]
    else:
        cmd = [sys.executable, "-m", "hooklake", "serve", "--lake", str(lake), "--port", str(port)]
    proc = subprocess.Popen(
        cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    wait_ready(port, proc)
    return proc, port


def bench_http(seconds: float, concurrencies: list[int]) -> None:
    payloads = bodies(5_000)
    print(
        f"HTTP ingest: {seconds:g} s per run, {len(payloads)} distinct real-shaped bodies, "
        f"mean {statistics.mean(map(len, payloads)):.0f} bytes"
    )
    print(f"{'concurrency':>11} {'server':>9} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7}")
    with tempfile.TemporaryDirectory() as tmp:
        for c in concurrencies:
            results = {}
            for kind in ("noop", "collector"):
                proc, port = start(kind, Path(tmp) / f"lake-{c}")
                try:
                    reqs = [request_bytes(port, b) for b in payloads]
                    results[kind] = r = load(port, reqs, c, seconds)
                finally:
                    proc.terminate()
                    proc.wait(60)
                print(
                    f"{c:>11} {kind:>9} {r['rps']:>8.0f} {r['p50_ms']:>7.2f} {r['p99_ms']:>7.2f}"
                    + (f"  errors={r['errors']:.0f}" if r["errors"] else "")
                )
            ratio = results["collector"]["rps"] / results["noop"]["rps"]
            print(
                f"{c:>11} {'ratio':>9} {ratio:>8.2f}  (collector/no-op requests/s; target >= 0.9"
                f" at 64 with p99 <= 30 ms)"
            )


def bench_flush(n_bodies: int) -> None:
    import pyarrow.parquet as pq

    from hooklake.collector.flush import flush_segment, records_to_tables
    from hooklake.collector.journal import SegmentWriter, encode_record, read_segment

    payloads = bodies(n_bodies)
    with tempfile.TemporaryDirectory() as tmp:
        lake = Path(tmp) / "lake"
        writer = SegmentWriter(lake, segment_max_bytes=1 << 40)
        writer.open()
        t = time.time_ns() // 1000
        head = {"kind": "message", "hook": "default", "t": t, "h": {}}
        writer.write(b"".join(encode_record(head, b) for b in payloads))
        segment = writer.seal()
        writer.close()
        assert segment is not None
        records, _ = read_segment(segment)
        table, _ = records_to_tables(records, "bench")
        n = table.num_rows
        # Out of the journal: a flush commits every sealed segment of the writer up to the one
        # it is given, and each run below should flush one.
        data = segment.read_bytes()
        segment.unlink()

        names = itertools.count(99)

        def ours() -> float:
            # A higher segment number each time: a segment flushed again is recognised (the
            # writer's transaction id is at or past its number) and skipped.
            copy = segment.with_name(f"{next(names):08d}.seg")
            copy.write_bytes(data)
            t0 = time.perf_counter()
            flush_segment(lake, copy)
            return time.perf_counter() - t0

        def baseline() -> float:
            t0 = time.perf_counter()
            with open(Path(tmp) / "plain.parquet", "wb") as fh:
                pq.write_table(table, fh, compression="zstd", row_group_size=100_000)
                fh.flush()
                os.fsync(fh.fileno())
            return time.perf_counter() - t0

        def peer() -> float:
            import orjson
            import pandas as pd

            t0 = time.perf_counter()
            rows = [m for body in payloads for m in orjson.loads(body).get("messages", [])]
            frame = pd.json_normalize(rows)
            for column in frame.select_dtypes("object").columns:
                frame[column] = frame[column].map(as_text)
            with open(Path(tmp) / "peer.parquet", "wb") as fh:
                frame.to_parquet(fh, compression="zstd")
                fh.flush()
                os.fsync(fh.fileno())
            return time.perf_counter() - t0

        ours_s = min(ours() for _ in range(3))
        peer_s = min(peer() for _ in range(3))
        base_s = min(baseline() for _ in range(3))
    print(f"\nFlush: {n:,} messages from one journal segment (best of 3)")
    for name, seconds in (
        ("hooklake flush into Delta (check, parse, normalise, commit)", ours_s),
        ("peer: pandas json_normalize + to_parquet", peer_s),
        ("floor: pyarrow write_table of the extracted rows", base_s),
    ):
        print(f"  {name:<60} {n / seconds:>10,.0f} rows/s")
    print(f"  hooklake / peer {peer_s / ours_s:.2f}x")
    print(f"  hooklake / floor {base_s / ours_s:.2f}x (target >= 0.5)")


def as_text(value: object) -> str | None:
    """A value of a mixed-type pandas column as Parquet can hold it: text, JSON if nested."""
    import orjson

    if value is None or value != value:  # None or NaN
        return None
    return value if isinstance(value, str) else orjson.dumps(value).decode()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--concurrency", type=int, nargs="+", default=[16, 64])
    ap.add_argument("--flush-bodies", type=int, default=100_000)
    ap.add_argument("--skip-http", action="store_true")
    args = ap.parse_args()
    if not args.skip_http:
        bench_http(args.seconds, args.concurrency)
    bench_flush(args.flush_bodies)


if __name__ == "__main__":
    main()
