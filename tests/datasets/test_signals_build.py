"""Preference, feedback and prompt-completion builds end to end on simulated traffic: pairs
and labels measured against the simulator's truth, rows loaded with Hugging Face ``datasets``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from hooklake.collector.ingest import ingest_bodies
from hooklake.datasets.build import BuildReport, build
from hooklake.datasets.formats import writer_for
from hooklake.datasets.lake import Lake
from hooklake.datasets.recipe import load_recipe, parse_recipe
from hooklake.datasets.render import Example, Message
from hooklake.errors import BuildError
from hooklake.simulate import Delivery, simulate
from tests.datasets.test_writers import load_hf

RECIPES = Path(__file__).parents[2] / "datasets"
SEED = 33
CUSTOMERS = 240
ALL_TRAIN = {"train": 1.0, "validation": 0.0, "test": 0.0}
#: Floors for the simulated traffic; the figures are printed (pytest -s).
FLOORS = {"preference": (0.9, 0.9), "feedback": (0.95, 0.9)}


@pytest.fixture(scope="module")
def sim() -> list[Delivery]:
    print(f"simulate({CUSTOMERS}, seed={SEED})")
    return list(simulate(CUSTOMERS, seed=SEED))


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory, sim: list[Delivery]) -> Iterator[Path]:
    path = tmp_path_factory.mktemp("signals") / "lake"
    ingest_bodies(path, [d.body for d in sim], received_at_us=1_800_000_000_000_000)
    yield path


def _rows(report: BuildReport, split: str = "train") -> list[tuple[dict[str, Any], Any]]:
    """(row, its sources in the manifest) of one split."""
    f = report.files[split]
    manifest = orjson.loads(report.manifest.read_bytes())
    rows = [orjson.loads(line) for line in f.path.read_bytes().splitlines()]
    return list(zip(rows, manifest["sources"][f.path.name], strict=True))


def _measured(fmt: str, sim: list[Delivery], lake: Path, out: Path) -> tuple[float, float]:
    """Precision and recall of a build's rows against the simulator's truth, on the messages
    that have a uuid (the old payload shape is keyed by a hash the truth does not know)."""
    recipe = parse_recipe(
        {
            "name": fmt,
            "format": fmt,
            "split": ALL_TRAIN,
            "redact": {"pii": False},
            "filter": {"dedupe": False},
        }
    )
    rows = _rows(build(recipe, lake, out, progress=False))
    known = {d.truth.message_key for d in sim if d.truth.message_key}
    marks = {
        d.truth.message_key: d.truth.signals
        for d in sim
        if d.truth.message_key and d.truth.signals and not d.truth.retry
    }
    if fmt == "preference":
        by_conv: dict[str, dict[str, str]] = {}
        for d in sim:
            key = d.truth.message_key
            for mark in d.truth.signals if key and not d.truth.retry else ():
                if mark in ("need", "rejected", "chosen"):
                    by_conv.setdefault(d.truth.conversation_id, {})[mark] = key
        expected = [v for v in by_conv.values() if len(v) == 3]
        judged = [(r, s) for r, s in rows if set(s["rejected"]) <= known]
        right = [
            t
            for _, s in judged
            for t in expected
            if t["rejected"] in s["rejected"]
            and t["chosen"] in s["chosen"]
            and t["need"] in s["prompt"]
        ]
        found = {t["rejected"] for t in right}
        precision, recall = len(right) / len(judged), len(found) / len(expected)
        print(f"preference pairs: {len(right)}/{len(judged)} right, ", end="")
        print(f"{len(found)}/{len(expected)} found")
    else:
        labels = {k: "good" in s for k, s in marks.items() if {"good", "bad"} & set(s)}
        judged = [(r, s) for r, s in rows if set(s["completion"]) <= known]
        hits = [[k for k in s["completion"] if labels.get(k) is r["label"]] for r, s in judged]
        found = {k for h in hits for k in h}
        precision, recall = sum(map(bool, hits)) / len(judged), len(found) / len(labels)
        print(
            f"feedback labels: {sum(map(bool, hits))}/{len(judged)} right, "
            f"{len(found)}/{len(labels)} found"
        )
    print(f"{fmt}: precision {precision:.3f}, recall {recall:.3f} (seed {SEED})")
    return precision, recall


@pytest.mark.parametrize("fmt", ["preference", "feedback"])
def test_pairs_and_labels_agree_with_the_simulators_truth(
    fmt: str, sim: list[Delivery], lake: Path, tmp_path: Path
) -> None:
    precision, recall = _measured(fmt, sim, lake, tmp_path)
    assert precision >= FLOORS[fmt][0] and recall >= FLOORS[fmt][1]


@pytest.mark.parametrize(
    ("recipe", "columns"),
    [
        ("bot-preference", ["prompt", "chosen", "rejected"]),
        ("bot-feedback", ["prompt", "completion", "label"]),
        ("bot-turns-trl", ["prompt", "completion"]),
    ],
)
def test_shipped_recipes_build_rows_hf_datasets_loads(
    recipe: str,
    columns: list[str],
    lake: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    report = build(RECIPES / f"{recipe}.toml", lake, tmp_path / recipe, progress=False)
    counts = report.counts()
    assert all(counts.values()), counts
    ds = load_hf(monkeypatch, tmp_path, str(tmp_path / recipe))  # through the card
    assert {s: ds[s].num_rows for s in ds} == counts
    train = ds["train"]
    assert train.column_names == columns
    for row in train:
        assert row["prompt"] and row["prompt"][-1]["role"] == "user"
        if "chosen" in row:
            assert row["chosen"][0]["content"] != row["rejected"][0]["content"]
        if "label" in row:
            assert isinstance(row["label"], bool)
    if recipe == "bot-feedback":
        assert set(train["label"]) == {True, False}
    if recipe == "bot-turns-trl":  # agents' words are context, never a completion
        with Lake(lake) as lk:
            said = lk.sql("select sender_type, text from messages where text is not null")
            by = {"agent": set(), "bot": set()}
            for sender, text in said.fetchall():
                by.setdefault(sender, set()).add(text)
        agent_only = by["agent"] - by["bot"]
        completions = [row["completion"][0]["content"] for row in train]
        assert not any(set(c.split("\n")) & agent_only for c in completions)
        prompts = [m["content"] for row in train for m in row["prompt"]]
        assert any(set(p.split("\n")) & agent_only for p in prompts)


def test_cards_tell_trl_users_that_weights_are_ignored(lake: Path, tmp_path: Path) -> None:
    hf = build(RECIPES / "bot-turns-hf.toml", lake, tmp_path / "hf", progress=False)
    assert "TRL ignores the `weight` key" in hf.card.read_text(encoding="utf-8")
    trl = build(RECIPES / "bot-turns-trl.toml", lake, tmp_path / "trl", progress=False)
    card = trl.card.read_text(encoding="utf-8")
    assert "TRL trains the `completion` of each row only" in card
    assert "TRL ignores the `weight` key" not in card


@pytest.mark.parametrize("recipe", ["bot-preference", "bot-feedback", "bot-turns-trl"])
def test_the_cards_counts_are_those_of_the_files(recipe: str, lake: Path, tmp_path: Path) -> None:
    """Messages per role and characters (the token estimate) of every part of every row: a
    DPO step reads the rejected reply as much as the chosen one."""
    report = build(RECIPES / f"{recipe}.toml", lake, tmp_path, progress=False)
    manifest = orjson.loads(report.manifest.read_bytes())
    for split, f in report.files.items():
        roles = dict.fromkeys(("system", "user", "assistant"), 0)
        chars = 0
        for line in f.path.read_bytes().splitlines():
            row = orjson.loads(line)
            for part in ("prompt", "chosen", "rejected", "completion"):
                for m in row.get(part, []):
                    roles[m["role"]] += 1
                    chars += len(m["content"])
        stats = manifest["stats"]["splits"][split]
        assert (stats["messages"], stats["characters"]) == (roles, chars), (recipe, split)


def test_the_cards_split_counts_say_they_are_of_every_customer_read(
    lake: Path, tmp_path: Path
) -> None:
    """A preference dataset holds the customers of a few hand-offs; the split counts are of
    every customer read, and the card must not pass them off as the dataset's."""
    report = build(RECIPES / "bot-preference.toml", lake, tmp_path, progress=False)
    with Lake(lake) as lk:
        customer = dict(lk.sql("select message_key, customer_id from messages").fetchall())
    in_files = {customer[k] for split in report.files for _, s in _rows(report, split)
                for k in s["prompt"]}  # fmt: skip
    groups = report.stats.groups
    total = sum(groups.values())
    assert len(in_files) < total
    card = report.card.read_text(encoding="utf-8")
    assert f"of the {total} customers read)" in card
    counts = ", ".join(f"{k} {v}" for k, v in groups.items())
    assert f"the customers of all of them per split: {counts}." in card


