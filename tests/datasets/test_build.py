"""End to end: real lakes (collector ingest of simulated traffic or JSON cases), real DuckDB,
real files, read back with real Hugging Face ``datasets``."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import orjson
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

import hooklake.datasets.build as build_module
from hooklake.cli import main
from hooklake.collector.ingest import ingest_bodies
from hooklake.datasets import stream
from hooklake.datasets.build import BuildReport, build
from hooklake.datasets.lake import Lake
from hooklake.datasets.recipe import Recipe, load_recipe, parse_recipe
from hooklake.datasets.writers import openai_problem
from hooklake.errors import BuildError
from hooklake.index import update_index
from hooklake.simulate import simulate
from tests.datasets.test_writers import load_hf

CASE = Path(__file__).parents[1] / "cases" / "build" / "two_customers.json"
RECIPES = Path(__file__).parents[2] / "datasets"
RECEIVED_US = 1_800_000_000_000_000
ALL_TRAIN = {"train": 1.0, "validation": 0.0, "test": 0.0}


@pytest.fixture(scope="module")
def case() -> dict[str, Any]:
    loaded: dict[str, Any] = orjson.loads(CASE.read_bytes())
    return loaded


@pytest.fixture(scope="module")
def case_lake(tmp_path_factory: pytest.TempPathFactory, case: dict[str, Any]) -> Path:
    lake = tmp_path_factory.mktemp("case") / "lake"
    ingest_bodies(lake, [orjson.dumps(b) for b in case["bodies"]], received_at_us=RECEIVED_US)
    return lake


@pytest.fixture(scope="module")
def sim() -> list[Any]:
    return list(simulate(150, seed=21))


@pytest.fixture(scope="module")
def sim_lake(tmp_path_factory: pytest.TempPathFactory, sim: list[Any]) -> Path:
    lake = tmp_path_factory.mktemp("sim") / "lake"
    ingest_bodies(lake, [d.body for d in sim], received_at_us=RECEIVED_US)
    return lake


def _recipe(**doc: Any) -> Recipe:
    return parse_recipe({"name": "t", **doc})


def _lines(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def _manifest(report: BuildReport) -> dict[str, Any]:
    loaded: dict[str, Any] = orjson.loads(report.manifest.read_bytes())
    return loaded


def _agent_keys(lake: Path) -> set[str]:
    with Lake(lake) as lk:
        return {
            k
            for (k,) in lk.sql(
                "select message_key from messages where sender_type = 'agent'"
            ).fetchall()
        }


def _texts(lake: Path, sender_type: str) -> set[str]:
    with Lake(lake) as lk:
        rows = lk.sql(
            "select text from messages where sender_type = $s and text is not null",
            params={"s": sender_type},
        ).fetchall()
    return {t for (t,) in rows}


@pytest.mark.parametrize("name", ["keep", "drop", "weight0", "agent-pairs"])
def test_case_builds_give_exactly_the_expected_examples(
    case: dict[str, Any], case_lake: Path, tmp_path: Path, name: str
) -> None:
    report = build(parse_recipe(case["recipes"][name]), case_lake, tmp_path, progress=False)
    assert _lines(report.files["train"].path) == case["expected"][name]


def test_openai_build_passes_the_checks_and_loads_with_hf_datasets(
    sim: list[Any], sim_lake: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    report = build(RECIPES / "support-bot.toml", sim_lake, tmp_path / "out", progress=False)
    counts = report.counts()
    assert all(counts.values()) and sum(counts.values()) == report.examples
    for split, f in report.files.items():
        lines = _lines(f.path)
        assert len(lines) == counts[split] == f.rows
        for line in lines:
            assert openai_problem(line) is None
            assert line["messages"][0]["role"] == "system"
    manifest = _manifest(report)
    for name, entry in manifest["outputs"].items():
        assert hashlib.sha256((tmp_path / "out" / name).read_bytes()).hexdigest() == entry["sha256"]
    assert {n: len(v) for n, v in manifest["sources"].items()} == {
        f.path.name: f.rows for f in report.files.values()
    }
    assert manifest["lake"]["rows"] == sum(len(orjson.loads(d.body)["messages"]) for d in sim)
    # The card's front matter tells HF datasets where each split is.
    ds = load_hf(monkeypatch, tmp_path, str(tmp_path / "out"))
    assert {s: ds[s].num_rows for s in ds} == counts


def test_lake_snapshot_and_sources_point_at_real_messages(sim_lake: Path, tmp_path: Path) -> None:
    report = build(_recipe(format="hf"), sim_lake, tmp_path, progress=False)
    manifest = _manifest(report)
    with Lake(sim_lake) as lk:
        keys = {k for (k,) in lk.sql("select message_key from messages").fetchall()}
        files = [f"messages/{f.path}" for f in lk.files()]
    assert [f["path"] for f in manifest["lake"]["files"]] == files
    sources = [k for lines in manifest["sources"].values() for ex in lines for k in ex]
    assert sources and set(sources) <= keys
    table = pq.read_table(report.files["train"].path)
    assert table.column("source_keys").to_pylist() == manifest["sources"]["train.parquet"]
    card = report.card.read_text()
    assert "## Lake snapshot" in card and f"{manifest['lake']['rows']} stored rows" in card


def test_same_lake_and_recipe_give_byte_identical_files(sim_lake: Path, tmp_path: Path) -> None:
    for fmt in ("openai", "hf"):
        recipe = _recipe(format=fmt, examples={"agent_turns": "weight0"})
        a = build(recipe, sim_lake, tmp_path / fmt / "a", progress=False)
        b = build(recipe, sim_lake, tmp_path / fmt / "b", progress=False)
        names = sorted(p.name for p in a.out_dir.iterdir())
        assert names == sorted(p.name for p in b.out_dir.iterdir())
        assert "README.md" in names and "manifest.json" in names and len(names) == 5
        for name in names:
            assert (a.out_dir / name).read_bytes() == (b.out_dir / name).read_bytes(), name


def test_builds_in_processes_with_other_string_hashing_give_byte_identical_files(
    sim_lake: Path, tmp_path: Path
) -> None:
    """Python randomises string hashing per process, and with it the order of sets: nothing a
    build writes may follow such an order (the same build, run by two `hooklake build`
    processes with different hash seeds, gives the same bytes)."""
    outs = []
    command = [sys.executable, "-m", "hooklake", "build", str(RECIPES / "support-bot.toml")]
    for seed in ("1", "2"):
        out = tmp_path / seed
        subprocess.run(
            [*command, "--lake", str(sim_lake), "--out", str(out)],
            check=True,
            capture_output=True,
            env={**os.environ, "PYTHONHASHSEED": seed},
        )
        outs.append(out)
    names = sorted(p.name for p in outs[0].iterdir())
    assert names == sorted(p.name for p in outs[1].iterdir()) and "manifest.json" in names
    for name in names:
        assert (outs[0] / name).read_bytes() == (outs[1] / name).read_bytes(), name


@pytest.mark.parametrize("group_by", ["customer", "conversation"])
def test_no_group_is_in_two_splits(sim_lake: Path, tmp_path: Path, group_by: str) -> None:
    recipe = _recipe(
        format="hf", split={"train": 0.6, "validation": 0.2, "test": 0.2, "group_by": group_by}
    )
    report = build(recipe, sim_lake, tmp_path, progress=False)
    column = "customer_id" if group_by == "customer" else "conversation_id"
    seen: dict[Any, str] = {}
    for split, f in report.files.items():
        values = set(pq.read_table(f.path).column(column).to_pylist())
        assert values, split
        for v in values:
            assert seen.setdefault(v, split) == split
    groups = _manifest(report)["stats"]["groups"]
    assert groups["validation"] > 0 and groups["test"] > 0


def test_personal_data_never_reaches_any_output(
    sim: list[Any], sim_lake: Path, tmp_path: Path
) -> None:
    values = {v for d in sim for _, v in d.truth.pii}
    assert len(values) > 20
    for fmt, unit in (("openai", "conversation"), ("pairs", "turn"), ("hf", "turn")):
        report = build(
            _recipe(format=fmt, examples={"unit": unit}), sim_lake, tmp_path / fmt, progress=False
        )
        blob = b"".join(f.path.read_bytes() for f in report.files.values())
        if fmt == "hf":
            blob = b"".join(
                orjson.dumps(pq.read_table(f.path).to_pylist()) for f in report.files.values()
            )
        leaked = [v for v in values if v.encode() in blob]
        assert not leaked, (fmt, leaked[:5])
        assert sum(report.stats.redactions.values()) >= len(values)
        # Columns holding the customers' ids are the card's to name: redaction keeps them.
        customers = {str(d.truth.customer_id) for d in sim}
        card = report.card.read_text().split("## Redaction")[1].split("## Recipe")[0]
        for f in report.files.values():
            if fmt == "hf":
                table = pq.read_table(f.path)
                for name in table.column_names:
                    values_of = {str(v) for v in table.column(name).to_pylist()}
                    if any(c in v for v in values_of for c in customers):
                        assert f"`{name}`" in card, name


def test_turning_redaction_off_keeps_the_text(
    sim: list[Any], sim_lake: Path, tmp_path: Path
) -> None:
    report = build(_recipe(redact={"pii": False}), sim_lake, tmp_path, progress=False)
    blob = b"".join(f.path.read_bytes() for f in report.files.values())
    assert any(v.encode() in blob for d in sim for _, v in d.truth.pii)
    assert "**None.**" in report.card.read_text()


def test_dropped_agent_turns_leave_no_agent_message_behind(sim_lake: Path, tmp_path: Path) -> None:
    report = build(RECIPES / "support-bot.toml", sim_lake, tmp_path, progress=False)
    agent = _agent_keys(sim_lake)
    assert agent
    used = {k for lines in _manifest(report)["sources"].values() for ex in lines for k in ex}
    assert used and not used & agent
    assert all(s.agent_replies == 0 for s in report.stats.splits.values())


def test_weight0_weights_exactly_the_agent_replies(sim_lake: Path, tmp_path: Path) -> None:
    """No agent line is ever trained, every bot line is trained somewhere, and a trained
    message never holds an agent's words: a turn where the bot hands over to an agent (or back)
    is split into two examples instead of giving the bot's part the agent's weight 0."""
    recipe = _recipe(
        format="hf", examples={"agent_turns": "weight0"}, redact={"pii": False}, split=ALL_TRAIN
    )
    report = build(recipe, sim_lake, tmp_path, progress=False)
    agent_only = _texts(sim_lake, "agent") - _texts(sim_lake, "bot")
    rows = pq.read_table(report.files["train"].path).to_pylist()
    weights = {0: 0, 1: 0}
    seen: set[str] = set()
    trained: set[str] = set()
    for row in rows:
        for m in row["messages"]:
            if m["role"] != "assistant":
                assert m["weight"] is None
                continue
            lines = set(m["content"].split("\n"))
            if lines & agent_only:
                assert m["weight"] == 0, m
            seen |= lines - agent_only
            if m["weight"] == 1:
                trained |= lines
            weights[m["weight"]] += 1
    assert weights[0] > 0 and weights[1] > 0
    assert seen == trained
    assert report.examples > len({row["conversation_id"] for row in rows})  # some were split


def test_agent_reply_pairs_complete_with_an_agent_reply(sim_lake: Path, tmp_path: Path) -> None:
    recipe = load_recipe(RECIPES / "agent-replies.toml").model_copy(
        update={"redact": parse_recipe({"name": "x", "redact": {"pii": False}}).redact}
    )
    report = build(recipe, sim_lake, tmp_path, progress=False)
    agent_texts = _texts(sim_lake, "agent")
    pairs = [p for f in report.files.values() for p in _lines(f.path)]
    assert pairs
    for p in pairs:
        assert p["prompt"][0]["role"] == "system" and p["prompt"][-1]["role"] == "user"
        assert len(p["prompt"]) <= 1 + 8
        (completion,) = p["completion"]
        assert any(line in agent_texts for line in completion["content"].split("\n"))


def test_source_filters_pick_channels_and_dates(
    sim: list[Any], sim_lake: Path, tmp_path: Path
) -> None:
    channel = sim[0].truth.channel_id
    report = build(
        _recipe(format="hf", source={"channels": [channel]}),
        sim_lake,
        tmp_path / "ch",
        progress=False,
    )
    ids = {
        c
        for f in report.files.values()
        for c in pq.read_table(f.path).column("channel_id").to_pylist()
    }
    assert ids == {channel}
    # The simulation starts on 2026-11-02: nothing before, everything from that day on.
    with pytest.raises(BuildError, match="selects no conversations"):
        build(_recipe(source={"until": "2026-11-01"}), sim_lake, tmp_path / "none", progress=False)
    with pytest.raises(BuildError, match="selects no conversations"):
        build(_recipe(source={"hooks": ["elsewhere"]}), sim_lake, tmp_path / "none", progress=False)
    later = build(
        _recipe(source={"since": "2026-11-03"}), sim_lake, tmp_path / "later", progress=False
    )
    everything = build(_recipe(), sim_lake, tmp_path / "all", progress=False)
    assert 0 < later.stats.conversations_read < everything.stats.conversations_read


def test_a_recipe_that_gives_no_examples_fails_and_keeps_earlier_output(
    sim_lake: Path, tmp_path: Path
) -> None:
    build(_recipe(), sim_lake, tmp_path, progress=False)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    with pytest.raises(BuildError, match="gives no examples") as raised:
        build(_recipe(filter={"min_user_turns": 1000}), sim_lake, tmp_path, progress=False)
    # Why, in words: "(dropped: 247 conversations with too few user turns, 2 ...)".
    assert re.search(r"\(dropped: \d+ [a-z ]+(, \d+ [a-z ]+)*\)", str(raised.value)), raised.value
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


@pytest.mark.parametrize("indexed", [False, True])
def test_a_failure_while_shaping_is_the_builds_error_and_keeps_earlier_output(
    sim_lake: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, indexed: bool
) -> None:
    # Batches are shaped on a thread of their own, one ahead of the batch being written (and
    # through the index DuckDB makes the next on another): an error there stops the build
    # where it happened, with nothing left running and the folder as the previous build left.
    if indexed:
        shutil.copytree(sim_lake, tmp_path / "lake")
        update_index(tmp_path / "lake")
        sim_lake = tmp_path / "lake"
    tmp_path = tmp_path / "out"
    build(_recipe(), sim_lake, tmp_path, progress=False)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    monkeypatch.setattr(stream, "BATCH_ROWS", 200)  # many batches, so the writer is mid-way
    ranges = stream.conversation_ranges
    cut: list[int] = []

    def small_ranges(lake: Lake, rows: int) -> list[tuple[str | None, str | None]]:
        cut.append(len(got := ranges(lake, 300)))
        return got

    monkeypatch.setattr(stream, "conversation_ranges", small_ranges)
    shaped = 0
    real = build_module.shape_batch

    def breaks_on_the_third(*args: Any) -> Any:
        nonlocal shaped
        shaped += 1
        if shaped == 3:
            raise RuntimeError("shaping broke")
        return real(*args)

    monkeypatch.setattr(build_module, "shape_batch", breaks_on_the_third)
    threads = threading.active_count()
    with pytest.raises(RuntimeError, match="shaping broke"):
        build(_recipe(), sim_lake, tmp_path, progress=False)
    assert shaped == 3
    assert cut == ([cut[0]] if indexed else []) and (not indexed or cut[0] > 3)
    assert threading.active_count() == threads
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
    # The lake was closed and opens again; the next build gives the same files.
    monkeypatch.setattr(build_module, "shape_batch", real)
    build(_recipe(), sim_lake, tmp_path, progress=False)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_switching_format_removes_the_other_formats_files(case_lake: Path, tmp_path: Path) -> None:
    build(_recipe(format="hf", split=ALL_TRAIN), case_lake, tmp_path, progress=False)
    build(_recipe(format="sharegpt", split=ALL_TRAIN), case_lake, tmp_path, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "README.md",
        "manifest.json",
        "test.jsonl",
        "train.jsonl",
        "validation.jsonl",
    ]


def test_duplicates_are_dropped_once_seen(case: dict[str, Any], tmp_path: Path) -> None:
    # The same two conversations again for other customers: same texts after redaction.
    bodies = []
    for body in case["bodies"]:
        for shift in (0, 10_000_000):
            copy = orjson.loads(orjson.dumps(body))
            for m in copy["messages"]:
                m["customer"]["id"] += shift
                m["_raw"]["uuid"] = f"{m['_raw']['uuid']}-{shift}"
                if m["sender"]["type"] == "customer":
                    m["sender"]["id"] += shift
            bodies.append(orjson.dumps(copy))
    lake = tmp_path / "lake"
    ingest_bodies(lake, bodies, received_at_us=RECEIVED_US)
    kept = build(_recipe(split=ALL_TRAIN), lake, tmp_path / "a", progress=False)
    assert kept.examples == 2 and kept.stats.dropped["duplicate_examples"] == 2
    allowed = build(
        _recipe(split=ALL_TRAIN, filter={"dedupe": False}), lake, tmp_path / "b", progress=False
    )
    assert allowed.examples == 4


def test_cli_prints_one_summary_line_and_where_the_files_are(
    case_lake: Path, tmp_path: Path
) -> None:
    recipe = tmp_path / "r.toml"
    recipe.write_text('name = "cli"\n[split]\ntrain = 1.0\nvalidation = 0.0\ntest = 0.0\n')
    out = tmp_path / "out"
    result = CliRunner().invoke(
        main, ["build", str(recipe), "--lake", str(case_lake), "--out", str(out), "--no-progress"]
    )
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert lines[0].startswith("cli: 2 openai examples (train 2 / validation 0 / test 0)")
    assert "README.md, manifest.json in" in lines[1] and str(out) in lines[1]
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\n[examples]\nagent_turns = "never"\n')
    result = CliRunner().invoke(main, ["build", str(bad), "--lake", str(case_lake)])
    assert result.exit_code == 1
    assert "examples.agent_turns must be one of keep, drop, weight0" in result.output


def test_an_out_folder_that_cannot_be_made_is_one_line_naming_it(
    case_lake: Path, tmp_path: Path
) -> None:
    recipe = tmp_path / "r.toml"
    recipe.write_text('name = "cli"\n')
    (tmp_path / "taken").write_text("a file, not a folder")
    out = tmp_path / "taken" / "out"
    result = CliRunner().invoke(
        main, ["build", str(recipe), "--lake", str(case_lake), "--out", str(out), "--no-progress"]
    )
    assert result.exit_code == 1
    assert (
        result.output
        == f"Error: cannot write the dataset into {out}: Not a directory; pass another --out\n"
    )


def test_progress_bar_goes_to_stderr(
    case_lake: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    build(_recipe(split=ALL_TRAIN), case_lake, tmp_path, progress=True)
    captured = capsys.readouterr()
    assert "msg" in captured.err and captured.out == ""


@pytest.mark.parametrize("indexed", [False, True])
def test_the_progress_bar_counts_the_messages_the_card_says_were_read(
    sim_lake: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], indexed: bool
) -> None:
    """The bar counts what the card calls messages read (duplicate deliveries and system
    events are stored rows, not messages read) and shows a total only once it is known: it
    used to start from the stored rows and end at the rows DuckDB handed over, neither of
    which the card reports."""
    lake = sim_lake
    if indexed:
        lake = tmp_path / "indexed"
        shutil.copytree(sim_lake, lake)
        update_index(lake)
    report = build(RECIPES / "support-bot.toml", lake, tmp_path / "out", progress=True)
    bar = capsys.readouterr().err
    read = report.stats.messages_read
    with Lake(lake) as lk:
        assert 0 < read < lk.stats().stored_rows
    assert f"Read {read} messages in" in report.card.read_text()
    assert "messages read" in bar
    shown = re.findall(r"(\d+)/(\d+)", bar)
    assert shown and set(shown) == {(str(read), str(read))}


V01 = Path(__file__).parents[1] / "cases" / "build" / "sim150_v01_support_bot.json"


def test_every_conversation_gives_0_1s_examples_and_only_splits_moved(
    sim_lake: Path, tmp_path: Path
) -> None:
    """Against Hooklake 0.1's output on the same lake and recipe: every conversation gives the
    very same examples; stable splits (a keyed hash per customer instead of a shuffle of all
    customers) put 78 of the 241 conversations in another split than 0.1 did."""
    old = orjson.loads(V01.read_bytes())["conversations"]
    recipe = load_recipe(RECIPES / "support-bot.toml").model_copy(update={"format": "hf"})
    report = build(recipe, sim_lake, tmp_path, progress=False)
    per: dict[str, tuple[str, list[Any]]] = {}
    for split, f in report.files.items():
        for row in pq.read_table(f.path).to_pylist():
            messages = [[m["role"], m["content"], m["weight"]] for m in row["messages"]]
            entry = per.setdefault(row["conversation_id"], (split, []))
            assert entry[0] == split
            entry[1].append(messages)
    new = {
        c: [split, hashlib.sha256(json.dumps(exs).encode()).hexdigest()[:16]]
        for c, (split, exs) in per.items()
    }
    assert new.keys() == old.keys()
    assert {c: v[1] for c, v in new.items()} == {c: v[1] for c, v in old.items()}
    moved = sorted(c for c in new if new[c][0] != old[c][0])
    assert len(moved) == 78


@pytest.mark.parametrize("recipe", ["support-bot.toml", "bot-turns-hf.toml", "bot-preference.toml"])
def test_a_build_through_the_conversation_index_gives_the_same_files(
    sim_lake: Path, tmp_path: Path, recipe: str
) -> None:
    """With an index the build reads stored messages as a column (build_messages_indexed.sql),
    without one as rows of their own (build_messages.sql): the files are the same."""
    indexed = tmp_path / "indexed"
    shutil.copytree(sim_lake, indexed)
    update_index(indexed)
    with Lake(indexed) as lake:
        assert lake.index is not None
    plain = build(RECIPES / recipe, sim_lake, tmp_path / "plain", progress=False)
    through = build(RECIPES / recipe, indexed, tmp_path / "through", progress=False)
    assert plain.examples > 0
    names = sorted(p.name for p in plain.out_dir.iterdir())
    assert names == sorted(p.name for p in through.out_dir.iterdir())
    for name in names:
        assert (plain.out_dir / name).read_bytes() == (through.out_dir / name).read_bytes(), name


def test_a_build_with_another_session_gap_than_the_index_gives_the_same_files(
    sim_lake: Path, tmp_path: Path
) -> None:
    """The index stores conversations for its own session gap; a recipe with another gap is
    built from the views, which re-cut the index's messages into conversations for it."""
    indexed = tmp_path / "indexed"
    shutil.copytree(sim_lake, indexed)
    update_index(indexed)
    text = (RECIPES / "support-bot.toml").read_text()
    assert "gap_minutes = 30" in text
    recipe = tmp_path / "short-gap.toml"
    recipe.write_text(text.replace("gap_minutes = 30", "gap_minutes = 4"))
    with Lake(indexed, session_gap=4) as lake:
        assert lake.index is not None and lake.index.session_gap != lake.session_gap
    plain = build(recipe, sim_lake, tmp_path / "plain", progress=False)
    through = build(recipe, indexed, tmp_path / "through", progress=False)
    default = build(RECIPES / "support-bot.toml", sim_lake, tmp_path / "default", progress=False)
    assert plain.examples > 0 and plain.examples != default.examples
    for name in sorted(p.name for p in plain.out_dir.iterdir()):
        assert (plain.out_dir / name).read_bytes() == (through.out_dir / name).read_bytes(), name


