"""Benchmark: ``hooklake build`` (openai format) from 1M and from 4M generated messages.

Does the build stream? The 1M build is the baseline; the 4M build should run at a similar
examples/s with about the same peak memory (target: 4M/1M peak ratio <= 1.2, under 2 GB),
because only one conversation is in Python at a time and DuckDB spills its sort past its
memory limit. Each build runs in a fresh subprocess whose peak RSS (DuckDB's native memory
included) is what is reported. Redaction's share of the build time is printed too.

The lakes are generated once and cached under ``--dir``: one simulated Landbot traffic stream
(:mod:`hooklake.simulate`, realistic texts with personal data, handovers, retries), stored by
the collector's own ingest path; the 1M lake holds the first million deliveries of the same
stream as the 4M lake.

    python bench/build.py --dir /tmp/hooklake-bench
    python bench/build.py --dir /tmp/hooklake-bench --sizes 100000 400000   # quick look
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RECIPE = REPO / "datasets" / "support-bot.toml"
CHUNK = 250_000  # bodies per ingest call: bounds the generator's own memory


def _label(n: int) -> str:
    return f"{n // 1_000_000}M" if n % 1_000_000 == 0 else f"{n // 1000}k"


def ensure_lakes(root: Path, sizes: list[int], seed: int) -> dict[int, Path]:
    """Generate (once) one lake per size from a single simulated stream; cached in ``root``."""
    from hooklake.collector.ingest import ingest_bodies
    from hooklake.simulate import bodies

    lakes = {n: root / f"lake-{_label(n)}-seed{seed}" for n in sizes}
    todo = {n: p for n, p in lakes.items() if not (p / "DONE").exists()}
    if not todo:
        return lakes
    for p in todo.values():
        if p.exists():
            raise SystemExit(f"{p} is a half-generated lake from an interrupted run: delete it")
    largest = max(todo)
    print(f"generating {', '.join(_label(n) for n in sorted(todo))} messages into {root} ...")
    started = time.perf_counter()
    # About 20.6 deliveries per simulated customer; ask for enough and cut the stream.
    stream = bodies(largest // 15, seed=seed)
    done = 0
    while done < largest:
        chunk = list(itertools.islice(stream, min(CHUNK, largest - done)))
        if not chunk:
            raise SystemExit("the simulator ran dry before the largest size")
        for n, lake in todo.items():
            if done < n:
                ingest_bodies(lake, chunk[: n - done], received_at_us=1_800_000_000_000_000)
        done += len(chunk)
        rate = done / (time.perf_counter() - started)
        print(f"  {done:>9,} bodies  ({rate:,.0f}/s)", flush=True)
    for n, lake in todo.items():
        (lake / "DONE").write_text(f"{n}\n")
    return lakes


def _peak_rss_kb() -> int:
    """This process's peak resident set. VmHWM belongs to the process image, so unlike
    ru_maxrss it does not carry over the parent's peak across fork and exec."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def child(lake: Path, out: Path, memory_limit: str | None) -> None:
    """One build in this (fresh) process; prints its figures as JSON on the last line."""
    from hooklake.datasets.build import build

    report = build(RECIPE, lake, out, progress=False, memory_limit=memory_limit)
    peak_kb = _peak_rss_kb()
    print(
        json.dumps(
            {
                "messages": report.stats.messages_read,
                "conversations": report.stats.conversations_read,
                "examples": report.examples,
                "timings": report.timings,
                "peak_mb": peak_kb / 1024,
                "redactions": sum(report.stats.redactions.values()),
            }
        )
    )


def run_build(lake: Path, out: Path, memory_limit: str | None) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child", "--lake", str(lake), "--out", str(out)]
    if memory_limit:
        cmd += ["--memory-limit", memory_limit]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"build failed:\n{proc.stdout}\n{proc.stderr}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", type=Path, default=Path("/tmp/hooklake-bench"))
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 4_000_000])
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--memory-limit", default=None, help="DuckDB memory limit (build default)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--lake", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.lake, args.out, args.memory_limit)
        return

    sizes = sorted(args.sizes)
    args.dir.mkdir(parents=True, exist_ok=True)
    lakes = ensure_lakes(args.dir, sizes, args.seed)
    print(f"\nrecipe {RECIPE.relative_to(REPO)} (openai), {os.cpu_count()} cores, one process each")
    head = (
        f"{'lake':>6} {'messages':>10} {'examples':>9} {'seconds':>8} {'examples/s':>11} "
        f"{'messages/s':>11} {'peak MB':>8} {'redact %':>9}"
    )
    print(head)
    results = {}
    for n in sizes:
        r = run_build(lakes[n], args.dir / f"out-{_label(n)}", args.memory_limit)
        t = r["timings"]
        total = float(t["total"])
        redact_share = 100 * float(t.get("redact", 0.0)) / total
        results[n] = (int(r["examples"]) / total, float(r["peak_mb"]))
        print(
            f"{_label(n):>6} {r['messages']:>10,} {r['examples']:>9,} {total:>8.1f} "
            f"{results[n][0]:>11,.0f} {int(r['messages']) / total:>11,.0f} "
            f"{results[n][1]:>8.0f} {redact_share:>8.1f}%"
        )
        stages = ", ".join(f"{k} {float(v):.1f}s" for k, v in t.items() if k != "total")
        print(f"{'':>6} stages: {stages}")
    if len(sizes) >= 2:
        small, large = sizes[0], sizes[-1]
        mem = results[large][1] / results[small][1]
        speed = results[large][0] / results[small][0]
        print(
            f"\npeak memory {_label(large)}/{_label(small)}: {mem:.2f}x (target <= 1.2, "
            f"{'OK' if mem <= 1.2 and results[large][1] < 2048 else 'MISSED'}); "
            f"examples/s {_label(large)}/{_label(small)}: {speed:.2f}x"
        )


if __name__ == "__main__":
    main()
