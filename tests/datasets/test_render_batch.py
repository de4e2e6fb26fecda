"""A batch rendered at once (:func:`render_batch`: texts trimmed by Arrow, stored messages read
from Arrow's bytes) says what :func:`render_message` says message by message, on arbitrary
messages: fields in any of Landbot's places, Unicode whitespace, numbers of every shape,
nested and broken JSON."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from hooklake.datasets.render import SENDER_ROLES, render_message
from hooklake.datasets.shape import BUILD_SCHEMA, render_batch
from tests.conftest import examples

SPACE = st.sampled_from([" ", "\t", "\n", "\u3000", "\xa0", "\x1c", "\u2028", ""])
WORD = st.sampled_from(["Yes", "No", "Calle Mayor 1", "ß", "İ", "👍", "a\u0301", "Talk to a human"])
TEXT = st.builds(lambda a, w, b: a + w + b, SPACE, WORD | st.text(max_size=6), SPACE)
NUMBER = st.one_of(
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([1e16, 1e-5, -0.0, 41.746685, 0.1]),
)
SCALAR = st.one_of(st.none(), st.booleans(), NUMBER, TEXT, st.just(""))
BUTTON = st.one_of(
    TEXT,
    NUMBER,
    st.none(),
    st.dictionaries(st.sampled_from(["title", "text", "label", "body", "name", "x"]), SCALAR),
    st.lists(TEXT, max_size=2),
)
VALUE = st.one_of(SCALAR, st.lists(BUTTON, max_size=4), st.dictionaries(WORD, SCALAR, max_size=2))
FIELD_NAMES = [
    "title", "buttons", "caption", "address", "latitude", "longitude", "body", "image", "footer",
]  # fmt: skip
FIELDS = st.dictionaries(st.sampled_from(FIELD_NAMES), VALUE, max_size=4)


@st.composite
def stored(draw: st.DrawFn) -> str | None:
    kind = draw(st.sampled_from(["object", "object", "object", "none", "broken", "list", ""]))
    if kind == "none":
        return None
    if kind == "":
        return ""
    if kind == "broken":
        return draw(st.sampled_from(['{"data": {"title": "x"', "NaN", '{"a": NaN}', "{,}"]))
    if kind == "list":
        return json.dumps(draw(st.lists(SCALAR, max_size=2)))
    message: dict[str, Any] = draw(FIELDS)
    if draw(st.booleans()):
        message["data"] = draw(FIELDS | SCALAR)
    if draw(st.booleans()):
        raw: dict[str, Any] = draw(FIELDS)
        if draw(st.booleans()):
            raw["extra"] = draw(FIELDS | SCALAR)
        message["_raw"] = raw
    return json.dumps(message, ensure_ascii=draw(st.booleans()))


TYPES = [
    "text", "button", "dialog", "Dialog", "card_template", "location", "image", "iframe",
    "event", "Text", "", None, "ımage", "hologram",
]  # fmt: skip
ROW = st.fixed_dictionaries(
    {
        "sender_type": st.sampled_from(["customer", "bot", "agent", "sys", None]),
        "type": st.sampled_from(TYPES),
        "text": st.one_of(st.none(), TEXT),
        "url": st.sampled_from([None, "", "https://cdn.example/p.png"]),
        "message": stored(),
    }
)


@settings(max_examples=examples(300))
@given(rows=st.lists(ROW, max_size=12), media=st.sampled_from(["placeholder", "drop"]))
def test_render_batch_says_what_render_message_says(rows: list[dict[str, Any]], media: str) -> None:
    full = [
        dict.fromkeys(BUILD_SCHEMA.names)
        | row
        | {"conversation_id": "c", "message_key": f"k{i}", "date": dt.date(2026, 11, 2)}
        for i, row in enumerate(rows)
    ]
    batch = pa.Table.from_pylist(full, schema=BUILD_SCHEMA)
    expected = []
    for i, r in enumerate(full):
        said = render_message(
            r["message_key"], r["sender_type"], r["type"], r["text"], r["url"], r["message"],
            media,
        )  # fmt: skip
        if said is not None:
            expected.append((i, said.text, list(SENDER_ROLES).index(r["sender_type"])))
    at, texts, senders = render_batch(batch, media)
    got = list(zip(at.tolist(), texts.to_pylist(), senders.tolist(), strict=True))
    assert got == expected
    # A slice of a batch (its columns start inside Arrow's buffers) reads the same bytes.
    at, texts, senders = render_batch(batch.slice(1), media)
    got = list(zip(at.tolist(), texts.to_pylist(), senders.tolist(), strict=True))
    assert got == [(i - 1, text, sender) for i, text, sender in expected if i >= 1]
