"""Where a Landbot message keeps each of its fields: the one table every reader of a payload uses.

Real traffic puts the same field in different places. An assign event's ``action`` sits in
``data`` in Landbot's help samples, flat in ``_raw`` where Landbot's own client library keeps
it, in ``_raw.extra`` in older captures, and at the message's top level in one integration's
traffic; a dialog's ``title``/``buttons``/``payloads`` and a location's ``address`` likewise.
:data:`FIELDS` names, for each field, the places to look in **in order of precedence**: the
first place holding a non-empty value wins. The default order is::

    data  >  _raw (flat)  >  _raw.extra  >  the message's top level

``_raw.extra`` holds typing settings (``{"typing": "auto", "typing_delay": 1.2}``), ``{}`` or
``null`` in real traffic; only the keys named here are ever read from it, so none of that is
content.

Three readers share this table, so they cannot disagree:

- the collector's request check (:mod:`hooklake.collector.check`) refuses a message whose id
  fields (``kind="id"``) hold something that is not an integer or a decimal string;
- the flush (:mod:`hooklake.collector.extract`) generates its SQL from it;
- dataset builds (:mod:`hooklake.datasets.render`) read content fields that have no column of
  their own (a dialog's buttons, a location's address) from the stored ``raw`` message with
  :func:`lookup`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

Place = Literal["data", "_raw", "_raw.extra", "message", "customer", "channel", "sender"]
#: text: a string (numbers are read as their text); id: an integer or a decimal string
#: (``strict`` ids are refused by the request check otherwise); number: a float or a numeric
#: string, read leniently; json: any JSON value (lists of buttons), read by builds only.
Kind = Literal["text", "id", "number", "json"]

#: The default precedence of content fields.
CONTENT_PLACES: tuple[Place, ...] = ("data", "_raw", "_raw.extra", "message")


@dataclass(frozen=True)
class Field:
    """One field of a message: the ``(place, key)`` pairs it is read from, first wins."""

    name: str
    kind: Kind
    sources: tuple[tuple[Place, str], ...]
    #: The message-row column it fills (``hooklake.layout.MESSAGE_SCHEMA``), if any.
    column: str | None = None
    #: For ids: the request check refuses a message whose value in the *first* place is not an
    #: integer (or decimal string). Other places, and lenient ids, read only integers and
    #: decimal strings and skip anything else.
    strict: bool = False

    @property
    def places(self) -> tuple[Place, ...]:
        return tuple(place for place, _ in self.sources)


def _content(name: str, kind: Kind, column: str | None = None, key: str | None = None) -> Field:
    return Field(name, kind, tuple((p, key or name) for p in CONTENT_PLACES), column)


FIELDS: tuple[Field, ...] = (
    # Ids: one place each, except the agent, which an event may also carry beside its action.
    Field("customer_id", "id", (("customer", "id"),), "customer_id", strict=True),
    Field("channel_id", "id", (("channel", "id"),), "channel_id", strict=True),
    Field("sender_id", "id", (("sender", "id"),), "sender_id", strict=True),
    Field("chat_id", "id", (("_raw", "chat"),), "chat_id", strict=True),
    Field("seq", "id", (("_raw", "seq"),), "seq", strict=True),
    #: Bot (negative bot id), agent (agent id) or sys (0) that wrote the message; changes when
    #: a "Jump to" moves the customer to another bot. Absent on customer messages.
    Field("samurai", "id", (("_raw", "samurai"),), "samurai"),
    #: The customer's human agent at send time (null when none is assigned).
    Field("agent_id", "id", (("customer", "agent_id"),), "agent_id", strict=True),
    #: The agent an assign or unassign event is about, which the event may carry beside its
    #: action; read by the ``handovers`` view from the stored message.
    _content("event_agent_id", "id", key="agent_id"),
    # What was said: the body, else a dialog's title, else Landbot's own copy of the text,
    # else an APIchat flat message, else a media caption (title and caption wherever they sit).
    Field(
        "text",
        "text",
        (
            ("data", "body"),
            *((p, "title") for p in CONTENT_PLACES),
            ("_raw", "message"),
            ("message", "message"),
            *((p, "caption") for p in CONTENT_PLACES),
        ),
        "text",
    ),
    _content("payload", "text", "payload"),
    _content("action", "text", "action"),
    _content("url", "text", "url"),
    _content("latitude", "number", "latitude"),
    _content("longitude", "number", "longitude"),
    # Read by builds from the stored message, no column of their own.
    _content("title", "text"),
    _content("caption", "text"),
    _content("address", "text"),
    _content("buttons", "json"),
    _content("payloads", "json"),
)

BY_NAME: dict[str, Field] = {f.name: f for f in FIELDS}


# Where each place is in a stored ``raw`` message, as a JSON path.
_JSON_PATHS: dict[Place, str] = {
    "data": "$.data",
    "_raw": "$._raw",
    "_raw.extra": "$._raw.extra",
    "message": "$",
    "customer": "$.customer",
    "channel": "$.channel",
    "sender": "$.sender",
}


#: What rendering (:mod:`hooklake.datasets.render`) reads from a stored message: these fields
#: wherever :data:`FIELDS` says they may be, and the whole ``data`` object (a card's parts).
SHOWN_FIELDS = ("title", "buttons", "caption", "address", "latitude", "longitude")


def view_fields() -> dict[str, str]:
    """The ``{{placeholders}}`` of the view SQL that read fields from the stored message
    (``m.raw``), where this table says they are, and the body of the ``hooklake_shown`` macro
    (:func:`shown_sql`)."""
    return {"event_agent_id": json_sql("event_agent_id", "m.raw"), **shown_sql()}


def shown_sql() -> dict[str, str]:
    """The two halves of the ``hooklake_shown`` macro (``macros.sql``): ``shown_paths``, the
    JSON paths rendering reads from a stored message, and ``shown_object``, a JSON object
    built from ``p``, the list ``json_extract`` gives for those paths.

    The object holds :data:`SHOWN_FIELDS` in every place they may be, and ``data`` whole (a
    card's parts), so :func:`lookup` and :func:`place_object` read it as they read the whole
    message. What it leaves out (the customer, the sender, ids, times) differs from one message
    to the next; what it keeps is the same every time a bot shows the same dialog or card, so a
    build renders each distinct one once. One ``json_extract`` of a list of paths parses the
    message once."""
    places: tuple[Place, ...] = ("message", "_raw", "_raw.extra")
    paths = ["$.data"]
    at: dict[Place, list[str]] = {}
    for place in places:
        at[place] = []
        for key in SHOWN_FIELDS:
            paths.append(f"{_JSON_PATHS[place]}.{key}")
            at[place].append(f"'{key}', p[{len(paths)}]")

    def obj(items: list[str]) -> str:
        return f"json_object({', '.join(items)})"

    raw = obj([*at["_raw"], f"'extra', {obj(at['_raw.extra'])}"])
    return {
        "shown_paths": f"[{', '.join(repr(p) for p in paths)}]",
        "shown_object": obj(["'data', p[1]", f"'_raw', {raw}", *at["message"]]),
    }


def json_sql(name: str, column: str = "raw") -> str:
    """A DuckDB expression reading field ``name`` from a JSON column holding whole messages
    (the lake's ``raw``), with the field's precedence; ids come out as BIGINT (non-integers
    skipped), text as VARCHAR. For views that need a field without a column of its own."""
    field = BY_NAME[name]
    reads = []
    for place, key in field.sources:
        value = f"json_extract_string({column}, '{_JSON_PATHS[place]}.{key}')"
        if field.kind == "id":
            value = f"TRY_CAST(regexp_extract({value}, '^\\s*(-?[0-9]{{1,18}})\\s*$', 1) AS BIGINT)"
        elif field.kind == "number":
            value = f"TRY_CAST({value} AS DOUBLE)"
        else:
            value = f"nullif({value}, '')"
        reads.append(value)
    return reads[0] if len(reads) == 1 else f"coalesce({', '.join(reads)})"


def place_object(message: Mapping[str, Any], place: Place) -> Mapping[str, Any] | None:
    """The object at ``place`` of a message, or None when it is missing or not an object."""
    if place == "message":
        return message
    if place == "_raw.extra":
        raw = message.get("_raw")
        value = raw.get("extra") if isinstance(raw, Mapping) else None
    else:
        value = message.get(place)
    return value if isinstance(value, Mapping) else None


def _present(value: Any) -> bool:
    return value is not None and value != "" and value != []


def lookup(message: Mapping[str, Any], name: str) -> Any:
    """The value of field ``name`` in a parsed message: the first place, in precedence order,
    that holds a non-empty value; None when no place does."""
    for place, key in BY_NAME[name].sources:
        obj = place_object(message, place)
        if obj is not None and _present(value := obj.get(key)):
            return value
    return None


__all__ = [
    "BY_NAME",
    "CONTENT_PLACES",
    "FIELDS",
    "SHOWN_FIELDS",
    "Field",
    "Kind",
    "Place",
    "json_sql",
    "lookup",
    "place_object",
    "shown_sql",
    "view_fields",
]
