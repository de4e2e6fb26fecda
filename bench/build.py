"""Benchmark: ``hooklake build`` (openai format) from 1M and from 4M generated messages, against
baselines measured in the same run.

For each lake size, each in a fresh subprocess whose peak RSS (DuckDB's native memory
included) is reported:

- ``scan``: a plain scan of the text column of the stored messages (the floor: reading);
- ``0.1``: the build of a baseline revision (``--baseline-rev``, default the last revision
  with 0.1's per-message build), checked out with ``git archive`` into ``--dir``;
- ``reference``: today's pipeline with the per-message reference core
  (:func:`hooklake.datasets.reference.shape_reference`) instead of the batch core;
- ``build``: today's build, the views recomputing conversations from the raw table;
- ``indexed``: today's build from a copy of the lake (hard links) with an up-to-date
  conversation index (``hooklake index``; its rebuild time is printed, not counted).

Goals (issue 11): the build at >= 20k examples/s at 1M and 4M messages, peak memory 4M/1M
<= 1.2 and under 1.5 GB. Every figure is also printed as a ratio against the baselines, which
is what to compare on a busy machine.

The lakes are generated once and cached under ``--dir``: one simulated Landbot traffic stream
(:mod:`hooklake.simulate`, realistic texts with personal data, handovers, retries), stored by
the collector's own ingest path; the 1M lake holds the first million deliveries of the same
stream as the 4M lake.

    python bench/build.py --dir /tmp/hooklake-bench
    python bench/build.py --dir /tmp/hooklake-bench --sizes 100000 400000   # quick look
    python bench/build.py --dir /tmp/hooklake-bench --variants scan build  # no baselines
"""

from __future__ import annotations

import argparse
import importlib.util
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
#: The last revision whose build shaped one message at a time (Hooklake 0.1's build).
BASELINE_REV = "68e0861"
VARIANTS = ("scan", "0.1", "reference", "build", "indexed")
GOAL_RATE = 20_000
GOAL_RATIO = 1.2
GOAL_PEAK_MB = 1536


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


