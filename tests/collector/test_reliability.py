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
import socket
import subprocess
import sys
from collections import Counter, deque
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from hooklake.collector.app import CONFIG_ENV
from hooklake.collector.failures import RepeatedFailure
from hooklake.collector.flush import flush_lake
from hooklake.collector.journal import writer_dirs
from hooklake.layout import REJECTED
from hooklake.settings import CollectorSettings
from tests.conftest import Collector, SeededRandom, group_pids, lake_rows, sample, wait_until

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


@dataclass
class Flight:
    """The requests of one load run: which are in flight now, and which got no answer."""

    in_flight: set[int] = field(default_factory=set)
    unanswered: set[int] = field(default_factory=set)
    acked: int = 0
    started: int = 0


async def pump(
    url: str,
    ledger: Ledger,
    todo: deque[int],
    *,
    concurrency: int,
    stop: asyncio.Event | None = None,
    flight: Flight | None = None,
    refill: Callable[[], list[int]] | None = None,
) -> None:
    """Send ``todo`` with ``concurrency`` connections; re-queue whatever is not acknowledged.
    Ends when ``todo`` is empty (after ``refill`` found nothing more) or ``stop`` is set."""
    stop = stop or asyncio.Event()
    flight = flight or Flight()
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    # A generous timeout: on a busy machine a slow answer is not a lost one.
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:

        async def sender() -> None:
            while not stop.is_set():
                if not todo and refill is not None:
                    todo.extend(refill())
                if not todo:
                    return
                bid = todo.popleft()
                ledger.attempts[bid] += 1
                attempt = flight.started
                flight.started += 1
                flight.in_flight.add(attempt)
                try:
                    r = await client.post(url, content=ledger.bodies[bid])
                except httpx.TimeoutException as exc:
                    raise AssertionError(f"no answer within 60 s to body {bid}") from exc
                except httpx.ConnectError:
                    status = 0  # the collector was gone before this request reached it
                except httpx.HTTPError:
                    status = 0  # cut while in flight
                    flight.unanswered.add(attempt)
                else:
                    status = r.status_code
                finally:
                    flight.in_flight.discard(attempt)
                ledger.statuses[status] += 1
                assert status in (0, 200, 503), (status, r.text)
                if status == 200:
                    ledger.acked.add(bid)
                    flight.acked += 1
                else:  # Landbot retries anything that was not a 2xx
                    todo.append(bid)
                    await asyncio.sleep(0.05)

        await asyncio.gather(*(sender() for _ in range(concurrency)))


