"""What customers did, as training signal: hand-offs after a bot failure and labelled replies.

Both read one conversation's messages in order (:class:`~.render.Rendered`, redacted, with
their type and payload) as *runs*: consecutive messages of one sender, customer, bot or agent.
A bot *reply* is the bot run between two customer messages without its menus (dialogs and
WhatsApp card templates: questions such as "Was this helpful?" and option lists, not answers)
and without hand-off announcements (``preference.announcements``). The bot's first run of a
conversation is its welcome and is never judged.

**Preference pairs** (:func:`handoff_pairs`), one per hand-off: an agent run whose last
non-customer run before it is the bot's.

1. *The need*: walking back from the hand-off (never past an earlier agent run), the customer's
   last messages that ask for a person (``preference.escalation``) or click a rating
   (``feedback.good``/``bad``) are passed over, and so is a customer message whose bot reply
   is empty once menus and announcements are left out (a complaint answered only by the
   hand-off notice). The first customer message left is the need; the prompt is the
   conversation up to it. A good rating on the way, or reaching the bot's welcome, means no
   bot reply failed: no pair.
2. *Rejected*: the bot's reply to the need, all its bubbles, without menus and announcements.
3. *Chosen*: the agent's first messages after the hand-off that are not greetings, requests
   for details or closings (``preference.agent_skip``), up to the customer's next message.
   The customer may restate the problem or give details first, up to
   ``preference.max_restated`` messages; an agent who never answers before handing back, or
   answers later, gives no pair. A chosen reply equal to the rejected one gives no pair.

**Feedback labels** (:func:`feedback_labels`), one per bot reply, first signal wins:

1. ``rating``: a customer message equal to a ``feedback.good`` or ``feedback.bad`` value (text
   or payload) right after a bot reply labels that reply; a rating after an agent's reply (the
   bot's run is then only the rating question) labels nothing.
2. ``escalation`` (``feedback.escalation``): the rejected reply of every preference pair is bad.
3. ``fallback``: a bot reply with a message matching ``feedback.fallback`` is bad.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from hooklake.datasets.dedupe import normalise
from hooklake.datasets.recipe import Examples, Recipe
from hooklake.datasets.render import Example, Message, Rendered, merge_turns

#: Message types that show options rather than say something.
MENU_TYPES = frozenset({"dialog", "card_template"})


@dataclass(frozen=True, slots=True)
class Run:
    """Messages ``start..end-1`` of a conversation, all from ``sender``."""

    sender: str  # customer | bot | agent
    start: int
    end: int

    @property
    def indices(self) -> range:
        return range(self.start, self.end)


@dataclass(frozen=True, slots=True)
class Pair:
    """A hand-off after a bot failure: message indices of the need (the prompt ends there),
    the bot's rejected reply and the agent's chosen one."""

    need: int
    rejected: tuple[int, ...]
    chosen: tuple[int, ...]
    restated: int
    #: Messages between the need and the chosen answer that the rules passed over, with why.
    passed: tuple[tuple[int, str], ...] = ()


@dataclass(frozen=True, slots=True)
class Label:
    """A bot reply labelled by a customer signal; the prompt ends at message ``prompt_end``."""

    prompt_end: int
    reply: tuple[int, ...]
    good: bool
    signal: str  # rating | escalation | fallback


def _any(patterns: Sequence[str]) -> re.Pattern[str] | None:
    if not patterns:
        return None
    return re.compile("|".join(f"(?:{p})" for p in patterns), re.IGNORECASE)


class Rules:
    """A recipe's ``[preference]`` and ``[feedback]`` settings, compiled once per build."""

    def __init__(self, recipe: Recipe) -> None:
        pref, fb = recipe.preference, recipe.feedback
        self.escalation = _any(pref.escalation)
        self.announcement = _any(pref.announcements)
        self.agent_skip = _any(pref.agent_skip)
        self.max_restated = pref.max_restated
        self.good = frozenset(v.strip().casefold() for v in fb.good)
        self.bad = frozenset(v.strip().casefold() for v in fb.bad)
        self.escalation_is_bad = fb.escalation
        self.fallback = _any(fb.fallback)

    def rating(self, m: Rendered) -> bool | None:
        """True/False when ``m`` is a good/bad rating, else None."""
        for value in (m.payload, m.text):
            v = (value or "").strip().casefold()
            if v in self.good:
                return True
            if v in self.bad:
                return False
        return None

    def asks_for_person(self, m: Rendered) -> bool:
        pat = self.escalation
        return pat is not None and any(pat.search(v or "") for v in (m.text, m.payload))

    def is_reply(self, m: Rendered) -> bool:
        """Whether a bot message says something (not a menu, not a hand-off notice)."""
        if m.kind in MENU_TYPES:
            return False
        return not (self.announcement and self.announcement.search(m.text))

    def answers(self, m: Rendered) -> bool:
        return not (self.agent_skip and self.agent_skip.search(m.text))