def baseline_tree(root: Path, rev: str) -> Path | None:
    """The source tree of ``rev`` under ``root`` (extracted once), or None without git."""
    tree = root / f"src-{rev}"
    if (tree / "DONE").exists():
        return tree
    tree.mkdir(parents=True, exist_ok=True)
    try:
        archive = subprocess.run(
            ["git", "-C", str(REPO), "archive", rev], capture_output=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        print(f"no baseline: cannot check out {rev} ({exc})")
        return None
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    (tree / "DONE").write_text(rev)
    return tree


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


def _cpu_seconds() -> float:
    """CPU time of this process, DuckDB's threads included: on a busy machine the fairer
    figure to compare runs by."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def child(variant: str, lake: Path, out: Path, memory_limit: str | None) -> None:
    """One run in this (fresh) process; prints its figures as JSON on the last line."""
    if variant == "scan":
        from hooklake.datasets.lake import Lake

        started = time.perf_counter()
        with Lake(lake) as lk:
            ((chars,),) = lk.sql("SELECT sum(length(text)) FROM hooklake_message_rows").fetchall()
        total = time.perf_counter() - started
        print(json.dumps({"messages": 0, "examples": 0, "chars": chars, "timings": {"total": total},
                          "peak_mb": _peak_rss_kb() / 1024, "cpu": _cpu_seconds()}))  # fmt: skip
        return
    if variant == "reference":
        import hooklake.datasets.build as pipeline
        from hooklake.datasets.reference import shape_reference

        pipeline.shape_batch = shape_reference  # type: ignore[assignment]
    from hooklake.datasets.build import build

    report = build(RECIPE, lake, out, progress=False, memory_limit=memory_limit)
    print(
        json.dumps(
            {
                "messages": report.stats.messages_read,
                "conversations": report.stats.conversations_read,
                "examples": report.examples,
                "timings": report.timings,
                "peak_mb": _peak_rss_kb() / 1024,
                "cpu": _cpu_seconds(),
            }
        )
    )


def run(
    variant: str, lake: Path, out: Path, memory_limit: str | None, tree: Path | None
) -> dict[str, Any] | None:
    script = Path(__file__).resolve()
    env = dict(os.environ)
    if variant == "indexed":
        lake = _indexed_copy(lake)
    if variant == "0.1":
        if tree is None:
            return None
        if importlib.util.find_spec("sklearn") is None:
            print(
                "      0.1: skipped, its build needs scikit-learn, which Hooklake no longer "
                "uses (pip install scikit-learn to run it)",
                flush=True,
            )
            return None
        # The old tree first on the path: its hooklake package shadows the installed one.
        env["PYTHONPATH"] = os.pathsep.join([str(tree), env.get("PYTHONPATH", "")])
        variant_arg = "build"
    elif variant == "indexed":
        variant_arg = "build"
    else:
        variant_arg = variant
    cmd = [sys.executable, str(script), "--child", variant_arg, "--lake", str(lake)]
    cmd += ["--out", str(out)]
    if memory_limit:
        cmd += ["--memory-limit", memory_limit]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env, cwd=tree)
    if proc.returncode != 0:
        raise SystemExit(f"{variant} failed:\n{proc.stdout}\n{proc.stderr}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def _indexed_copy(lake: Path) -> Path:
    """A copy of ``lake`` sharing its files, with an up-to-date conversation index (made once,
    and rebuilt when an index of an earlier layout is found there)."""
    import shutil

    from hooklake.index import update_index

    copy = lake.parent / f"{lake.name}-indexed"
    if not (copy / "INDEXED").exists():
        shutil.rmtree(copy, ignore_errors=True)
        shutil.copytree(lake, copy, copy_function=os.link)
    report = update_index(copy)
    if report.action != "up to date":
        (copy / "INDEXED").write_text(f"{report.seconds:.1f}")
        done = f"{report.action} in {report.seconds:.1f} s"
    else:
        done = f"up to date (made in {(copy / 'INDEXED').read_text()} s by an earlier run)"
    print(f"      index of {lake.name}: {done}", flush=True)
    return copy


def _ok(good: bool) -> str:
    return "OK" if good else "NOT REACHED"


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--dir", type=Path, default=Path("/tmp/hooklake-bench"))
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 4_000_000])
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--memory-limit", default=None, help="DuckDB memory limit (build default)")
    parser.add_argument("--baseline-rev", default=BASELINE_REV, help="git revision of the 0.1 run")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--lake", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.lake, args.out, args.memory_limit)
        return

    sizes = sorted(args.sizes)
    args.dir.mkdir(parents=True, exist_ok=True)
    lakes = ensure_lakes(args.dir, sizes, args.seed)
    tree = baseline_tree(args.dir, args.baseline_rev) if "0.1" in args.variants else None
    load = os.getloadavg()[0]
    print(
        f"\nrecipe {RECIPE.relative_to(REPO)} (openai), {os.cpu_count()} cores, load "
        f"{load:.1f} at start; one fresh process per run"
    )
    print(
        f"{'lake':>5} {'run':>10} {'messages':>10} {'examples':>9} {'seconds':>8} "
        f"{'examples/s':>11} {'peak MB':>8} {'CPU s':>6} {'ex/CPU s':>9}"
    )
    results: dict[tuple[int, str], dict[str, Any]] = {}
    for n in sizes:
        for variant in args.variants:
            out = args.dir / f"out-{_label(n)}-{variant}"
            r = run(variant, lakes[n], out, args.memory_limit, tree)
            if r is None:
                continue
            t = r["timings"]
            total = float(t["total"])
            r["rate"] = int(r["examples"]) / total
            r["cpu_rate"] = int(r["examples"]) / float(r["cpu"])
            results[(n, variant)] = r
            print(
                f"{_label(n):>5} {variant:>10} {r['messages']:>10,} {r['examples']:>9,} "
                f"{total:>8.1f} {r['rate']:>11,.0f} {r['peak_mb']:>8.0f} {r['cpu']:>6.1f} "
                f"{r['cpu_rate']:>9,.0f}",
                flush=True,
            )
            if variant != "scan":
                stages = ", ".join(f"{k} {float(v):.1f}s" for k, v in t.items() if k != "total")
                # Today's builds shape on one thread while writing on another.
                how = "" if variant == "0.1" else " (on threads of their own, overlapping)"
                print(f"{'':>16} stages{how}: {stages}", flush=True)

    print("\nagainst the goals and the baselines of this run:")
    for n, variant in itertools.product(sizes, ("build", "indexed")):
        b = results.get((n, variant))
        if b is None:
            continue
        total = float(b["timings"]["total"])
        line = (
            f"  {_label(n)} {variant}: {b['rate']:,.0f} examples/s (goal >= {GOAL_RATE:,}: "
            f"{_ok(b['rate'] >= GOAL_RATE)}), peak {b['peak_mb']:.0f} MB (goal < "
            f"{GOAL_PEAK_MB}: {_ok(b['peak_mb'] < GOAL_PEAK_MB)})"
        )
        for base in ("0.1", "reference"):
            r = results.get((n, base))
            if r is not None:
                line += (
                    f"; {b['rate'] / r['rate']:.1f}x the {base} rate "
                    f"({b['cpu_rate'] / r['cpu_rate']:.1f}x per CPU second)"
                )
        scan = results.get((n, "scan"))
        if scan is not None:
            line += f"; {total / float(scan['timings']['total']):.0f}x the text scan's time"
        print(line)
    small, large = sizes[0], sizes[-1]
    if small != large:
        for variant in ("build", "indexed", "0.1", "reference"):
            a, b = results.get((small, variant)), results.get((large, variant))
            if a is None or b is None:
                continue
            mem = b["peak_mb"] / a["peak_mb"]
            speed = b["rate"] / a["rate"]
            goal = (
                f" (goal <= {GOAL_RATIO}: {_ok(mem <= GOAL_RATIO)})"
                if variant in ("build", "indexed")
                else ""
            )
            print(
                f"  {variant}: peak memory {_label(large)}/{_label(small)} {mem:.2f}x{goal}; "
                f"examples/s {_label(large)}/{_label(small)} {speed:.2f}x"
            )


if __name__ == "__main__":
    main()
