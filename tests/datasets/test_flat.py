"""The column-wise output of a batch (fingerprints, ``openai`` lines and checks, card counts)
against the one-example-at-a-time code it replaces, on random examples."""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from hooklake.datasets.card import SplitStats
from hooklake.datasets.dedupe import fingerprint, flat_fingerprints
from hooklake.datasets.flat import flatten
from hooklake.datasets.jsonl import json_strings, openai_lines, openai_ok
from hooklake.datasets.render import Example, Message
from hooklake.datasets.writers import openai_problem, openai_record
from tests.conftest import examples

# Texts with every character orjson escapes, whitespace Python strips, and case folding.
ALPHABET = st.sampled_from(list('aAßſ "\\/\n\r\t\b\f\x00\x01\x1f\x7f\x85\xa0\u2028\u3000İé😀'))
TEXT = st.text(alphabet=ALPHABET | st.characters(exclude_categories=["Cs"]), max_size=10)
MESSAGE = st.builds(
    Message,
    st.sampled_from(["system", "user", "assistant", "user", "assistant"]),
    TEXT,
    st.sampled_from([None, None, 0, 1, 1, 2]),
    st.booleans(),
)


def _example(messages: list[Message]) -> Example:
    return Example(messages, "c", 1, 2)


def _alternating(draw: st.DrawFn) -> list[Message]:
    """A well-formed example, the common case the fast path takes."""
    out = [Message("system", draw(TEXT) + "s")] if draw(st.booleans()) else []
    for _ in range(draw(st.integers(1, 3))):
        out.append(Message("user", draw(TEXT) + "u"))
        w = draw(st.sampled_from([None, 0, 1]))
        out.append(Message("assistant", "a" + draw(TEXT), w, draw(st.booleans())))
    return out


BATCH = st.lists(
    st.one_of(st.composite(_alternating)(), st.lists(MESSAGE, max_size=5)).map(_example),
    max_size=6,
)


@settings(max_examples=examples(300))
@given(batch=BATCH, weighted=st.booleans())
def test_flat_output_equals_example_by_example(batch: list[Example], weighted: bool) -> None:
    flat = flatten(batch)
    assert flat_fingerprints(flat) == [fingerprint(ex.messages) for ex in batch]
    records: list[dict[str, Any]] = [openai_record(ex, weighted) for ex in batch]
    ok = openai_ok(flat, weighted)
    assert ok.tolist() == [openai_problem(r) is None for r in records]
    good = np.flatnonzero(ok)
    expected = b"".join(
        orjson.dumps(records[i], option=orjson.OPT_APPEND_NEWLINE) for i in good.tolist()
    )
    assert openai_lines(flat.subset(good), weighted) == expected
    one, many = SplitStats(), SplitStats()
    for ex in batch:
        one.add(ex)
    many.add_flat(flat)
    assert one.to_dict() == many.to_dict()
    picks = np.array([i for i in range(len(batch)) if i % 2 == 0], dtype=np.int64)
    part = flat.subset(picks)
    assert flat_fingerprints(part) == [fingerprint(batch[i].messages) for i in picks.tolist()]


@settings(max_examples=examples(300))
@given(
    texts=st.lists(st.one_of(TEXT, st.none()), max_size=8),
    large=st.booleans(),
    skipped=st.integers(0, 2),
)
def test_json_strings_are_orjsons(texts: list[str | None], large: bool, skipped: int) -> None:
    # Also from an array that is a slice of a longer one (its offsets do not start at 0).
    kind = pa.large_string() if large else pa.string()
    array = pa.array(['x"\n\x01'] * skipped + texts, kind).slice(skipped)
    got = json_strings(array)
    assert got.type == kind
    assert got.to_pylist() == [None if t is None else orjson.dumps(t).decode() for t in texts]
