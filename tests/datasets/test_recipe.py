"""Recipes: TOML in, a typed recipe or a ConfigError naming the bad key out."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import orjson
import pytest

from hooklake.datasets.recipe import Recipe, load_recipe, parse_recipe
from hooklake.errors import ConfigError

RECIPES = Path(__file__).parents[2] / "datasets"


def _load(tmp_path: Path, text: str) -> Recipe:
    path = tmp_path / "x.toml"
    path.write_text(text)
    return load_recipe(path)


def test_shipped_recipes_load_and_the_folder_holds_no_python() -> None:
    recipes = sorted(RECIPES.glob("*.toml"))
    assert len(recipes) >= 2
    loaded = {r.name: r for r in map(load_recipe, recipes)}
    assert {"support-bot", "agent-replies"} <= set(loaded)
    assert loaded["support-bot"].format == "openai"
    assert loaded["support-bot"].examples.agent_turns == "drop"
    assert loaded["agent-replies"].examples.targets == "agent"
    # A .py file or __init__ here would make `datasets` importable and shadow Hugging Face's.
    assert not list(RECIPES.rglob("*.py"))


def test_only_the_name_is_required_and_defaults_fill_the_rest(tmp_path: Path) -> None:
    r = _load(tmp_path, 'name = "acme"\n')
    assert r.format == "openai"
    assert r.conversations.gap_minutes == 30
    assert (r.examples.unit, r.examples.agent_turns, r.examples.media) == (
        "conversation",
        "keep",
        "placeholder",
    )
    assert (r.filter.min_user_turns, r.filter.dedupe, r.redact.pii) == (1, True, True)
    assert r.split.fractions() == {"train": 0.8, "validation": 0.1, "test": 0.1}
    assert r.split.group_by == "customer"
    assert r.origin == str(tmp_path / "x.toml") and r.text == 'name = "acme"\n'
    assert not r.weighted


def test_the_issue_example_recipe_loads(tmp_path: Path) -> None:
    r = _load(
        tmp_path,
        """
name = "acme-support"
format = "openai"
[source]
channels = [2955840]
since = "2026-01-01"
until = 2026-12-31
[conversations]
gap_minutes = 30
[examples]
unit = "conversation"
agent_turns = "keep"
max_context_turns = 0
system_prompt = "You are Acme's support assistant."
media = "placeholder"
[filter]
min_user_turns = 1
dedupe = true
[redact]
pii = true
[split]
train = 0.8
validation = 0.1
test = 0.1
group_by = "customer"
seed = 42
""",
    )
    assert r.source.channels == (2955840,)
    assert (r.source.since, r.source.until) == (date(2026, 1, 1), date(2026, 12, 31))
    # The resolved recipe is plain JSON (it goes into the manifest).
    assert orjson.loads(r.to_json())["source"]["since"] == "2026-01-01"


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        (
            {"name": "x", "examples": {"agent_turns": "sometimes"}},
            "examples.agent_turns must be one of keep, drop, weight0",
        ),
        ({"name": "x", "format": "csv"}, "format must be one of openai, hf, sharegpt, pairs"),
        (
            {"name": "x", "examples": {"unit": "message"}},
            "examples.unit must be one of conversation, turn",
        ),
        (
            {"name": "x", "split": {"group_by": "channel"}},
            "split.group_by must be one of conversation, customer",
        ),
        (
            {"name": "x", "examples": {"media": "inline"}},
            "examples.media must be one of placeholder, drop",
        ),
        ({"name": "x", "filter": {"dedup": True}}, "filter.dedup is not a known key"),
        ({"name": "x", "colour": "blue"}, "colour is not a known key"),
        ({}, "name is required"),
        (
            {"name": "x", "split": {"train": 0.5}},
            "split.train + split.validation + split.test must be 1, got 0.7",
        ),
        (
            {"name": "x", "split": {"train": 0, "validation": 0.5, "test": 0.5}},
            "split.train: input should be greater than 0",
        ),
        (
            {"name": "x", "source": {"since": "2026-02-01", "until": "2026-01-01"}},
            "source.since must not be after source.until",
        ),
        ({"name": "x", "source": {"since": "last week"}}, "source.since:"),
        (
            {"name": "x", "source": {"channels": ["2955840"]}},
            "source.channels[0]: input should be a valid integer",
        ),
        (
            {"name": "x", "filter": {"dedupe": "yes"}},
            "filter.dedupe: input should be a valid boolean",
        ),
        (
            {"name": "x", "conversations": {"gap_minutes": 0}},
            "conversations.gap_minutes: input should be greater than 0",
        ),
        (
            {"name": "x", "examples": {"max_context_turns": -1}},
            "examples.max_context_turns: input should be greater than or equal to 0",
        ),
        ({"name": "x", "format": "pairs"}, 'format "pairs" needs examples.unit = "turn"'),
        (
            {"name": "x", "format": "sharegpt", "examples": {"agent_turns": "weight0"}},
            "sharegpt has no per-message weight",
        ),
        (
            {"name": "x", "examples": {"targets": "agent", "agent_turns": "drop"}},
            'examples.targets = "agent" needs examples.agent_turns = "keep"',
        ),
        (
            {"name": "x", "examples": {"system_prompt": "  "}},
            "examples.system_prompt must not be blank",
        ),
        ({"name": "../etc"}, "name must be letters, digits"),
    ],
)
def test_a_bad_key_or_value_is_named(doc: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_recipe(doc, "datasets/x.toml")
    assert str(err.value).startswith("recipe datasets/x.toml: ")
    assert message in str(err.value)


def test_files_that_are_missing_or_not_toml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_recipe(tmp_path / "missing.toml")
    with pytest.raises(ConfigError, match="is not valid TOML"):
        _load(tmp_path, "name = \n")
    with pytest.raises(ConfigError, match=r"x\.toml: examples\.agent_turns must be one of"):
        _load(tmp_path, 'name = "a"\n[examples]\nagent_turns = "x"\n')


def test_weights_appear_only_when_some_replies_are_context() -> None:
    assert parse_recipe({"name": "a", "examples": {"agent_turns": "weight0"}}).weighted
    assert parse_recipe({"name": "a", "examples": {"unit": "turn"}}).weighted
    assert parse_recipe({"name": "a", "examples": {"targets": "bot"}}).weighted
    assert not parse_recipe({"name": "a", "examples": {"agent_turns": "drop"}}).weighted
