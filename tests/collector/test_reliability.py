"""A 2xx means stored, whatever happens next: kill -9 under load, two workers, storage failure.

Every test runs the real ``hooklake serve`` and talks HTTP to it. Senders behave like Landbot:
anything not answered 2xx is sent again later, so the only duplicates allowed in the lake are
messages that were sent more than once, and only as many times as they were sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import re
import signal
import subprocess
import sys
import time
from collections import Counter, deque
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from hooklake.collector.journal import writer_dirs
from hooklake.layout import REJECTED
from tests.conftest import Collector, lake_rows, sample

TEMPLATE = orjson.loads(sample("text_from_customer.json"))["messages"][0]
LEGACY = orjson.loads(sample("help_center_sample.json"))["messages"][0]
FAST = {  # seal and flush often, roll segments small: more moments for a kill to land in
    "HOOKLAKE_SEAL_INTERVAL": "0.4",
    "HOOKLAKE_FLUSH_INTERVAL": "0.4",
    "HOOKLAKE_SEGMENT_MAX_BYTES": str(64 << 10),
}


def message(marker: str, legacy: bool, ts: float) -> dict[str, Any]:
    """A realistic message whose text is ``marker`` (legacy ones have no uuid: hashed key)."""
    msg: dict[str, Any] = orjson.loads(orjson.dumps(LEGACY if legacy else TEMPLATE))
    msg["timestamp"] = msg["_raw"]["timestamp"] = ts
    msg["data"]["body"] = msg["_raw"]["message"] = marker
    if not legacy:
        msg["_raw"]["uuid"] = f"uuid-{marker}"
    return msg


@dataclass
class Ledger:
    """What the senders sent: bodies, the markers of their messages, attempts and acks."""

    bodies: list[bytes] = field(default_factory=list)
    markers: list[list[str]] = field(default_factory=list)
    attempts: Counter[int] = field(default_factory=Counter)
    acked: set[int] = field(default_factory=set)
    statuses: Counter[int] = field(default_factory=Counter)

    def add(self, rng: random.Random, n: int) -> list[int]:
        ids = []
        for _ in range(n):
            bid = len(self.bodies)
            marks = [f"m{bid}-{i}" for i in range(rng.randint(1, 3))]
            ts = 1_747_943_000 + bid * 0.37
            legacy = rng.random() < 0.2
            msgs = [message(m, legacy, ts + i / 100) for i, m in enumerate(marks)]
            self.bodies.append(orjson.dumps({"messages": msgs}))
            self.markers.append(marks)
            ids.append(bid)
        return ids


async def pump(
    url: str,
    ledger: Ledger,
    todo: deque[int],
    *,
    concurrency: int,
    stop: asyncio.Event | None = None,
) -> None:
    """Send ``todo`` with ``concurrency`` connections; re-queue whatever is not acknowledged.
    Ends when ``todo`` is empty or ``stop`` is set."""
    stop = stop or asyncio.Event()
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=10, limits=limits) as client:

        async def sender() -> None:
            while not stop.is_set() and todo:
                bid = todo.popleft()
                ledger.attempts[bid] += 1
                try:
                    r = await client.post(url, content=ledger.bodies[bid])
                except httpx.HTTPError:
                    status = 0
                else:
                    status = r.status_code
                ledger.statuses[status] += 1
                assert status in (0, 200, 503), (status, r.text)
                if status == 200:
                    ledger.acked.add(bid)
                else:  # Landbot retries anything that was not a 2xx
                    todo.append(bid)
                    await asyncio.sleep(0.05)

        await asyncio.gather(*(sender() for _ in range(concurrency)))


def check_lake(lake: Path, ledger: Ledger, *, exactly_once: Collection[int] = ()) -> None:
    """Every acknowledged message is in the lake; nothing is there that was not sent; a message
    is there at most as often as it was sent (``exactly_once``: once); no row was written twice
    (every ``source``, a journal position, appears once)."""
    rows = lake_rows(lake)
    assert lake_rows(lake, REJECTED) == []
    sources = Counter(r["source"] for r in rows)
    assert [s for s, n in sources.items() if n > 1] == [], "a journal record was flushed twice"
    seen = Counter(r["text"] for r in rows)
    owner = {m: bid for bid, marks in enumerate(ledger.markers) for m in marks}
    assert set(seen) <= set(owner), "rows that no sender sent"
    for bid in ledger.acked:
        for m in ledger.markers[bid]:
            assert seen[m] >= 1, f"acknowledged message {m} is missing"
    for m, n in seen.items():
        bid = owner[m]
        assert n <= ledger.attempts[bid], f"{m} stored {n}x but sent {ledger.attempts[bid]}x"
        if bid in exactly_once:
            assert n == 1, f"{m} stored {n}x"
    for r in rows:
        if not r["message_key"].startswith("h:"):
            assert r["message_key"] == f"uuid-{r['text']}"
    segment_of: dict[str, str] = {}
    for r in rows:  # each data file is one segment's commit
        segment = r["source"].split("@", 1)[0]
        assert segment_of.setdefault(r["filename"], segment) == segment, "a file mixes segments"


def _hooklake(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hooklake", *args], capture_output=True, text=True, timeout=120
    )


# --- kill -9 --------------------------------------------------------------------------------


def test_kill_9_under_load_loses_no_acknowledged_message(
    collector_factory: Any, tmp_path: Path
) -> None:
    seed = random.randrange(1 << 32)
    rng = random.Random(seed)
    lake = tmp_path / "lake"
    ledger = Ledger()
    todo: deque[int] = deque()
    for rnd in range(4):
        todo.extend(ledger.add(rng, 400))
        c: Collector = collector_factory(lake, env=FAST)
        delay = rng.uniform(0.2, 1.8)

        async def round_(c: Collector = c, delay: float = delay) -> None:
            stop = asyncio.Event()
            load = asyncio.create_task(pump(c.hook_url(), ledger, todo, concurrency=16, stop=stop))
            await asyncio.sleep(delay)
            await asyncio.to_thread(c.kill)
            stop.set()
            await load

        asyncio.run(round_())
        assert ledger.acked, f"round {rnd} (seed {seed}): nothing was acknowledged before the kill"
        # What was killed mid-way is recovered at the next start, or by `hooklake flush` now.
        if rnd == 1:
            done = _hooklake("flush", "--lake", str(lake))
            assert done.returncode == 0, done.stderr
            check_lake(lake, ledger)

    c = collector_factory(lake, env=FAST)
    asyncio.run(pump(c.hook_url(), ledger, todo, concurrency=16))
    assert not todo and len(ledger.acked) == len(ledger.bodies)
    assert c.stop() == 0
    done = _hooklake("flush", "--lake", str(lake))
    assert done.returncode == 0 and "flushed 0 segment(s)" in done.stdout, done
    assert writer_dirs(lake) == []
    check_lake(lake, ledger)
    # Read as analysts do: the messages view holds each message once, however often sent.
    from hooklake.datasets.lake import Lake

    texts = [t for (t,) in Lake(lake).sql("select text from messages").fetchall()]
    assert sorted(texts) == sorted(m for marks in ledger.markers for m in marks)
    retried = sum(1 for n in ledger.attempts.values() if n > 1)
    assert retried, f"seed {seed}: no kill landed on a request in flight"


# --- two workers ----------------------------------------------------------------------------


def _group_pids(pgid: int) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            stat = (entry / "stat").read_text()
            if int(stat.rsplit(")", 1)[1].split()[2]) == pgid:
                pids.append(int(entry.name))
    return pids


def _open_segments_by_pid(lake: Path, pgid: int) -> dict[str, set[int]]:
    """Which processes of the collector have which ``*.open`` journal file open."""
    holders: dict[str, set[int]] = {}
    journal = str(lake / "_journal")
    for pid in _group_pids(pgid):
        with contextlib.suppress(OSError):
            for fd in os.listdir(f"/proc/{pid}/fd"):
                with contextlib.suppress(OSError):
                    target = os.readlink(f"/proc/{pid}/fd/{fd}")
                    if target.startswith(journal) and target.endswith(".open"):
                        holders.setdefault(target, set()).add(pid)
    return holders


def test_two_workers_and_64_senders_lose_nothing_and_never_share_a_file(
    collector_factory: Any, tmp_path: Path
) -> None:
    rng = random.Random(7)
    lake = tmp_path / "lake"
    c: Collector = collector_factory(lake, workers=2, env=FAST)
    ledger = Ledger()
    first = ledger.add(rng, 1500)
    todo = deque(first)
    samples: list[dict[str, set[int]]] = []

    async def watch(stop: asyncio.Event) -> None:
        while not stop.is_set():
            samples.append(await asyncio.to_thread(_open_segments_by_pid, lake, c.proc.pid))
            await asyncio.sleep(0.1)

    async def load() -> None:
        stop = asyncio.Event()
        watcher = asyncio.create_task(watch(stop))
        await pump(c.hook_url(), ledger, todo, concurrency=64)
        stop.set()
        await watcher

    asyncio.run(load())
    assert ledger.statuses[200] == len(first), ledger.statuses  # no retries were needed
    held = [s for s in samples if s]
    assert held, "never saw an open journal segment"
    for snapshot in held:
        for path, pids in snapshot.items():
            assert len(pids) == 1, f"{path} open in {pids}"
            (pid,) = pids
            assert f"-{pid}-" in Path(path).parent.name, "a segment outside its writer's directory"

    # kill -9 one worker: uvicorn replaces it; its journal is recovered by the flusher.
    workers = {int(re.split(r"-", Path(p).parent.name)[-2]) for s in held for p in s}
    victim = sorted(workers)[0]
    second = ledger.add(rng, 600)
    todo.extend(second)

    async def kill_one() -> None:
        load = asyncio.create_task(pump(c.hook_url(), ledger, todo, concurrency=64))
        await asyncio.sleep(0.5)
        os.kill(victim, signal.SIGKILL)
        await load

    asyncio.run(kill_one())
    assert len(ledger.acked) == len(ledger.bodies)
    assert c.stop() == 0
    check_lake(lake, ledger, exactly_once=set(first))
    writers = {r["source"].split("/", 1)[0] for r in lake_rows(lake)}
    assert len(writers) >= 2, writers  # both workers served
    assert writer_dirs(lake) == []


# --- storage failure ------------------------------------------------------------------------


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB tmpfs at ``tmp_path/lake``: a disk that can really fill up."""
    mount = tmp_path / "lake"
    mount.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small filesystem needs root (tmpfs); not root here")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "hooklake-test", str(mount)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _fill(directory: Path) -> Path:
    """Fill the filesystem to the last byte."""
    filler = directory / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:
        size = 1 << 16
        while size:
            try:
                os.write(fd, b"\0" * size)
            except OSError:
                size //= 2
    finally:
        os.close(fd)
    return filler


