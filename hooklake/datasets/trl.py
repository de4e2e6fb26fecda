"""TRL's conversational dataset shapes: one JSON object per line, messages as role/content.

==================  ===========================================================================
``prompt-completion``  ``{"prompt": [messages], "completion": [the assistant reply]}``: one row
                    per trained assistant turn (``unit = "turn"``); TRL trains the completion
                    only, so history (agent replies included) is context. ``pairs`` is the same
                    format under its older name.
``preference``      ``{"prompt": [...], "chosen": [agent reply], "rejected": [bot reply]}``
                    for DPO/ORPO: one row per hand-off after a bot failure (:mod:`.signals`)
``feedback``        ``{"prompt": [...], "completion": [bot reply], "label": bool}`` for KTO:
                    one row per bot reply a customer signal labels (:mod:`.signals`)
==================  ===========================================================================

Every row is checked before it is written: a prompt that is not empty and ends with the user,
non-empty assistant completions, chosen different from rejected, a boolean label. A row that
fails stops the build with :class:`~hooklake.errors.BuildError`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hooklake.datasets.dedupe import normalise
from hooklake.datasets.render import Example, Message
from hooklake.datasets.writers import JsonlWriter, ReadBack
from hooklake.wording import counted

if TYPE_CHECKING:
    from hooklake.datasets.card import DatasetStats
    from hooklake.datasets.recipe import Recipe

#: Longest text quoted from an example in the card.
QUOTE_CHARS = 240


def _chat(messages: list[Message]) -> list[dict[str, Any]]:
    return [{"role": m.role, "content": m.content} for m in messages]


def prompt_problem(prompt: Any) -> str | None:
    """Why ``prompt`` is not a usable conversational prompt (``None`` when it is)."""
    if not isinstance(prompt, list) or not prompt:
        return "the prompt is empty"
    for i, m in enumerate(prompt):
        if m.get("role") not in ("system", "user", "assistant"):
            return f"prompt message {i} has role {m.get('role')!r}"
        if not isinstance(m.get("content"), str) or not m["content"].strip():
            return f"prompt message {i} has no text"
    if prompt[-1]["role"] != "user":
        return "the prompt must end with the user"
    return None


def reply_problem(name: str, reply: Any) -> str | None:
    """Why ``reply`` is not one non-empty assistant message (``None`` when it is)."""
    if not isinstance(reply, list) or len(reply) != 1:
        return f"{name} must be exactly one message"
    m = reply[0]
    if m.get("role") != "assistant":
        return f"{name} must be an assistant message, not {m.get('role')!r}"
    if not isinstance(m.get("content"), str) or not m["content"].strip():
        return f"{name} has no text"
    return None


def _quote(label: str, text: str) -> list[str]:
    text = text if len(text) <= QUOTE_CHARS else text[: QUOTE_CHARS - 1] + "…"
    lines = text.splitlines() or [""]
    return [f"> **{label}:** {lines[0]}", *(f"> {line}" for line in lines[1:]), ">"]


def _patterns(values: tuple[str, ...]) -> str:
    return ", ".join(f"`{v}`" for v in values) or "none"


def _counts(stats: DatasetStats) -> list[str]:
    out = ["| rule | rows |", "|---|---|"]
    out += [f"| {k} | {v} |" for k, v in sorted(stats.signals.items())]
    if stats.signal_notes:
        out += ["", "Found and passed over (before de-duplication and splitting):", ""]
        out += ["| what | count |", "|---|---|"]
        out += [f"| {k} | {v} |" for k, v in sorted(stats.signal_notes.items())]
    return out


def _examples(stats: DatasetStats, parts: list[tuple[str, str]]) -> list[str]:
    out = ["### One row of each rule", ""]
    for rule, ex in sorted(stats.signal_examples.items()):
        out += [f"*{rule}*", ""]
        last_user = next(m.content for m in reversed(ex.messages[:-1]) if m.role == "user")
        out += _quote("customer", last_user)
        for label, part in parts:
            if part == "completion" or part == "chosen":
                out += _quote(label, ex.messages[-1].content)
            elif part == "rejected" and ex.rejected:
                out += _quote(label, ex.rejected[0].content)
                for why, text in ex.passed_over:
                    out += _quote(f"passed over ({why})", text)
            elif part == "label":
                out += [f"> **label:** {str(ex.label).lower()}", ">"]
        out[-1] = ""
    return out


def _preference_rules(recipe: Recipe) -> list[str]:
    pref = recipe.preference
    return [
        "## How each pair was chosen",
        "",
        "One row per hand-off to a human agent that follows a bot reply the customer did not "
        "accept. Conversations are read message by message; a *bot reply* is the bot's "
        "bubbles between two customer messages, without menus (dialogs, card templates) and "
        "without hand-off announcements. The bot's welcome is never judged.",
        "",
        "1. **Prompt**: the conversation up to the customer's unanswered need. Walking back "
        "from the hand-off, customer messages asking for a person, rating clicks "
        "(`[feedback]` values) and messages the bot answered only with a hand-off notice are "
        "passed over; the first customer message left is the need. A good rating on the "
        "way, or reaching the bot's welcome, means no bot reply failed: no pair.",
        "2. **Rejected**: the bot's reply to that need, all its bubbles.",
        "3. **Chosen**: the agent's first messages after the hand-off that are not greetings, "
        "requests for details or closings, up to the customer's next message. The customer "
        f"may restate the problem first (at most {counted(pref.max_restated, 'message')}); an "
        "agent who hands back without answering gives no pair, as does a chosen reply equal to the "
        "rejected one.",
        "",
        f"- Asking for a person (`preference.escalation`): {_patterns(pref.escalation)}",
        f"- Hand-off announcements (`preference.announcements`): {_patterns(pref.announcements)}",
        f"- Agent messages that answer nothing (`preference.agent_skip`): "
        f"{_patterns(pref.agent_skip)}",
        "",
        "Patterns are case-insensitive regular expressions; change them in the recipe.",
        "",
    ]


def _one_row_per_signal(fmt: str, recipe: Recipe) -> str | None:
    ex = recipe.examples
    if ex.unit != "conversation" or ex.targets != "assistant" or ex.agent_turns == "weight0":
        return (
            f"format {fmt!r} makes one row per customer signal and trains nothing else: leave "
            "examples.unit, examples.targets out and set examples.agent_turns to keep or drop"
        )
    return None


class PromptCompletionWriter(JsonlWriter):
    """TRL's conversational prompt-completion: the history is the prompt, the trained assistant
    reply the completion (the build makes one example per trained assistant turn)."""

    format = "prompt-completion"
    description = (
        'one JSON object per line, `{"prompt": [messages], "completion": [assistant '
        "message]}` (TRL conversational prompt-completion): one row per trained reply, the "
        "history before it is context only, which is how TRL trains some turns and not others"
    )

    @classmethod
    def recipe_problem(cls, recipe: Recipe) -> str | None:
        if recipe.examples.unit != "turn":
            return f'format "{cls.format}" needs examples.unit = "turn"'
        return None

    @classmethod
    def card_section(cls, recipe: Recipe, stats: DatasetStats) -> list[str]:
        return [
            "TRL trains the `completion` of each row only: the `prompt`, human agent replies "
            "included, is context. (The `weight` of other formats is ignored by TRL.)",
            "",
        ]

    @classmethod
    def read_record(cls, record: dict[str, Any]) -> ReadBack:
        return [(m["role"], m["content"]) for m in record["prompt"] + record["completion"]]

    def record(self, example: Example) -> dict[str, Any]:
        *history, last = _chat(example.messages)
        return {"prompt": history, "completion": [last]}

    def check(self, record: dict[str, Any]) -> str | None:
        prompt, completion = record["prompt"], record["completion"]
        if completion[0]["role"] != "assistant" or not prompt or prompt[-1]["role"] != "user":
            return "a pair needs a prompt ending with the user and an assistant completion"
        return None


class PairsWriter(PromptCompletionWriter):
    """``prompt-completion`` under the name recipes used before it had TRL's name."""

    format = "pairs"