def test_the_card_says_how_each_pair_was_chosen(lake: Path, tmp_path: Path) -> None:
    report = build(RECIPES / "bot-preference.toml", lake, tmp_path, progress=False)
    card = report.card.read_text(encoding="utf-8")
    assert "## How each pair was chosen" in card and "### One row of each rule" in card
    assert "preference.agent_skip" in card and "**rejected (bot):**" in card
    for rule, n in report.stats.signals.items():
        assert f"| {rule} | {n} |" in card
    assert sum(report.stats.signals.values()) == report.examples
    manifest = orjson.loads(report.manifest.read_bytes())
    assert manifest["stats"]["signals"] == dict(sorted(report.stats.signals.items()))


def test_rebuilds_are_byte_identical_and_split_by_customer(lake: Path, tmp_path: Path) -> None:
    for recipe in ("bot-preference", "bot-feedback"):
        a = build(RECIPES / f"{recipe}.toml", lake, tmp_path / "a", progress=False)
        b = build(RECIPES / f"{recipe}.toml", lake, tmp_path / "b", progress=False)
        names = sorted(p.name for p in (tmp_path / "a").iterdir())
        assert names == sorted(p.name for p in (tmp_path / "b").iterdir())
        for name in names:
            assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
        with Lake(lake) as lk:
            customer = dict(lk.sql("select message_key, customer_id from messages").fetchall())
        seen: dict[int, str] = {}
        for split in a.files:
            for _, sources in _rows(a, split):
                for key in sources["prompt"]:
                    assert seen.setdefault(customer[key], split) == split
        assert b.examples == a.examples


