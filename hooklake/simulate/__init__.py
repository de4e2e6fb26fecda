"""Realistic, seeded Landbot MessageHooks traffic for demos, tests and benchmarks.

Hooklake's tests, benchmarks and demo never hand-write payloads in bulk: they draw them from
here. The traffic comes from a small made-up Landbot account (:data:`CHANNELS`: two Web bots,
two WhatsApp bots and one old help-centre bot) whose customers open the chat, click through
menus, type free text (with emails, phone numbers, card numbers and IBANs in it), send photos,
get handed to human agents and back, and come back hours later. Landbot's delivery habits are
there too: bursts of bot bubbles within tens of milliseconds delivered out of order, equal
timestamps told apart by ``_raw.seq``, whole-second WhatsApp customer timestamps, the older
payload shape without ``_raw.uuid``, unknown message types, and retried deliveries that repeat
a body byte for byte. Every body has the shape of ``shared/landbot/payloads/*.json``.

::

    from hooklake.simulate import simulate, send, write_ndjson

    for d in simulate(customers=50, seed=7):   # Delivery(body, truth, deliver_at)
        d.body, d.headers, d.truth.conversation_id, d.truth.position

    send(simulate(200), "http://127.0.0.1:8000/hooks/default", token="s3cret")
    write_ndjson(simulate(200), Path("traffic.ndjson"))

The same ``seed`` and arguments always give the same bytes; :data:`DEFAULT_START` is fixed
and ``start=`` moves the clock (the demo passes "now"). Each delivery carries its
:class:`Truth`: which customer, channel and conversation it belongs to, its position in that
conversation, who sent it and whether it is a retry, so tests can check what the lake
reconstructs, and the customer signals it carries (``Truth.signals``: a bot reply that failed
before a hand-off and the agent's answer, ratings, fallbacks; :mod:`.signals`).
Conversations are separated by at least 2 hours of silence and never pause for 25 minutes or
more inside, so the default 30-minute split finds exactly them.
"""

from __future__ import annotations

from hooklake.simulate.customers import FEATURES
from hooklake.simulate.records import USER_AGENT, Delivery, Truth
from hooklake.simulate.script import MAX_GAP
from hooklake.simulate.send import FATAL_STATUSES, SendReport, check_reachable, send
from hooklake.simulate.stream import (
    DEFAULT_START,
    RETURN_GAP,
    Tally,
    bodies,
    simulate,
    write_ndjson,
)
from hooklake.simulate.world import AGENTS, CHANNELS, Agent, Bot, Channel

__all__ = [
    "AGENTS",
    "CHANNELS",
    "DEFAULT_START",
    "FATAL_STATUSES",
    "FEATURES",
    "MAX_GAP",
    "RETURN_GAP",
    "USER_AGENT",
    "Agent",
    "Bot",
    "Channel",
    "Delivery",
    "SendReport",
    "Tally",
    "Truth",
    "bodies",
    "check_reachable",
    "send",
    "simulate",
    "write_ndjson",
]
