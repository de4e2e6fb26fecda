"""Scripted messages into POST bodies, in the payload shapes Landbot traffic shows.

The current shape carries ``_raw.uuid``, ``author_type``, ``samurai`` and friends; the older
help-centre shape has no uuid, a ``readed_at`` time and a bare customer object. Within the
current shape, where type-specific content sits varies by conversation, in the proportions
below (``../shared/landbot/README.md``, "Second look at real material"):

- ``core`` (55%): as Landbot's own client library keeps it: an event's action and agent, a
  button's payload, a dialog's buttons and payloads, a location's address flat in ``_raw``
  (``data`` keeps the documented body, title, URL, caption, coordinates); ``_raw.extra`` is
  typing settings, ``{}`` or ``null``; ``samurai`` is a numeric string in some conversations;
- ``samples`` (30%): as the sample bodies, content in ``data`` and copied into ``_raw.extra``;
- ``flat`` (15%): as ``core``, but an event's action and agent at the message's top level.

One conversation in twenty sends its sender and channel ids as decimal strings. Key order
follows the samples. Customer, channel and sender objects are serialised once and spliced in,
which keeps generation fast.
"""

from __future__ import annotations

import random
from dataclasses import replace
from typing import Any

import orjson

from hooklake.simulate.customers import SYS_SENDER, Customer, compact_json
from hooklake.simulate.records import Delivery, Truth
from hooklake.simulate.script import Msg
from hooklake.simulate.world import Channel

_Fragment = orjson.Fragment
_dumps = orjson.dumps
_AUTHOR_TYPE = {"customer": "user", "bot": "bot", "agent": "agent", "sys": "sys"}
_VARIANT = "89ab"
_SHAPES, _SHAPE_WEIGHTS = ("core", "samples", "flat"), (55, 30, 15)
#: Content that Landbot's client library keeps flat in `_raw` rather than in `data`.
_FLAT_KEYS = ("action", "agent_id", "payload", "buttons", "payloads", "address")
_TYPING: tuple[dict[str, Any] | None, ...] = (
    {"typing": "auto"},
    {"typing": "custom", "typing_delay": 1.2},
    {},
    None,
)


def _placed(
    rng: random.Random, shape: str, m: Msg
) -> tuple[dict[str, Any], dict[str, Any] | None, dict[str, Any], dict[str, Any]]:
    """``data``, ``_raw.extra``, flat ``_raw`` keys and top-level keys of one message."""
    if shape == "samples" or m.type == "card_template":  # a card's data is documented
        return m.data, m.extra, {}, {}
    content = {**m.extra, **m.data}
    data = {k: v for k, v in m.data.items() if k not in _FLAT_KEYS}
    flat = {k: content[k] for k in (*_FLAT_KEYS, "url") if k in content}
    top: dict[str, Any] = {}
    if shape == "flat":
        top = {k: flat.pop(k) for k in ("action", "agent_id") if k in flat}
    extra = rng.choice(_TYPING) if m.sender_type == "bot" else rng.choice(({}, None))
    return data, extra, flat, top


