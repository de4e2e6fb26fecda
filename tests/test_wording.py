"""What Hooklake tells its users agrees in number: "1 conversation", "2 conversations"."""

from __future__ import annotations

from hooklake.wording import counted, counted_phrase


def test_counted_agrees_with_its_number() -> None:
    assert counted(1, "conversation") == "1 conversation"
    assert counted(0, "conversation") == "0 conversations"
    assert counted(2, "customer") == "2 customers"
    assert counted(1, "delivery", "deliveries") == "1 delivery"
    assert counted(3, "delivery", "deliveries") == "3 deliveries"
    assert counted(1194, "message", thousands=True) == "1,194 messages"


def test_counted_phrase_makes_its_head_noun_singular_for_one() -> None:
    """The build's reasons for dropping are written for many."""
    assert counted_phrase(1, "duplicate examples") == "1 duplicate example"
    assert counted_phrase(2, "duplicate examples") == "2 duplicate examples"
    assert (
        counted_phrase(1, "conversations without a reply to the user")
        == "1 conversation without a reply to the user"
    )
    assert counted_phrase(1, "retried deliveries") == "1 retried delivery"
