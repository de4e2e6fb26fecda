"""The build's core, shape_batch, against the plain per-message reference (0.1's path) on random
conversations, and the batch redaction against redacting text by text."""

from __future__ import annotations

import datetime as dt
from typing import Any

import orjson
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from hooklake.datasets.dedupe import fingerprint, fingerprints
from hooklake.datasets.recipe import Recipe, parse_recipe
from hooklake.datasets.redact import Redactor, known_values
from hooklake.datasets.reference import shape_reference
from hooklake.datasets.render import Message
from hooklake.datasets.shape import BUILD_COLUMNS, BUILD_SCHEMA, shape_batch
from hooklake.datasets.signals import Rules
from tests.conftest import examples

# Pieces that exercise every branch of rendering and redaction, glued by random text.
PIECES = [
    "jane.doe@example.com",
    "Jane",
    "Jane Doe",
    "+34 696 33 64 50",
    "4111 1111 1111 1111",
    "ES91 2100 0418 4502 0005 1332",
    "https://shop.example/r?token=abc123def456ghi789&lang=en",
    "www.example.com/x?sig=Zz9",
    "2026-11-02",
    "12.50",
    "order 123456",
    "٣٤٥٦٧٨٩٠١٢",  # Unicode digits: never a phone, however many
    "Calle Mayor 1",
    "ſ",
    "İzmir",  # lower-cases to one character more
    " \n\t ",
    "\u3000",
    "human please",
    "Yes, thanks!",
    "didn't understand that",
    "👍",
]
TEXT = st.lists(st.one_of(st.sampled_from(PIECES), st.text(max_size=8)), max_size=5).map(" ".join)
SENDERS = st.sampled_from(["customer", "bot", "agent", "customer", "bot", "sys", None])
TYPES = st.sampled_from(
    ["text", "text", "text", "button", "dialog", "card_template", "image", "location", "event",
     "Text", "iframe", None, "sticker"]
)  # fmt: skip
CUSTOMER = st.fixed_dictionaries(
    {},
    optional={
        "name": st.sampled_from(["Jane Doe", "Visitor 12", "Ana", "ſam Smith"]),
        "email": st.sampled_from(["jane.doe@example.com", "x@y.io"]),
        "order_id": st.sampled_from(["123456", "A-99"]),
        "address": st.sampled_from(["Calle Mayor 1", "['Calle Mayor 1', 'Madrid']"]),
        "country": st.just("ES"),
    },
).map(lambda d: orjson.dumps(d).decode() if d else None)


@st.composite
def raw_message(draw: st.DrawFn, kind: str | None) -> str | None:
    if kind in ("dialog", "card_template"):
        buttons = draw(
            st.lists(st.sampled_from(["Order status", "Talk to a human", ""]), max_size=3)
        )
        data: dict[str, Any] = {"buttons": buttons, "title": draw(TEXT)}
        if kind == "card_template":
            data["data"] = {"body": draw(TEXT), "footer": "Reply with a button", "image": "u.png"}
        return orjson.dumps(data).decode()
    if kind == "location":
        return orjson.dumps({"address": draw(st.sampled_from(["Calle Mayor 1", ""]))}).decode()
    if kind in ("image", "iframe", "sticker"):
        return orjson.dumps({"caption": draw(TEXT)}).decode()
    return None


@st.composite
def batches(draw: st.DrawFn) -> pa.Table:
    rows: list[dict[str, Any]] = []
    n_conv = draw(st.integers(1, 5))
    for c in range(n_conv):
        channel, customer = draw(st.sampled_from([(1, 1), (1, 2), (2, 1)]))
        conv_id = f"{channel}-{customer}-{1000 + c}"
        day = dt.date(2026, 11, draw(st.integers(1, 4)))
        snapshots = draw(st.lists(CUSTOMER, min_size=1, max_size=2))
        for i in range(draw(st.integers(1, 9))):
            kind = draw(TYPES)
            rows.append(
                {
                    "conversation_id": conv_id,
                    "channel_id": channel,
                    "customer_id": customer,
                    "message_key": f"{conv_id}/{i}",
                    "sender_type": draw(SENDERS),
                    "type": kind,
                    "text": draw(st.one_of(st.none(), TEXT)),
                    "url": draw(st.sampled_from([None, "https://cdn.example/p.png?X-Sig=abc"])),
                    "message": draw(raw_message(kind)),
                    "payload": draw(
                        st.sampled_from([None, "", "yes", "human", "call +34 696 33 64 50"])
                    ),
                    "customer": draw(st.sampled_from(snapshots)),
                    "date": day,
                }
            )
    rows.sort(key=lambda r: r["conversation_id"])  # build order; positions follow
    return pa.Table.from_pylist(rows, schema=BUILD_SCHEMA)


