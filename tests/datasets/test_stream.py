"""The build's stream: whole conversations in build order, however DuckDB's work is cut."""

from __future__ import annotations

import itertools
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest

from hooklake.collector.ingest import ingest_bodies
from hooklake.datasets.ahead import ahead
from hooklake.datasets.lake import Lake
from hooklake.datasets.recipe import load_recipe
from hooklake.datasets.stream import conversation_batches, conversation_ranges
from hooklake.index import update_index
from hooklake.simulate import simulate

RECIPES = Path(__file__).parents[2] / "datasets"
RECEIVED_US = 1_800_000_000_000_000


@pytest.fixture(scope="module")
def lakes(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A simulated lake, and a copy of it with a conversation index."""
    root = tmp_path_factory.mktemp("stream")
    plain, indexed = root / "plain", root / "indexed"
    ingest_bodies(plain, [d.body for d in simulate(60, seed=7)], received_at_us=RECEIVED_US)
    shutil.copytree(plain, indexed)
    update_index(indexed)
    return plain, indexed


def _batches(lake_path: Path, **options: int) -> list[pa.Table]:
    recipe = load_recipe(RECIPES / "support-bot.toml")
    with Lake(lake_path) as lake:
        return list(conversation_batches(lake, recipe, **options))


def test_ranges_of_conversations_give_the_rows_of_one_sort(lakes: tuple[Path, Path]) -> None:
    plain, indexed = lakes
    with Lake(indexed) as lake:
        assert lake.index is not None
        ranges = conversation_ranges(lake, 100)
    assert len(ranges) > 5
    assert ranges[0][0] is None and ranges[-1][1] is None
    assert all(hi == lo for (_, hi), (lo, _) in itertools.pairwise(ranges))
    whole = pa.concat_tables(_batches(plain))
    one = pa.concat_tables(_batches(indexed, range_rows=10**9))
    cut = _batches(indexed, range_rows=100)
    assert pa.concat_tables(cut).equals(whole)
    assert one.equals(whole)
    # Every table holds whole conversations.
    ids = [set(t.column("conversation_id").to_pylist()) for t in cut]
    assert all(not (a & b) for a, b in itertools.pairwise(ids))


def test_ahead_gives_every_item_in_order_and_raises_where_the_producer_failed() -> None:
    assert list(ahead(iter(range(100)), depth=2)) == list(range(100))

    def failing() -> Iterator[int]:
        yield 1
        raise ValueError("broken")

    got = []
    with pytest.raises(ValueError, match="broken"):
        for item in ahead(failing()):
            got.append(item)
    assert got == [1]


def test_leaving_early_stops_the_producer() -> None:
    produced = []

    def endless() -> Iterator[int]:
        n = 0
        while True:
            produced.append(n)
            yield n
            n += 1

    items = ahead(endless())
    assert next(items) == 0
    items.close()
    assert not any(t.name == "hooklake-ahead" for t in threading.enumerate())
    assert len(produced) <= 3
