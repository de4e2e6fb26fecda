"""From a MessageHooks body to message rows (:data:`hooklake.layout.MESSAGE_SCHEMA`).

The same functions judge a body when it arrives (so a sender learns at once what is wrong)
and turn it into rows when its journal segment is flushed. Everything Landbot sent is kept:
what has no column of its own stays in the ``data``, ``customer`` and ``raw`` JSON columns.

Both payload shapes are accepted: the current one (``_raw.uuid``, ``_raw.seq``) and the older
help-centre one (no ``uuid``, ``readed_at``), and the APIchat envelope whose ``channel``,
``customer`` and ``agent`` sit beside ``messages`` instead of inside each message.
"""

from __future__ import annotations

import hashlib
import math
from typing import Any

import orjson

from hooklake.errors import PayloadError

#: Row tuples follow :data:`hooklake.layout.MESSAGE_SCHEMA` column order.
Row = tuple[Any, ...]

_INT64_MAX = (1 << 63) - 1
# Epoch seconds between 2000-01-01 and 2100-01-01: anything else is milliseconds or junk.
_TS_MIN, _TS_MAX = 946_684_800, 4_102_444_800
_APICHAT = "apichat"


class BodyError(PayloadError):
    """A body or message failed validation; ``code`` is a short label for metrics."""

    def __init__(self, message: str, code: str, index: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.index = index


def parse_body(raw: bytes) -> dict[str, Any]:
    """Parse a request body and check its envelope: an object with a list of objects
    under ``messages``. Raises :class:`BodyError` saying what is wrong."""
    if not raw.strip():
        raise BodyError("the body is empty; expected a JSON object with a 'messages' list", "empty")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BodyError(f"the body is not valid JSON: {exc}", "invalid_json") from None
    if not isinstance(body, dict):
        kind = type(body).__name__
        raise BodyError(
            f"the body is JSON {kind}, expected an object with 'messages'", "not_object"
        )
    messages = body.get("messages")
    if messages is None:
        raise BodyError("the body has no 'messages' list", "no_messages")
    if not isinstance(messages, list):
        kind = type(messages).__name__
        raise BodyError(f"'messages' is {kind}, expected a list of message objects", "no_messages")
    for i, msg in enumerate(messages):
        if not isinstance(msg, dict):
            kind = "null" if msg is None else type(msg).__name__
            raise BodyError(f"messages[{i}] is {kind}, expected an object", "bad_message", i)
    return body


def _int(value: Any, where: str, index: int) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool):
        pass
    elif isinstance(value, int):
        if -_INT64_MAX <= value <= _INT64_MAX:
            return value
    elif isinstance(value, float):
        if value.is_integer() and abs(value) <= _INT64_MAX:
            return int(value)
    elif isinstance(value, str) and value.strip().lstrip("-").isdigit() and len(value) < 19:
        return int(value)
    raise BodyError(
        f"messages[{index}]: {where} must be an integer, got {_show(value)}", "bad_message", index
    )


def _str(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool | int | float):
        return orjson.dumps(value).decode()
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


def _show(value: Any) -> str:
    text = orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS, default=str).decode()
    return text if len(text) <= 60 else text[:57] + "..."


def _obj(value: Any, where: str, index: int) -> dict[str, Any]:
    if value is None:
        return {}
    if isinstance(value, dict):
        return value
    raise BodyError(
        f"messages[{index}]: {where} must be an object, got {_show(value)}", "bad_message", index
    )


