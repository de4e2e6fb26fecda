"""Judging bodies (:func:`check_body`) and what the flush makes of the bodies it accepted.

Properties, over generated input: the judgement never fails with anything but a
:class:`BodyError`; a body it accepts flushes into exactly its messages, with the timestamp and
customer the judgement read; the APIchat envelope and the inline shape give equal rows; and a
retry serialised differently keeps its message key.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hooklake.collector.check import BodyError, check_body
from hooklake.collector.ingest import ingest_bodies
from hooklake.layout import MESSAGES, REJECTED
from tests.conftest import LANDBOT, examples, lake_rows

SAMPLES = {p.name: p.read_bytes() for p in sorted(LANDBOT.glob("*.json"))}
I64 = (1 << 63) - 1
TS_LO, TS_HI = 946_684_800, 4_102_444_799

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(1 << 63), (1 << 64) - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


def mostly(good: st.SearchStrategy[Any], bad: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """``good`` four times in five, so that whole messages are often valid but for one field."""
    return st.integers(0, 4).flatmap(lambda i: good if i else bad)


# Values a Landbot integer field may hold on a good or a bad day.
int_like = mostly(
    st.integers(-I64, I64),
    st.one_of(
        st.integers(-I64, I64).map(str),
        st.integers(0, 10**6).map(lambda i: f" {i} "),
        st.integers(-(10**15), 10**15).map(float),
        st.sampled_from(["", "-", "--5", "+5", "1e3", "0x1f", "²", "١٢", "5 5", "1_000", "007"]),
        st.integers(1 << 63, (1 << 64) - 1),
        json_values,
    ),
)
timestamps = mostly(
    st.floats(TS_LO, TS_HI) | st.integers(TS_LO, TS_HI),
    st.one_of(
        st.integers(TS_LO, TS_HI).map(lambda t: t * 1000),
        st.integers(TS_LO, TS_HI).map(str),
        json_values,
    ),
)


def maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """The field holds ``strategy`` (mostly), is absent, or holds a wrong-typed value."""
    return mostly(strategy, st.just(...) | json_values)


def obj(**fields: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({}, optional=fields)


messages = st.fixed_dictionaries(
    {
        "timestamp": timestamps,
        "customer": maybe(
            st.fixed_dictionaries(
                {"id": int_like}, optional={"agent_id": int_like, "x": json_values}
            )
        ),
    },
    optional={
        "_raw": maybe(obj(uuid=st.uuids().map(str) | json_values, seq=int_like, chat=int_like)),
        "channel": maybe(obj(id=int_like, name=json_values, type=json_values)),
        "sender": maybe(obj(id=int_like, type=json_values, name=json_values)),
        "type": json_values,
        "data": json_values,
        "message": json_values,
    },
).map(lambda m: {k: v for k, v in m.items() if v is not ...})
bodies = st.one_of(
    json_values,
    st.fixed_dictionaries({"messages": st.lists(messages | json_values, max_size=4)}),
    st.fixed_dictionaries(
        {
            "messages": st.lists(messages, min_size=1, max_size=3),
            "channel": maybe(obj(id=int_like, name=json_values)),
            "customer": maybe(obj(id=int_like)),
            "agent": maybe(obj(id=int_like, type=st.sampled_from(["bot", "human"]))),
        }
    ).map(lambda b: {k: v for k, v in b.items() if v is not ...}),
).map(lambda b: orjson.dumps(b))


def judge(raw: bytes) -> int | BodyError:
    try:
        return check_body(raw)
    except BodyError as exc:
        assert exc.code and str(exc)
        return exc


@settings(max_examples=examples(400))
@given(raw=bodies | st.binary(max_size=200))
def test_judging_any_body_raises_nothing_but_body_error(raw: bytes) -> None:
    judge(raw)


def flushed(raws: list[bytes]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Messages and rejects of ``raws`` stored as the collector stores them."""
    with tempfile.TemporaryDirectory() as tmp:
        lake = Path(tmp) / "lake"
        ingest_bodies(lake, raws, hook="h", received_at_us=1_750_000_000_000_000)
        return lake_rows(lake, MESSAGES), lake_rows(lake, REJECTED)


def _customer_id(msg: dict[str, Any], body: dict[str, Any]) -> int:
    customer = msg.get("customer")
    if customer is None:
        customer = body["customer"]
    value = customer["id"]
    return int(value.strip()) if isinstance(value, str) else int(value)


@settings(max_examples=examples(100))
@given(raws=st.lists(bodies, min_size=1, max_size=12))
def test_an_accepted_body_flushes_into_exactly_its_messages(raws: list[bytes]) -> None:
    stored, rejected = flushed(raws)
    accepted = [(raw, n) for raw in raws if isinstance(n := judge(raw), int)]
    refused = [raw for raw in raws if isinstance(judge(raw), BodyError)]
    # What was judged good becomes rows, with the values the judgement read; nothing of it
    # is turned into a reject at flush time, and what was judged bad is a reject.
    assert sorted(r["body"] for r in rejected) == sorted(refused)
    assert len(stored) == sum(n for _, n in accepted)
    by_source: dict[str, dict[str, Any]] = {}
    for row in stored:
        by_source[row["source"].rsplit("@", 1)[1]] = row
    want = []
    for raw, _ in accepted:
        body = orjson.loads(raw)
        for msg in body["messages"]:
            ts = msg["timestamp"]
            want.append((orjson.loads(orjson.dumps(msg)), _customer_id(msg, body), ts))
    got = [(orjson.loads(r["raw"]), r["customer_id"], r["ts"].timestamp()) for r in stored]
    key = lambda t: orjson.dumps(t[0], option=orjson.OPT_SORT_KEYS)  # noqa: E731
    for (w_msg, w_cust, w_ts), (g_msg, g_cust, g_ts) in zip(
        sorted(want, key=key), sorted(got, key=key), strict=True
    ):
        assert g_msg == w_msg
        assert g_cust == w_cust
        assert g_ts == pytest.approx(w_ts, abs=1e-6)