async def busy(flight: Flight, load: asyncio.Task[None], what: str, timeout: float = 120) -> None:
    """Return once the load has had answers and has requests in flight: a moment when a kill
    lands on work in progress. Fails only if the collector stops answering altogether."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not (flight.acked and flight.in_flight):
        if load.done():
            await load  # raises what went wrong
            raise AssertionError(f"{what}: the load ended before the kill")
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{what}: nothing acknowledged within {timeout:g} s")
        await asyncio.sleep(0.002)


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


#: Kills that must land on requests in flight, and the most rounds it may take to get them.
KILLS_IN_FLIGHT = 4
MAX_ROUNDS = 25


def test_kill_9_under_load_loses_no_acknowledged_message(
    collector_factory: Any, tmp_path: Path, rng: SeededRandom
) -> None:
    lake = tmp_path / "lake"
    ledger = Ledger()
    todo: deque[int] = deque()
    landed = rounds = 0
    # Rounds go on until enough kills have cut requests in flight: on a fast or a busy machine
    # alike, the set-up makes the condition happen instead of hoping for it.
    while landed < KILLS_IN_FLIGHT:
        assert rounds < MAX_ROUNDS, (
            f"{rng}: only {landed} of {rounds} kills landed on a request in flight"
        )
        todo.extend(ledger.add(rng, 400))
        c: Collector = collector_factory(lake, env=FAST)
        delay = rng.uniform(0.2, 1.8)

        async def round_(c: Collector = c, delay: float = delay, n: int = rounds) -> set[int]:
            stop = asyncio.Event()
            flight = Flight()
            load = asyncio.create_task(
                pump(
                    c.hook_url(),
                    ledger,
                    todo,
                    concurrency=16,
                    stop=stop,
                    flight=flight,
                    refill=lambda: ledger.add(rng, 50),  # never idle before the kill
                )
            )
            await asyncio.sleep(delay)
            await busy(flight, load, f"round {n} ({rng})")
            # The snapshot and the signal are one step of the event loop: exactly these
            # requests were sent, or being sent, and unanswered when the collector died.
            at_kill = set(flight.in_flight)
            os.killpg(c.proc.pid, signal.SIGKILL)
            stop.set()
            await asyncio.to_thread(c.kill)  # wait until every process of it is gone
            await load
            return at_kill & flight.unanswered

        cut = asyncio.run(round_())
        landed += bool(cut)
        rounds += 1
        # What was killed mid-way is recovered at the next start, or by `hooklake flush` now.
        if rounds == 2:
            done = _hooklake("flush", "--lake", str(lake))
            assert done.returncode == 0, done.stderr
            check_lake(lake, ledger)

    print(f"{landed} of {rounds} kills landed on requests in flight ({rng})")
    # Landbot also re-sends what was acknowledged (its own timeout can expire before our
    # answer arrives): these are stored twice for certain, so reading must de-duplicate them.
    resent = rng.sample(sorted(ledger.acked), 40)
    todo.extend(resent)
    c = collector_factory(lake, env=FAST)
    asyncio.run(pump(c.hook_url(), ledger, todo, concurrency=16))
    assert not todo and len(ledger.acked) == len(ledger.bodies), rng
    assert c.stop() == 0
    done = _hooklake("flush", "--lake", str(lake))
    assert done.returncode == 0 and "flushed 0 segments" in done.stdout, done
    assert writer_dirs(lake) == []
    check_lake(lake, ledger)
    stored = Counter(r["text"] for r in lake_rows(lake))
    assert all(stored[m] >= 2 for bid in resent for m in ledger.markers[bid]), rng
    # Read as analysts do: the messages view holds each message once, however often sent.
    from hooklake.datasets.lake import Lake

    texts = [t for (t,) in Lake(lake).sql("select text from messages").fetchall()]
    assert sorted(texts) == sorted(m for marks in ledger.markers for m in marks), rng
    # A fact of the set-up by now, not a hope: the requests the kills cut were sent again.
    assert sum(1 for n in ledger.attempts.values() if n > 1) >= landed, rng


# --- two workers ----------------------------------------------------------------------------


def _open_segments_by_pid(lake: Path, pgid: int) -> dict[str, set[int]]:
    """Which processes of the collector have which ``*.open`` journal file open."""
    holders: dict[str, set[int]] = {}
    journal = str(lake / "_journal")
    for pid in group_pids(pgid):
        with contextlib.suppress(OSError):
            for fd in os.listdir(f"/proc/{pid}/fd"):
                with contextlib.suppress(OSError):
                    target = os.readlink(f"/proc/{pid}/fd/{fd}")
                    if target.startswith(journal) and target.endswith(".open"):
                        holders.setdefault(target, set()).add(pid)
    return holders


def test_two_workers_and_64_senders_lose_nothing_and_never_share_a_file(
    collector_factory: Any, tmp_path: Path, rng: SeededRandom
) -> None:
    lake = tmp_path / "lake"
    c: Collector = collector_factory(lake, workers=2, env=FAST)
    ledger = Ledger()
    first: list[int] = []
    todo: deque[int] = deque()
    samples: list[dict[str, set[int]]] = []

    def journaling() -> set[int]:
        """The worker processes seen holding an open journal segment so far."""
        return {pid for s in samples for pids in s.values() for pid in pids}

    async def watch(stop: asyncio.Event) -> None:
        while not stop.is_set():
            samples.append(await asyncio.to_thread(_open_segments_by_pid, lake, c.proc.pid))
            await asyncio.sleep(0.05)

    async def load() -> None:
        stop = asyncio.Event()
        watcher = asyncio.create_task(watch(stop))
        # Which worker accepts a connection is up to the kernel: send batches, each on new
        # connections, until both workers have journaled.
        while len(journaling()) < 2:
            assert len(first) < 5000, f"{rng}: one worker took every connection: {journaling()}"
            batch = ledger.add(rng, 300 if first else 1500)
            first.extend(batch)
            todo.extend(batch)
            await pump(c.hook_url(), ledger, todo, concurrency=64)
        stop.set()
        await watcher

    asyncio.run(load())
    assert ledger.statuses[200] == len(first), ledger.statuses  # no retries were needed
    held = [s for s in samples if s]
    for snapshot in held:
        for path, pids in snapshot.items():
            assert len(pids) == 1, f"{path} open in {pids}"
            (pid,) = pids
            assert f"-{pid}-" in Path(path).parent.name, "a segment outside its writer's directory"

    # kill -9 a worker while it holds an open segment of acknowledged records and requests are
    # in flight: uvicorn replaces it; its journal is recovered by the flusher.
    killed: list[int] = []

    async def kill_one() -> None:
        flight = Flight()
        refill = lambda: [] if killed else ledger.add(rng, 50)  # noqa: E731
        load = asyncio.create_task(
            pump(c.hook_url(), ledger, todo, concurrency=64, flight=flight, refill=refill)
        )
        deadline = asyncio.get_running_loop().time() + 120
        while not killed:
            await busy(flight, load, f"killing a worker ({rng})")
            now = await asyncio.to_thread(_open_segments_by_pid, lake, c.proc.pid)
            holders = sorted(pid for pids in now.values() for pid in pids)
            if holders and flight.in_flight:
                os.kill(holders[0], signal.SIGKILL)
                killed.append(holders[0])
            assert asyncio.get_running_loop().time() < deadline, "no worker held a segment"
        await load

    asyncio.run(kill_one())
    assert len(ledger.acked) == len(ledger.bodies)
    assert c.stop() == 0
    check_lake(lake, ledger, exactly_once=set(first))
    writers = {r["source"].split("/", 1)[0] for r in lake_rows(lake)}
    assert len(writers) >= 2, writers  # both workers served
    assert any(f"-{killed[0]}-" in w for w in writers), "the killed worker's journal is read"
    assert writer_dirs(lake) == []


def test_every_worker_logs_the_collectors_lines(collector_factory: Any, tmp_path: Path) -> None:
    """The workers of ``--workers 2`` are fresh interpreters: each must log its writer at start
    and every reject, with the time, as one worker does (they were dropped)."""
    c: Collector = collector_factory(tmp_path / "lake", workers=2)
    writers: set[str] = set()

    def both_answered() -> bool:
        # A new connection each time: the kernel spreads them over the two workers.
        with httpx.Client() as client:
            writers.add(client.get(f"{c.url}/healthz").json()["writer"])
            assert client.post(c.hook_url(), content=b"not json").status_code == 400
        return len(writers) == 2

    wait_until(both_answered, "both workers answered")
    stamp = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} hooklake\.collector "
    wanted = [rf"^{stamp}collector writer={w} lake=" for w in writers]
    wanted.append(rf"^{stamp}rejected hook=default code=invalid_json ")
    # uvicorn's own lines carry the time too.
    wanted.append(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} uvicorn\.error INFO: +Started server ")
    for line in wanted:
        wait_until(lambda line=line: re.search(line, c.log.read_text(), re.M), line)
    assert c.stop() == 0
    # Each line once: the collector's lines do not also reach the root logger's handler.
    starts = re.findall(r"collector writer=(\S+) lake=", c.log.read_text())
    assert sorted(starts) == sorted(writers)


def test_a_collector_killed_with_workers_leaves_no_metrics_directory_for_good(
    collector_factory: Any, tmp_path: Path
) -> None:
    """``serve --workers N`` keeps its workers' metrics in a temporary directory, which a kill
    -9 leaves behind; the next collector removes those whose collector is gone, and no other."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, check=True, text=True)  # fmt: skip
    stale = tmp / f"hooklake-metrics-{int(gone.stdout)}-x1"
    alive = tmp / f"hooklake-metrics-{os.getpid()}-x2"  # a running collector's
    for d in (stale, alive):
        d.mkdir()
    env = {"TMPDIR": str(tmp)}
    first: Collector = collector_factory(tmp_path / "lake", workers=2, env=env)
    assert not stale.exists() and alive.exists()
    (own,) = tmp.glob(f"hooklake-metrics-{first.proc.pid}-*")
    first.kill()
    assert own.exists()  # what kill -9 leaves
    second: Collector = collector_factory(tmp_path / "lake", workers=2, env=env)
    assert not own.exists() and alive.exists()
    assert second.stop() == 0
    assert sorted(p.name for p in tmp.glob("hooklake-metrics-*")) == [alive.name]


