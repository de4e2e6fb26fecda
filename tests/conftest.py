"""Shared fixtures: a real collector (``hooklake serve``) in a subprocess on a loopback port,
a seeded ``rng`` whose seed is reported with every failure, and the Hypothesis profiles.

Nothing here decides a test by timing: waits poll for an observable condition under a generous
deadline that only a real breakage can run out.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, settings

from hooklake import tables
from hooklake.layout import MESSAGES
from hooklake.storage import lake_location
from tests.s3 import SeaweedS3, start_seaweedfs

CASES = Path(__file__).parent / "cases"
LANDBOT = CASES / "landbot"
T = TypeVar("T")

# --- Hypothesis profiles --------------------------------------------------------------------
# Loaded here, before any test module is imported: a test's own @settings(...) takes every value
# it does not set from the profile loaded at that moment.

HYPOTHESIS_PROFILE_ENV = "HYPOTHESIS_PROFILE"
#: CI: the same examples on every run (derandomized, no example database), no timing checks.
settings.register_profile(
    "ci",
    max_examples=100,
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
#: Local exploration: ten times the examples, new ones each run, failures kept in .hypothesis/.
settings.register_profile(
    "explore",
    max_examples=1000,
    derandomize=False,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get(HYPOTHESIS_PROFILE_ENV) or "ci")


def examples(budget: int) -> int:
    """A property test's example budget: ``budget`` under the ``ci`` profile, scaled with the
    loaded profile's ``max_examples`` (x10 under ``explore``)."""
    return max(1, budget * settings.default.max_examples // 100)


# --- seeded randomness ----------------------------------------------------------------------

SEED_ENV = "HOOKLAKE_TEST_SEED"
DEFAULT_SEED = 20_250_522
_SEED = pytest.StashKey[int]()


class SeededRandom(random.Random):
    """A ``random.Random`` that knows its seed; ``str()`` of it is how to replay it."""

    def __init__(self, seed: int) -> None:
        super().__init__(seed)
        self.initial_seed = seed

    def __str__(self) -> str:
        return f"{SEED_ENV}={self.initial_seed}"

    def __repr__(self) -> str:  # how pytest shows the fixture in a failing test's traceback
        return f"SeededRandom({self})"


def pytest_configure(config: pytest.Config) -> None:
    raw = os.environ.get(SEED_ENV, "").strip()
    if not raw:
        seed = DEFAULT_SEED
    elif raw.lower() == "random":
        seed = random.SystemRandom().randrange(1 << 32)
    else:
        try:
            seed = int(raw)
        except ValueError:
            msg = f"{SEED_ENV} must be an integer or 'random', not {raw!r}"
            raise pytest.UsageError(msg) from None
    config.stash[_SEED] = seed


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A profile with more examples than ``ci`` gives every test proportionally longer than
    the configured per-test timeout: ten times the examples of a property test take about
    ten times as long, and a hang is still caught."""
    scale = settings.default.max_examples / 100
    timeout = float(config.getini("timeout") or 0)
    if scale <= 1 or not timeout:
        return
    for item in items:
        if item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(timeout * scale))


def pytest_report_header(config: pytest.Config) -> str:
    profile = settings.get_current_profile_name()  # also right for --hypothesis-profile
    return (
        f"hooklake: {SEED_ENV}={config.stash[_SEED]} (an integer or 'random'), "
        f"{HYPOTHESIS_PROFILE_ENV}={profile} (ci or explore)"
    )


@pytest.fixture
def rng(request: pytest.FixtureRequest) -> SeededRandom:
    """The test's random source, seeded from ``HOOKLAKE_TEST_SEED``; failures name the seed."""
    seed = request.config.stash[_SEED]
    request.node.stash[_SEED] = seed
    request.node.user_properties.append((SEED_ENV, seed))
    return SeededRandom(seed)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    seed = item.stash.get(_SEED, None)
    if report.failed and seed is not None:
        # Every failure of a test that drew random numbers says how to replay them.
        report.sections.append(("random seed", f"replay with {SEED_ENV}={seed}"))
        crash = getattr(report.longrepr, "reprcrash", None)
        if crash is not None:
            crash.message = f"[{SEED_ENV}={seed}] {crash.message}"
    return report


# --- the collector --------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Collector:
    """A running ``hooklake serve`` process group."""

    lake: Path
    port: int
    proc: subprocess.Popen[bytes]
    log: Path
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def hook_url(self, hook: str = "default") -> str:
        return f"{self.url}/hooks/{hook}"

    def stop(self, timeout: float = 120) -> int:
        """Graceful stop (SIGTERM): the collector flushes everything before it exits."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def kill(self, timeout: float = 60) -> None:
        """kill -9 of the whole process group (server, workers, flusher); returns once every
        process of it is gone, so nothing of it touches the lake afterwards."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout)
        deadline = time.monotonic() + timeout
        while left := group_pids(self.proc.pid):
            if time.monotonic() > deadline:
                raise RuntimeError(f"collector processes {left} outlived kill -9 by {timeout} s")
            time.sleep(0.02)


def group_pids(pgid: int) -> list[int]:
    """The live processes of process group ``pgid`` (zombies are dead: they hold nothing)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid and fields[0] != "Z":
                pids.append(int(entry.name))
    return pids


def wait_until(check: Callable[[], T], what: str, timeout: float = 120, every: float = 0.1) -> T:
    """Poll ``check`` until it returns something true and return that. The deadline is for a
    real breakage only: a slow or busy machine never uses it up."""
    deadline = time.monotonic() + timeout
    while not (result := check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:g} s: {what}")
        time.sleep(every)
    return result


def start_collector(
    lake: Path,
    *,
    hooks: str | None = None,
    workers: int = 1,
    args: tuple[str, ...] = (),
    env: dict[str, str] | None = None,
    log_dir: Path | None = None,
    lake_uri: str | None = None,
    port: int | None = None,
) -> Collector:
    """Start ``hooklake serve`` on a free loopback port (or ``port``, e.g. to restart one
    that was stopped) and wait until it answers. The lake is ``lake``, or ``lake_uri``
    (e.g. ``s3://…``) when given.

    Other programs on the machine can take the port between our choosing it and the collector
    binding it; then the collector starts again on another one."""
    if port is not None:
        collector = _start_on_port(port, lake, hooks, workers, args, env, log_dir, lake_uri)
        if collector is None:
            raise RuntimeError(f"port {port} is taken")
        return collector
    for _ in range(5):
        collector = _start_on_port(free_port(), lake, hooks, workers, args, env, log_dir, lake_uri)
        if collector is not None:
            return collector
    raise RuntimeError("five free ports in a row were taken before the collector bound them")


def _start_on_port(
    port: int,
    lake: Path,
    hooks: str | None,
    workers: int,
    args: tuple[str, ...],
    env: dict[str, str] | None,
    log_dir: Path | None,
    lake_uri: str | None,
) -> Collector | None:
    target = lake_uri or str(lake)
    cmd = [sys.executable, "-m", "hooklake", "serve", "--lake", target, "--port", str(port)]
    cmd += ["--workers", str(workers), *args]
    if hooks is not None:
        hooks_file = lake.parent / f"hooks-{port}.toml"
        hooks_file.write_text(hooks)
        cmd += ["--hooks", str(hooks_file)]
    log = (log_dir or lake.parent) / f"serve-{port}.log"
    full_env = {**os.environ, **(env or {})}
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            cmd, stdout=out, stderr=subprocess.STDOUT, env=full_env, start_new_session=True
        )
    collector = Collector(lake, port, proc, log, env or {})
    # Start-up imports pyarrow and spawns the flusher: slow on a busy machine, so be generous.
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            collector.kill()
            if "address already in use" in log.read_text().lower():
                return None
            raise RuntimeError(f"collector exited early:\n{log.read_text()}")
        try:
            r = httpx.get(f"{collector.url}/healthz", timeout=1)
        except httpx.TransportError:
            time.sleep(0.05)
            continue
        # Whoever took the port may answer too: only our own process counts.
        if r.status_code == 200 and _writer_pid(r) in {proc.pid, *group_pids(proc.pid)}:
            return collector
        time.sleep(0.05)
    collector.kill()
    raise RuntimeError(f"collector did not start:\n{log.read_text()}")


def _writer_pid(healthz: httpx.Response) -> int | None:
    """The process id in a ``/healthz`` answer's writer id (``<host>-<pid>-<random>``)."""
    try:
        return int(str(healthz.json()["writer"]).rsplit("-", 2)[-2])
    except (ValueError, KeyError, IndexError, TypeError):
        return None


@pytest.fixture
def collector_factory(tmp_path: Path) -> Iterator[type[Collector] | object]:
    started: list[Collector] = []

    def factory(lake: Path | None = None, **kwargs: object) -> Collector:
        c = start_collector(lake or tmp_path / "lake", **kwargs)  # type: ignore[arg-type]
        started.append(c)
        return c

    yield factory
    for c in started:
        c.kill()


def sample(name: str) -> bytes:
    return (LANDBOT / name).read_bytes()


def column_chunks(meta: pq.FileMetaData) -> Iterator[pq.ColumnChunkMetaData]:
    """Every column chunk of a Parquet file (its footer ``meta``): what tests of a file
    layout look at (codec, dictionary pages)."""
    for g in range(meta.num_row_groups):
        group = meta.row_group(g)
        for c in range(group.num_columns):
            yield group.column(c)


def lake_rows(lake: Path | str, table: str = MESSAGES) -> list[dict[str, Any]]:
    """Every stored row of ``table`` (duplicates included) in the latest version of its Delta
    table, with ``date`` and ``filename`` (the data file holding it), in arrival order."""
    dt = tables.open_table(lake_location(lake), table)
    if dt is None:
        return []
    dataset = dt.to_pyarrow_dataset()
    data = dataset.to_table(columns=[*dataset.schema.names, "__filename"])
    data = data.rename_columns([*dataset.schema.names, "filename"])
    rows = data.sort_by([("received_at", "ascending"), ("source", "ascending")])
    out: list[dict[str, Any]] = rows.to_pylist()
    return out


@pytest.fixture(scope="session")
def seaweed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedS3]:
    """A real SeaweedFS S3 server for the whole session (its ports are printed)."""
    seed = int(os.environ.get("HOOKLAKE_TEST_SEED", "0")) or int(time.time())
    server = start_seaweedfs(tmp_path_factory.mktemp("seaweedfs"), seed)
    print(f"SeaweedFS S3 at {server.endpoint} (port seed {seed})")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def s3_lake(seaweed: SeaweedS3, monkeypatch: pytest.MonkeyPatch) -> str:
    """``s3://<new bucket>/lake`` with the AWS_* environment pointing at SeaweedFS."""
    for key, value in seaweed.env.items():
        monkeypatch.setenv(key, value)
    return f"s3://{seaweed.bucket()}/lake"
