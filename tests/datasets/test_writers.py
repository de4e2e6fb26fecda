"""Format writers: atomic files, digests, and shapes that real Hugging Face ``datasets`` loads."""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from hooklake.datasets.formats import WRITERS, writer_for
from hooklake.datasets.parquet import HF_SCHEMA
from hooklake.datasets.render import Example, Message
from hooklake.datasets.writers import OpenAIWriter, openai_problem
from hooklake.errors import BuildError

REPO = Path(__file__).parents[2]


def load_hf(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, kind: str, files: dict[str, str] | None = None
) -> Any:
    """Load with the real ``datasets.load_dataset`` (a builder name and files, or a dataset
    folder with a card), offline, caching under tmp_path."""
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    # Imported by name: mypy, run from the repository, would take the recipes folder for it.
    datasets: Any = importlib.import_module("datasets")
    datasets.disable_progress_bars()
    return datasets.load_dataset(kind, data_files=files, cache_dir=str(tmp_path / "hf-cache"))


def _examples() -> list[Example]:
    return [
        Example(
            [
                Message("system", "Be brief."),
                Message("user", "Hola 👋"),
                Message("assistant", "¿En qué te ayudo?", 1),
            ],
            "1-2-3",
            1,
            2,
            ["k1", "k2"],
        ),
        Example(
            [
                Message("user", "order?"),
                Message("assistant", "which one?", 0, human=True),
                Message("user", "#12"),
                Message("assistant", "shipped", 1),
            ],
            "1-9-4",
            1,
            9,
            ["k3", "k4", "k5", "k6"],
        ),
    ]


def _signal_example(example: Example, fmt: str) -> Example:
    """``example`` as the preference or feedback formats receive it."""
    if fmt == "preference":
        example.rejected = [Message("assistant", "Sorry, I didn't get that.", 1)]
    elif fmt == "feedback":
        example.label = True
    return example


def _write(fmt: str, out: Path, weighted: bool = True) -> dict[str, Any]:
    with writer_for(fmt, out, weighted=weighted) as w:
        w.write("train", _examples()[0])
        w.write("train", _examples()[1])
        w.write("test", _examples()[1])
        return w.close()


def test_hf_datasets_is_the_real_one_and_nothing_of_ours_shadows_it() -> None:
    spec = importlib.util.find_spec("datasets")
    assert spec is not None and spec.origin is not None
    origin = Path(spec.origin).resolve()
    assert "site-packages" in origin.parts  # (a venv may live inside the repository)
    assert (REPO / "datasets").resolve() not in origin.parents
    assert hasattr(importlib.import_module("datasets"), "load_dataset")
    # The recipes folder is not a package, even with the repository on sys.path.
    assert not (REPO / "datasets" / "__init__.py").exists()
    sys.path.insert(0, str(REPO))
    try:
        again = importlib.util.find_spec("datasets")
        assert again is not None and again.origin == spec.origin
    finally:
        sys.path.remove(str(REPO))


def test_openai_lines_round_trip_through_hf_datasets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = _write("openai", tmp_path / "out")
    assert [f.rows for f in files.values()] == [2, 0, 1]
    lines = (tmp_path / "out" / "train.jsonl").read_bytes().splitlines()
    assert orjson.loads(lines[1]) == {
        "messages": [
            {"role": "user", "content": "order?"},
            {"role": "assistant", "content": "which one?", "weight": 0},
            {"role": "user", "content": "#12"},
            {"role": "assistant", "content": "shipped", "weight": 1},
        ]
    }
    ds = load_hf(
        monkeypatch,
        tmp_path,
        "json",
        {"train": str(files["train"].path), "test": str(files["test"].path)},
    )
    assert ds["train"].num_rows == 2 and ds["test"].num_rows == 1
    assert ds["train"][0]["messages"][1]["content"] == "Hola 👋"


def test_openai_without_weights_has_no_weight_key(tmp_path: Path) -> None:
    files = _write("openai", tmp_path, weighted=False)
    assert b"weight" not in files["train"].path.read_bytes()


def test_hf_parquet_has_the_explicit_schema_and_loads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pyarrow.parquet as pq

    files = _write("hf", tmp_path / "out")
    assert pq.read_schema(files["train"].path).remove_metadata() == HF_SCHEMA
    assert pq.read_table(files["validation"].path).num_rows == 0
    ds = load_hf(monkeypatch, tmp_path, "parquet", {"train": str(files["train"].path)})
    row = ds["train"][1]
    assert row["conversation_id"] == "1-9-4" and row["customer_id"] == 9 and row["channel_id"] == 1
    assert row["source_keys"] == ["k3", "k4", "k5", "k6"]
    assert [(m["role"], m["weight"]) for m in row["messages"]] == [
        ("user", None),
        ("assistant", 0),
        ("user", None),
        ("assistant", 1),
    ]


def test_sharegpt_and_pairs_shapes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    share = _write("sharegpt", tmp_path / "share")
    first = orjson.loads(share["train"].path.read_bytes().splitlines()[0])
    assert first == {
        "conversations": [
            {"from": "system", "value": "Be brief."},
            {"from": "human", "value": "Hola 👋"},
            {"from": "gpt", "value": "¿En qué te ayudo?"},
        ]
    }
    pairs = _write("pairs", tmp_path / "pairs")
    second = orjson.loads(pairs["train"].path.read_bytes().splitlines()[1])
    assert second["completion"] == [{"role": "assistant", "content": "shipped"}]
    assert [m["content"] for m in second["prompt"]] == ["order?", "which one?", "#12"]
    ds = load_hf(monkeypatch, tmp_path, "json", {"train": str(pairs["train"].path)})
    assert ds["train"].column_names == ["prompt", "completion"]