def _send_all(c: Collector, ledger: Ledger, ids: list[int]) -> dict[int, httpx.Response]:
    out = {}
    with httpx.Client(timeout=10) as client:
        for bid in ids:
            ledger.attempts[bid] += 1
            out[bid] = r = client.post(c.hook_url(), content=ledger.bodies[bid])
            if r.status_code == 200:
                ledger.acked.add(bid)
    return out


def _wait_flushed(lake: Path, ledger: Ledger, timeout: float = 15) -> None:
    want = {m for bid in ledger.acked for m in ledger.markers[bid]}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if want <= {r["text"] for r in lake_rows(lake)}:
            return
        time.sleep(0.2)
    missing = want - {r["text"] for r in lake_rows(lake)}
    raise AssertionError(f"not flushed while serving: {sorted(missing)[:10]}")


def test_a_full_disk_answers_503_and_recovers_when_space_returns(
    collector_factory: Any, small_fs: Path
) -> None:
    rng = random.Random(3)
    ledger = Ledger()
    c: Collector = collector_factory(small_fs, env=FAST)
    before = ledger.add(rng, 20)
    assert {r.status_code for r in _send_all(c, ledger, before).values()} == {200}
    _wait_flushed(small_fs, ledger)

    filler = _fill(small_fs)
    during = ledger.add(rng, 40)
    answers = _send_all(c, ledger, during)
    refused = [bid for bid, r in answers.items() if r.status_code != 200]
    for bid in refused:
        r = answers[bid]
        assert r.status_code == 503 and r.headers["Retry-After"], r.text
        assert "disk full" in r.json()["detail"]
    # A few may still fit in the journal's last partly used page; most cannot.
    assert len(refused) >= 30, {r.status_code for r in answers.values()}
    assert httpx.get(f"{c.url}/healthz").status_code == 200
    metrics = httpx.get(f"{c.url}/metrics").text
    assert f'hooklake_requests_total{{hook="default",status="503"}} {len(refused)}.0' in metrics

    filler.unlink()
    retry = _send_all(c, ledger, refused)
    assert {r.status_code for r in retry.values()} == {200}
    _wait_flushed(small_fs, ledger)  # the flusher, which failed while full, catches up
    assert c.stop() == 0
    check_lake(small_fs, ledger, exactly_once=set(before + during))