def test_a_build_allocates_from_jemalloc_and_gives_the_default_pool_back(
    sim_lake: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Shaping runs on jemalloc where pyarrow has it; the process's pool is what it was after
    the build, and a pool named in $ARROW_DEFAULT_MEMORY_POOL is left alone."""
    import pyarrow as pa

    try:
        pa.jemalloc_memory_pool()
    except NotImplementedError:  # pragma: no cover - a pyarrow built without jemalloc
        pytest.skip("this pyarrow has no jemalloc pool")
    before = pa.default_memory_pool().backend_name
    seen: list[str] = []
    shape = build_module.shape_batch

    def spying(*args: Any, **kwargs: Any) -> Any:
        seen.append(pa.default_memory_pool().backend_name)
        return shape(*args, **kwargs)

    monkeypatch.setattr(build_module, "shape_batch", spying)
    for pool, want in ((None, "jemalloc"), ("system", before)):
        if pool is None:
            monkeypatch.delenv("ARROW_DEFAULT_MEMORY_POOL", raising=False)
        else:
            monkeypatch.setenv("ARROW_DEFAULT_MEMORY_POOL", pool)
        seen.clear()
        build(RECIPES / "support-bot.toml", sim_lake, tmp_path / str(pool), progress=False)
        assert seen and set(seen) == {want}
        assert pa.default_memory_pool().backend_name == before