def test_the_flusher_sums_up_what_it_flushed_instead_of_a_line_per_flush(
    collector_factory: Any, tmp_path: Path
) -> None:
    """A line at every flush is 43,000 a day per collector: the flusher logs what it committed
    once a minute, and when it stops, and the sum is all of it."""
    from hooklake.simulate import simulate

    lake = tmp_path / "lake"
    c: Collector = collector_factory(lake, env=FAST)
    deliveries = list(simulate(8, seed=11))
    sent = 0
    for chunk in range(3):  # over several flushes
        for d in deliveries[chunk::3]:
            assert httpx.post(c.hook_url(), content=d.body).status_code == 200
            sent += len(orjson.loads(d.body)["messages"])
        wait_until(lambda n=sent: len(lake_rows(lake)) >= n, "the chunk is flushed")
    assert c.stop() == 0
    log = c.log.read_text()
    assert "flushed segments=" not in log
    lines = re.findall(r"flushed in the last \d+ s: segments=(\d+) messages=(\d+) ", log)
    assert len(lines) == 1, log  # within a minute: the one at the stop
    assert int(lines[0][1]) == len(lake_rows(lake))


def test_workers_stop_when_hooklake_serve_alone_is_killed(
    collector_factory: Any, tmp_path: Path, rng: SeededRandom
) -> None:
    """kill -9 of the ``hooklake serve`` process alone, not its process group (the kernel's OOM
    killer, a process manager that signals the main pid). Its workers must not go on answering
    Landbot with nobody flushing what they journal, holding the port so that the collector
    cannot start again: they finish, seal their journals and exit. Every acknowledged body is
    then stored by the next flush."""
    lake = tmp_path / "lake"
    c: Collector = collector_factory(lake, workers=2)
    ledger = Ledger()
    ids = ledger.add(rng, 40)
    assert {r.status_code for r in _send_all(c, ledger, ids).values()} == {200}
    os.kill(c.proc.pid, signal.SIGKILL)
    c.proc.wait(60)
    wait_until(lambda: not group_pids(c.proc.pid), "the collector's workers exit after it")
    with socket.socket() as s:
        # What uvicorn does to listen: it fails only while another socket listens there.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", c.port))
        s.listen()
    flush_lake(lake)
    check_lake(lake, ledger, exactly_once=set(ids))
    assert writer_dirs(lake) == []


