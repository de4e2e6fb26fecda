"""From stored message rows to the text a model trains on.

Three steps, each a small function so tests can pin them down one by one:

1. :func:`render_message` turns one message row into what a reader of the chat saw: a button
   click is the user's text, a dialog is its question followed by its options (a WhatsApp
   ``card_template`` likewise), media (images, iframes, video, audio, documents, locations,
   payments and unknown types) become ``[image: URL]``-style placeholders followed by their
   caption, or just the caption; events and system messages never appear.
2. :func:`merge_turns` joins consecutive messages of the same role into turns, as the lake's
   ``turns`` view does (customer -> user; bot and human agent -> assistant). When the recipe
   trains the bot's and the agents' replies differently, a bot message and an agent message
   never share a turn (``split_authors``).
3. :func:`conversation_examples` shapes turns into :class:`Example` records following the
   recipe: one per conversation or one per assistant turn with its history, optional system
   prompt, agent replies kept, dropped or given weight 0. Every example starts with a user
   turn, alternates strictly and ends with an assistant turn.

Mixed turns are split at the hand-off. Where the bot hands over to an agent (or an agent back
to the bot) without the customer writing in between, the two authors' replies are two
assistant turns in a row. A strictly alternating example cannot hold both with their own
weights, so the example is cut there: the first part ends one example, and the next example
repeats the conversation up to the customer's last message as context (weight 0) and goes on
with the second part. Each part is trained, or not, by its own author, exactly once.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal

import orjson

from hooklake.datasets.recipe import Examples
from hooklake.fields import lookup, place_object

Role = Literal["system", "user", "assistant"]

#: ``sender_type`` -> (role, written by a human agent). ``sys`` is not a turn.
SENDER_ROLES: dict[str, tuple[Role, bool]] = {
    "customer": ("user", False),
    "bot": ("assistant", False),
    "agent": ("assistant", True),
}
#: Types whose ``text`` is what the reader saw. Dialogs and cards add their options; every
#: other type (images, iframes, video, audio, documents, locations, payments, types nobody has
#: documented) is media, rendered by the recipe's ``media`` option.
TEXT_TYPES = frozenset({"text", "button"})
#: Types that carry no conversational text, whatever their ``text`` column holds.
SILENT_TYPES = frozenset({"event", "note", "notes", "typing", "read", "hidden", "sys"})


@dataclass(slots=True)
class Rendered:
    """One message as text, with who wrote it and the message key it came from; ``kind`` (the
    message type) and ``payload`` (a button's payload) are filled in by builds that read
    customers' signals (:mod:`.signals`)."""

    role: Role
    human: bool
    text: str
    key: str
    kind: str = ""
    payload: str | None = None


@dataclass(slots=True)
class Turn:
    """Consecutive messages of one role. ``human`` when a human agent wrote any of them."""

    role: Role
    human: bool
    text: str
    keys: list[str]


@dataclass(slots=True)
class Message:
    """One chat message of an example; ``weight`` is 0/1 on assistant messages only and
    ``human`` marks assistant messages a human agent wrote (for the card's agent share)."""

    role: Role
    content: str
    weight: int | None = None
    human: bool = False


@dataclass(slots=True)
class Example:
    """One training example: the record every format writer receives.

    For supervised formats ``messages`` is the whole example. For ``preference`` it is the
    prompt followed by the chosen reply and ``rejected`` holds the rejected one; for
    ``feedback`` it is the prompt followed by the completion and ``label`` says whether the
    completion was good. ``signal`` names the rule that made a preference or feedback example
    and ``sources`` splits ``source_keys`` by part (prompt, chosen, rejected, completion).
    """

    messages: list[Message]
    conversation_id: str
    channel_id: int | None
    customer_id: int | None
    source_keys: list[str] = field(default_factory=list)
    rejected: list[Message] | None = None
    label: bool | None = None
    signal: str | None = None
    sources: dict[str, list[str]] | None = None
    #: (why, text) of messages a preference rule passed over, for the dataset card.
    passed_over: list[tuple[str, str]] = field(default_factory=list)


def _option(button: Any) -> str | None:
    if isinstance(button, str):
        return button.strip() or None
    if isinstance(button, dict):
        for key in ("title", "text", "label", "body", "name"):
            value = button.get(key)
            if isinstance(value, str) and value.strip():
                return value.strip()
    return None


def _options(message: dict[str, Any]) -> list[str]:
    buttons = lookup(message, "buttons")
    if not isinstance(buttons, list):
        return []
    return [o for o in map(_option, buttons) if o]


def _message(message_json: str | bytes | memoryview | None) -> dict[str, Any]:
    if not message_json:
        return {}
    try:
        message = orjson.loads(message_json)
    except orjson.JSONDecodeError:
        return {}
    return message if isinstance(message, dict) else {}


@lru_cache(maxsize=4096)
def _dialog(question: str | None, buttons: tuple[str, ...]) -> str:
    # Cached: a bot asks the same few questions with the same buttons over and over.
    return _join([question, *(f"- {o}" for o in map(_option, buttons) if o)])


def _placeholder(kind: str, detail: str | None) -> str:
    return f"[{kind}: {detail}]" if detail else f"[{kind}]"


def _join(parts: Iterable[str | None]) -> str:
    return "\n".join(p.strip() for p in parts if p and p.strip())


def _str(value: Any) -> str | None:
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None


def _where(message: dict[str, Any], text: str | None) -> str | None:
    """A location's address, else its coordinates, else what its text says."""
    address = _str(lookup(message, "address"))
    if address:
        return address
    lat, lon = _str(lookup(message, "latitude")), _str(lookup(message, "longitude"))
    if lat and lon:
        return f"{lat}, {lon}"
    return text


def render_text(
    msg_type: str | None,
    text: str | None,
    url: str | None,
    message_json: str | bytes | memoryview | None,
    media: str = "placeholder",
) -> str:
    """The text a reader saw for one message ("" when it shows nothing).

    ``message_json`` is the stored message as received (the lake's ``raw``, as text or UTF-8
    bytes); it is parsed, when what it holds is shown, for the content that has no column of
    its own, wherever Landbot put it (:data:`hooklake.fields.FIELDS`): a dialog's options, a
    card's parts, a caption, a location's address. Text and buttons render from ``text``
    alone.

    Media are every type but text, button, dialog, card_template and the silent ones,
    unknown types included: with ``media="placeholder"`` a ``[type: URL]`` placeholder (a
    location's carries its address or coordinates) followed by the caption; with ``"drop"``
    only the caption.
    """
    kind = (msg_type or "").lower()
    if kind in SILENT_TYPES:
        return ""
    if kind in TEXT_TYPES:
        return (text or "").strip()
    keep_media = media == "placeholder"
    if kind == "dialog":
        message = _message(message_json)
        question = text or _str(lookup(message, "title"))
        buttons = lookup(message, "buttons")
        if isinstance(buttons, list) and all(type(b) is str for b in buttons):
            return _dialog(question, tuple(buttons))
        return _join([question, *(f"- {o}" for o in _options(message))])
    if kind == "card_template":
        message = _message(message_json)
        data = place_object(message, "data") or {}
        title, body = _str(lookup(message, "title")), text or _str(data.get("body"))
        image = _str(data.get("image"))
        return _join(
            [
                _placeholder("image", image) if image and keep_media else None,
                title if title and title != body else None,
                body,
                *(f"- {o}" for o in _options(message)),
                _str(data.get("footer")),
            ]
        )
    # The stored message is parsed only when what it holds is shown.
    if kind == "location":
        if not keep_media:
            return ""
        return _placeholder("location", _where(_message(message_json), text))
    # The caption is what was said; the placeholder shows that something was shown.
    caption = text or _str(lookup(_message(message_json), "caption"))
    return _join([_placeholder(kind or "media", url) if keep_media else None, caption])


def render_message(
    key: str,
    sender_type: str | None,
    msg_type: str | None,
    text: str | None,
    url: str | None,
    message_json: str | None,
    media: str = "placeholder",
) -> Rendered | None:
    """One message row as a :class:`Rendered`, or ``None`` when it is no part of the dialogue
    (system events, unknown senders, nothing to show)."""
    role = SENDER_ROLES.get(sender_type or "")
    if role is None:
        return None
    shown = render_text(msg_type, text, url, message_json, media)
    if not shown:
        return None
    return Rendered(role[0], role[1], shown, key)


def without_agent_exchanges(messages: Sequence[Rendered]) -> list[Rendered]:
    """The messages without a human agent's replies and without the customer messages those
    replies answered (the customer run right before each agent run), so what remains is the
    dialogue with the bot and no customer turn is glued to words meant for someone else."""
    runs: list[list[Rendered]] = []
    for m in messages:
        if runs and (runs[-1][0].role, runs[-1][0].human) == (m.role, m.human):
            runs[-1].append(m)
        else:
            runs.append([m])
    kept: list[Rendered] = []
    for i, run in enumerate(runs):
        answered = i + 1 < len(runs) and runs[i + 1][0].human
        if not run[0].human and not (run[0].role == "user" and answered):
            kept.extend(run)
    return kept


def merge_turns(
    messages: Sequence[Rendered], agent_turns: str = "keep", *, split_authors: bool = False
) -> list[Turn]:
    """Join consecutive same-role messages into turns. With ``agent_turns="drop"`` the agent's
    exchanges go first (see :func:`without_agent_exchanges`) and the turns around them join.
    With ``split_authors`` a bot message and an agent message never share a turn, so two
    assistant turns can follow each other (see :func:`conversation_examples`)."""
    if agent_turns == "drop":
        messages = without_agent_exchanges(messages)
    turns: list[Turn] = []
    for m in messages:
        if not m.text:
            continue
        if (
            turns
            and turns[-1].role == m.role
            and not (split_authors and m.role == "assistant" and turns[-1].human != m.human)
        ):
            last = turns[-1]
            last.text = f"{last.text}\n{m.text}"
            last.human = last.human or m.human
            last.keys.append(m.key)
        else:
            turns.append(Turn(m.role, m.human, m.text, [m.key]))
    return turns


def trim_turns(turns: Sequence[Turn]) -> list[Turn]:
    """Drop assistant turns before the first user turn and user turns after the last assistant
    turn: an example must open with the user and end with the assistant."""
    start = next((i for i, t in enumerate(turns) if t.role == "user"), len(turns))
    end = len(turns)
    while end > start and turns[end - 1].role != "assistant":
        end -= 1
    return list(turns[start:end])


def _is_target(turn: Turn, spec: Examples) -> bool:
    if turn.role != "assistant":
        return False
    if turn.human and spec.agent_turns == "weight0":
        return False
    if spec.targets == "bot":
        return not turn.human
    if spec.targets == "agent":
        return turn.human
    return True


def _messages(
    context: Sequence[Turn], turns: Sequence[Turn], spec: Examples, target: int | None
) -> list[Message]:
    """Chat messages for ``context`` (never trained) then ``turns``; ``target`` is the only
    trained turn of ``turns`` (unit=turn), else the recipe decides per turn."""
    out: list[Message] = []
    if spec.system_prompt:
        out.append(Message("system", spec.system_prompt))
    for t in context:
        out.append(Message(t.role, t.text, 0 if t.role == "assistant" else None, t.human))
    for i, t in enumerate(turns):
        if t.role == "user":
            out.append(Message("user", t.text))
        else:
            trained = i == target if target is not None else _is_target(t, spec)
            out.append(Message("assistant", t.text, 1 if trained else 0, t.human))
    return out


def joined(turns: Sequence[Turn]) -> list[Turn]:
    """``turns`` with consecutive turns of one role joined (for history that is not trained,
    where who wrote which part no longer matters)."""
    out: list[Turn] = []
    for t in turns:
        if out and out[-1].role == t.role:
            last = out[-1]
            out[-1] = Turn(
                t.role, last.human or t.human, f"{last.text}\n{t.text}", [*last.keys, *t.keys]
            )
        else:
            out.append(Turn(t.role, t.human, t.text, list(t.keys)))
    return out


def _last_user(turns: Sequence[Turn], before: int) -> int:
    """Index of the last user turn before ``before`` (-1 when there is none)."""
    return next((i for i in range(before - 1, -1, -1) if turns[i].role == "user"), -1)


def conversation_examples(
    turns: Sequence[Turn],
    spec: Examples,
    *,
    conversation_id: str,
    channel_id: int | None = None,
    customer_id: int | None = None,
) -> list[Example]:
    """Training examples of one conversation's (already trimmed) turns.

    ``unit="conversation"`` gives one example unless no assistant turn is a target;
    ``unit="turn"`` gives one per target assistant turn, with at most ``max_context_turns``
    turns of history (0 = all) that begin with a user turn. Where two assistant turns meet (a
    hand-off inside one turn, see the module notes), the conversation unit gives one example
    per part and the turn unit leaves the other author's part out of the history.
    """
    if not turns:
        return []

    def example(context: Sequence[Turn], ts: Sequence[Turn], target: int | None) -> Example:
        keys = [k for t in (*context, *ts) for k in t.keys]
        return Example(
            _messages(context, ts, spec, target), conversation_id, channel_id, customer_id, keys
        )

    if spec.unit == "conversation":
        cuts = [
            i
            for i in range(1, len(turns))
            if turns[i].role == "assistant" and turns[i - 1].role == "assistant"
        ]
        out: list[Example] = []
        start = 0
        for end in [*cuts, len(turns)]:
            piece = turns[start:end]
            if any(_is_target(t, spec) for t in piece):
                context = joined(turns[: _last_user(turns, start) + 1]) if start else []
                out.append(example(context, piece, None))
            start = end
        return out
    out = []
    for i, turn in enumerate(turns):
        if not _is_target(turn, spec):
            continue
        start = max(0, i - spec.max_context_turns) if spec.max_context_turns else 0
        while start < i and turns[start].role != "user":
            start += 1
        last_user = _last_user(turns, i)
        if start == i or last_user < start:
            continue
        history = joined(turns[start : last_user + 1])
        out.append(example([], [*history, turn], len(history)))
    return out
