"""The request check: can every message of a MessageHooks body become a message row?

The collector calls :func:`check_body` on every request, so a sender learns at once what is
wrong (400 with the reason) and only bodies that will flush cleanly are acknowledged as
messages. The rows themselves are extracted at flush time, in bulk, by
:mod:`hooklake.collector.extract`. Both read the ids where :data:`hooklake.fields.FIELDS` says
they are, so what this check accepts the flush can read. Everything Landbot sent is kept: what
has no column of its own stays in the ``data``, ``customer`` and ``raw`` JSON columns.

Both payload shapes are accepted: the current one (``_raw.uuid``, ``_raw.seq``) and the older
help-centre one (no ``uuid``, ``readed_at``), and the APIchat envelope whose ``channel``,
``customer`` and ``agent`` sit beside ``messages`` instead of inside each message.
"""

from __future__ import annotations

import math
import re
from typing import Any

import orjson

from hooklake.errors import PayloadError
from hooklake.fields import FIELDS, Place

_INT64_MAX = (1 << 63) - 1
# Epoch seconds between 2000-01-01 and 2100-01-01: anything else is milliseconds or junk.
_TS_MIN, _TS_MAX = 946_684_800, 4_102_444_800
# An id sent as text: ASCII decimal digits only (str.isdigit() also takes '²' or '١٢', which
# int() or the flush's SQL cannot read), at most 18 of them so it always fits an int64.
_DECIMAL = re.compile(r"-?[0-9]{1,18}")
_ASCII_SPACE = " \t\n\r\f\v"
_GZIP = b"\x1f\x8b"


ID_FIELDS = tuple(f for f in FIELDS if f.kind == "id")


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
        raise BodyError(
            f"the body is not valid JSON: {_not_utf8(raw) or exc}", "invalid_json"
        ) from None
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


def _not_utf8(raw: bytes) -> str | None:
    """What is wrong with a body that is not UTF-8, which orjson reports for any such body as
    "surrogates not allowed" at line 1 column 1, wherever the bad byte is."""
    if raw.startswith(_GZIP):
        return "it is gzip-compressed; send it uncompressed, as UTF-8 JSON"
    try:
        raw.decode()
    except UnicodeDecodeError as exc:
        bad = raw[exc.start : exc.start + 1].hex()
        return f"it is not UTF-8 (byte 0x{bad} at offset {exc.start}); JSON must be sent as UTF-8"
    return None


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
    elif isinstance(value, str) and _DECIMAL.fullmatch(text := value.strip(_ASCII_SPACE)):
        return int(text)
    raise BodyError(
        f"messages[{index}]: {where} must be an integer, got {_show(value)}", "bad_message", index
    )


def _show(value: Any) -> str:
    try:
        text = orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS, default=str).decode()
    except orjson.JSONEncodeError:  # nested deeper than orjson writes (255 levels)
        return f"a {type(value).__name__} nested too deeply to show"
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


def _pick(msg: dict[str, Any], envelope: dict[str, Any], key: str, index: int) -> dict[str, Any]:
    value = msg.get(key)
    return _obj(value if value is not None else envelope.get(key), key, index)


def _places(msg: dict[str, Any], index: int, envelope: dict[str, Any]) -> dict[Place, Any]:
    """The objects of a message that fields are read from; containers that must be objects
    (``_raw``, ``channel``, ``customer``, ``sender``) are checked here."""
    raw = _obj(msg.get("_raw"), "_raw", index)
    extra, data = raw.get("extra"), msg.get("data")
    return {
        "_raw": raw,
        "channel": _pick(msg, envelope, "channel", index),
        "customer": _pick(msg, envelope, "customer", index),
        "sender": _obj(msg.get("sender"), "sender", index),
        # Content containers are read where they are objects and never judged: real traffic
        # has `_raw.extra` as {}, null or typing settings.
        "data": data if isinstance(data, dict) else {},
        "_raw.extra": extra if isinstance(extra, dict) else {},
        "message": msg,
    }


def _label(place: Place, key: str) -> str:
    return key if place == "message" else f"{place}.{key}"


def check_message(msg: dict[str, Any], index: int, envelope: dict[str, Any]) -> None:
    """Raise :class:`BodyError` if ``msg`` cannot become a row: no usable timestamp, no
    customer id, ids in their own place that are not integers, or containers that are not
    objects. Ids may be numbers or decimal strings; names may be empty.
    """
    places = _places(msg, index, envelope)
    _timestamp_us(msg.get("timestamp"), index)
    for field in ID_FIELDS:
        place, key = field.sources[0]
        if field.strict:
            _int(places[place].get(key), _label(place, key), index)
    if _int(places["customer"].get("id"), "customer.id", index) is None:
        raise BodyError(f"messages[{index}]: customer.id is missing", "bad_message", index)


def check_body(raw: bytes) -> int:
    """Judge a request body as the collector does; returns its number of messages."""
    body = parse_body(raw)
    messages = body["messages"]
    for i, msg in enumerate(messages):
        check_message(msg, i, body)
    return len(messages)