_ORPHANING_LAUNCHER = """
import os, subprocess, sys
os.environ["HOOKLAKE_SUPERVISOR_PID"] = str(os.getpid())
log = open(sys.argv[1], "wb")
worker = subprocess.Popen(
    [sys.executable, "-m", "uvicorn", "hooklake.collector.app:app_from_env", "--factory",
     "--host", "127.0.0.1", "--port", "0"],
    stdout=log, stderr=subprocess.STDOUT,
)
print(worker.pid)
"""


def _alive(pid: int) -> bool:
    """Whether process ``pid`` exists and is not a zombie (an exited child of init, unreaped)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_a_worker_whose_supervisor_died_while_it_started_stops_too(tmp_path: Path) -> None:
    """The race the test above can miss: ``hooklake serve`` killed while a worker is still
    starting. Here the process that starts the worker (and names itself its supervisor) exits
    at once, so the worker always comes up orphaned; it stops by itself, gracefully."""
    log = tmp_path / "worker.log"
    settings = CollectorSettings(lake=str(tmp_path / "lake"))
    env = {**os.environ, CONFIG_ENV: settings.model_dump_json()}
    done = subprocess.run(
        [sys.executable, "-c", _ORPHANING_LAUNCHER, str(log)],
        env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    worker = int(done.stdout.strip())
    try:
        wait_until(lambda: not _alive(worker), "the orphaned worker stops")
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(worker, signal.SIGKILL)
    text = log.read_text()
    assert "supervisor" in text and "is gone: this worker stops" in text, text
    assert "Application shutdown complete" in text, text


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


def _wait_flushed(lake: Path, ledger: Ledger) -> None:
    want = {m for bid in ledger.acked for m in ledger.markers[bid]}
    wait_until(
        lambda: want <= {r["text"] for r in lake_rows(lake)},
        "the flusher stored every acknowledged message while serving",
    )


def _journal_drained(lake: Path) -> bool:
    """No segment is left to flush, so nothing frees disk space behind the test's back."""
    return not list((lake / "_journal").glob("*/*.seg")) + list(
        (lake / "_journal").glob("*/*.open")
    )


