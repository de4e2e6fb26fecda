"""Ingest through HAProxy: two collector replicas on one lake against one replica.

    python bench/replicas.py [--seconds 8] [--concurrency 32]

The load generator of ``bench/ingest.py`` (raw asyncio HTTP/1.1, keep-alive, real-shaped
bodies) drives a real HAProxy (Debian's ``haproxy``) in front of (a) one ``hooklake serve`` and
(b) two, each with its own journal, on the same lake. Prints requests/s, p50/p99 and the ratio
(b)/(a). On one small machine both replicas share its cores and its disk, so the ratio says
what the proxy and a second journal cost here, not what a second machine would add.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.ingest import bodies, free_port, load, request_bytes, wait_ready  # noqa: E402
from tests.haproxy import start_haproxy  # noqa: E402


def serve(lake: Path, journal: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    cmd = [sys.executable, "-m", "hooklake", "serve", "--lake", str(lake)]
    cmd += ["--journal", str(journal), "--port", str(port)]
    proc = subprocess.Popen(
        cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    wait_ready(port, proc)
    return proc, port


def run(replicas: int, seconds: float, concurrency: int, payloads: list[bytes]) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="hooklake-replicas-") as tmp:
        root = Path(tmp)
        started = [serve(root / "lake", root / f"journal-{i}") for i in range(replicas)]
        proxy = start_haproxy(root, free_port(), [port for _, port in started])
        try:
            reqs = [request_bytes(proxy.port, b) for b in payloads]
            return load(proxy.port, reqs, concurrency, seconds)
        finally:
            proxy.stop()
            for proc, _ in started:
                proc.terminate()
                proc.wait(60)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--concurrency", type=int, default=32)
    args = ap.parse_args()
    payloads = bodies(5_000)
    print(f"Ingest through HAProxy, concurrency {args.concurrency}, {args.seconds:g} s per run")
    results = {}
    for n in (1, 2):
        results[n] = r = run(n, args.seconds, args.concurrency, payloads)
        print(
            f"  {n} replica(s): {r['rps']:>7.0f} req/s  p50 {r['p50_ms']:6.2f} ms"
            f"  p99 {r['p99_ms']:6.2f} ms" + (f"  errors={r['errors']:.0f}" if r["errors"] else "")
        )
    print(f"  ratio two/one replicas: {results[2]['rps'] / results[1]['rps']:.2f} (req/s)")


if __name__ == "__main__":
    main()
