"""Counts and times in what Hooklake tells its users: "1 conversation", "2 conversations",
"2026-11-27T10:00:00.123Z"."""

from __future__ import annotations

from datetime import UTC, datetime


def counted(n: int, noun: str, plural: str | None = None, *, thousands: bool = False) -> str:
    """``n`` followed by ``noun``, or by its plural (``plural``, else ``noun`` + "s") unless
    ``n`` is 1; with ``thousands``, ``n`` has thousands separators ("1,194 messages")."""
    number = f"{n:,}" if thousands else str(n)
    return f"{number} {noun if n == 1 else plural or noun + 's'}"


def counted_phrase(n: int, phrase: str) -> str:
    """``n`` followed by ``phrase``, written for many ("duplicate examples", "conversations
    without a reply to the user"): for 1, its first plural word is made singular."""
    if n != 1:
        return f"{n} {phrase}"
    words = phrase.split(" ")
    for i, word in enumerate(words):
        if word.endswith("ies"):
            words[i] = word[:-3] + "y"
            break
        if word.endswith("s") and not word.endswith("ss"):
            words[i] = word[:-1]
            break
    return f"1 {' '.join(words)}"


def utc_text(t: datetime, timespec: str = "auto") -> str:
    """``t`` in UTC as ISO 8601 with ``Z``, as manifests, cards and messages write times (and
    ``as_of`` reads them back)."""
    utc = t.astimezone(UTC) if t.tzinfo is not None else t
    return utc.isoformat(timespec=timespec).replace("+00:00", "Z")
