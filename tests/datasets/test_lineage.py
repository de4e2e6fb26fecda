"""Lineage: builds record the table version they read and rebuild it exactly with --as-of."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from pathlib import Path

import orjson
from click.testing import CliRunner

from hooklake.cli import main
from hooklake.collector.compact import compact
from hooklake.collector.ingest import ingest_bodies
from hooklake.datasets.lake import Lake
from hooklake.simulate import simulate

RECIPE = Path(__file__).parents[2] / "datasets" / "support-bot.toml"


def _digests(out: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(out.iterdir())}


def _build(lake: Path, out: Path, *extra: str) -> None:
    args = ["build", str(RECIPE), "--lake", str(lake), "--out", str(out), "--no-progress"]
    result = CliRunner().invoke(main, [*args, *extra])
    assert result.exit_code == 0, result.output


def test_a_build_as_of_its_version_is_byte_identical_after_new_traffic(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    deliveries = [d.body for d in simulate(40, seed=21)]
    half = len(deliveries) // 2
    ingest_bodies(lake, deliveries[: half // 2], received_at_us=1_740_000_000_000_000)
    ingest_bodies(lake, deliveries[half // 2 : half], received_at_us=1_740_000_100_000_000)
    first = tmp_path / "first"
    _build(lake, first)
    manifest = orjson.loads((first / "manifest.json").read_bytes())
    version = manifest["lake"]["versions"]["messages"]
    assert version["version"] == 2
    card = (first / "README.md").read_text()
    assert "Read version 2 of the `messages` table" in card and "--as-of 2" in card

    # New traffic lands, and compaction rewrites the files version 2 was made of.
    ingest_bodies(lake, deliveries[half:], received_at_us=1_740_000_200_000_000)
    compact(lake)
    with Lake(lake) as lk:
        assert (lk.versions()[0].table, lk.versions()[0].version) == ("messages", 4)

    latest = tmp_path / "latest"
    _build(lake, latest)
    assert _digests(latest) != _digests(first), "the new traffic is in a new build"
    again = tmp_path / "again"
    _build(lake, again, "--as-of", "2")
    assert _digests(again) == _digests(first)
    by_time = tmp_path / "by-time"
    _build(lake, by_time, "--as-of", version["committed_at"])
    assert _digests(by_time) == _digests(first)


def test_as_of_errors_are_one_line(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    ingest_bodies(lake, [d.body for d in simulate(3, seed=2)])
    for bad, message in (("99", "no version 99"), ("last tuesday", "ISO time")):
        args = ["build", str(RECIPE), "--lake", str(lake), "--out", str(tmp_path / "o")]
        result = CliRunner().invoke(main, [*args, "--as-of", bad])
        assert result.exit_code == 1 and message in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1


def _build_error(lake: Path, out: Path, as_of: str) -> tuple[int, str, str]:
    args = ["build", str(RECIPE), "--lake", str(lake), "--out", str(out), "--no-progress"]
    result = CliRunner().invoke(main, [*args, "--as-of", as_of])
    return result.exit_code, result.stdout, result.stderr


def test_a_negative_as_of_is_no_version(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    ingest_bodies(lake, [d.body for d in simulate(3, seed=2)])
    assert _build_error(lake, tmp_path / "o", "-1") == (
        1,
        "",
        f"Error: the messages table of lake {lake} has no version -1: versions are whole "
        "numbers from 0 (its versions are 0 to 1)\n",
    )


def test_an_as_of_before_the_first_commit_names_the_first_commit(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    ingest_bodies(lake, [d.body for d in simulate(3, seed=2)])
    with Lake(lake, as_of=0) as lk:
        first = lk.versions()[0].committed_at
    first_text = first.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    assert _build_error(lake, tmp_path / "o", "2000-01-01") == (
        1,
        "",
        f"Error: lake {lake} has no version at or before 2000-01-01T00:00:00Z: its first "
        f"commit is at {first_text}\n",
    )
    # The time named is one as-of reads: version 0 (the table's creation).
    with Lake(lake, as_of=first_text) as lk:
        assert [(v.table, v.version) for v in lk.versions()] == [("messages", 0)]


def test_an_as_of_whose_files_were_vacuumed_says_so(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    deliveries = [d.body for d in simulate(10, seed=4)]
    half = len(deliveries) // 2
    ingest_bodies(lake, deliveries[:half], received_at_us=1_740_000_000_000_000)
    ingest_bodies(lake, deliveries[half:], received_at_us=1_740_000_100_000_000)
    compact(lake, vacuum=True, retention=timedelta(0))
    assert _build_error(lake, tmp_path / "o", "1") == (
        1,
        "",
        f"Error: cannot read version 1 of the messages table of lake {lake}: its log entries "
        "are gone (hooklake compact --vacuum deletes them with its files once --retention-hours "
        "have passed); pick a later --as-of, or none to read the latest\n",
    )
    _build(lake, tmp_path / "latest")
