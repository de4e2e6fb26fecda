"""From one conversation's rendered, redacted messages to its examples, or why it gives none.

The step every engine shares after rendering and redaction (:mod:`.shape` does those for a
whole batch, :mod:`.reference` one message at a time): turns, trimming, the
``min_user_turns`` filter and the examples of :mod:`.render`, or the preference and feedback
rows of :mod:`.signals`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from hooklake.datasets.recipe import Recipe
from hooklake.datasets.render import (
    Example,
    Rendered,
    conversation_examples,
    merge_turns,
    trim_turns,
)
from hooklake.datasets.signals import Rules, signal_examples


@dataclass(frozen=True, slots=True)
class Conversation:
    """Who a conversation belongs to, as examples record it."""

    conversation_id: str
    channel_id: int | None
    customer_id: int | None


def conversation_examples_of(
    conv: Conversation,
    rendered: list[Rendered],
    recipe: Recipe,
    rules: Rules | None = None,
    notes: Counter[str] | None = None,
) -> tuple[list[Example], str | None]:
    """The examples of one conversation, or ``([], why)`` where ``why`` is the card's name for
    the reason it gave none. With ``rules`` the examples come from customers' signals
    (:mod:`.signals`) and ``notes`` adds up what was found."""
    spec = recipe.examples
    if rules is not None:
        found = signal_examples(
            rendered,
            recipe,
            rules,
            conversation_id=conv.conversation_id,
            channel_id=conv.channel_id,
            customer_id=conv.customer_id,
        )
        if notes is not None:
            notes.update(found.notes)
        return found.examples, None if found.examples else "conversations_without_a_signal"
    turns = trim_turns(merge_turns(rendered, spec.agent_turns, split_authors=recipe.split_authors))
    if not turns:
        return [], "conversations_without_a_reply_to_the_user"
    if sum(t.role == "user" for t in turns) < recipe.filter.min_user_turns:
        return [], "conversations_with_too_few_user_turns"
    examples = conversation_examples(
        turns,
        spec,
        conversation_id=conv.conversation_id,
        channel_id=conv.channel_id,
        customer_id=conv.customer_id,
    )
    return examples, None if examples else "conversations_without_a_trained_reply"
