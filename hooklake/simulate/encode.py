"""Scripted messages into POST bodies, in the two payload shapes Landbot has used.

The current shape (``payloads/*.json`` except the help-centre sample) carries ``_raw.uuid``,
``author_type``, ``samurai`` and friends; the older help-centre shape has no uuid, a
``readed_at`` time and a bare customer object. Key order follows the samples. Customer,
channel and sender objects are serialised once and spliced in, which keeps generation fast.
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
        channel_frag = self._channel(ch)
        customer_sender = cust.sender_json
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
            else:
                sender = self._author(m.author, sender_type)
            if legacy:
                read = sender_type == "customer"
                raw: dict[str, Any] = {
                    "extra": m.extra,
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
                raw = {
                    "uuid": key,
                    "extra": m.extra,
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
                }
                if sender_type == "bot":
                    raw["samurai"] = -author.id  # type: ignore[union-attr]
                elif sender_type == "agent":
                    raw["samurai"] = author.id  # type: ignore[union-attr]
                elif sender_type == "sys":
                    raw["samurai"] = 0
            body = _dumps(
                {
                    "messages": [
                        {
                            "_raw": raw,
                            "type": m.type,
                            "data": m.data,
                            "timestamp": ts,
                            "sender": sender,
                            "customer": m.customer_json,
                            "channel": channel_frag,
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
                signals=m.signals,
            )
            at = real + m.latency
            out.append(Delivery(body, truth, at))
            backoff = 0.0
            for attempt in range(1, m.retries + 1):
                backoff += 5.0 * attempt  # Landbot's linear backoff: 5 s, then 10 s more, …
                out.append(Delivery(body, replace(truth, attempt=attempt), at + backoff))
        return out, start + msgs[-1].t