class PreferenceWriter(JsonlWriter):
    """DPO/ORPO rows: the agent's answer chosen over the bot's reply the customer rejected."""

    format = "preference"
    from_signals = True
    # The card shows the first row of each rule, which a later increment cannot know.
    shards = False
    description = (
        'one JSON object per line, `{"prompt": [messages], "chosen": [assistant message], '
        '"rejected": [assistant message]}` (TRL conversational preference, for DPO and ORPO): '
        "one row per hand-off to a human after a bot reply that failed the customer"
    )

    @classmethod
    def recipe_problem(cls, recipe: Recipe) -> str | None:
        return _one_row_per_signal(cls.format, recipe)

    @classmethod
    def card_section(cls, recipe: Recipe, stats: DatasetStats) -> list[str]:
        parts = [("rejected (bot)", "rejected"), ("chosen (agent)", "chosen")]
        return [*_preference_rules(recipe), *_counts(stats), "", *_examples(stats, parts)]

    @classmethod
    def read_record(cls, record: dict[str, Any]) -> ReadBack:
        said = record["prompt"] + record["chosen"] + record["rejected"]
        return [(m["role"], m["content"]) for m in said]

    def record(self, example: Example) -> dict[str, Any]:
        *prompt, chosen = _chat(example.messages)
        return {"prompt": prompt, "chosen": [chosen], "rejected": _chat(example.rejected or [])}

    def check(self, record: dict[str, Any]) -> str | None:
        problem = (
            prompt_problem(record["prompt"])
            or reply_problem("chosen", record["chosen"])
            or reply_problem("rejected", record["rejected"])
        )
        if problem:
            return problem
        if normalise(record["chosen"][0]["content"]) == normalise(record["rejected"][0]["content"]):
            return "chosen and rejected are the same reply"
        return None


