"""Shared fixtures: a real collector (``hooklake serve``) in a subprocess on a loopback port."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from hooklake import tables
from hooklake.layout import MESSAGES
from hooklake.storage import lake_location
from tests.s3 import SeaweedS3, start_seaweedfs

CASES = Path(__file__).parent / "cases"
LANDBOT = CASES / "landbot"


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

    def stop(self, timeout: float = 60) -> int:
        """Graceful stop (SIGTERM): the collector flushes everything before it exits."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def kill(self) -> None:
        """kill -9 of the whole process group: server, workers and flusher."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(30)
        # The flusher notices its parent is gone within a flush interval; wait for it too.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.killpg(self.proc.pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)


def start_collector(
    lake: Path,
    *,
    hooks: str | None = None,
    workers: int = 1,
    args: tuple[str, ...] = (),
    env: dict[str, str] | None = None,
    log_dir: Path | None = None,
    lake_uri: str | None = None,
) -> Collector:
    """Start ``hooklake serve`` on a free loopback port and wait until it answers. The lake is
    ``lake``, or ``lake_uri`` (e.g. ``s3://…``) when given."""
    port = free_port()
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
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"collector exited early:\n{log.read_text()}")
        try:
            if httpx.get(f"{collector.url}/healthz", timeout=1).status_code == 200:
                return collector
        except httpx.TransportError:
            time.sleep(0.05)
    collector.kill()
    raise RuntimeError(f"collector did not start:\n{log.read_text()}")


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