def _timestamp_us(value: Any, index: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        if value is None:
            raise BodyError(f"messages[{index}]: timestamp is missing", "bad_message", index)
        raise BodyError(
            f"messages[{index}]: timestamp must be epoch seconds (a number), got {_show(value)}",
            "bad_message",
            index,
        )
    if not (math.isfinite(value) and _TS_MIN <= value < _TS_MAX):
        raise BodyError(
            f"messages[{index}]: timestamp {_show(value)} is not epoch seconds between 2000 "
            "and 2100 (milliseconds must be divided by 1000)",
            "bad_message",
            index,
        )
    return round(value * 1_000_000) if isinstance(value, float) else value * 1_000_000


def message_key(msg: dict[str, Any], raw: dict[str, Any]) -> str:
    """``_raw.uuid`` when Landbot sent one; else a hash of what stays the same on a retry."""
    uuid = raw.get("uuid")
    if isinstance(uuid, str) and uuid:
        return uuid
    sender, channel, customer = msg.get("sender"), msg.get("channel"), msg.get("customer")
    ident = [
        channel.get("id") if isinstance(channel, dict) else None,
        customer.get("id") if isinstance(customer, dict) else None,
        msg.get("timestamp"),
        sender.get("type") if isinstance(sender, dict) else sender,
        sender.get("id") if isinstance(sender, dict) else None,
        msg.get("type"),
        msg.get("data"),
        raw.get("message"),
    ]
    digest = hashlib.blake2b(
        orjson.dumps(ident, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS), digest_size=16
    )
    return "h:" + digest.hexdigest()


def _first(*values: Any) -> Any:
    for v in values:
        if v is not None and v != "":
            return v
    return None


def normalize_message(
    msg: dict[str, Any],
    index: int,
    *,
    envelope: dict[str, Any],
    hook: str,
    received_at_us: int,
    source: str,
    sentry_trace: str | None,
) -> Row:
    """One message object -> one row tuple. Raises :class:`BodyError` when it cannot be
    placed (no usable timestamp, ids that are not integers, objects that are not objects)."""
    raw = _obj(msg.get("_raw"), "_raw", index)
    data_value = msg.get("data")
    data = data_value if isinstance(data_value, dict) else {}
    channel = _obj(msg.get("channel", envelope.get("channel")), "channel", index)
    customer = _obj(msg.get("customer", envelope.get("customer")), "customer", index)
    sender = _obj(msg.get("sender"), "sender", index)
    extra_value = raw.get("extra")
    extra: dict[str, Any] = extra_value if isinstance(extra_value, dict) else {}
    sender_type = sender.get("type")
    sender_id = sender.get("id")
    sender_name = sender.get("name")
    if not sender and isinstance(envelope.get("agent"), dict):
        # APIchat: the envelope's agent wrote every message; APIchat sends bot messages only.
        agent = envelope["agent"]
        sender_type = "bot" if agent.get("type") == "bot" else "agent"
        sender_id, sender_name = agent.get("id"), agent.get("name")
    channel_type = channel.get("type")
    if channel_type is None and "agent" in envelope:
        channel_type = _APICHAT
    if customer.get("id") is None:
        raise BodyError(f"messages[{index}]: customer.id is missing", "bad_message", index)
    return (
        message_key(msg, raw),
        hook,
        _int(channel.get("id"), "channel.id", index),
        _str(channel.get("name")),
        _str(channel_type),
        _int(customer.get("id"), "customer.id", index),
        _int(raw.get("chat"), "_raw.chat", index),
        _timestamp_us(msg.get("timestamp"), index),
        _int(raw.get("seq"), "_raw.seq", index),
        _str(msg.get("type")),
        _str(sender_type),
        _int(sender_id, "sender.id", index),
        _str(sender_name),
        _str(
            _first(
                data.get("body"),
                data.get("title"),
                raw.get("message"),
                msg.get("message"),
                data.get("caption"),
            )
        ),
        _str(_first(data.get("payload"), extra.get("payload"), raw.get("payload"))),
        _str(_first(data.get("action"), extra.get("action"))),
        _str(_first(data.get("url"), extra.get("url"), msg.get("url"))),
        _int(customer.get("agent_id"), "customer.agent_id", index),
        None if data_value is None else _str(data_value),
        _str(customer) if customer else None,
        orjson.dumps(msg, option=orjson.OPT_NON_STR_KEYS).decode(),
        sentry_trace,
        received_at_us,
        source,
    )


def normalize_body(
    body: dict[str, Any],
    *,
    hook: str,
    received_at_us: int,
    source: str,
    sentry_trace: str | None = None,
) -> list[Row]:
    """All rows of a parsed body; raises :class:`BodyError` for the first bad message."""
    return [
        normalize_message(
            msg,
            i,
            envelope=body,
            hook=hook,
            received_at_us=received_at_us,
            source=f"{source}#{i}",
            sentry_trace=sentry_trace,
        )
        for i, msg in enumerate(body["messages"])
    ]
