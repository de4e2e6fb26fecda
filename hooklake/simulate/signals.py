"""Customer signals planted in simulated conversations and recorded as truth.

A script marks the messages that carry a signal in ``Msg.signals``; the encoder copies them
into :attr:`~hooklake.simulate.records.Truth.signals`, so tests can measure how well a build
finds them. The marks:

``need``      the customer message whose bot reply failed before a hand-off to an agent
``rejected``  the first message of that failed bot reply
``chosen``    the agent's message that answers the need after the hand-off
``good``      the first message of a bot reply the customer rated good ("Yes, thanks!")
``bad``       the first message of a bot reply rated bad ("No"), handed over from, or a
              fallback ("Sorry, I can only read text messages for now.")

A conversation has at most one need/rejected/chosen triple. Ratings of the service after a
human agent's work carry no mark: they judge no bot reply.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hooklake.simulate.script import Msg, Script

#: What the bot says when it did not understand free text (a failure a customer escalates).
FALLBACKS = (
    "Sorry, I didn't understand that. Please choose one of the options below.",
    "Hmm, I didn't get that. Could you rephrase?",
    "I'm not sure I understand. Try one of the menu options.",
)
#: How a customer asks for a person after the bot failed them.
ASK_FOR_PERSON = (
    "I want to talk to a human",
    "Can I speak to someone please?",
    "agent please",
    "Let me talk to a real person",
)
#: Share of free-text openings (on channels with human agents) the bot fails to understand.
MISUNDERSTOOD = 0.35


@dataclass(slots=True)
class Planted:
    """A script's signal state: whether a hand-off is waiting for its chosen answer."""

    awaiting_answer: bool = False


def mark(msg: Msg, signal: str) -> None:
    msg.signals = (*msg.signals, signal)


def last_customer(script: Script, before: Msg) -> Msg:
    """The customer message the bot reply starting at ``before`` answers."""
    i = script.msgs.index(before)
    return next(m for m in reversed(script.msgs[:i]) if m.sender_type == "customer")


def escalated(script: Script, rejected: Msg) -> None:
    """The reply starting at ``rejected`` failed and the customer is about to be handed over."""
    mark(last_customer(script, rejected), "need")
    mark(rejected, "rejected")
    if "bad" not in rejected.signals:
        mark(rejected, "bad")
    script.planted.awaiting_answer = True


def answered(script: Script) -> None:
    """The agent's message just added answers the pending need (the first such answer)."""
    if script.planted.awaiting_answer:
        mark(script.msgs[-1], "chosen")
        script.planted.awaiting_answer = False


def misunderstood(script: Script, topic_name: str) -> bool:
    """Maybe make the bot fail on the customer's free-text message just sent: a fallback
    reply, the customer asks for a person, an agent takes over and answers. True when it did
    (the conversation is then over)."""
    rng = script.rng
    if not script.ch.handover or rng.random() >= MISUNDERSTOOD:
        return False
    script.bot_burst([script.bot_text(rng.choice(FALLBACKS))])
    escalated(script, script.msgs[-1])
    script.customer_says(rng.choice(ASK_FOR_PERSON))
    script._handover(topic_name)
    return True
