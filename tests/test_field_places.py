"""Wherever a payload puts a content field, flush, views and builds give the same result.

Real traffic puts an event's action, a button's payload, a media URL, a dialog's title and
buttons, a location's address and coordinates in ``data``, flat in ``_raw``, in
``_raw.extra`` or at the message's top level (``hooklake/fields.py``). Hypothesis moves each
such field of a hand-written conversation between those places, fills the unused ``_raw.extra``
with what real traffic has there (null, ``{}``, typing settings), and checks that the stored
rows, the views and a built dataset equal those of the conversation with every field in
``data``.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from hooklake.collector.ingest import ingest_bodies
from hooklake.datasets.build import build
from hooklake.datasets.lake import Lake
from hooklake.datasets.recipe import parse_recipe
from hooklake.fields import CONTENT_PLACES
from tests.conftest import examples

T0 = 1_747_900_000.0
RECEIVED_US = 1_800_000_000_000_000
RECIPE = {
    "name": "places",
    "format": "openai",
    "split": {"train": 1.0, "validation": 0.0, "test": 0.0},
}
EXTRAS = [None, {}, {"typing": "auto"}, {"typing": "custom", "typing_delay": 1.2}]

# (sender, type, text, content fields that may move): one conversation with a hand-off.
SCRIPT: list[tuple[str, str, str, dict[str, Any]]] = [
    ("customer", "text", "hello", {}),
    ("bot", "text", "Hi! What do you need?", {}),
    ("bot", "dialog", "Pick a topic", {"buttons": ["Orders", "Human"], "payloads": ["$0", "$1"]}),
    ("customer", "button", "Orders", {"payload": "$0"}),
    ("bot", "image", "Our map", {"url": "https://media.example/map.png", "caption": "Our map"}),
    (
        "customer",
        "location",
        "",
        {"address": "Puerta del Sol, Madrid", "latitude": 40.4168, "longitude": -3.7038},
    ),
    ("customer", "video", "", {"url": "https://media.example/v.mp4", "caption": "see this"}),
    ("bot", "text", "Passing you to a person", {}),
    ("sys", "event", "Conversation assigned", {"action": "assign", "agent_id": 794028}),
    ("agent", "text", "Hi, Marta here. Your order ships today.", {}),
    ("customer", "text", "thanks!", {}),
    ("sys", "event", "Conversation unassigned", {"action": "unassign", "agent_id": 794028}),
    ("bot", "dialog", "Rate us", {"title": "Rate us", "buttons": [{"title": "Good"}]}),
]
MOVABLE = [(i, key) for i, (*_, fields) in enumerate(SCRIPT) for key in fields]


def bodies(places: dict[tuple[int, str], str], extras: list[Any]) -> list[bytes]:
    out = []
    agent: int | None = None
    for i, (sender, mtype, text, fields) in enumerate(SCRIPT):
        if fields.get("action") == "assign":
            agent = fields["agent_id"]
        elif fields.get("action") == "unassign":
            agent = None
        data: dict[str, Any] = {"body": text} if text else {}
        raw: dict[str, Any] = {
            "uuid": f"00000000-0000-4000-8000-{i:012d}",
            "type": mtype,
            "message": text,
            "author_type": {"customer": "user"}.get(sender, sender),
            "extra": orjson.loads(orjson.dumps(extras[i])),  # a copy: filled below
        }
        message: dict[str, Any] = {
            "_raw": raw,
            "type": mtype,
            "data": data,
            "timestamp": T0 + 10 * i,
            "sender": {"id": {"customer": 501, "sys": 0}.get(sender, 794028), "type": sender},
            "customer": {"id": 501, "name": "", "agent_id": agent},
            "channel": {"id": 2955840, "name": "Support", "type": "landbot"},
        }
        for key, value in fields.items():
            place = places.get((i, key), "data")
            if place == "_raw.extra":
                if not isinstance(raw["extra"], dict):
                    raw["extra"] = {}
                raw["extra"][key] = value
            else:
                {"data": data, "_raw": raw, "message": message}[place][key] = value
        out.append(orjson.dumps({"messages": [message]}))
    return out


def outcome(bodies: list[bytes]) -> dict[str, Any]:
    """What the lake and a build make of ``bodies``."""
    with tempfile.TemporaryDirectory() as tmp:
        lake = Path(tmp) / "lake"
        ingest_bodies(lake, bodies, received_at_us=RECEIVED_US)
        with Lake(lake) as views:
            rows = views.sql(
                "SELECT message_key, type, sender_type, text, payload, action, url, agent_id, "
                "latitude, longitude, role, position FROM messages ORDER BY position"
            ).fetchall()
            handovers = views.sql(
                "SELECT * EXCLUDE (conversation_id) FROM handovers ORDER BY assigned_at"
            ).fetchall()
            conversations = views.sql(
                "SELECT * EXCLUDE (conversation_id) FROM conversations"
            ).fetchall()
            turns = views.sql(
                "SELECT role, text, has_agent FROM turns ORDER BY turn_index"
            ).fetchall()
        report = build(parse_recipe(RECIPE), lake, Path(tmp) / "out", progress=False)
        train = report.files["train"].path.read_bytes()
    return {
        "rows": rows,
        "handovers": handovers,
        "conversations": conversations,
        "turns": turns,
        "train": train,
    }


REFERENCE = outcome(bodies({}, [{}] * len(SCRIPT)))


def test_the_reference_conversation_is_what_a_reader_saw() -> None:
    lines = [orjson.loads(line) for line in REFERENCE["train"].splitlines()]
    assert len(lines) == 1
    contents = [m["content"] for m in lines[0]["messages"]]
    assert contents[:5] == [
        "hello",
        "Hi! What do you need?\nPick a topic\n- Orders\n- Human",
        "Orders",
        "[image: https://media.example/map.png]\nOur map",
        "[location: Puerta del Sol, Madrid]\n[video: https://media.example/v.mp4]\nsee this",
    ]
    assert contents[-1] == "Rate us\n- Good"
    assert len(REFERENCE["handovers"]) == 1
    (handover,) = REFERENCE["handovers"]
    assert handover[2] == 794028 and handover[-1] == "event"


@settings(max_examples=examples(30))
@given(
    places=st.fixed_dictionaries(
        {field: st.sampled_from(CONTENT_PLACES) for field in MOVABLE}  # type: ignore[misc]
    ),
    extras=st.lists(st.sampled_from(EXTRAS), min_size=len(SCRIPT), max_size=len(SCRIPT)),
)
def test_any_place_gives_the_same_rows_views_and_dataset(
    places: dict[tuple[int, str], str], extras: list[Any]
) -> None:
    got = outcome(bodies(places, extras))
    for part, value in REFERENCE.items():
        assert got[part] == value, (part, places, extras)