def test_a_read_only_lake_answers_503_and_recovers_when_writable_again(
    collector_factory: Any, small_fs: Path
) -> None:
    rng = random.Random(4)
    ledger = Ledger()
    c: Collector = collector_factory(small_fs, env=FAST)
    before = ledger.add(rng, 20)
    assert {r.status_code for r in _send_all(c, ledger, before).values()} == {200}

    # Bind the lake read-only over itself: open files stay writable, nothing new can be made.
    subprocess.run(["mount", "--bind", str(small_fs), str(small_fs)], check=True)
    subprocess.run(["mount", "-o", "remount,bind,ro", str(small_fs)], check=True)
    try:
        # The segment still open takes these (it is durable there), until it is due to be
        # sealed, which now fails; from then on every request is refused.
        _send_all(c, ledger, ledger.add(rng, 5))
        time.sleep(1.0)
        during = ledger.add(rng, 10)
        answers = _send_all(c, ledger, during)
        assert {r.status_code for r in answers.values()} == {503}
        assert all(r.headers["Retry-After"] for r in answers.values())
        assert httpx.get(f"{c.url}/healthz").status_code == 200
        # A collector cannot start on a lake it cannot write.
        done = _hooklake("serve", "--lake", str(small_fs), "--port", "1")
        assert done.returncode == 1 and "not writable" in done.stderr, done
    finally:
        subprocess.run(["umount", str(small_fs)], check=True)

    retry = _send_all(c, ledger, during)
    assert {r.status_code for r in retry.values()} == {200}
    _wait_flushed(small_fs, ledger)  # everything, also what was acked before, while serving
    assert c.stop() == 0
    check_lake(small_fs, ledger, exactly_once=set(before + during))
