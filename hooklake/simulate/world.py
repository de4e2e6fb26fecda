"""The simulated Landbot account: its channels, bots and human agents.

Ids follow Landbot's conventions as far as they are known (see ``shared/landbot/README.md``):
a channel and the bot that talks on it have different ids, a bot's ``_raw.samurai`` is minus
its id, an agent's is its id, and the system sender is id 0 named ``Landbot``.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Bot:
    id: int
    name: str
    uuid: str


@dataclass(frozen=True, slots=True)
class Agent:
    """A human agent; the one real capture has an agent with an empty name, so some do."""

    id: int
    name: str
    uuid: str


@dataclass(frozen=True, slots=True)
class Channel:
    """One Landbot channel (a bot deployed on Web or WhatsApp).

    ``legacy`` channels send the older help-centre payload shape: no ``_raw.uuid``, a
    ``readed_at`` field and a bare customer object. ``topics`` are the menu options the bot
    offers (keys of :data:`hooklake.simulate.texts.TOPICS`); ``jumps`` sends a topic to
    another bot ("Jump to"), so ``sender`` and ``samurai`` change mid-conversation.
    """

    id: int
    name: str
    type: str
    bot: Bot
    brand: str
    topics: tuple[str, ...]
    weight: float
    legacy: bool = False
    handover: bool = True
    jumps: dict[str, Bot] = field(default_factory=dict)
    #: Custom customer fields this bot collects: name -> kind (see ``script._custom_fields``).
    fields: tuple[str, ...] = ()

    @property
    def whatsapp(self) -> bool:
        return self.type == "whatsapp"

    @property
    def url(self) -> str:
        return f"https://landbot.site/v3/H-{self.id}-{_url_key(self.id)}/index.html"


def _url_key(n: int) -> str:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    out = []
    for _ in range(16):
        n = (n * 1103515245 + 12345) % (1 << 31)
        out.append(alphabet[n % len(alphabet)])
    return "".join(out)


BILLING_BOT = Bot(1819402, "Acme Billing", "6b4d0f32-8a1c-4e4f-9d66-2f3a4b5c6d7e")

CHANNELS: tuple[Channel, ...] = (
    Channel(
        id=2955840,
        name="Acme Store",
        type="landbot",
        bot=Bot(1819347, "Acme Store", "5a3c9e21-7f0b-4d3e-8c55-1e2f3a4b5c6d"),
        brand="Acme",
        topics=("order_status", "returns", "payment", "product"),
        weight=0.34,
        jumps={"payment": BILLING_BOT},
        fields=("email", "interests", "newsletter", "loyalty_points"),
    ),
    Channel(
        id=2961022,
        name="Casa Lola Bookings",
        type="landbot",
        bot=Bot(1820550, "Casa Lola", "0c1d2e3f-4a5b-4c6d-8e7f-8091a2b3c4d5"),
        brand="Casa Lola",
        topics=("booking", "change_booking", "cancel", "hours"),
        weight=0.14,
        fields=("party_size", "allergies"),
    ),
    Channel(
        id=3011223,
        name="WhatsApp Support",
        type="whatsapp",
        bot=Bot(1822001, "WhatsApp Support", "8b9c0d1e-2f3a-4b5c-9d6e-7f8a9b0c1d2e"),
        brand="Acme",
        topics=("order_status", "returns", "payment", "product"),
        weight=0.30,
        fields=("lang", "interests"),
    ),
    Channel(
        id=3014870,
        name="Clínica Norte",
        type="whatsapp",
        bot=Bot(1822310, "Clínica Norte", "3d4e5f60-7182-4a93-b4c5-d6e7f8091a2b"),
        brand="Clínica Norte",
        topics=("appointment", "reschedule", "results"),
        weight=0.12,
        fields=("patient_id", "preferred_doctor"),
    ),
    Channel(
        id=761536,
        name="Help Centre",
        type="landbot",
        bot=Bot(1203340, "Help Centre", "9e0f1a2b-3c4d-4e5f-8a6b-7c8d9e0f1a2b"),
        brand="Acme Cloud",
        topics=("password", "billing", "account"),
        weight=0.10,
        legacy=True,
        handover=False,
        fields=("plan", "tags"),
    ),
)

AGENTS: tuple[Agent, ...] = (
    Agent(794028, "", "ce8013ec-ddd2-4711-849a-a5b91cf69ada"),
    Agent(794031, "Laura Méndez", "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"),
    Agent(794040, "Tom Baker", "2b3c4d5e-6f7a-4b8c-9d0e-1f2a3b4c5d6e"),
    Agent(794052, "Aisha Khan", "3c4d5e6f-7a8b-4c9d-8e1f-2a3b4c5d6e7f"),
    Agent(794067, "Jonas Weber", "4d5e6f7a-8b9c-4d0e-9f2a-3b4c5d6e7f80"),
)


def channel(channel_id: int) -> Channel:
    """The simulated channel with this id (for tests that look a channel up by id)."""
    for ch in CHANNELS:
        if ch.id == channel_id:
            return ch
    raise KeyError(channel_id)
