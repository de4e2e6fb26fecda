"""Incremental builds over a growing lake: the collector's ingest flushes simulated traffic in
steps (some messages arrive a step late, into conversations still open), an incremental build
runs after each step, and the shards, read back with Hugging Face ``datasets``, must hold what
one build of the final lake's closed conversations holds."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner

from hooklake.cli import main
from hooklake.collector.ingest import ingest_bodies
from hooklake.datasets.build import BuildReport, build
from hooklake.datasets.dedupe import fingerprint
from hooklake.datasets.increments import STATE_DIR
from hooklake.datasets.recipe import Recipe, parse_recipe
from hooklake.datasets.render import Message
from hooklake.errors import BuildError
from hooklake.simulate import simulate
from hooklake.simulate.records import Delivery
from tests.datasets.test_writers import load_hf

RECEIVED_US = 1_800_000_000_000_000
GAP_S = 30 * 60
STEPS = 3


def _recipe(**doc: Any) -> Recipe:
    return parse_recipe(
        {"name": "inc", "split": {"train": 0.6, "validation": 0.2, "test": 0.2}, **doc}
    )


def _steps(deliveries: list[Delivery]) -> tuple[list[list[Delivery]], int]:
    """The traffic cut into flushes by time (after its first hour, its first half day, and
    the rest). A message is held back to the next flush when its customer wrote just before
    and just after it, both within half a gap of the end of its flush: its conversation is
    surely still open when the flush is built."""
    ordered = sorted(deliveries, key=lambda d: (d.truth.ts, d.truth.message_key))
    start = ordered[0].truth.ts
    cuts = [start + 3600, start + 12 * 3600, float("inf")]
    chunks = [
        [d for d in ordered if low <= d.truth.ts < high]
        for low, high in zip([float("-inf"), *cuts], cuts, strict=False)
    ]
    flushes: list[list[Delivery]] = [[] for _ in chunks]
    late = 0
    for k, chunk in enumerate(chunks):
        end = max(d.truth.ts for d in chunk)
        by_customer: dict[tuple[int, int], list[int]] = {}
        for i, d in enumerate(chunk):
            by_customer.setdefault((d.truth.channel_id, d.truth.customer_id), []).append(i)
        held: set[int] = set()
        if k + 1 < len(chunks):
            for idx in by_customer.values():
                for a, i, b in zip(idx, idx[1:], idx[2:], strict=False):
                    if min(chunk[a].truth.ts, chunk[b].truth.ts) >= end - GAP_S / 2:
                        held.add(i)
        for i, d in enumerate(chunk):
            (flushes[k + 1] if i in held else flushes[k]).append(d)
        late += len(held)
    return flushes, late


@pytest.fixture(scope="module")
def growing(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[list[Delivery]], int]:
    flushes, late = _steps(list(simulate(60, seed=5)))
    return tmp_path_factory.mktemp("grow") / "lake", flushes, late


def _grow_and_build(
    lake: Path, flushes: list[list[Delivery]], recipe: Recipe, out: Path
) -> list[BuildReport]:
    reports = []
    for flush in flushes:
        ingest_bodies(lake, [d.body for d in flush], received_at_us=RECEIVED_US)
        reports.append(build(recipe, lake, out, progress=False, incremental=True))
    return reports


def _rows(ds: Any) -> dict[str, Counter[str]]:
    return {
        split: Counter(
            orjson.dumps([r["conversation_id"], r["messages"]]).decode() for r in ds[split]
        )
        for split in ds
    }


def test_incremental_builds_hold_what_one_build_of_the_closed_conversations_holds(
    growing: tuple[Path, list[list[Delivery]], int],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, flushes, late = growing
    assert late > 0  # some messages did arrive a flush late
    lake = tmp_path / "lake"
    recipe = _recipe(format="hf", filter={"dedupe": False})
    reports = _grow_and_build(lake, flushes, recipe, tmp_path / "inc")
    assert all(r.added > 0 for r in reports)
    names = sorted(p.name for p in (tmp_path / "inc").glob("train-*.parquet"))
    assert names == [f"train-{k:05d}.parquet" for k in range(STEPS)]

    full = build(recipe, lake, tmp_path / "full", progress=False, closed_only=True)
    everything = build(recipe, lake, tmp_path / "all", progress=False)
    assert full.stats.conversations_read < everything.stats.conversations_read  # some open
    assert reports[-1].stats.conversations_read == full.stats.conversations_read
    assert reports[-1].counts() == full.counts()

    inc = load_hf(monkeypatch, tmp_path / "a", str(tmp_path / "inc"))
    one = load_hf(monkeypatch, tmp_path / "b", str(tmp_path / "full"))
    assert _rows(inc) == _rows(one)
    manifest = orjson.loads((tmp_path / "inc" / "manifest.json").read_bytes())
    assert [h["shard"] for h in manifest["incremental"]["increments"]] == list(range(STEPS))
    assert sum(len(v) for v in manifest["sources"].values()) == reports[-1].examples
    card = (tmp_path / "inc" / "README.md").read_text()
    assert 'path: "train-*.parquet"' in card and "shards)" in card
    # The dataset QA notebook's reader sees splits, not shard names.
    from hooklake.datasets import explore

    read_back = explore.dataset_examples(tmp_path / "inc")
    assert set(read_back.split) <= {"train", "validation", "test"}
    assert len(read_back) == reports[-1].examples


def _fingerprints(out: Path) -> list[int]:
    found = []
    for path in sorted(out.glob("*.jsonl")):
        for line in path.read_bytes().splitlines():
            messages = orjson.loads(line)["messages"]
            found.append(fingerprint(Message(m["role"], m["content"]) for m in messages))
    return found


def test_a_later_shard_never_repeats_an_earlier_example(
    growing: tuple[Path, list[list[Delivery]], int], tmp_path: Path
) -> None:
    _, flushes, _ = growing
    lake = tmp_path / "lake"
    # One example per reply with one turn of history: greetings and menus repeat a lot.
    recipe = _recipe(examples={"unit": "turn", "max_context_turns": 1})
    reports = _grow_and_build(lake, flushes, recipe, tmp_path / "inc")
    kept = _fingerprints(tmp_path / "inc")
    assert len(kept) == len(set(kept)) == reports[-1].examples
    assert reports[-1].stats.dropped["duplicate_examples"] > 0
    # Which copy of a duplicate survives follows build order, which differs from one full
    # build's; the examples kept are the same.
    full = build(recipe, lake, tmp_path / "full", progress=False, closed_only=True)
    assert set(kept) == set(_fingerprints(tmp_path / "full"))
    assert full.examples == reports[-1].examples
    # Nothing new: the next build adds nothing and says so in its counts.
    again = build(recipe, lake, tmp_path / "inc", progress=False, incremental=True)
    assert again.added == 0 and again.examples == reports[-1].examples
    # A full build into the folder replaces the shards and their state.
    build(recipe, lake, tmp_path / "inc", progress=False)
    left = sorted(p.name for p in (tmp_path / "inc").iterdir())
    assert left == ["README.md", "manifest.json", "test.jsonl", "train.jsonl", "validation.jsonl"]


def test_incremental_builds_refuse_what_they_cannot_add_to(
    growing: tuple[Path, list[list[Delivery]], int], tmp_path: Path
) -> None:
    _, flushes, _ = growing
    lake = tmp_path / "lake"
    ingest_bodies(lake, [d.body for d in flushes[0]], received_at_us=RECEIVED_US)
    out = tmp_path / "inc"
    build(_recipe(), lake, out, progress=False, incremental=True)
    with pytest.raises(BuildError, match="the recipe changed since the previous build"):
        build(_recipe(filter={"min_user_turns": 2}), lake, out, progress=False, incremental=True)
    with pytest.raises(BuildError, match="cannot be built incrementally"):
        build(_recipe(format="preference"), lake, out, progress=False, incremental=True)
    (out / "manifest.json").write_text("{ not json")
    with pytest.raises(BuildError, match=r"manifest\.json is not valid JSON"):
        build(_recipe(), lake, out, progress=False, incremental=True)
    (out / "manifest.json").unlink()
    with pytest.raises(
        BuildError, match=re.escape(f"{STATE_DIR}/ is there but manifest.json is missing")
    ):
        build(_recipe(), lake, out, progress=False, incremental=True)
    full = tmp_path / "full"
    build(_recipe(), lake, full, progress=False)
    recipe_file = tmp_path / "r.toml"
    recipe_file.write_text('name = "inc"\n[split]\ntrain = 0.6\nvalidation = 0.2\ntest = 0.2\n')
    result = CliRunner().invoke(
        main,
        ["build", str(recipe_file), "--lake", str(lake), "--out", str(full), "--incremental"],
    )
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "holds a full build" in lines[0], result.output


def _tree(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


def _rebuild_as_the_card_says(recipe: Recipe, lake: Path, card: str, out: Path) -> None:
    """Run what the card's lake snapshot says rebuilds its files: one command, or one per
    run's version in turn."""
    said = re.search(
        r"`hooklake build RECIPE ([^`]*)`(?: for each run's version in turn \(([\d, ]+)\))?",
        card,
    )
    assert said, card
    flags = said.group(1).split()
    versions = said.group(2).split(", ") if said.group(2) else [None]
    for version in versions:
        args = [version if a == "VERSION" else a for a in flags]
        assert set(args) - {"--incremental", "--closed-only", "--as-of"} == {args[-1]}, args
        build(
            recipe,
            lake,
            out,
            progress=False,
            as_of=int(args[-1]),
            incremental="--incremental" in args,
            closed_only="--closed-only" in args,
        )