RECIPES = [
    {},
    {"examples": {"agent_turns": "drop", "system_prompt": "Be kind."}},
    {"examples": {"agent_turns": "weight0", "media": "drop"}},
    {"examples": {"unit": "turn", "targets": "agent", "max_context_turns": 2}, "format": "pairs"},
    {"examples": {"unit": "turn", "targets": "bot"}},
    {"redact": {"pii": False}, "filter": {"min_user_turns": 2}},
    {"source": {"since": "2026-11-02", "until": "2026-11-03"}},
    {"split": {"train": 0.5, "validation": 0.25, "test": 0.25, "group_by": "conversation"}},
    {"format": "preference", "examples": {"agent_turns": "keep"}},
    {"format": "feedback"},
]


def _recipe(i: int) -> Recipe:
    return parse_recipe({"name": "t", **RECIPES[i]})


@settings(max_examples=examples(150))
@given(batch=batches(), which=st.integers(0, len(RECIPES) - 1))
def test_shape_batch_equals_the_per_message_reference(batch: pa.Table, which: int) -> None:
    recipe = _recipe(which)
    rules = Rules(recipe) if recipe.format in ("preference", "feedback") else None
    fast = shape_batch(batch, recipe, rules)
    slow = shape_reference(batch, recipe, rules)
    assert fast.examples == slow.examples
    assert fast.splits == slow.splits
    assert fast.conversations == slow.conversations
    assert fast.groups == slow.groups
    assert fast.conversation_splits == slow.conversation_splits
    assert fast.messages_read == slow.messages_read
    assert fast.dropped == slow.dropped
    assert +fast.redactions == +slow.redactions
    assert fast.signal_notes == slow.signal_notes


def test_the_reference_finds_examples_and_redactions_in_the_pieces() -> None:
    """The generator above is worth something: on a plain batch both paths give examples and
    redact every kind of piece."""
    rows = []
    for i, (sender, text) in enumerate(
        [("customer", "mail jane.doe@example.com or +34 696 33 64 50"), ("bot", "Thanks Jane!")]
    ):
        rows.append(
            dict.fromkeys(BUILD_COLUMNS)
            | {
                "conversation_id": "1-1-1",
                "channel_id": 1,
                "customer_id": 1,
                "message_key": f"k{i}",
                "sender_type": sender,
                "type": "text",
                "text": text,
                "customer": '{"name": "Jane Doe"}',
                "date": dt.date(2026, 11, 2),
            }
        )
    batch = pa.Table.from_pylist(rows, schema=BUILD_SCHEMA)
    fast = shape_batch(batch, _recipe(0))
    assert fast.examples == shape_reference(batch, _recipe(0)).examples
    (ex,) = fast.examples
    assert [m.content for m in ex.messages] == ["mail <EMAIL> or <PHONE>", "Thanks <NAME>!"]
    assert fast.redactions == {"EMAIL": 1, "PHONE": 1, "NAME": 1}


@settings(max_examples=examples(200))
@given(
    pool=st.lists(TEXT, min_size=1, max_size=5),
    picks=st.lists(st.integers(0, 4), max_size=12),
    customers=st.lists(CUSTOMER, min_size=1, max_size=3),
    data=st.data(),
)
def test_batch_redaction_equals_text_by_text(
    pool: list[str], picks: list[int], customers: list[str | None], data: st.DataObject
) -> None:
    # Texts repeat, as a bot's do: a batch searches each distinct text once and counts what
    # it replaces as often as the text occurs.
    texts = [pool[i % len(pool)] for i in picks]
    known = [known_values([c]) for c in customers]
    owners = [data.draw(st.integers(0, len(known) - 1)) for _ in texts]
    one, batch = Redactor(), Redactor()
    expected = [one.redact(t, known[o]) for t, o in zip(texts, owners, strict=True)]
    assert batch.redact_batch(texts, owners, known) == expected
    assert +batch.counts == +one.counts


@settings(max_examples=examples(200))
@given(
    batch=st.lists(
        st.lists(
            st.tuples(
                st.sampled_from(["user", "assistant", "system"]),
                st.text(
                    alphabet=st.sampled_from(list("aAßſ \t\n\x1c\x85\xa0\u2028\u3000İx"))
                    | st.characters(exclude_categories=("Cs",)),
                    max_size=12,
                ),
            ),
            min_size=1,
            max_size=4,
        ),
        max_size=6,
    )
)
def test_batch_fingerprints_equal_one_by_one(batch: list[list[tuple[str, str]]]) -> None:
    examples_ = [[Message(role, text) for role, text in ex] for ex in batch]  # type: ignore[arg-type]
    assert fingerprints(examples_) == [fingerprint(ex) for ex in examples_]