class Encoder:
    """Turns one conversation's messages into :class:`Delivery` objects (retries included)."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self._channel_json: dict[int, orjson.Fragment] = {}
        self._author_json: dict[tuple[int, str], orjson.Fragment] = {}

    def _channel(self, ch: Channel) -> orjson.Fragment:
        cached = self._channel_json.get(ch.id)
        if cached is None:
            cached = _Fragment(compact_json({"id": ch.id, "name": ch.name, "type": ch.type}))
            self._channel_json[ch.id] = cached
        return cached

    def _author(self, author: Any, sender_type: str) -> orjson.Fragment:
        key = (author.id, sender_type)
        cached = self._author_json.get(key)
        if cached is None:
            obj = {"id": author.id, "name": author.name, "type": sender_type}
            cached = _Fragment(compact_json(obj))
            self._author_json[key] = cached
        return cached

    def _uuid(self) -> str:
        h = f"{self.rng.getrandbits(128):032x}"
        return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[int(h[16], 16) & 3]}{h[17:20]}-{h[20:]}"

    def conversation(
        self, cust: Customer, msgs: list[Msg], start: float, conversation: int
    ) -> tuple[list[Delivery], float]:
        """Deliveries of one conversation starting at epoch ``start``, and when it ends."""
        rng = self.rng
        ch = cust.channel
        legacy, whatsapp = ch.legacy, ch.whatsapp
        shape = "legacy" if legacy else rng.choices(_SHAPES, _SHAPE_WEIGHTS)[0]
        samurai_text = shape == "core" and rng.random() < 0.3
        text_ids = not legacy and rng.random() < 0.05
        channel_frag = self._channel(ch)
        customer_sender = cust.sender_json
        if text_ids:
            channel_frag = _Fragment(
                compact_json({"id": str(ch.id), "name": ch.name, "type": ch.type})
            )
            customer_sender = _Fragment(
                compact_json({"id": str(cust.id), "name": cust.name, "type": "customer"})
            )
        size = len(msgs)
        out: list[Delivery] = []
        for i, m in enumerate(msgs):
            real = start + m.t
            sender_type = m.sender_type
            ts: float | int
            if whatsapp and sender_type == "customer":
                ts = int(real)  # WhatsApp customer messages carry whole seconds
            elif legacy:
                ts = real
            else:
                ts = round(real, 6)
            # Messages sharing a timestamp carry increasing _raw.seq, the first one included.
            seq = i + 1 if m.same_ts or (i + 1 < size and msgs[i + 1].same_ts) else None
            if sender_type == "customer":
                sender = customer_sender
            elif sender_type == "sys":
                sender = SYS_SENDER
            elif text_ids and m.author is not None:
                obj = {"id": str(m.author.id), "name": m.author.name, "type": sender_type}
                sender = _Fragment(compact_json(obj))
            else:
                sender = self._author(m.author, sender_type)
            data: dict[str, Any] = m.data
            extra: dict[str, Any] | None = m.extra
            flat: dict[str, Any] = {}
            top: dict[str, Any] = {}
            if legacy:
                read = sender_type == "customer"
                raw: dict[str, Any] = {
                    "extra": extra,
                    "chat": cust.chat,
                    "type": m.type,
                    "channel": ch.id,
                    "timestamp": ts,
                    "read": read,
                    "readed_at": real + rng.uniform(0.001, 0.004) if read else None,
                    "message": m.message,
                }
                if m.type == "button":
                    raw["payload"] = m.data["payload"]
                key = None
            else:
                key = self._uuid()
                author = m.author
                data, extra, flat, top = _placed(rng, shape, m)
                raw = {
                    "uuid": key,
                    "extra": extra,
                    "chat": cust.chat,
                    "ui_key": None,
                    "type": m.type,
                    "channel": ch.id,
                    "timestamp": ts,
                    "author_type": _AUTHOR_TYPE[sender_type],
                    "author_uuid": author.uuid if author is not None else None,
                    "read": sender_type == "customer",
                    "seq": seq,
                    "message": m.message,
                    "rich_text": None,
                    **flat,
                }
                if sender_type != "customer":  # bot: -bot id; agent: agent id; sys: 0
                    samurai = 0 if author is None else author.id
                    samurai = -samurai if sender_type == "bot" else samurai
                    raw["samurai"] = str(samurai) if samurai_text else samurai
            body = _dumps(
                {
                    "messages": [
                        {
                            "_raw": raw,
                            "type": m.type,
                            "data": data,
                            "timestamp": ts,
                            "sender": sender,
                            "customer": m.customer_json,
                            "channel": channel_frag,
                            **top,
                        }
                    ]
                }
            )
            trace = f"{rng.getrandbits(128):032x}-{rng.getrandbits(64):016x}-0"
            truth = Truth(
                customer_id=cust.id,
                channel_id=ch.id,
                channel_type=ch.type,
                conversation=conversation,
                position=i + 1,
                size=size,
                sender_type=sender_type,
                type=m.type,
                ts=float(ts),
                seq=seq if not legacy else None,
                message_key=key,
                sentry_trace=trace,
                attempt=0,
                legacy=legacy,
                agent_id=m.agent_id,
                pii=m.pii,
                handover=m.handover,
                shape=shape,
                signals=m.signals,
            )
            at = real + m.latency
            out.append(Delivery(body, truth, at))
            backoff = 0.0
            for attempt in range(1, m.retries + 1):
                backoff += 5.0 * attempt  # Landbot's linear backoff: 5 s, then 10 s more, …
                out.append(Delivery(body, replace(truth, attempt=attempt), at + backoff))
        return out, start + msgs[-1].t
