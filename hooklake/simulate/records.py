"""What the simulator hands out: a :class:`Delivery` (one POST) and its :class:`Truth`."""

from __future__ import annotations

from dataclasses import dataclass

USER_AGENT = "landbot/webhooks"


@dataclass(slots=True)
class Truth:
    """What really happened for one delivered message, for tests to check the lake against.

    Conversations are numbered per customer: the lake, splitting a customer's messages by an
    inactivity gap of 30 minutes (or anything between about 25 minutes and 2 hours), finds
    exactly the conversations given here, because within a conversation consecutive messages
    are less than 25 minutes apart and between two conversations of a customer there are at
    least 2 hours. Treat it as read-only.

    Attributes:
        customer_id: ``customer.id``; unique across channels in one simulation.
        channel_id: ``channel.id``. A customer only ever talks to one channel.
        channel_type: ``landbot`` (Web) or ``whatsapp``.
        conversation: 1-based ordinal of this conversation among the customer's conversations,
            in time order.
        position: 1-based place of the message in its conversation when ordered by
            ``(timestamp, _raw.seq)``. Equal timestamps only occur inside a bot burst and then
            ``seq`` is set and increasing, so this order is total.
        size: number of messages in the conversation (so ``position == size`` is the last).
        sender_type: ``sender.type``: ``customer``, ``bot``, ``agent`` or ``sys``.
        type: the message ``type`` (``text``, ``button``, ``dialog``, ``event``, or an unknown one
            such as ``location`` that the collector must keep).
        ts: the body's ``timestamp`` as a float (WhatsApp customer messages send whole seconds).
        seq: ``_raw.seq`` when set, else None.
        message_key: ``_raw.uuid``; None for the older payload shape, which has no uuid.
        sentry_trace: the ``sentry-trace`` header, unique per message, the same on retries.
        attempt: 0 for the first delivery of a message; 1, 2… for Landbot resending the very
            same bytes (as it does when it did not see a 2xx in time).
        legacy: the body uses the older help-centre shape (no uuid, ``readed_at``).
        agent_id: ``customer.agent_id`` at send time (set between assign and unassign).
        pii: the personal data written into this message's text, as ``(kind, value)`` pairs
            with kind ``email``, ``phone``, ``card`` or ``iban``; the value appears verbatim.
        handover: this message is the earliest evidence of a hand-off to a human agent (the
            assign event, a customer message already carrying ``customer.agent_id``, or the
            agent's first message): the lake's ``handovers`` view must start a hand-off here.
        shape: where the body puts type-specific content (see :mod:`hooklake.simulate.encode`):
            ``samples`` (in ``data`` and ``_raw.extra``), ``core`` (flat in ``_raw``), ``flat``
            (an event's action and agent at the message's top level) or ``legacy``.
        signals: the customer signals this message carries (``need``, ``rejected``,
            ``chosen``, ``good``, ``bad``; see :mod:`hooklake.simulate.signals`).
    """

    customer_id: int
    channel_id: int
    channel_type: str
    conversation: int
    position: int
    size: int
    sender_type: str
    type: str
    ts: float
    seq: int | None
    message_key: str | None
    sentry_trace: str
    attempt: int
    legacy: bool
    agent_id: int | None
    pii: tuple[tuple[str, str], ...]
    handover: bool = False
    shape: str = "samples"
    signals: tuple[str, ...] = ()

    @property
    def conversation_id(self) -> str:
        """A stable name for the conversation: ``"<channel_id>:<customer_id>:<conversation>"``."""
        return f"{self.channel_id}:{self.customer_id}:{self.conversation}"

    @property
    def retry(self) -> bool:
        """True when this delivery repeats an earlier one byte for byte."""
        return self.attempt > 0


@dataclass(slots=True)
class Delivery:
    """One POST as Landbot would send it: the body, its headers and the ground truth.

    ``deliver_at`` is the simulated wall-clock time (epoch seconds) at which the POST reaches
    the collector; the stream is ordered by it, which is not the order of the timestamps.
    """

    body: bytes
    truth: Truth
    deliver_at: float

    @property
    def headers(self) -> dict[str, str]:
        """Content-Type, User-Agent and ``sentry-trace``; the sender adds Authorization."""
        return {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "sentry-trace": self.truth.sentry_trace,
        }
