"""Many collectors on one lake behind a real HAProxy: kill -9 one under load, lose nothing."""

from __future__ import annotations

import copy
import json
import random
import threading
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from hooklake.datasets.lake import Lake
from tests.conftest import (
    LANDBOT,
    Collector,
    SeededRandom,
    free_port,
    start_collector,
    wait_until,
)
from tests.haproxy import start_haproxy
from tests.s3 import SeaweedS3

TEMPLATE = json.loads((LANDBOT / "text_from_customer.json").read_text())


def _body(key: str, customer: int, n: int) -> bytes:
    doc: dict[str, Any] = copy.deepcopy(TEMPLATE)
    msg = doc["messages"][0]
    msg["_raw"]["uuid"] = key
    msg["sender"]["id"] = msg["customer"]["id"] = customer
    msg["timestamp"] = msg["_raw"]["timestamp"] = 1_747_943_061.0 + n
    return orjson.dumps(doc)


class Landbot:
    """Senders that retry every non-2xx, as Landbot does, and remember what was acknowledged."""

    def __init__(self, url: str, seed: int, threads: int = 4) -> None:
        self.url, self.seed = url, seed
        self.acked: list[str] = []
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._run, args=(t,)) for t in range(threads)]

    def _run(self, t: int) -> None:
        rng = random.Random(self.seed * 100 + t)
        with httpx.Client(timeout=10) as client:
            n = 0
            while not self.stop.is_set():
                key = f"s{t}-{n}"
                body = _body(key, rng.randrange(1, 50), n)
                for _ in range(50):
                    try:
                        if client.post(self.url, content=body).status_code == 200:
                            with self.lock:
                                self.acked.append(key)
                            break
                    except httpx.TransportError:
                        pass
                n += 1

    def count(self) -> int:
        with self.lock:
            return len(self.acked)

    def wait_for(self, n: int, timeout: float = 120) -> None:
        deadline = threading.Event()
        timer = threading.Timer(timeout, deadline.set)
        timer.start()
        try:
            while self.count() < n and not deadline.is_set():
                self.stop.wait(0.05)
        finally:
            timer.cancel()
        assert self.count() >= n, f"only {self.count()} acknowledged"


@pytest.mark.parametrize("where", ["local", "s3"])
def test_kill_9_of_one_replica_under_load_loses_no_acknowledged_message(
    tmp_path: Path, where: str, request: pytest.FixtureRequest, rng: SeededRandom
) -> None:
    seed = rng.randrange(1 << 30)
    lake = tmp_path / "lake"
    uri: str | None = None
    env: dict[str, str] = {}
    if where == "s3":
        seaweed: SeaweedS3 = request.getfixturevalue("seaweed")
        uri, env = request.getfixturevalue("s3_lake"), seaweed.env
    ja, jb = tmp_path / "journal-a", tmp_path / "journal-b"
    # Replica A never flushes by itself: everything it acknowledged is in its journal when it
    # is killed, so only recovering that journal can bring it to the lake.
    slow = {"HOOKLAKE_FLUSH_INTERVAL": "3600", "HOOKLAKE_SEAL_INTERVAL": "0.2"}
    a = start_collector(
        lake, args=("--journal", str(ja)), env={**env, **slow}, log_dir=tmp_path, lake_uri=uri
    )
    b = start_collector(lake, args=("--journal", str(jb)), env=env, log_dir=tmp_path, lake_uri=uri)
    started: list[Collector] = [a, b]
    proxy = start_haproxy(tmp_path, free_port(), [a.port, b.port])
    landbot = Landbot(f"{proxy.url}/hooks/default", seed)
    try:
        for t in landbot.threads:
            t.start()
        landbot.wait_for(150)
        # Kill A only once it has acknowledged messages that exist nowhere but in its journal.
        wait_until(lambda: any(ja.rglob("*.seg")), "replica A sealed a journal segment")
        a.kill()  # kill -9 of its whole process group, mid-traffic
        killed_at = landbot.count()
        landbot.wait_for(killed_at + 150)  # B alone keeps answering
        landbot.stop.set()
        for t in landbot.threads:
            t.join()
        assert any(ja.rglob("*.seg")) or any(ja.rglob("*.open")), "A's journal held data"
        # A restarts on its journal (or `hooklake flush --journal`): recovery flushes it.
        a2 = start_collector(
            lake, args=("--journal", str(ja)), env=env, log_dir=tmp_path, lake_uri=uri
        )
        started.append(a2)
        assert a2.stop() == 0 and b.stop() == 0
    finally:
        landbot.stop.set()
        proxy.stop()
        for c in started:
            c.kill()
    acked = set(landbot.acked)
    with Lake(uri or lake) as lk:
        rows = lk.query("SELECT message_key, count(*) FROM messages GROUP BY 1").rows
        stored = lk.stats().stored_rows
    counts = dict(rows)
    missing = acked - set(counts)
    assert not missing, f"{len(missing)} acknowledged messages lost, e.g. {sorted(missing)[:3]}"
    assert all(n == 1 for n in counts.values())
    assert stored >= len(acked)


def _metrics_dir(server_pid: int) -> Path:
    """The PROMETHEUS_MULTIPROC_DIR ``hooklake serve`` gave its workers (their environment)."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            if ppid != server_pid:
                continue
            env = (stat.parent / "environ").read_bytes().split(b"\0")
        except (OSError, ValueError, IndexError):
            continue
        for item in env:
            if item.startswith(b"PROMETHEUS_MULTIPROC_DIR="):
                return Path(item.split(b"=", 1)[1].decode())
    raise AssertionError("no worker with PROMETHEUS_MULTIPROC_DIR")


def test_metrics_cover_every_worker(tmp_path: Path) -> None:
    c = start_collector(tmp_path / "lake", workers=2, log_dir=tmp_path)
    close = {"Connection": "close"}  # a new connection each time: any worker may accept it
    try:
        # Which worker accepts a connection is up to the kernel: send until both answered
        # some (each has its own counter file)...
        n = 0
        while len(list(_metrics_dir(c.proc.pid).glob("counter_*.db"))) < 2:
            assert n < 2000, "one worker took every connection"
            for i in range(n, n + 20):
                response = httpx.post(c.hook_url(), content=_body(f"m-{i}", 7, i), headers=close)
                assert response.status_code == 200
            n += 20
        # ...and whichever worker answers /metrics reports all of them.
        for _ in range(10):
            text = httpx.get(f"{c.url}/metrics", headers=close).text
            assert f'hooklake_requests_total{{hook="default",status="200"}} {float(n)}' in text
            assert f'hooklake_messages_accepted_total{{hook="default"}} {float(n)}' in text
            assert "hooklake_flush_lag_seconds" in text
    finally:
        assert c.stop() == 0
