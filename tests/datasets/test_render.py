"""Rendering messages, merging turns and shaping examples (hooklake.datasets.render)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hooklake.datasets.recipe import Examples
from hooklake.datasets.render import (
    Rendered,
    Turn,
    conversation_examples,
    merge_turns,
    render_message,
    render_text,
    trim_turns,
)
from hooklake.datasets.writers import openai_problem, openai_record
from hooklake.db import connect, view_sql
from hooklake.fields import view_fields
from tests.conftest import examples, sample


def _message(name: str) -> dict[str, Any]:
    msg: dict[str, Any] = orjson.loads(sample(name))["messages"][0]
    return msg


def _columns(msg: dict[str, Any]) -> tuple[str | None, str | None, str | None, str | None]:
    """type, text, url, raw as the collector stores them (text: body, else title, else the
    raw message)."""
    data = msg.get("data") or {}
    raw = msg.get("_raw") or {}
    text = data.get("body") or data.get("title") or raw.get("message") or data.get("caption")
    return msg["type"], text or None, data.get("url"), orjson.dumps(msg).decode()


def _render(name: str, media: str = "placeholder") -> Rendered | None:
    msg = _message(name)
    return render_message("k", msg["sender"]["type"], *_columns(msg), media=media)


def test_button_click_is_the_users_text() -> None:
    r = _render("button_click.json")
    assert r == Rendered("user", False, "Track my order", "k")


def test_dialog_is_its_question_then_its_options() -> None:
    r = _render("dialog.json")
    assert r is not None and r.role == "assistant"
    assert r.text == "What do you need help with?\n- Track my order\n- Talk to a human"


def test_card_template_has_title_body_options_and_footer() -> None:
    r = _render("whatsapp_card_template.json")
    assert r is not None
    assert r.text == (
        "Support\nChoose an option\n- Order status\n- Talk to a human\nReply with a button"
    )


def test_image_becomes_a_placeholder_with_url_and_keeps_its_caption() -> None:
    url = "https://storage.googleapis.com/media.landbot.io/2955840/channels/example.png"
    r = _render("image.json")
    assert r is not None and r.text == f"[image: {url}]\nHere is our store map"
    dropped = _render("image.json", media="drop")
    assert dropped is not None and dropped.text == "Here is our store map"


def test_iframe_is_a_placeholder_or_nothing() -> None:
    r = _render("iframe.json")
    assert r is not None and r.text == "[iframe: https://www.youtube.com/embed/dQw4w9WgXcQ]"
    assert _render("iframe.json", media="drop") is None


@pytest.mark.parametrize("name", ["event_assign.json", "event_unassign.json"])
def test_events_never_appear_as_text(name: str) -> None:
    assert _render(name) is None
    # Even an event sent by a non-sys sender with a body stays silent.
    assert render_text("event", "Conversation assigned to agent", None, None) == ""


def test_agent_text_is_an_assistant_message_written_by_a_human() -> None:
    r = _render("agent_message.json")
    assert r == Rendered("assistant", True, "hello world", "k")


def test_media_and_unknown_types_become_placeholders_with_their_caption() -> None:
    assert render_text("location", "Calle Mayor 1, Madrid", None, None) == (
        "[location: Calle Mayor 1, Madrid]"
    )
    assert render_text("location", "Calle Mayor 1", None, None, media="drop") == ""
    assert render_text("hologram", "from the future", None, None) == "[hologram]\nfrom the future"
    assert render_text("hologram", "from the future", None, None, media="drop") == (
        "from the future"
    )
    assert render_text("video", None, "https://v.example/a.mp4", None) == (
        "[video: https://v.example/a.mp4]"
    )
    assert render_text("sticker_pack", None, "https://s.example/x", None) == (
        "[sticker_pack: https://s.example/x]"
    )
    assert render_text("video", None, "https://v.example/a.mp4", None, media="drop") == ""


def test_unknown_sender_and_empty_text_render_nothing() -> None:
    assert render_message("k", "sys", "text", "hi", None, None) is None
    assert render_message("k", None, "text", "hi", None, None) is None
    assert render_message("k", "bot", "text", "   ", None, None) is None


def test_dialog_with_button_objects_and_broken_data() -> None:
    data = orjson.dumps({"data": {"buttons": [{"label": "Yes"}, {"text": "No"}, 3, ""]}}).decode()
    assert render_text("dialog", "Continue?", None, data) == "Continue?\n- Yes\n- No"
    assert render_text("dialog", "Continue?", None, "not json") == "Continue?"


def _r(role: str, text: str, key: str, human: bool = False) -> Rendered:
    return Rendered(role, human, text, key)  # type: ignore[arg-type]


def test_merge_turns_joins_consecutive_roles_and_keeps_keys() -> None:
    msgs = [
        _r("assistant", "Hi", "a"),
        _r("assistant", "Menu", "b"),
        _r("user", "Track", "c"),
        _r("user", "now", "d"),
        _r("assistant", "Sure", "e", human=True),
    ]
    turns = merge_turns(msgs)
    assert [(t.role, t.text, t.keys, t.human) for t in turns] == [
        ("assistant", "Hi\nMenu", ["a", "b"], False),
        ("user", "Track\nnow", ["c", "d"], False),
        ("assistant", "Sure", ["e"], True),
    ]


def test_dropping_agent_turns_drops_the_exchanges_with_the_agent() -> None:
    msgs = [
        _r("user", "Talk to a human", "a"),
        _r("assistant", "Transferring you.", "b"),
        _r("assistant", "Hi, Ana here", "c", human=True),
        _r("user", "my order", "d"),
        _r("user", "is late", "e"),
        _r("assistant", "It ships today", "f", human=True),
        _r("user", "thanks, bye", "g"),
        _r("assistant", "Rate us?", "h"),
    ]
    turns = merge_turns(msgs, agent_turns="drop")
    # "my order / is late" was said to the agent: it goes with the agent's reply.
    assert [(t.role, t.text, t.keys) for t in turns] == [
        ("user", "Talk to a human", ["a"]),
        ("assistant", "Transferring you.", ["b"]),
        ("user", "thanks, bye", ["g"]),
        ("assistant", "Rate us?", ["h"]),
    ]
    assert not any(t.human for t in turns)


def test_trim_turns_starts_with_user_and_ends_with_assistant() -> None:
    turns = [
        Turn("assistant", False, "hi", ["a"]),
        Turn("user", False, "q", ["b"]),
        Turn("assistant", False, "r", ["c"]),
        Turn("user", False, "bye", ["d"]),
    ]
    assert [t.keys for t in trim_turns(turns)] == [["b"], ["c"]]
    assert trim_turns([Turn("user", False, "q", ["b"])]) == []


def _turns(*spec: str) -> list[Turn]:
    """``"u"`` user, ``"b"`` bot, ``"a"`` human agent."""
    roles = {"u": ("user", False), "b": ("assistant", False), "a": ("assistant", True)}
    return [Turn(roles[s][0], roles[s][1], f"{s}{i}", [f"k{i}"]) for i, s in enumerate(spec)]  # type: ignore[arg-type]


def _shape(examples: list[Any]) -> list[list[tuple[str, str, int | None]]]:
    return [[(m.role, m.content, m.weight) for m in ex.messages] for ex in examples]


def test_one_example_per_conversation_with_system_prompt() -> None:
    spec = Examples(system_prompt="Be kind.")
    (ex,) = conversation_examples(
        _turns("u", "b", "u", "a"), spec, conversation_id="c1", channel_id=1, customer_id=2
    )
    assert _shape([ex]) == [
        [
            ("system", "Be kind.", None),
            ("user", "u0", None),
            ("assistant", "b1", 1),
            ("user", "u2", None),
            ("assistant", "a3", 1),
        ]
    ]
    assert ex.source_keys == ["k0", "k1", "k2", "k3"]
    assert (ex.conversation_id, ex.channel_id, ex.customer_id) == ("c1", 1, 2)


def test_weight0_marks_agent_replies_as_context_only() -> None:
    spec = Examples(agent_turns="weight0")
    (ex,) = conversation_examples(_turns("u", "b", "u", "a"), spec, conversation_id="c")
    assert [m.weight for m in ex.messages if m.role == "assistant"] == [1, 0]
    # A conversation whose only reply is an agent's has nothing to train on.
    assert conversation_examples(_turns("u", "a"), spec, conversation_id="c") == []


def test_unit_turn_gives_one_example_per_reply_with_history() -> None:
    spec = Examples(unit="turn")
    exs = conversation_examples(_turns("u", "b", "u", "b"), spec, conversation_id="c")
    assert _shape(exs) == [
        [("user", "u0", None), ("assistant", "b1", 1)],
        [
            ("user", "u0", None),
            ("assistant", "b1", 0),
            ("user", "u2", None),
            ("assistant", "b3", 1),
        ],
    ]
    assert exs[1].source_keys == ["k0", "k1", "k2", "k3"]


def test_max_context_turns_cuts_history_to_start_with_the_user() -> None:
    turns = _turns("u", "b", "u", "b", "u", "b")
    three = conversation_examples(
        turns, Examples(unit="turn", max_context_turns=3), conversation_id="c"
    )
    assert [[m.content for m in ex.messages] for ex in three] == [
        ["u0", "b1"],
        ["u0", "b1", "u2", "b3"],
        ["u2", "b3", "u4", "b5"],
    ]
    # Two turns of history before b5 would be b3, u4: opening with the assistant, so b3 goes.
    two = conversation_examples(
        turns, Examples(unit="turn", max_context_turns=2), conversation_id="c"
    )
    assert [[m.content for m in ex.messages] for ex in two] == [
        ["u0", "b1"],
        ["u2", "b3"],
        ["u4", "b5"],
    ]


def test_targets_agent_makes_examples_only_for_agent_replies() -> None:
    spec = Examples(unit="turn", targets="agent")
    exs = conversation_examples(_turns("u", "b", "u", "a", "u", "b"), spec, conversation_id="c")
    assert len(exs) == 1
    assert [(m.content, m.weight) for m in exs[0].messages if m.role == "assistant"] == [
        ("b1", 0),
        ("a3", 1),
    ]


_SENDERS = st.sampled_from(
    [
        ("customer", "text"),
        ("bot", "text"),
        ("agent", "text"),
        ("sys", "event"),
        ("bot", "dialog"),
        ("customer", "button"),
        ("bot", "image"),
        ("bot", "iframe"),
    ]
)


@settings(max_examples=examples(200))
@given(
    rows=st.lists(st.tuples(_SENDERS, st.text(max_size=12)), max_size=14),
    spec=st.builds(
        Examples,
        unit=st.sampled_from(["conversation", "turn"]),
        agent_turns=st.sampled_from(["keep", "drop", "weight0"]),
        targets=st.sampled_from(["assistant", "bot"]),
        max_context_turns=st.integers(0, 4),
        system_prompt=st.sampled_from([None, "You help."]),
        media=st.sampled_from(["placeholder", "drop"]),
    ),
)
def test_every_example_passes_the_openai_checks(
    rows: list[tuple[tuple[str, str], str]], spec: Examples
) -> None:
    rendered = [
        r
        for i, ((sender, kind), text) in enumerate(rows)
        if (
            r := render_message(
                f"k{i}", sender, kind, text or None, "https://x/y.png", None, spec.media
            )
        )
    ]
    split = spec.agent_turns == "weight0" or spec.targets != "assistant"
    turns = trim_turns(merge_turns(rendered, spec.agent_turns, split_authors=split))
    examples = conversation_examples(turns, spec, conversation_id="c")
    for ex in examples:
        assert openai_problem(openai_record(ex, weighted=True)) is None
        assert set(ex.source_keys) <= {r.key for r in rendered}
    if split:
        # Authors never share a turn, and each reply is trained by its own author's rule.
        assert all(len({r.human for r in rendered if r.key in t.keys}) == 1 for t in turns)
        trained = [m for ex in examples for m in ex.messages if m.weight == 1]
        assert not any(m.human for m in trained)
        if spec.unit == "conversation":
            bot_turns = [t for t in turns if t.role == "assistant" and not t.human]
            assert len(trained) == len(bot_turns)


def test_a_hand_off_inside_one_turn_is_split_into_two_examples() -> None:
    said = [
        Rendered("user", False, "where is my order?", "u1"),
        Rendered("assistant", False, "One moment, transferring you.", "b1"),
        Rendered("assistant", True, "Hi, Ana here. It ships today.", "a1"),
        Rendered("user", False, "thanks", "u2"),
        Rendered("assistant", True, "Bye!", "a2"),
        Rendered("assistant", False, "How did we do?", "b2"),
    ]
    spec = Examples(agent_turns="weight0")
    turns = trim_turns(merge_turns(said, "weight0", split_authors=True))
    assert [(t.role, t.human) for t in turns] == [
        ("user", False),
        ("assistant", False),
        ("assistant", True),
        ("user", False),
        ("assistant", True),
        ("assistant", False),
    ]
    examples = conversation_examples(turns, spec, conversation_id="c")
    shown = [[(m.role[0], m.content, m.weight) for m in ex.messages] for ex in examples]
    assert shown == [
        [("u", "where is my order?", None), ("a", "One moment, transferring you.", 1)],
        # The agent's part trains nothing (weight0) and gives no example of its own; the
        # bot's rating question follows the conversation as context, without the agent's
        # "Bye!" it shared a turn with.
        [
            ("u", "where is my order?", None),
            ("a", "One moment, transferring you.\nHi, Ana here. It ships today.", 0),
            ("u", "thanks", None),
            ("a", "How did we do?", 1),
        ],
    ]
    # Merged as before when bot and agent replies are trained alike.
    assert len(merge_turns(said)) == 4


def test_content_is_read_wherever_landbot_put_it() -> None:
    """A dialog's options flat in _raw (Landbot's client library) or at the top level, a
    location's address in _raw, coordinates in data, a caption in _raw.extra."""
    flat = {"_raw": {"title": "Pick one", "buttons": ["A", "B"], "extra": None}, "data": {}}
    assert render_text("dialog", None, None, orjson.dumps(flat).decode()) == "Pick one\n- A\n- B"
    top = {"title": "Pick", "buttons": [{"title": "C"}], "_raw": {"extra": {"typing": "auto"}}}
    assert render_text("dialog", None, None, orjson.dumps(top).decode()) == "Pick\n- C"
    where = {"_raw": {"address": "Puerta del Sol"}, "data": {"latitude": 40.4, "longitude": -3.7}}
    assert render_text("location", None, None, orjson.dumps(where).decode()) == (
        "[location: Puerta del Sol]"
    )
    coords = {"data": {"latitude": 40.4, "longitude": "-3.7"}}
    assert render_text("location", None, None, orjson.dumps(coords).decode()) == (
        "[location: 40.4, -3.7]"
    )
    caption = {"_raw": {"extra": {"caption": "receipt"}}}
    assert render_text(
        "document", None, "https://d.example/r.pdf", orjson.dumps(caption).decode()
    ) == ("[document: https://d.example/r.pdf]\nreceipt")
    assert render_text("stripe", "Pay 12 EUR", None, None, media="drop") == "Pay 12 EUR"


