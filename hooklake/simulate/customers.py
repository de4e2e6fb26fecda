"""Simulated customers: who they are, which channel they use, what personal data they have.

Customer ``i`` gets one guaranteed trait, ``FEATURES[i % len(FEATURES)]``, which constrains
its channel (e.g. ``legacy`` means the help-centre bot) and shows in one of its conversations.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

import orjson

from hooklake.simulate import texts
from hooklake.simulate.texts import Phone
from hooklake.simulate.world import Channel

#: Traits one customer in every ``len(FEATURES)`` is guaranteed to show, by index, so that any
#: simulation of at least that many customers contains every case the lake must handle.
FEATURES = (
    "handover", "return", "whatsapp", "legacy", "burst", "pii", "retry", "midnight",
    "unknown", "media",
)  # fmt: skip


def compact_json(obj: Any) -> bytes:
    """JSON bytes to keep around: orjson over-allocates its result, a copy does not."""
    return bytes(bytearray(orjson.dumps(obj)))


SYS_SENDER = orjson.Fragment(compact_json({"id": 0, "name": "Landbot", "type": "sys"}))


@dataclass(slots=True)
class Customer:
    """One end user of one channel, with the personal data they may type."""

    index: int
    id: int
    chat: int
    channel: Channel
    name: str
    first: str
    country: str
    phone: Phone
    email: str
    fields: dict[str, Any]
    visits: int
    feature: str
    visits_done: int = 0
    sender_json: orjson.Fragment | None = None
    _customer_json: dict[int | None, orjson.Fragment] = field(default_factory=dict)

    def customer_json(self, agent_id: int | None) -> orjson.Fragment:
        """The ``customer`` object as sent while ``agent_id`` is assigned (cached)."""
        cached = self._customer_json.get(agent_id)
        if cached is None:
            cached = orjson.Fragment(compact_json(self._customer_object(agent_id)))
            self._customer_json[agent_id] = cached
        return cached

    def _customer_object(self, agent_id: int | None) -> dict[str, Any]:
        ch = self.channel
        obj: dict[str, Any]
        if ch.legacy:
            obj = {"country": self.country, "url": ch.url, "id": self.id}
        elif ch.whatsapp:
            obj = {"agent_id": agent_id, "name": self.name, "phone": self.phone.digits}
            obj.update(id=self.id, archived=False)
        else:
            obj = {"agent_id": agent_id, "name": self.name, "country": self.country, "url": ch.url}
            obj.update(id=self.id, archived=False, is_external="False", webchat_type="Native")
        obj.update(self.fields)
        return obj


def _pick_channel(rng: random.Random, feature: str, channels: tuple[Channel, ...]) -> Channel:
    allowed = [
        ch
        for ch in channels
        if (feature != "whatsapp" or ch.whatsapp)
        and (feature != "legacy" or ch.legacy)
        and (feature not in ("handover", "burst", "unknown") or not ch.legacy)
        and (feature != "media" or (not ch.legacy and not ch.whatsapp))
    ]
    return rng.choices(allowed, weights=[ch.weight for ch in allowed])[0]


def _custom_fields(rng: random.Random, ch: Channel, email: str) -> dict[str, Any]:
    # Landbot mangles custom field types: lists arrive as Python-repr strings, numbers as ints.
    out: dict[str, Any] = {}
    for name in ch.fields:
        if rng.random() < 0.4:
            continue
        if name == "email":
            out[name] = email
        elif name in ("interests", "tags", "allergies"):
            pool = {
                "interests": ("shoes", "bags", "outdoor", "sale", "kids", "tech"),
                "tags": ("vip", "beta", "churn-risk", "enterprise"),
                "allergies": ("gluten", "nuts", "lactose", "shellfish"),
            }[name]
            out[name] = repr(rng.sample(pool, rng.randrange(0 if name == "allergies" else 1, 3)))
        elif name == "newsletter":
            out[name] = rng.choice(("True", "False"))
        elif name == "loyalty_points":
            out[name] = rng.randrange(0, 5000)
        elif name == "party_size":
            out[name] = str(rng.randrange(1, 9))
        elif name == "lang":
            out[name] = rng.choice(("en", "es", "de", "fr"))
        elif name == "patient_id":
            out[name] = f"P-{rng.randrange(1, 99999):06d}"
        elif name == "preferred_doctor":
            out[name] = rng.choice(texts.DOCTORS)
        elif name == "plan":
            out[name] = rng.choice(("free", "pro", "business"))
    return out


def new_customer(rng: random.Random, index: int, channels: tuple[Channel, ...]) -> Customer:
    """The ``index``-th customer to arrive. Ids grow with the index, so they never collide."""
    feature = FEATURES[index % len(FEATURES)]
    ch = _pick_channel(rng, feature, channels)
    first, last = rng.choice(texts.FIRST_NAMES), rng.choice(texts.LAST_NAMES)
    cid = 470_000_000 + index * 11 + rng.randrange(11)
    if ch.whatsapp:
        name = f"{first} {last}" if rng.random() < 0.8 else first
    else:
        r = rng.random()  # anonymous visitors; empty names occur in real captures too
        name = f"Visitor #{cid}" if r < 0.75 else "" if r < 0.85 else f"{first} {last}"
    address = texts.email(rng, first, last)
    visits = rng.choices((1, 2, 3, 4), weights=(72, 20, 6, 2))[0]
    if feature in ("return", "midnight"):
        visits = max(visits, 2)
    cust = Customer(
        index=index,
        id=cid,
        chat=cid + 168_000 + rng.randrange(1000),
        channel=ch,
        name=name,
        first=first,
        country=rng.choice(texts.COUNTRIES),
        phone=texts.phone(rng),
        email=address,
        fields=_custom_fields(rng, ch, address),
        visits=visits,
        feature=feature,
    )
    cust.sender_json = orjson.Fragment(compact_json({"id": cid, "name": name, "type": "customer"}))
    return cust