def test_personal_data_never_reaches_signal_rows(
    sim: list[Delivery], lake: Path, tmp_path: Path
) -> None:
    values = {v for d in sim for _, v in d.truth.pii}
    for recipe in ("bot-preference", "bot-feedback"):
        report = build(RECIPES / f"{recipe}.toml", lake, tmp_path / recipe, progress=False)
        blob = b"".join(f.path.read_bytes() for f in report.files.values())
        assert not [v for v in values if v.encode() in blob]


def test_a_row_that_would_mislead_a_trainer_stops_the_build(tmp_path: Path) -> None:
    prompt = [Message("user", "where is my order?")]
    same = Example([*prompt, Message("assistant", "It ships today.", 1)], "c", 1, 1)
    same.rejected = [Message("assistant", "it ships  TODAY.", 0)]
    with (
        pytest.raises(BuildError, match="chosen and rejected are the same reply"),
        writer_for("preference", tmp_path) as w,
    ):
        w.write("train", same)
    no_user = Example([Message("assistant", "Hi!"), Message("assistant", "ok", 1)], "c", 1, 1)
    no_user.label = True
    with (
        pytest.raises(BuildError, match="must end with the user"),
        writer_for("feedback", tmp_path) as w,
    ):
        w.write("train", no_user)
    unlabelled = Example([*prompt, Message("assistant", "ok", 1)], "c", 1, 1)
    with (
        pytest.raises(BuildError, match="label must be true or false"),
        writer_for("feedback", tmp_path) as w,
    ):
        w.write("train", unlabelled)
    assert not list(tmp_path.iterdir())


def test_recipes_name_what_a_signal_format_cannot_do() -> None:
    from hooklake.errors import ConfigError

    with pytest.raises(ConfigError, match="one row per customer signal"):
        parse_recipe({"name": "x", "format": "preference", "examples": {"unit": "turn"}})
    with pytest.raises(ConfigError, match=r'"prompt-completion" needs examples\.unit = "turn"'):
        parse_recipe({"name": "x", "format": "prompt-completion"})
    with pytest.raises(ConfigError, match=r"preference\.agent_skip: '\(' is not a valid"):
        parse_recipe({"name": "x", "preference": {"agent_skip": ["("]}})
    with pytest.raises(ConfigError, match=r"feedback\.good and feedback\.bad both hold 'no'"):
        parse_recipe({"name": "x", "feedback": {"good": ["No"], "bad": ["no "]}})
    assert load_recipe(RECIPES / "bot-turns-trl.toml").examples.agent_turns == "weight0"


def test_explore_reads_signal_datasets_and_their_pairs(lake: Path, tmp_path: Path) -> None:
    from hooklake.datasets import explore

    report = build(RECIPES / "bot-preference.toml", lake, tmp_path / "p", progress=False)
    pairs = explore.dataset_pairs(report.out_dir)
    assert len(pairs) == report.examples
    assert pairs.groupby("split").size().to_dict() == {
        k: v for k, v in report.counts().items() if v
    }
    rows = [row for split in report.files for row, _ in _rows(report, split)]
    assert sorted(pairs["rejected"]) == sorted(r["rejected"][0]["content"] for r in rows)
    assert not pairs["reply"].str.contains(r"\d").any()
    # Every row reads back as its prompt, chosen and rejected messages.
    examples = explore.dataset_examples(report.out_dir)
    assert examples["assistant_messages"].ge(2).all()
    assert examples["messages"].sum() == sum(len(r["prompt"]) + 2 for r in rows)
    feedback = build(RECIPES / "bot-feedback.toml", lake, tmp_path / "f", progress=False)
    assert len(explore.dataset_examples(feedback.out_dir)) == feedback.examples
    with pytest.raises(BuildError, match="holds a feedback dataset"):
        explore.dataset_pairs(feedback.out_dir)
