"""Benchmark: ``hooklake build`` on Spark (local[2], local[1]) against the DuckDB build.

Same lake, same recipe (``datasets/support-bot.toml``: OpenAI chat, redaction, dedupe), each
build in a fresh subprocess so every Spark run pays its own JVM start (reported apart). Prints
for each lake size:

- seconds, messages/s and examples/s of each engine, and the stages of each build;
- Spark local[2] against DuckDB (both on 2 cores), local[1] against local[2] (how Spark's
  shaping scales with cores), and the per-core throughput of the parallel part;
- the machine's load average when each build started (other work slows every engine);
- what that predicts for a cluster of N cores: the parallel part (select + shape, per-core
  rate x N) and the part that stays on the driver (global dedupe and writing the files).

The lakes come from bench/conversations.py's generator (numpy, so 10M messages generate in
minutes; collector-shaped small files, compacted), cached under ``--dir``. Every Spark build's
files are compared with the DuckDB build's, byte for byte.

    python bench/spark.py                                   # 1M and 10M messages
    python bench/spark.py --sizes 1000000 --dir /tmp/bench  # 1M only
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

RECIPE = ROOT / "datasets" / "support-bot.toml"
ENGINES = ("duckdb", "spark-2", "spark-1")


def _label(n: int) -> str:
    return f"{n // 1_000_000}M" if n % 1_000_000 == 0 else f"{n // 1000}k"


def child(engine: str, lake: Path, out: Path) -> dict[str, Any]:
    """One build in this fresh process."""
    from hooklake.datasets.build import build

    started = time.perf_counter()
    session = 0.0
    if engine.startswith("spark"):
        from hooklake.spark import spark_session

        cores = int(engine.split("-")[1])
        spark_session(
            f"local[{cores}]",
            {"spark.driver.memory": "4g", "spark.sql.shuffle.partitions": str(4 * cores)},
        )
        session = time.perf_counter() - started
    report = build(
        RECIPE,
        lake,
        out,
        progress=False,
        engine="spark" if engine.startswith("spark") else "duckdb",
    )
    return {
        "messages": report.stats.messages_read,
        "examples": report.examples,
        "timings": report.timings,
        "session": session,
    }


def run(engine: str, lake: Path, out: Path) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child", engine, "--lake", str(lake), "--out", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"{engine} build failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def same_files(a: Path, b: Path) -> bool:
    names = sorted(p.name for p in a.iterdir() if p.is_file())
    return names == sorted(p.name for p in b.iterdir() if p.is_file()) and all(
        (a / n).read_bytes() == (b / n).read_bytes() for n in names
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", type=Path, default=Path("/tmp/hooklake-bench-spark"))
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--files-per-day", type=int, default=4)
    parser.add_argument("--cluster-cores", type=int, nargs="+", default=[16, 64, 256])
    parser.add_argument("--child", choices=ENGINES, help=argparse.SUPPRESS)
    parser.add_argument("--lake", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.lake, args.out)))
        return

    from bench.conversations import build_lakes

    print(f"recipe {RECIPE.relative_to(ROOT)}, {os.cpu_count()} cores on this machine")
    for n in sorted(args.sizes):
        _, lake = build_lakes(args.dir, n, args.seed, args.files_per_day)
        print(f"\n{_label(n)} messages ({lake})")
        print(
            f"{'engine':>8} {'seconds':>8} {'jvm start':>9} {'messages/s':>11} "
            f"{'examples':>9} {'examples/s':>11} {'load':>5}  stages"
        )
        results = {}
        for engine in ENGINES:
            out = args.dir / f"out-{_label(n)}-{engine}"
            load = os.getloadavg()[0]  # other work on the machine slows every engine down
            r = results[engine] = run(engine, lake, out)
            t = r["timings"]
            total = float(t["total"])
            stages = ", ".join(f"{k} {float(v):.1f}" for k, v in t.items() if k != "total")
            print(
                f"{engine:>8} {total:>8.1f} {r['session']:>9.1f} {r['messages'] / total:>11,.0f} "
                f"{r['examples']:>9,} {r['examples'] / total:>11,.0f} {load:>5.1f}  {stages}",
                flush=True,
            )
        duck = args.dir / f"out-{_label(n)}-duckdb"
        for engine in ENGINES[1:]:
            same = same_files(duck, args.dir / f"out-{_label(n)}-{engine}")
            print(f"{engine} files equal the DuckDB build's byte for byte: {same}")
        report(results, args.cluster_cores)


def report(results: dict[str, dict[str, Any]], cluster: list[int]) -> None:
    duck, two, one = (float(results[e]["timings"]["total"]) for e in ENGINES)
    print(f"spark local[2] / duckdb time: {two / duck:.2f}x")
    print(f"spark local[1] / local[2] time: {one / two:.2f}x (2.00x would be perfect scaling)")
    t2 = results["spark-2"]["timings"]
    t1 = results["spark-1"]["timings"]
    messages = int(results["spark-2"]["messages"])
    # select + shape run on the executors; write (dedupe, files, card) on the driver alone.
    par2 = float(t2.get("select", 0)) + float(t2.get("shape", 0))
    par1 = float(t1.get("select", 0)) + float(t1.get("shape", 0))
    serial = float(t2.get("write", 0))
    # The conservative rate: in local[1] the JVM and the Python worker still find the second
    # core idle, so local[1]'s "one core" is more than one.
    per_core = messages / (par2 * 2)
    print(
        f"parallel part (select + shape): local[1] {par1:.1f}s, local[2] {par2:.1f}s "
        f"({par1 / par2:.2f}x); per core {per_core:,.0f} messages/s in local[2] "
        f"({messages / par1:,.0f} messages/s in local[1]); driver part (write) {serial:.1f}s "
        f"= {messages / serial:,.0f} messages/s"
    )
    for cores in cluster:
        parallel = messages / (per_core * cores)
        print(
            f"  predicted on {cores} cores: {parallel + serial:.1f}s "
            f"(parallel {parallel:.1f}s + driver {serial:.1f}s), "
            f"{messages / (parallel + serial):,.0f} messages/s"
        )


if __name__ == "__main__":
    main()
