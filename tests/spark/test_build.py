"""``hooklake build RECIPE --engine spark`` writes the same bytes as the DuckDB build: data
files, dataset card and manifest, for the shipped recipes, through the Python API and the
CLI; Hugging Face ``datasets`` loads the result."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from hooklake.cli import main
from hooklake.datasets.build import build
from tests.datasets.test_writers import load_hf

RECIPES = Path(__file__).parents[2] / "datasets"


def _files(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out.iterdir()) if p.is_file()}


@pytest.mark.parametrize(
    "recipe",
    [
        "support-bot",  # OpenAI chat, personal data redacted, duplicates dropped
        "bot-preference",  # DPO pairs from hand-offs: customers' signals, redacted
    ],
)
def test_spark_build_writes_the_duckdb_build_byte_for_byte(
    spark: Any, sim_lake: Path, tmp_path: Path, recipe: str
) -> None:
    path = RECIPES / f"{recipe}.toml"
    duck = build(path, sim_lake, tmp_path / "duckdb", progress=False)
    ours = build(path, sim_lake, tmp_path / "spark", progress=False, engine="spark")
    assert ours.counts() == duck.counts()
    assert all(ours.counts().values())
    assert ours.stats.to_dict() == duck.stats.to_dict()
    expected = _files(tmp_path / "duckdb")
    assert {"README.md", "manifest.json"} < set(expected)
    assert _files(tmp_path / "spark") == expected
    if recipe == "support-bot":
        assert ours.stats.redactions and ours.stats.dropped["duplicate_examples"]


def test_spark_build_from_the_cli_at_an_older_version_loads_with_hf_datasets(
    spark: Any, sim_lake: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    recipe = str(RECIPES / "bot-turns-hf.toml")
    out = tmp_path / "spark"
    args = [recipe, "--lake", str(sim_lake), "--as-of", "1", "--no-progress", "--out"]
    result = CliRunner().invoke(main, ["build", *args, str(out), "--engine", "spark"])
    assert result.exit_code == 0, result.output
    assert "bot-turns-hf:" in result.output
    duck = build(recipe, sim_lake, tmp_path / "duckdb", progress=False, as_of=1)
    assert _files(out) == _files(tmp_path / "duckdb")
    ds = load_hf(monkeypatch, tmp_path, str(out))
    assert {s: ds[s].num_rows for s in ds} == duck.counts()
    first = ds["train"][0]["messages"]
    assert first[0]["role"] == "user" and first[-1]["role"] == "assistant"