SHAPE_COLUMNS = [
    "message_key", "hook", "channel_id", "channel_name", "channel_type", "customer_id",
    "chat_id", "ts", "seq", "type", "sender_type", "sender_id", "sender_name", "text",
    "payload", "action", "url", "agent_id", "data", "customer",
]  # fmt: skip


@settings(max_examples=examples(40))
@given(
    uuid=st.uuids().map(str),
    channel=st.fixed_dictionaries({"id": st.integers(1, I64), "name": st.text(max_size=10)}),
    customer=st.fixed_dictionaries(
        {"id": st.integers(1, I64)}, optional={"name": st.text(max_size=10), "x": json_values}
    ),
    agent=st.fixed_dictionaries(
        {"id": st.integers(1, I64), "type": st.sampled_from(["bot", "human"])},
        optional={"name": st.text(max_size=10)},
    ),
    ts=st.floats(TS_LO, TS_HI),
    kind=st.sampled_from(["text", "image", "dialog", "location"]),
    text=st.text(max_size=30),
)
def test_the_apichat_envelope_and_the_inline_shape_give_equal_rows(
    uuid: str,
    channel: dict[str, Any],
    customer: dict[str, Any],
    agent: dict[str, Any],
    ts: float,
    kind: str,
    text: str,
) -> None:
    """The same message, once with channel/customer/agent beside ``messages`` (APIchat) and
    once carried inside the message as MessageHooks do, is the same row (but for ``raw``)."""
    message = {"_raw": {"uuid": uuid}, "timestamp": ts, "type": kind, "message": text}
    envelope = {"agent": agent, "channel": channel, "customer": customer, "messages": [message]}
    sender: dict[str, Any] = {
        "type": "bot" if agent["type"] == "bot" else "agent",
        **{k: agent[k] for k in ("id", "name") if k in agent},
    }
    inline = {
        "messages": [
            {
                **message,
                "channel": {**channel, "type": "apichat"},
                "customer": customer,
                "sender": sender,
            }
        ]
    }
    (a, b), rejected = flushed([orjson.dumps(envelope), orjson.dumps(inline)])
    assert rejected == []
    assert {c: a[c] for c in SHAPE_COLUMNS} == {c: b[c] for c in SHAPE_COLUMNS}
    assert a["channel_type"] == "apichat" and a["customer_id"] == customer["id"]


def test_a_retry_serialised_differently_keeps_its_message_key() -> None:
    raws = list(SAMPLES.values())
    # Re-indented, as a logging tool or a backfill from saved files may hand it over.
    again = [orjson.dumps(orjson.loads(r), option=orjson.OPT_INDENT_2) for r in raws]
    assert again != raws
    first, rejected_first = flushed(raws)
    second, rejected_second = flushed(again)
    assert rejected_first == rejected_second == []
    assert sorted(r["message_key"] for r in first) == sorted(r["message_key"] for r in second)
    assert len(first) == sum(len(orjson.loads(r)["messages"]) for r in raws)


def _nest(depth: int) -> bytes:
    return b'{"a":' * depth + b"1" + b"}" * depth


@pytest.mark.parametrize("depth", [10, 200, 254, 255, 256, 300, 1000, 1023, 1024, 5000, 100_000])
@pytest.mark.parametrize("where", ["data", "customer", "customer.id", "timestamp", "envelope"])
def test_deep_nesting_is_stored_or_refused_never_an_error(depth: int, where: str) -> None:
    deep = _nest(depth)
    fields = {
        "timestamp": b"1747943104.5",
        "customer": b'{"id":1}',
        "data": b"null",
    }
    if where == "customer":
        fields["customer"] = b'{"id":1,"x":' + deep + b"}"
    elif where == "customer.id":
        fields["customer"] = b'{"id":' + deep + b"}"
    elif where in ("data", "timestamp"):
        fields[where] = deep
    msg = b"{" + b",".join(b'"%s":%s' % (k.encode(), v) for k, v in fields.items()) + b"}"
    raw = b'{"messages":[' + msg + b"]"
    raw += (b',"extra":' + deep if where == "envelope" else b"") + b"}"
    verdict = judge(raw)
    stored, rejected = flushed([raw])
    if isinstance(verdict, int):
        assert (len(stored), len(rejected)) == (1, 0)
        assert stored[0]["raw"] == msg.decode()  # kept whole, however deep
    else:
        assert (len(stored), len(rejected)) == (0, 1)
        assert rejected[0]["reason"] == str(verdict)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("12", 12),
        (" 12 ", 12),
        ("-12", -12),
        (12.0, 12),
        ("²", None),
        ("١٢", None),
        ("--5", None),
        ("+5", None),
        ("1_000", None),
        ("12.5", None),
        (12.5, None),
        (True, None),
        ("9" * 19, None),
        (1 << 63, None),
    ],
)
def test_integer_fields_accept_decimal_integers_only(value: Any, expected: int | None) -> None:
    raw = orjson.dumps({"messages": [{"timestamp": 1747943104.5, "customer": {"id": value}}]})
    verdict = judge(raw)
    if expected is None:
        assert isinstance(verdict, BodyError) and "customer.id must be an integer" in str(verdict)
    else:
        assert verdict == 1
        (row,), _ = flushed([raw])
        assert row["customer_id"] == expected