# What a field may hold in real traffic or by mistake: text, numbers, booleans, lists of buttons
# (strings or objects), objects, nothing.
_WORDS = st.text("ab z", min_size=1, max_size=6)
_SCALARS = (
    st.none() | st.booleans() | st.integers(-(2**60), 2**60)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=4)
)  # fmt: skip
_PARTS = st.dictionaries(
    st.sampled_from(["title", "text", "label", "body", "image", "x"]), _WORDS | _SCALARS, max_size=3
)
_VALUES = st.one_of(_WORDS, _WORDS, _SCALARS, st.lists(_WORDS | _PARTS, max_size=3), _PARTS)
# Every field rendering reads, named here rather than taken from hooklake.fields, and others.
_KEYS = ["title", "buttons", "caption", "address", "latitude", "longitude", "body", "image",
         "footer", "url", "other"]  # fmt: skip
_PLACES = ["data", "_raw", "_raw.extra", "message"]


@settings(max_examples=examples(150), deadline=None)
@given(
    text=st.none() | st.just("") | _WORDS,
    url=st.none() | st.just("https://media.example/a.png"),
    fields=st.fixed_dictionaries(
        {k: st.tuples(st.sampled_from([*_PLACES, "nowhere"]), _VALUES) for k in _KEYS}
    ),
    # Places that are not objects, as broken or odd payloads have them.
    odd=st.sets(st.sampled_from(_PLACES[:3])),
)
def test_the_shown_part_of_a_message_renders_as_the_whole_message(
    text: str | None,
    url: str | None,
    fields: dict[str, tuple[str, Any]],
    odd: set[str],
) -> None:
    # Builds read stored messages cut by hooklake_shown (macros.sql) to what rendering reads;
    # wherever the content sits and whatever else a message holds, each renders as the whole.
    message: dict[str, Any] = {"customer": {"id": 7, "name": "Ana"}, "timestamp": 1.5}
    data: dict[str, Any] = {}
    raw: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    into = {"data": data, "_raw": raw, "_raw.extra": extra, "message": message, "nowhere": {}}
    for key, (place, value) in fields.items():
        into[place][key] = value
    message["data"] = "odd" if "data" in odd else data
    raw["extra"] = None if "_raw.extra" in odd else extra
    message["_raw"] = 3 if "_raw" in odd else raw
    whole = orjson.dumps(message).decode()
    con = connect()
    con.execute(view_sql("macros", **view_fields()))
    ((shown,),) = con.execute(
        "SELECT hooklake_shown(json_extract(?::VARCHAR, hooklake_shown_paths()))", [whole]
    ).fetchall()
    for kind in ("dialog", "card_template", "location", "image", "iframe", "mystery"):
        for media in ("placeholder", "drop"):
            seen = render_text(kind, text, url, shown, media)
            assert seen == render_text(kind, text, url, whole, media), (kind, media)