def sender(m: Rendered) -> str:
    if m.role == "user":
        return "customer"
    return "agent" if m.human else "bot"


def runs(said: Sequence[Rendered]) -> list[Run]:
    out: list[Run] = []
    for i, m in enumerate(said):
        s = sender(m)
        if out and out[-1].sender == s:
            out[-1] = Run(s, out[-1].start, i + 1)
        else:
            out.append(Run(s, i, i + 1))
    return out


def _reply(said: Sequence[Rendered], run: Run, rules: Rules) -> tuple[int, ...]:
    return tuple(i for i in run.indices if rules.is_reply(said[i]))


def handoff_pairs(said: Sequence[Rendered], rules: Rules, notes: Counter[str]) -> list[Pair]:
    """The preference pairs of one conversation; ``notes`` counts hand-offs and why some gave
    no pair (for the dataset card)."""
    rs = runs(said)
    welcome = next((k for k, r in enumerate(rs) if r.sender == "bot"), -1)
    pairs: list[Pair] = []
    floor = -1  # never look back past the previous agent run
    for h, run in enumerate(rs):
        if run.sender != "agent":
            continue
        before = next((k for k in range(h - 1, floor, -1) if rs[k].sender != "customer"), -1)
        last_floor, floor = floor, h
        if before < 0 or rs[before].sender != "bot":
            continue
        notes["hand-offs to an agent after the bot"] += 1
        found = _need(said, rs, h, last_floor, welcome, rules)
        if found is None:
            notes["hand-offs without a failed bot reply (no pair)"] += 1
            continue
        need, rejected = found
        answer = _answer(said, rs, h, rules)
        if answer is None:
            notes["hand-offs where the agent never answered (no pair)"] += 1
            continue
        chosen, restated = answer
        if restated > rules.max_restated:
            notes["hand-offs answered after too many customer messages (no pair)"] += 1
            continue
        if normalise(_text(said, chosen)) == normalise(_text(said, rejected)):
            notes["hand-offs where the agent repeated the bot (no pair)"] += 1
            continue
        passed = _passed_over(said, need, rejected, chosen, rules)
        for _, why in passed:
            notes[f"messages passed over in pairs: {why}"] += 1
        pairs.append(Pair(need, rejected, chosen, restated, passed))
    return pairs


def _passed_over(
    said: Sequence[Rendered],
    need: int,
    rejected: tuple[int, ...],
    chosen: tuple[int, ...],
    rules: Rules,
) -> tuple[tuple[int, str], ...]:
    """What lies between the rejected reply and the chosen answer, and why it is neither:
    requests for a person, ratings, hand-off notices, menus, agent messages that answer
    nothing, and what else was said (complaints, restatements, the bot's later replies)."""
    out: list[tuple[int, str]] = []
    for i in range(need + 1, chosen[0]):
        m = said[i]
        who = sender(m)
        if who == "customer":
            if rules.asks_for_person(m):
                why = "customer asks for a person"
            elif rules.rating(m) is not None:
                why = "customer rates the reply"
            else:
                why = "customer says more"
        elif who == "bot":
            if m.kind in MENU_TYPES:
                why = "bot menu"
            elif not rules.is_reply(m):
                why = "bot announces the hand-off"
            elif i in rejected:
                continue
            else:
                why = "bot reply after the failed one"
        else:
            why = "agent message that answers nothing"
        out.append((i, why))
    return tuple(out)


def _need(
    said: Sequence[Rendered], rs: list[Run], h: int, floor: int, welcome: int, rules: Rules
) -> tuple[int, tuple[int, ...]] | None:
    for c in range(h - 1, floor, -1):
        run = rs[c]
        if run.sender != "customer":
            continue
        msgs = [said[i] for i in run.indices]
        ratings = [rules.rating(m) for m in msgs]
        if None not in ratings:  # only rating clicks
            if True in ratings:
                return None  # the customer was satisfied with the reply before
            continue
        if any(rules.asks_for_person(m) for m in msgs):
            continue
        if c + 1 >= h or rs[c + 1].sender != "bot":
            continue
        if c + 1 == welcome:
            return None
        rejected = _reply(said, rs[c + 1], rules)
        if rejected:
            return run.end - 1, rejected
    return None


def _answer(
    said: Sequence[Rendered], rs: list[Run], h: int, rules: Rules
) -> tuple[tuple[int, ...], int] | None:
    restated = 0
    for run in rs[h:]:
        if run.sender == "bot":
            return None
        if run.sender == "customer":
            restated += run.end - run.start
            continue
        chosen = tuple(i for i in run.indices if rules.answers(said[i]))
        if chosen:
            return chosen, restated
    return None


def _text(said: Sequence[Rendered], indices: Sequence[int]) -> str:
    return "\n".join(said[i].text for i in indices)