class FeedbackWriter(JsonlWriter):
    """KTO rows: one bot reply with the label a customer signal gave it."""

    format = "feedback"
    from_signals = True
    shards = False
    description = (
        'one JSON object per line, `{"prompt": [messages], "completion": [assistant message], '
        '"label": true|false}` (TRL conversational unpaired preference, for KTO): one row per '
        "bot reply that a rating, a hand-off to a human or a fallback labels"
    )

    @classmethod
    def recipe_problem(cls, recipe: Recipe) -> str | None:
        return _one_row_per_signal(cls.format, recipe)

    @classmethod
    def card_section(cls, recipe: Recipe, stats: DatasetStats) -> list[str]:
        fb = recipe.feedback
        rules = [
            "## How each label was chosen",
            "",
            "One row per bot reply that a customer signal labels; a *bot reply* is the bot's "
            "bubbles between two customer messages, without menus and hand-off announcements. "
            "When signals disagree on a reply, the first rule below wins.",
            "",
            "1. **rating**: the customer's answer right after the reply equals (case ignored) "
            f"a good value {_patterns(fb.good)} or a bad value {_patterns(fb.bad)}, on the "
            "button's payload or text. A rating after a human agent's reply labels nothing.",
            "2. **escalation**: "
            + (
                "the bot's reply was the rejected one of a hand-off (see the preference rules "
                "below): bad."
                if fb.escalation
                else "off (`feedback.escalation = false`)."
            ),
            f"3. **fallback**: a bot reply matching {_patterns(fb.fallback)} "
            "(`feedback.fallback`, case-insensitive regular expressions): bad.",
            "",
            "The prompt is the conversation up to the customer message the reply answered.",
            "",
        ]
        if fb.escalation:
            rules += [
                line.replace("## How each pair was chosen", "### Hand-offs (escalation rule)")
                for line in _preference_rules(recipe)
            ]
        parts = [("completion (bot)", "completion"), ("label", "label")]
        return [*rules, *_counts(stats), "", *_examples(stats, parts)]

    @classmethod
    def read_record(cls, record: dict[str, Any]) -> ReadBack:
        return [(m["role"], m["content"]) for m in record["prompt"] + record["completion"]]

    def record(self, example: Example) -> dict[str, Any]:
        *prompt, completion = _chat(example.messages)
        return {"prompt": prompt, "completion": [completion], "label": example.label}

    def check(self, record: dict[str, Any]) -> str | None:
        problem = prompt_problem(record["prompt"]) or reply_problem(
            "the completion", record["completion"]
        )
        if problem:
            return problem
        if not isinstance(record["label"], bool):
            return f"the label must be true or false, not {record['label']!r}"
        return None