@pytest.mark.parametrize("fmt", sorted(WRITERS))
def test_files_appear_only_on_close_with_their_sha256(tmp_path: Path, fmt: str) -> None:
    w = writer_for(fmt, tmp_path, weighted=True)
    w.write("train", _signal_example(_examples()[0], fmt))
    assert not w.path("train").exists()
    files = w.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f.path.name for f in files.values())
    for f in files.values():
        data = f.path.read_bytes()
        assert f.sha256 == hashlib.sha256(data).hexdigest() and f.size == len(data)


def test_a_failed_write_leaves_earlier_outputs_untouched(tmp_path: Path) -> None:
    _write("openai", tmp_path)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    bad = Example(
        [Message("user", "hi"), Message("user", "again"), Message("assistant", "ok", 1)],
        "c-9",
        1,
        1,
    )
    expected = r"train\.jsonl line 2 \(conversation c-9\).*alternation"
    with pytest.raises(BuildError, match=expected), writer_for("openai", tmp_path) as w:
        w.write("train", _examples()[0])
        w.write("train", bad)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


@pytest.mark.parametrize(
    ("record", "problem"),
    [
        ({"messages": []}, "at least one message"),
        ({"messages": [{"role": "user", "content": "a"}], "extra": 1}, "at least one message"),
        ({"messages": [{"role": "tool", "content": "a"}]}, "unknown role 'tool'"),
        ({"messages": [{"role": "user", "content": "a", "foo": 1}]}, "unknown key 'foo'"),
        ({"messages": [{"role": "user", "content": " "}]}, "no text content"),
        ({"messages": [{"role": "user", "content": None}]}, "no text content"),
        ({"messages": [{"role": "user", "content": "a"}]}, "at least one user and one assistant"),
        (
            {"messages": [{"role": "assistant", "content": "a"}, {"role": "user", "content": "b"}]},
            "is assistant where user must come",
        ),
        (
            {
                "messages": [
                    {"role": "user", "content": "a"},
                    {"role": "assistant", "content": "b"},
                    {"role": "user", "content": "c"},
                ]
            },
            "last message must be the assistant",
        ),
        (
            {
                "messages": [
                    {"role": "user", "content": "a"},
                    {"role": "system", "content": "s"},
                    {"role": "assistant", "content": "b"},
                ]
            },
            "system message after",
        ),
        (
            {
                "messages": [
                    {"role": "user", "content": "a", "weight": 1},
                    {"role": "assistant", "content": "b"},
                ]
            },
            "only assistant 0/1",
        ),
        (
            {
                "messages": [
                    {"role": "user", "content": "a"},
                    {"role": "assistant", "content": "b", "weight": 2},
                ]
            },
            "only assistant 0/1",
        ),
        (
            {
                "messages": [
                    {"role": "user", "content": "a"},
                    {"role": "assistant", "content": "b", "weight": 0},
                ]
            },
            "nothing to learn",
        ),
    ],
)
def test_openai_checks_name_the_problem(record: dict[str, Any], problem: str) -> None:
    found = openai_problem(record)
    assert found is not None and problem in found


def test_a_valid_record_passes_the_openai_checks() -> None:
    writer_cls = WRITERS["openai"]
    assert writer_cls is OpenAIWriter
    assert (
        openai_problem(
            {
                "messages": [
                    {"role": "system", "content": "s"},
                    {"role": "user", "content": "a"},
                    {"role": "assistant", "content": "b", "weight": 1},
                ]
            }
        )
        is None
    )


def test_unknown_format_is_a_build_error(tmp_path: Path) -> None:
    with pytest.raises(BuildError, match="unknown format 'csv'"):
        writer_for("csv", tmp_path)


@pytest.mark.parametrize("fmt", sorted(WRITERS))
def test_a_batch_written_at_once_gives_the_same_bytes_and_shards_are_named_in_order(
    tmp_path: Path, fmt: str
) -> None:
    with writer_for(fmt, tmp_path / "a", weighted=True) as w:
        for ex in _examples():
            w.write("train", _signal_example(ex, fmt))
        w.write("test", _signal_example(_examples()[1], fmt))
        one_by_one = w.close()
    with writer_for(fmt, tmp_path / "b", weighted=True, shard=12) as w:
        w.write_many("train", [_signal_example(ex, fmt) for ex in _examples()])
        w.write_many("test", [_signal_example(_examples()[1], fmt)])
        at_once = w.close()
    for split, f in one_by_one.items():
        assert at_once[split].path.name == f"{split}-00012.{f.path.name.split('.', 1)[1]}"
        assert at_once[split].sha256 == f.sha256 and at_once[split].rows == f.rows


def test_a_bad_line_in_a_batch_is_named_by_its_line(tmp_path: Path) -> None:
    bad = Example([Message("user", "hi"), Message("user", "again")], "c-9", 1, 1)
    expected = r"train\.jsonl line 3 \(conversation c-9\)"
    with pytest.raises(BuildError, match=expected), writer_for("openai", tmp_path) as w:
        w.write("train", _examples()[0])
        w.write_many("train", [_examples()[1], bad])
