"""What happens in one conversation of a simulated customer.

A conversation is scripted on a relative clock (seconds from its first message) before it is
placed in time, so that a conversation meant to cross midnight can be shifted onto it. Every
gap inside a script is shorter than :data:`MAX_GAP`; the gap between a customer's
conversations is chosen by :mod:`hooklake.simulate.stream` and is at least 2 hours.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from hooklake.simulate import signals, texts
from hooklake.simulate.customers import Customer
from hooklake.simulate.texts import TOPICS
from hooklake.simulate.world import AGENTS, Agent, Bot

#: Longest silence inside a conversation (seconds); well under the default 30-minute split.
MAX_GAP = 25 * 60.0


@dataclass(slots=True)
class Msg:
    """One scripted message, before it has an absolute timestamp, an id and a body."""

    t: float  # seconds since the conversation's first message
    same_ts: bool  # shares its timestamp with the previous message (a burst with seq)
    sender_type: str  # customer | bot | agent | sys
    type: str
    data: dict[str, Any]
    message: str  # _raw.message
    extra: dict[str, Any]
    author: Bot | Agent | None
    agent_id: int | None
    customer_json: orjson.Fragment
    pii: tuple[tuple[str, str], ...] = ()
    latency: float = 0.0
    retries: int = 0
    #: The earliest message showing that a human agent took the conversation over.
    handover: bool = False
    signals: tuple[str, ...] = ()  # truth about customer signals (see simulate.signals)


# Template slots, drawn the first time a conversation's text uses them and then kept, so the
# story stays consistent (one order number per conversation) and unused slots cost nothing.
_SLOTS: dict[str, Callable[[random.Random], str]] = {
    "order": lambda r: f"AC{r.randrange(100000, 999999)}",
    "product": lambda r: r.choice(texts.PRODUCTS),
    "n": lambda r: str(r.randrange(2, 12)),
    "day": lambda r: r.choice(texts.DAYS),
    "date": lambda r: f"{r.randrange(1, 29)} {r.choice(texts.MONTHS)}",
    "carrier": lambda r: r.choice(texts.CARRIERS),
    "status": lambda r: r.choice(texts.STATUSES),
    "amount": lambda r: f"{r.choice('€$£')}{r.randrange(5, 400)}.{r.randrange(0, 100):02d}",
    "party": lambda r: str(r.randrange(2, 11)),
    "time": lambda r: r.choice(texts.TIMES),
    "doctor": lambda r: r.choice(texts.DOCTORS),
    "dob": lambda r: f"{r.randrange(1, 29):02d}/{r.randrange(1, 13):02d}/{r.randrange(1950, 2006)}",
    "ticket": lambda r: str(r.randrange(10000, 99999)),
}


_IMAGES = (
    ("store-map", "Here is our store map"),
    ("return-steps", "How returns work"),
    ("size-guide", "Size guide"),
    ("menu", ""),
    ("how-to-reset", "How to reset your password"),
    ("opening-hours", "Our opening hours"),
)


_ADDRESSES = (
    "Puerta del Sol, Madrid",
    "Plaça de Catalunya, Barcelona",
    "Gran Vía 28, Madrid",
    "Rua Augusta 100, Lisboa",
    "",  # coordinates only
)


class _Context(dict[str, str]):
    def __init__(self, rng: random.Random, cust: Customer) -> None:
        super().__init__(
            brand=cust.channel.brand,
            first=cust.first,
            cname=cust.first if cust.name and not cust.name.startswith("Visitor") else "there",
            email=cust.email,
        )
        self.rng = rng

    def __missing__(self, key: str) -> str:
        value = self[key] = _SLOTS[key](self.rng)
        return value


class Script:
    """Writes one conversation of ``cust``: greeting, menu, topic, maybe a handover, goodbye.

    ``forced`` makes this conversation show the customer's guaranteed feature.
    """

    def __init__(self, rng: random.Random, cust: Customer, forced: bool) -> None:
        self.rng = rng
        self.cust = cust
        self.ch = cust.channel
        self.feature = cust.feature if forced else ""
        self.msgs: list[Msg] = []
        self.t = 0.0
        self.agent_id: int | None = None
        self.bot = self.ch.bot
        self.ctx = _Context(rng, cust)
        self.pending_pii = ["email", "phone_intl", "phone_local", "card", "iban"]
        if self.feature != "pii":
            self.pending_pii = []
        self._pii: tuple[str, str] | None = None
        self.planted = signals.Planted()

    # -- timing ---------------------------------------------------------------------------

    def _customer_gap(self) -> float:
        rng = self.rng
        if rng.random() < 0.03:
            return rng.uniform(300.0, MAX_GAP - 60.0)  # went to look for the order number
        return min(max(rng.lognormvariate(2.6, 0.9), 2.5), 600.0)

    # -- adding messages ------------------------------------------------------------------

    def _add(
        self,
        sender_type: str,
        type_: str,
        data: dict[str, Any],
        message: str,
        extra: dict[str, Any],
        author: Bot | Agent | None,
        pii: tuple[tuple[str, str], ...] = (),
        same_ts: bool = False,
    ) -> Msg:
        rng = self.rng
        msg = Msg(
            t=self.t,
            same_ts=same_ts,
            sender_type=sender_type,
            type=type_,
            data=data,
            message=message,
            extra=extra,
            author=author,
            agent_id=self.agent_id,
            customer_json=self.cust.customer_json(self.agent_id),
            pii=pii,
            latency=rng.uniform(0.008, 0.06),
        )
        if rng.random() < 0.012:
            msg.retries = 1 if rng.random() < 0.8 else 2
        self.msgs.append(msg)
        return msg

    def bot_burst(self, parts: list[tuple[str, dict[str, Any], str, dict[str, Any]]]) -> None:
        """Several bot bubbles within tens of milliseconds; sometimes with one timestamp."""
        rng = self.rng
        self.t += rng.uniform(0.4, 1.6) if self.msgs else 0.0
        if len(self.msgs) == 1 and self.msgs[0].sender_type == "sys":
            self.t = self.msgs[0].t + rng.uniform(0.3, 1.5)
        same = (
            not self.ch.legacy
            and len(parts) > 1
            and (self.feature == "burst" or rng.random() < 0.1)
        )
        first = len(self.msgs)
        for i, (type_, data, message, extra) in enumerate(parts):
            if i and not same:
                self.t += rng.uniform(0.006, 0.035)
            self._add("bot", type_, data, message, extra, self.bot, same_ts=same and i > 0)
        if self.feature == "burst" and same:
            # Deliver the burst in reverse so out-of-order arrival is certain here.
            burst = self.msgs[first:]
            for k, msg in enumerate(burst):
                msg.latency = 0.02 + 0.015 * (len(burst) - k)
            self.feature = ""

    def bot_text(self, template: str) -> tuple[str, dict[str, Any], str, dict[str, Any]]:
        body = template.format_map(self.ctx)
        return ("text", {"body": body}, body, {})

    def bot_menu(
        self, title: str, options: list[str]
    ) -> tuple[str, dict[str, Any], str, dict[str, Any]]:
        payloads = [f"${i}" for i in range(len(options))]
        use_card = self.ch.whatsapp and (self.feature == "whatsapp" or self.rng.random() < 0.3)
        if use_card:
            data: dict[str, Any] = {
                "title": self.ch.brand,
                "body": title,
                "footer": "Reply with a button",
                "image": None,
                "buttons": [
                    {"title": o, "payload": p} for o, p in zip(options, payloads, strict=True)
                ],
            }
            return ("card_template", data, title, {})
        data = {"title": title, "buttons": options, "payloads": payloads}
        return ("dialog", data, title, {"buttons": options, "payloads": payloads})

    def bot_media(self, kind: str) -> tuple[str, dict[str, Any], str, dict[str, Any]]:
        rng = self.rng
        if kind == "iframe":
            url = rng.choice(
                (
                    "https://www.youtube.com/embed/dQw4w9WgXcQ",
                    f"https://track.acme.example/{self.ctx['order']}",
                    "https://calendly.com/acme-support/15min",
                )
            )
            return ("iframe", {"url": url}, "", {"url": url})
        name, caption = rng.choice(_IMAGES)
        url = f"https://storage.googleapis.com/media.landbot.io/{self.ch.id}/channels/{name}.png"
        return ("image", {"url": url, "caption": caption}, caption, {"url": url})

    def customer(self, type_: str, body: str, gap: bool = True, **data: Any) -> Msg:
        # At least 2.5 s after anything else, so a WhatsApp whole-second timestamp still sorts
        # after the message before it (a customer who opens the chat writes 1-2 s after the
        # session's sys opening, still in a later whole second).
        if not gap and self.msgs:
            self.t = math.floor(self.t) + 1.0 + self.rng.uniform(0.05, 0.9)
        elif self.msgs:
            self.t += self._customer_gap()
        extra: dict[str, Any] = {}
        if type_ == "button":
            extra = {"payload": data["payload"]}
            payload_data: dict[str, Any] = {"body": body, "payload": data["payload"]}
        elif type_ == "text":
            payload_data = {"body": body}
        else:
            payload_data = {k: v for k, v in data.items() if v is not None}
            if "url" in data:
                extra = {"url": data["url"]}
        pii = self._find_pii(body) if type_ == "text" else ()
        message = data.get("caption", body)
        return self._add("customer", type_, payload_data, message, extra, None, pii=pii)

    def customer_says(self, template: str) -> Msg:
        text = template.format_map(self.ctx)
        return self.customer("text", self._with_pii(text))

    def _with_pii(self, text: str) -> str:
        rng = self.rng
        kind = self.pending_pii.pop(0) if self.pending_pii else ""
        if not kind and rng.random() < 0.1:
            kind = rng.choice(("email", "email", "phone_intl", "phone_local", "card", "iban"))
        if not kind:
            return text
        value = {
            "email": lambda: self.cust.email,
            "phone_intl": lambda: self.cust.phone.international,
            "phone_local": lambda: self.cust.phone.local,
            "card": lambda: texts.card_number(rng),
            "iban": lambda: texts.iban(rng),
        }[kind]()
        sentence = rng.choice(texts.PII_SENTENCES[kind.split("_")[0]]).format(value=value)
        self._pii = (kind.split("_")[0], value)
        if not text:
            return sentence[0].upper() + sentence[1:]
        return f"{text} {sentence}" if text[-1] in ".!?,🙏" else f"{text}. {sentence}"

    def _find_pii(self, text: str) -> tuple[tuple[str, str], ...]:
        found: list[tuple[str, str]] = []
        if self._pii is not None:
            found.append(self._pii)
            self._pii = None
        p = self.cust.phone
        for kind, value in (
            ("email", self.cust.email),
            ("phone", p.international),
            ("phone", p.local),
        ):
            if value in text and (kind, value) not in found:
                found.append((kind, value))
        return tuple(found)

    def agent_says(self, text: str, gap: tuple[float, float]) -> Msg:
        self.t += self.rng.uniform(*gap)
        agent = _agent(self.agent_id)
        return self._add("agent", "text", {"body": text}, text, {}, agent)

    def sys_event(self, action: str) -> Msg:
        """An assign or unassign event. An assign names the agent already in ``agent_id``
        when one was chosen before (the customer's messages can show it first)."""
        self.t += self.rng.uniform(1.0, 60.0)
        agent_id = self.agent_id
        if action == "assign":
            agent_id = self.agent_id or self.rng.choice(AGENTS).id
            self.agent_id = agent_id  # the event itself already shows the new state
            body = "Conversation assigned to agent"
        else:
            self.agent_id = None
            body = "Conversation unassigned"
        data = {"action": action, "body": body}
        return self._add("sys", "event", data, body, {"action": action, "agent_id": agent_id}, None)

    def sys_opening(self) -> None:
        """What opens most real sessions: a sys delivery of undocumented type and data."""
        rng = self.rng
        type_, data = rng.choice(
            (
                ("event", {}),
                ("event", {"body": "Conversation started"}),
                ("sys", {"status": "open"}),
                ("text", {"body": "Session started"}),
            )
        )
        self._add("sys", type_, data, data.get("body", ""), {}, None)

    # -- the flow ---------------------------------------------------------------------------

    def run(self) -> list[Msg]:
        """Script the conversation; the first message is at ``t == 0``."""
        if self.rng.random() < 0.875:  # 7 of 8 real sessions open with a sys delivery
            self.sys_opening()
            self.t += self.rng.uniform(0.3, 1.5)
        self._flow()
        while self.pending_pii:
            sentence = self._with_pii("")
            self.customer("text", "Oh, and " + sentence[0].lower() + sentence[1:])
            self.bot_burst([self.bot_text("Thanks, I've noted that.")])
        if self.feature == "retry":
            self.msgs[0].retries = max(self.msgs[0].retries, 1)
        return self.msgs

    def _flow(self) -> None:
        rng, ch = self.rng, self.ch
        if ch.whatsapp or rng.random() < 0.08:
            # WhatsApp users write first; on the Web the widget greets them on open.
            self.customer("text", rng.choice(texts.CUSTOMER_OPENERS), gap=False)
        parts = [self.bot_text(rng.choice(texts.GREETINGS))]
        if rng.random() < 0.4:
            parts.append(self.bot_text(rng.choice(texts.INTROS)))
        media = self.feature == "media" or rng.random() < 0.08
        if media:
            parts.append(self.bot_media("image"))
        if self.feature == "media" or (not ch.whatsapp and rng.random() < 0.05):
            parts.append(self.bot_media("iframe"))
        options = [TOPICS[name].label for name in ch.topics]
        if ch.handover:
            options.append(texts.HUMAN_LABEL)
        parts.append(self.bot_menu(rng.choice(texts.MENU_TITLES), options))
        self.bot_burst(parts)

        if self.feature == "unknown":
            self._unknown()
        r = rng.random()
        if r < 0.05 and not self.feature:
            return  # opened the chat and left
        topic_name = rng.choice(ch.topics)
        if r < 0.25 and self.feature != "handover":
            self.customer_says(
                texts.HELLOS[rng.randrange(len(texts.HELLOS))]
                + rng.choice(TOPICS[topic_name].problem)
                + rng.choice(texts.TAILS)
            )
            if signals.misunderstood(self, topic_name):
                return
            self.bot_burst([self.bot_text(rng.choice(texts.FREE_TEXT_ACKS))])
        elif ch.handover and (self.feature == "handover" or r > 0.95):
            self._click(options, texts.HUMAN_LABEL)
            self._handover(topic_name)
            return
        else:
            self._click(options, TOPICS[topic_name].label)
        self._topic(topic_name)

    def _click(self, options: list[str], label: str) -> None:
        i = options.index(label)
        self.customer("button", label, payload=f"${i}")

    def _unknown(self) -> None:
        """The customer sends something that is not text: a location, a voice note, a video,
        a document or a sticker (WhatsApp), a document or file (Web)."""
        rng = self.rng
        if self.ch.whatsapp:
            kind = rng.choice(("location", "audio", "video", "document", "sticker"))
        else:
            kind = rng.choice(("document", "file", "location"))
        media = f"https://storage.googleapis.com/media.landbot.io/{self.ch.id}/customers/"
        media += f"{rng.getrandbits(64):016x}"
        if kind == "location":
            lat, lon = round(rng.uniform(36.0, 43.5), 6), round(rng.uniform(-9.0, 3.0), 6)
            address = rng.choice(_ADDRESSES)
            self.customer("location", "", latitude=lat, longitude=lon, address=address or None)
        elif kind == "audio":
            self.customer(
                "audio",
                "",
                url=media + ".ogg",
                mime_type="audio/ogg",
                duration=rng.randrange(2, 60),
            )
        elif kind == "video":  # GIFs arrive as video too
            self.customer("video", "", url=media + ".mp4", caption=rng.choice(("", "look")))
        elif kind == "sticker":
            self.customer("sticker", "", url=media + ".webp")
        else:
            name = rng.choice(("invoice.pdf", "receipt.pdf", "photo-of-label.pdf"))
            self.customer(kind, "", url=media + ".pdf", caption=name)
        self.bot_burst([self.bot_text(rng.choice(texts.UNKNOWN_REPLY))])
        signals.mark(self.msgs[-1], "bad")  # a fallback reply
        if self.feature == "unknown":
            self.feature = ""

    def _payment(self) -> None:
        """The bot asks for a payment (Stripe) and the customer pays."""
        rng = self.rng
        amount = rng.randrange(500, 20000)
        session = f"cs_live_{rng.getrandbits(96):024x}"
        data = {
            "url": f"https://checkout.stripe.com/c/pay/{session}",
            "amount": amount,
            "currency": "eur",
            "description": f"Order {self.ctx['order']}",
        }
        label = f"Pay {amount / 100:.2f} EUR"
        self.bot_burst([("stripe", data, label, {})])
        self.customer("stripe_intent", "", status="succeeded", amount=amount, currency="eur")

    def _topic(self, name: str) -> None:
        rng, topic = self.rng, TOPICS[name]
        if name in self.ch.jumps:
            self.bot = self.ch.jumps[name]  # "Jump to" another bot: new sender and samurai
        self.bot_burst([self.bot_text(rng.choice(topic.ask))])
        if rng.random() < 0.05 and not self.feature:
            return  # never answered
        if topic.photo and rng.random() < 0.5:
            self._photo()
        else:
            self.customer_says(rng.choice(topic.answer))
        if not self.ch.legacy and rng.random() < 0.03:
            self._unknown()
        if not self.ch.legacy and rng.random() < 0.02:
            self._payment()
        parts = [self.bot_text(rng.choice(topic.resolve))]
        if rng.random() < 0.1 or self.feature == "media":
            parts.append(self.bot_media("image"))
        self.bot_burst(parts)
        resolve = self.msgs[-len(parts)]
        options = list(texts.SATISFACTION_OPTIONS)
        if not self.ch.handover:
            options.pop()
        self.bot_burst([self.bot_menu(rng.choice(texts.SATISFACTION), options)])
        r = rng.random()
        if self.feature == "handover" or (self.ch.handover and r > 0.9):
            self._click(options, texts.HUMAN_LABEL)
            signals.escalated(self, resolve)
            self._handover(name)
        elif r < 0.62 or self.feature:
            self._click(options, options[0])
            signals.mark(resolve, "good")
            self.bot_burst([self.bot_text(rng.choice(texts.CLOSINGS))])
            if rng.random() < 0.25:
                self.customer_says(rng.choice(texts.THANKS))
                self.bot_burst([self.bot_text("You're welcome! 😊")])
        elif r < 0.8:
            self._click(options, "No")
            signals.mark(resolve, "bad")
            self.bot_burst([self.bot_text(rng.choice(texts.SORRY))])
            self.customer_says(rng.choice(texts.UNHAPPY))
            if self.ch.handover and rng.random() < 0.6:
                signals.escalated(self, resolve)
                self._handover(name)
            else:
                self.bot_burst([self.bot_text(rng.choice(texts.FOLLOW_UP))])
        # else: left without answering the satisfaction question

    def _photo(self) -> None:
        rng = self.rng
        url = f"https://storage.googleapis.com/media.landbot.io/{self.ch.id}/customers/"
        url += f"{rng.getrandbits(64):016x}.jpg"
        self.customer("image", "", url=url, caption=rng.choice(("", "here", "see photo")))

    def _give(self, kind: str) -> None:
        """The customer types their email or phone number because someone asked for it."""
        rng, p = self.rng, self.cust.phone
        if kind == "email":
            value = self.cust.email
            text = rng.choice(("{v}", "it's {v}", "{v} thanks", "sure, {v}")).format(v=value)
        else:
            value = p.international if rng.random() < 0.5 else p.local
            text = rng.choice(("{v}", "{v}, after 5pm please", "my number is {v}")).format(v=value)
        self.customer("text", text)

    def _handover(self, name: str) -> None:
        """A human agent takes over. How the hand-off shows varies as in real traffic: the
        assign event first (most), a customer message already carrying the agent before the
        event (2 in 8), or no events at all, only ``customer.agent_id`` and the agent's words."""
        rng, topic = self.rng, TOPICS[name]
        self.bot_burst([self.bot_text(rng.choice(texts.HANDOVER))])
        style = rng.choices(("event", "early", "silent"), weights=(60, 25, 15))[0]
        first: Msg | None = None  # the earliest evidence of the hand-off
        if style == "event":
            first = self.sys_event("assign")
            if rng.random() < 0.3:
                self.customer_says(rng.choice(texts.WAITING))
        else:
            self.agent_id = rng.choice(AGENTS).id
            if style == "early" or rng.random() < 0.5:
                first = self.customer_says(rng.choice(texts.WAITING))
            if style == "early":
                self.sys_event("assign")
        agent = _agent(self.agent_id)
        self.ctx["agent"] = agent.name.split(" ")[0] if agent.name else "your agent"
        greeting = rng.choice(texts.AGENT_GREETINGS).format_map(self.ctx)
        said = self.agent_says(greeting, (15.0, 480.0))
        (first or said).handover = True
        for _ in range(rng.randrange(1, 4)):
            if rng.random() < 0.5:
                self.customer_says(rng.choice(topic.problem))
            else:
                self.customer_says(rng.choice(texts.WAITING + topic.answer))
            if rng.random() < 0.3:
                ask = rng.choice(("email", "phone", "photo") if topic.photo else ("email", "phone"))
                self.agent_says(rng.choice(texts.AGENT_ASKS[ask]), (8.0, 120.0))
                if ask == "photo":
                    self._photo()
                else:
                    self._give(ask)
            self.agent_says(rng.choice(topic.agent).format_map(self.ctx), (8.0, 240.0))
            signals.answered(self)
        self.agent_says(rng.choice(texts.AGENT_CLOSINGS), (3.0, 30.0))
        if rng.random() < 0.8:
            self.customer_says(rng.choice(texts.GOODBYES))
            self.agent_says(rng.choice(texts.AGENT_BYES), (2.0, 40.0))
        if style == "silent":
            self.agent_id = None  # only customer.agent_id turning null shows the end
        else:
            self.sys_event("unassign")
        self.bot = self.ch.bot
        if rng.random() < 0.5:
            self.bot_burst(
                [self.bot_menu(rng.choice(texts.RATING_TITLE), list(texts.RATING_OPTIONS))]
            )
            if rng.random() < 0.6:
                i = rng.randrange(len(texts.RATING_OPTIONS))
                self.customer("button", texts.RATING_OPTIONS[i], payload=f"${i}")


def _agent(agent_id: int | None) -> Agent:
    for agent in AGENTS:
        if agent.id == agent_id:
            return agent
    raise ValueError(f"no agent {agent_id}")


def next_midnight(t: float) -> float:
    """The first UTC midnight strictly after ``t`` (epoch seconds)."""
    return (math.floor(t / 86400.0) + 1) * 86400.0
