"""The lake on object storage: a real SeaweedFS S3 server, no mocks."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from hooklake import index
from hooklake.cli import main
from hooklake.collector.compact import compact
from hooklake.collector.ingest import ingest_bodies
from hooklake.datasets.lake import Lake
from hooklake.errors import ConfigError
from hooklake.simulate import simulate
from tests.conftest import lake_rows, sample, start_collector
from tests.s3 import SeaweedS3

QUERIES = {
    "messages": "SELECT * EXCLUDE (source) FROM messages ORDER BY ALL",
    "conversations": "SELECT * FROM conversations ORDER BY ALL",
    "turns": "SELECT * FROM turns ORDER BY ALL",
    "rejected": "SELECT * EXCLUDE (source) FROM rejected ORDER BY ALL",
}


def _views(lake: Lake) -> dict[str, list[Any]]:
    return {name: lake.query(q).rows for name, q in QUERIES.items()}


def test_a_lake_on_s3_reads_like_a_local_one(
    s3_lake: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bodies = [d.body for d in simulate(15, seed=5)] + [b"not json"]
    local = tmp_path / "local"
    for i in range(0, len(bodies), 40):
        at = 1_740_000_000_000_000 + i
        ingest_bodies(s3_lake, bodies[i : i + 40], received_at_us=at, journal=tmp_path / "j")
        ingest_bodies(local, bodies[i : i + 40], received_at_us=at)
    with Lake(s3_lake) as remote, Lake(local) as here:
        assert _views(remote) == _views(here)
        assert [v.version for v in remote.versions()] == [v.version for v in here.versions()]
    with Lake(s3_lake, as_of=1) as old, Lake(local, as_of=1) as old_here:
        assert _views(old) == _views(old_here)
    # Optimize and vacuum work there too.
    report = compact(s3_lake, vacuum=True, retention=timedelta(0))
    assert report.files_merged > 0 and report.files_vacuumed == report.files_merged
    with Lake(s3_lake) as remote, Lake(local) as here:
        assert _views(remote) == _views(here)
    # The conversation index lives there too; a rebuild in many ranges splits the stored
    # rows, read from object storage, into local temporary folders first.
    monkeypatch.setattr(index, "CHUNK_ROWS", 50)
    monkeypatch.setattr(index, "SPLIT_RANGES", 0)
    assert index.update_index(s3_lake).action == "rebuilt"
    with Lake(s3_lake) as remote, Lake(local) as here:
        assert remote.index is not None and here.index is None
        assert _views(remote) == _views(here)


def test_a_lake_on_s3_needs_a_local_journal(s3_lake: str) -> None:
    with pytest.raises(ConfigError, match="--journal"):
        ingest_bodies(s3_lake, [sample("dialog.json")])
    result = CliRunner().invoke(main, ["flush", "--lake", s3_lake])
    assert result.exit_code == 1 and "--journal DIR" in result.stderr


def test_serve_and_flush_into_s3(seaweed: SeaweedS3, s3_lake: str, tmp_path: Path) -> None:
    journal = tmp_path / "journal"
    c = start_collector(
        tmp_path / "unused",
        args=("--journal", str(journal)),
        env=seaweed.env,
        log_dir=tmp_path,
        lake_uri=s3_lake,
    )
    try:
        for name in ("dialog.json", "text_from_bot.json", "text_from_customer.json"):
            assert httpx.post(c.hook_url(), content=sample(name)).status_code == 200
    finally:
        assert c.stop() == 0, c.log.read_text()
    assert len(lake_rows(s3_lake)) == 3
    assert not any(journal.rglob("*.seg"))
    result = CliRunner().invoke(main, ["stats", "--lake", s3_lake, "--format", "csv"])
    assert result.exit_code == 0 and "messages,3" in result.stdout