def test_the_card_says_how_to_rebuild_exactly_its_files(
    growing: tuple[Path, list[list[Delivery]], int], tmp_path: Path
) -> None:
    _, flushes, _ = growing
    lake = tmp_path / "lake"
    recipe = _recipe()
    _grow_and_build(lake, flushes, recipe, tmp_path / "inc")
    closed = build(recipe, lake, tmp_path / "closed", progress=False, closed_only=True)
    everything = build(recipe, lake, tmp_path / "all", progress=False)
    assert closed.examples < everything.examples  # open conversations were left out
    card = (tmp_path / "closed" / "README.md").read_text()
    assert "**Closed conversations only**" in card
    manifest = orjson.loads((tmp_path / "closed" / "manifest.json").read_bytes())
    assert manifest["closed_before"] in card
    for name in ("inc", "closed", "all"):
        card = (tmp_path / name / "README.md").read_text()
        _rebuild_as_the_card_says(recipe, lake, card, tmp_path / f"{name}-again")
        assert _tree(tmp_path / f"{name}-again") == _tree(tmp_path / name), name


def test_a_first_incremental_run_with_nothing_closed_says_it_wrote_nothing(
    growing: tuple[Path, list[list[Delivery]], int], tmp_path: Path
) -> None:
    _, flushes, _ = growing
    lake = tmp_path / "lake"
    # The last few minutes of traffic alone: every conversation is still open.
    newest = max(d.truth.ts for d in flushes[0])
    ingest_bodies(
        lake,
        [d.body for d in flushes[0] if d.truth.ts > newest - 60],
        received_at_us=RECEIVED_US,
    )
    recipe_file = tmp_path / "r.toml"
    recipe_file.write_text('name = "inc"\n')
    out = tmp_path / "inc"
    args = ["build", str(recipe_file), "--lake", str(lake), "--out", str(out), "--incremental"]
    result = CliRunner().invoke(main, [*args, "--no-progress"])
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 2 and lines[1].startswith("files: none written to"), result.output
    assert not out.exists() or not any(out.iterdir())