def feedback_labels(
    said: Sequence[Rendered], rules: Rules, pairs: Sequence[Pair], notes: Counter[str]
) -> list[Label]:
    """The labelled bot replies of one conversation, in conversation order."""
    rs = runs(said)
    welcome = next((k for k, r in enumerate(rs) if r.sender == "bot"), -1)
    found: dict[tuple[int, ...], Label] = {}

    def add(label: Label) -> None:
        earlier = found.get(label.reply)
        if earlier is None:
            found[label.reply] = label
        elif earlier.good != label.good:
            notes[f"{label.signal} signals overruled by a {earlier.signal} signal"] += 1

    for c, run in enumerate(rs):
        if run.sender != "customer":
            continue
        rating = rules.rating(said[run.start])  # the answer right after the bot's question
        if rating is None:
            continue
        notes["rating answers"] += 1
        if c < 2 or rs[c - 1].sender != "bot" or rs[c - 2].sender != "customer":
            notes["ratings of no bot reply (after an agent, or before any message)"] += 1
            continue
        reply = _reply(said, rs[c - 1], rules)
        if not reply or c - 1 == welcome:
            notes["ratings of no bot reply (after an agent, or before any message)"] += 1
            continue
        add(Label(rs[c - 2].end - 1, reply, rating, "rating"))
    if rules.escalation_is_bad:
        for p in pairs:
            add(Label(p.need, p.rejected, False, "escalation"))
    if rules.fallback is not None:
        for b, run in enumerate(rs):
            if run.sender != "bot" or b == welcome or b == 0 or rs[b - 1].sender != "customer":
                continue
            reply = _reply(said, run, rules)
            if any(rules.fallback.search(said[i].text) for i in reply):
                add(Label(rs[b - 1].end - 1, reply, False, "fallback"))
    return sorted(found.values(), key=lambda lb: lb.reply)


# From signals to examples ------------------------------------------------------------------


@dataclass(slots=True)
class SignalExamples:
    """What one conversation gave: its examples and notes for the card."""

    examples: list[Example]
    notes: Counter[str]


def _prompt(said: Sequence[Rendered], end: int, spec: Examples) -> tuple[list[Message], list[str]]:
    """The prompt ending with message ``end`` (a customer's), shaped like the supervised
    formats' history: turns merged, opened by the user, at most ``max_context_turns`` turns."""
    agent_turns = "drop" if spec.agent_turns == "drop" else "keep"
    turns = merge_turns(said[: end + 1], agent_turns)
    start = max(0, len(turns) - spec.max_context_turns) if spec.max_context_turns else 0
    while start < len(turns) and turns[start].role != "user":
        start += 1
    turns = turns[start:]
    messages = [Message("system", spec.system_prompt)] if spec.system_prompt else []
    messages += [Message(t.role, t.text, None, t.human) for t in turns]
    return messages, [k for t in turns for k in t.keys]


def _reply_message(said: Sequence[Rendered], indices: Sequence[int]) -> Message:
    return Message("assistant", _text(said, indices), 1, any(said[i].human for i in indices))


def signal_examples(
    said: Sequence[Rendered],
    recipe: Recipe,
    rules: Rules,
    *,
    conversation_id: str,
    channel_id: int | None = None,
    customer_id: int | None = None,
) -> SignalExamples:
    """The ``preference`` or ``feedback`` examples of one conversation (by ``recipe.format``)."""
    notes: Counter[str] = Counter()
    pairs = handoff_pairs(said, rules, notes)
    out: list[Example] = []
    spec = recipe.examples

    def example(end: int, parts: dict[str, Sequence[int]]) -> Example | None:
        prompt, keys = _prompt(said, end, spec)
        if not prompt or prompt[-1].role != "user":
            notes["signals whose prompt has no customer message left (no row)"] += 1
            return None
        sources = {"prompt": keys, **{k: [said[i].key for i in v] for k, v in parts.items()}}
        flat = [k for v in sources.values() for k in v]
        return Example(prompt, conversation_id, channel_id, customer_id, flat, sources=sources)

    if recipe.format == "preference":
        for p in pairs:
            ex = example(p.need, {"chosen": p.chosen, "rejected": p.rejected})
            if ex is not None:
                ex.messages.append(_reply_message(said, p.chosen))
                reply = _reply_message(said, p.rejected)
                reply.weight = 0
                ex.rejected = [reply]
                ex.signal = "hand-off after a bot reply" + (
                    ", agent answered after the customer restated" if p.restated else ""
                )
                ex.passed_over = [(why, said[i].text) for i, why in p.passed]
                out.append(ex)
        return SignalExamples(out, notes)
    for label in feedback_labels(said, rules, pairs, notes):
        ex = example(label.prompt_end, {"completion": label.reply})
        if ex is not None:
            ex.messages.append(_reply_message(said, label.reply))
            ex.label = label.good
            ex.signal = f"{label.signal}: {'good' if label.good else 'bad'}"
            out.append(ex)
    return SignalExamples(out, notes)
