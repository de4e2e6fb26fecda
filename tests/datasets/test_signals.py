"""Preference pairs and feedback labels from what customers did (hooklake.datasets.signals):
each rule pinned down on small hand-written conversations, then properties over random ones."""

from __future__ import annotations

from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from hooklake.datasets.recipe import parse_recipe
from hooklake.datasets.render import Rendered
from hooklake.datasets.signals import Rules, feedback_labels, handoff_pairs, signal_examples
from hooklake.datasets.trl import FeedbackWriter, PreferenceWriter
from tests.conftest import examples

RULES = Rules(parse_recipe({"name": "t", "format": "preference"}))
ROLE = {"c": ("user", False), "b": ("assistant", False), "a": ("assistant", True)}


def _said(*rows: tuple[str, str] | tuple[str, str, str]) -> list[Rendered]:
    """Messages from (sender c/b/a, text[, type]) rows; keys are their positions."""
    out = []
    for i, row in enumerate(rows):
        sender, text = row[0], row[1]
        role, human = ROLE[sender]
        out.append(Rendered(role, human, text, f"k{i}", row[2] if len(row) > 2 else "text"))
    return out


def _pairs(
    said: list[Rendered],
) -> tuple[list[tuple[int, tuple[int, ...], tuple[int, ...]]], Counter[str]]:
    notes: Counter[str] = Counter()
    return [(p.need, p.rejected, p.chosen) for p in handoff_pairs(said, RULES, notes)], notes


WELCOME = (("b", "Hi! Welcome to Acme."), ("b", "What do you need?\n- Orders\n- Human", "dialog"))


def test_a_failed_reply_then_escalation_gives_the_agents_answer_over_the_bots() -> None:
    said = _said(
        *WELCOME,
        ("c", "my parcel is late"),
        ("b", "Sorry, I didn't understand that."),
        ("c", "I want to talk to a human"),  # the escalation request: not the need
        ("b", "Let me connect you with one of our agents."),  # announcement: not a reply
        ("a", "Hi, this is Marta 👋"),  # a greeting answers nothing
        ("c", "my parcel AC123 is late"),  # restating the need is allowed
        ("a", "I've checked AC123: it arrives tomorrow."),
        ("a", "Anything else I can help with?"),  # a closing answers nothing
    )
    assert _pairs(said)[0] == [(2, (3,), (8,))]
    (pair,) = handoff_pairs(said, RULES, Counter())
    assert pair.passed == (
        (4, "customer asks for a person"),
        (5, "bot announces the hand-off"),
        (6, "agent message that answers nothing"),
        (7, "customer says more"),
    )


def test_several_bot_bubbles_are_one_rejected_reply_without_menus() -> None:
    said = _said(
        *WELCOME,
        ("c", "Orders"),
        ("b", "Which order?"),
        ("c", "AC123"),
        ("b", "AC123 is in transit."),
        ("b", "[image: https://x/map.png]"),
        ("b", "Did that help?\n- Yes, thanks!\n- No", "dialog"),
        ("c", "No"),  # a bad rating is passed over on the way back to the need
        ("b", "Sorry! Tell me more?"),
        ("c", "still nothing arrived"),  # only answered by the hand-off notice
        ("b", "I'm transferring you to our support team."),
        ("a", "It was lost; I've sent a new one."),
    )
    assert _pairs(said)[0] == [(4, (5, 6), (12,))]


def test_no_pair_without_a_failed_bot_reply() -> None:
    # Straight to a human from the welcome menu: the welcome is never judged.
    direct = _said(("c", "Hola"), *WELCOME, ("c", "Human"), ("a", "I've refunded you."))
    pairs, notes = _pairs(direct)
    assert pairs == [] and notes["hand-offs without a failed bot reply (no pair)"] == 1
    # The customer was happy with the reply, then asked for a person about something else.
    happy = _said(
        *WELCOME,
        ("c", "where is AC1"),
        ("b", "AC1 arrives today."),
        ("c", "Yes, thanks!"),
        ("b", "Great!"),
        ("c", "agent please"),
        ("a", "Sure, I've updated your address."),
    )
    assert _pairs(happy)[0] == []


def test_agents_that_never_answer_or_answer_too_late_give_no_pair() -> None:
    base = (*WELCOME, ("c", "where is AC1"), ("b", "Sorry, I didn't get that."))
    silent = _said(*base, ("a", "Hi, this is Marta"), ("c", "hello?"), ("b", "Bye from the bot"))
    pairs, notes = _pairs(silent)
    assert pairs == [] and notes["hand-offs where the agent never answered (no pair)"] == 1
    chatty = (*base, ("a", "Hi, this is Marta"), *[("c", f"detail {i}") for i in range(4)])
    late = _said(*chatty, ("a", "It arrives tomorrow."))
    pairs, notes = _pairs(late)
    assert pairs == [] and sum(notes.values()) == 2  # found, then too late (max_restated 3)