def test_a_full_disk_answers_503_and_recovers_when_space_returns(
    collector_factory: Any, small_fs: Path, rng: SeededRandom
) -> None:
    ledger = Ledger()
    c: Collector = collector_factory(small_fs, env=FAST)
    before = ledger.add(rng, 20)
    assert {r.status_code for r in _send_all(c, ledger, before).values()} == {200}
    _wait_flushed(small_fs, ledger)
    # The flusher deletes a segment just after storing its rows: wait for that, or the space
    # it frees after the disk is filled would take some of the requests meant to be refused.
    wait_until(lambda: _journal_drained(small_fs), "the flushed segments were deleted")

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
    # One line for the refused requests, not one each.
    assert c.log.read_text().count("the journal failed, answering 503 meanwhile") == 1

    filler.unlink()
    retry = _send_all(c, ledger, refused)
    assert {r.status_code for r in retry.values()} == {200}
    assert "the journal works again after" in c.log.read_text()
    _wait_flushed(small_fs, ledger)  # the flusher, which failed while full, catches up
    assert c.stop() == 0
    check_lake(small_fs, ledger, exactly_once=set(before + during))


def test_a_read_only_lake_answers_503_and_recovers_when_writable_again(
    collector_factory: Any, small_fs: Path, rng: SeededRandom
) -> None:
    ledger = Ledger()
    c: Collector = collector_factory(small_fs, env=FAST)
    before = ledger.add(rng, 20)
    assert {r.status_code for r in _send_all(c, ledger, before).values()} == {200}

    # Bind the lake read-only over itself: open files stay writable, nothing new can be made.
    subprocess.run(["mount", "--bind", str(small_fs), str(small_fs)], check=True)
    subprocess.run(["mount", "-o", "remount,bind,ro", str(small_fs)], check=True)
    try:
        # The segment still open takes requests (they are durable there) until it is due to
        # be sealed, which now fails; from then on every request is refused. Send until the
        # first refusal, however long the seal takes to come due on a busy machine.
        wait_until(
            lambda: (
                503 in {r.status_code for r in _send_all(c, ledger, ledger.add(rng, 1)).values()}
            ),
            "a request was refused once the lake became read-only",
            every=0.05,
        )
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


def test_a_flush_that_keeps_failing_is_logged_once_per_error_then_once_a_minute(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Storage gone for an hour must not write a traceback every 2 s: each new error once (ours
    in one line, colours of delta-rs's chains of causes stripped), the same again once a
    minute with how long it has lasted, and the recovery."""
    from hooklake.collector import failures
    from hooklake.errors import StorageError

    now = [1000.0]
    monkeypatch.setattr(failures.time, "monotonic", lambda: now[0])
    failing = RepeatedFailure("flush", "retrying every 2.0 s")
    gone = StorageError("cannot write: \x1b[31m↳\x1b[0m\n  404 NoSuchBucket")
    with caplog.at_level("INFO", logger="hooklake.collector"):
        for _ in range(30):  # a minute of retries, every 2 s
            failing.failed(gone)
            now[0] += 2.0
        failing.failed(gone)
        # Object storage's errors say how long each attempt took: still the same error.
        failing.failed(StorageError("cannot write: 404 NoSuchBucket in 1.385209545s"))
        failing.failed(StorageError("cannot write: 404 NoSuchBucket in 0.9s"))
        failing.failed(ValueError("another error"))
        failing.worked()
    messages = [r.getMessage() for r in caplog.records]
    assert messages == [
        "flush failed, retrying every 2.0 s: cannot write: ↳ 404 NoSuchBucket",
        "flush still failing after 60 s: cannot write: ↳ 404 NoSuchBucket",
        "flush failed, retrying every 2.0 s: cannot write: 404 NoSuchBucket in 1.385209545s",
        "flush failed, retrying every 2.0 s",
        "flush works again after 60 s",
    ]
    assert [r.exc_info is not None for r in caplog.records] == [False, False, False, True, False]