def test_the_same_words_from_bot_and_agent_are_no_preference() -> None:
    said = _said(
        *WELCOME, ("c", "where is AC1"), ("b", "AC1 arrives today."), ("a", "ac1  ARRIVES today.")
    )
    pairs, notes = _pairs(said)
    assert pairs == [] and notes["hand-offs where the agent repeated the bot (no pair)"] == 1


def test_ratings_escalations_and_fallbacks_label_bot_replies() -> None:
    said = _said(
        *WELCOME,
        ("c", "where is AC1"),
        ("b", "AC1 arrives today."),
        ("b", "Was this helpful?\n- 👍\n- 👎", "dialog"),
        ("c", "👍"),
        ("c", "and my refund?"),
        ("b", "Hmm, I didn't get that. Could you rephrase?"),
        ("c", "talk to a human"),
        ("b", "Connecting you now."),
        ("a", "Your refund went out today."),
        ("a", "Bye!"),
        ("b", "Rate us\n- 😀 Great\n- 🙁 Bad", "dialog"),
        ("c", "🙁 Bad"),  # rates the agent's work: labels no bot reply
    )
    notes: Counter[str] = Counter()
    pairs = handoff_pairs(said, RULES, notes)
    labels = feedback_labels(said, RULES, pairs, notes)
    assert [(lb.prompt_end, lb.reply, lb.good, lb.signal) for lb in labels] == [
        (2, (3,), True, "rating"),
        (6, (7,), False, "escalation"),  # also a fallback: the escalation came first
    ]
    assert notes["ratings of no bot reply (after an agent, or before any message)"] == 1


def test_a_rating_matches_the_button_payload_too() -> None:
    said = _said(*WELCOME, ("c", "where is AC1"), ("b", "AC1 arrives today."), ("c", "$1"))
    said[-1].payload = "No"
    (label,) = feedback_labels(said, RULES, [], Counter())
    assert (label.reply, label.good) == ((3,), False)


def test_examples_carry_prompt_chosen_rejected_and_their_source_keys() -> None:
    recipe = parse_recipe(
        {"name": "t", "format": "preference", "examples": {"system_prompt": "Be kind."}}
    )
    said = _said(
        *WELCOME,
        ("c", "my parcel is late"),
        ("b", "Sorry, I didn't understand that."),
        ("c", "human please"),
        ("a", "It arrives tomorrow."),
    )
    (ex,) = signal_examples(said, recipe, Rules(recipe), conversation_id="c1").examples
    record = PreferenceWriter.__new__(PreferenceWriter).record(ex)
    assert record == {
        "prompt": [
            {"role": "system", "content": "Be kind."},
            {"role": "user", "content": "my parcel is late"},
        ],
        "chosen": [{"role": "assistant", "content": "It arrives tomorrow."}],
        "rejected": [{"role": "assistant", "content": "Sorry, I didn't understand that."}],
    }
    assert ex.sources == {"prompt": ["k2"], "chosen": ["k5"], "rejected": ["k3"]}


_ROWS = st.lists(
    st.tuples(
        st.sampled_from("cccbbbaa"),
        st.sampled_from(
            [
                "where is AC1",
                "human please",
                "No",
                "Yes, thanks!",
                "Sorry, I didn't get that.",
                "AC1 arrives today.",
                "Hi, this is Marta",
                "I've refunded you.",
                "Connecting you now.",
                "Anything else?",
                "",
            ]
        ),
        st.sampled_from(["text", "text", "dialog", "button"]),
    ),
    max_size=16,
)


@settings(max_examples=examples(300))
@given(rows=_ROWS, fmt=st.sampled_from(["preference", "feedback"]), drop=st.booleans())
def test_every_signal_row_is_valid_and_points_at_the_right_messages(
    rows: list[tuple[str, str, str]], fmt: str, drop: bool
) -> None:
    said = [m for m in _said(*rows) if m.text]
    recipe = parse_recipe(
        {"name": "t", "format": fmt, "examples": {"agent_turns": "drop" if drop else "keep"}}
    )
    rules = Rules(recipe)
    notes: Counter[str] = Counter()
    pairs = handoff_pairs(said, rules, notes)
    for p in pairs:
        assert said[p.need].role == "user"
        assert all(said[i].role == "assistant" and not said[i].human for i in p.rejected)
        assert all(said[i].human for i in p.chosen)
        assert p.need < min(p.rejected) and max(p.rejected) < min(p.chosen)
    for lb in feedback_labels(said, rules, pairs, notes):
        assert said[lb.prompt_end].role == "user" and lb.prompt_end < min(lb.reply)
        assert all(not said[i].human for i in lb.reply)
    writer = (PreferenceWriter if fmt == "preference" else FeedbackWriter).__new__(
        PreferenceWriter if fmt == "preference" else FeedbackWriter
    )
    for ex in signal_examples(said, recipe, rules, conversation_id="c").examples:
        assert writer.check(writer.record(ex)) is None
        assert set(ex.source_keys) <= {m.key for m in said}
