"""Dataset recipes: one TOML file in ``datasets/`` describes one dataset a team builds.

A recipe names the slice of the lake to read, how conversations are cut and rendered, the
output format, redaction, dedupe and the split. :func:`load_recipe` turns the file into a typed
:class:`Recipe` and raises :class:`~hooklake.errors.ConfigError` naming the bad key, e.g.
``recipe datasets/x.toml: examples.agent_turns must be one of keep, drop, weight0``.

Every key has a default except ``name``::

    name = "acme-support"
    format = "openai"                # openai | hf | sharegpt | prompt-completion | pairs
                                     # | preference | feedback
    [source]                         # which messages to read (all when left out)
    channels = [2955840]
    hooks = ["default"]
    since = 2026-01-01               # conversations that start on or after this UTC date
    until = 2026-12-31               # ...and on or before this one
    [conversations]
    gap_minutes = 30                 # inactivity that starts a new conversation
    [examples]
    unit = "conversation"            # conversation | turn (one example per assistant turn)
    agent_turns = "keep"             # keep | drop | weight0 (human agent replies)
    targets = "assistant"            # assistant | bot | agent: replies a model learns from
    max_context_turns = 0            # unit=turn: turns of history kept, 0 = all
    system_prompt = "You are Acme's support assistant."
    media = "placeholder"            # placeholder | drop (every type but text, buttons, dialogs)
    [filter]
    min_user_turns = 1
    dedupe = true
    [redact]
    pii = true
    [split]
    train = 0.8
    validation = 0.1
    test = 0.1
    group_by = "customer"            # conversation | customer
    seed = 42
    [preference]                     # format = "preference" (and escalation for feedback)
    escalation = ["\\bhuman\\b", ...]  # customer asks for a person (regex, text or payload)
    announcements = ["connect you", ...]  # bot hand-off notices, never a rejected reply
    agent_skip = ["\\bthis is \\w+", ...]  # agent greetings, questions, closings: no answer
    max_restated = 3                 # customer messages allowed before the agent answers
    [feedback]                       # format = "feedback"
    good = ["Yes, thanks!", "👍"]    # rating buttons, matched on payload or text (exact)
    bad = ["No", "👎"]
    escalation = true                # a bot reply followed by a hand-off is bad
    fallback = ["didn't understand", ...]  # the bot's fallback replies are bad (regex)

What a format accepts (e.g. ``prompt-completion`` needs ``unit = "turn"``) is checked by its
writer class (:mod:`.writers`).
"""

from __future__ import annotations

import re
import tomllib
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal

import orjson
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    Strict,
    ValidationError,
    model_validator,
)
from pydantic_core import ErrorDetails

from hooklake.errors import ConfigError

SPLITS = ("train", "validation", "test")

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class Source(_Section):
    """Which messages a build reads. Empty lists mean every channel or hook."""

    # TOML gives lists and either dates or "YYYY-MM-DD" strings: accept those, nothing looser.
    channels: Annotated[tuple[Annotated[int, Strict()], ...], Field(strict=False)] = ()
    hooks: Annotated[tuple[Annotated[str, Strict()], ...], Field(strict=False)] = ()
    since: Annotated[date | None, Field(strict=False)] = None
    until: Annotated[date | None, Field(strict=False)] = None

    @model_validator(mode="after")
    def _ordered(self) -> Source:
        if self.since and self.until and self.since > self.until:
            raise ValueError("source.since must not be after source.until")
        return self


class Conversations(_Section):
    gap_minutes: int = Field(default=30, gt=0, le=60 * 24 * 30)


class Examples(_Section):
    unit: Literal["conversation", "turn"] = "conversation"
    agent_turns: Literal["keep", "drop", "weight0"] = "keep"
    targets: Literal["assistant", "bot", "agent"] = "assistant"
    max_context_turns: int = Field(default=0, ge=0)
    system_prompt: str | None = None
    media: Literal["placeholder", "drop"] = "placeholder"


class Filter(_Section):
    min_user_turns: int = Field(default=1, ge=0)
    dedupe: bool = True


class Redact(_Section):
    pii: bool = True


class Split(_Section):
    train: float = Field(default=0.8, gt=0, le=1)
    validation: float = Field(default=0.1, ge=0, le=1)
    test: float = Field(default=0.1, ge=0, le=1)
    group_by: Literal["conversation", "customer"] = "customer"
    seed: int = 42

    @model_validator(mode="after")
    def _sums_to_one(self) -> Split:
        total = self.train + self.validation + self.test
        if abs(total - 1.0) > 1e-6:
            raise ValueError(
                f"split.train + split.validation + split.test must be 1, got {total:g}"
            )
        return self

    def fractions(self) -> dict[str, float]:
        return {"train": self.train, "validation": self.validation, "test": self.test}


_Patterns = Annotated[tuple[Annotated[str, Strict()], ...], Field(strict=False)]


def _compiles(patterns: tuple[str, ...]) -> tuple[str, ...]:
    for p in patterns:
        try:
            re.compile(p)
        except re.error as exc:
            raise ValueError(f"{p!r} is not a valid regular expression: {exc}") from None
    return patterns


class Preference(_Section):
    """How hand-offs after a bot failure become preference pairs (see :mod:`.signals`).
    Patterns are case-insensitive regular expressions searched in the text."""

    #: A customer message asking for a person (searched in its text, or equal to its payload).
    escalation: _Patterns = (
        r"\bhuman\b",
        r"\breal person\b",
        r"\b(an? |the |your )?agent\b",
        r"\b(talk|speak) to (someone|somebody|a person|anyone)\b",
        r"\boperator\b",
        r"\brepresentative\b",
    )
    #: Bot messages that announce the hand-off: never the rejected reply.
    announcements: _Patterns = (
        r"\bconnect(ing)? you\b",
        r"\btransfer(ring)? you\b",
        r"\bpassing you\b",
        r"\b(our|a) (human|support) (colleague|team|agent)",
        r"\bsomeone will be with you\b",
        r"\bone of our agents\b",
    )
    #: Agent messages that answer nothing: greetings, requests for details, closings.
    agent_skip: _Patterns = (
        r"\bthis is \w+",
        r"^\W*(hi|hello|hey)\b[^.!?]{0,40}\b(here|i'm|i am)\b",
        r"\bthanks for (waiting|your patience)\b",
        r"\b(take it from here|take a look|reading your conversation)\b",
        r"\bhow can i help\b",
        r"^\W*(could|can) you (please )?(confirm|send|give|share|tell)\b",
        r"^\W*what('s| is) (your|the best)\b",
        r"\banything else\b",
        r"\bhave a (great|nice|good) day\b",
        r"\b(bye|take care)\b",
        r"\bclose this chat\b",
    )
    #: Customer messages allowed between the agent joining and the agent's answer (restating
    #: the problem, giving details the agent asked for); past it the pair is dropped.
    max_restated: int = Field(default=3, ge=0)

    @model_validator(mode="after")
    def _valid(self) -> Preference:
        for key in ("escalation", "announcements", "agent_skip"):
            try:
                _compiles(getattr(self, key))
            except ValueError as exc:
                raise ValueError(f"preference.{key}: {exc}") from None
        return self


class Feedback(_Section):
    """Which customer signals label a bot reply good or bad (see :mod:`.signals`)."""

    #: Rating answers, matched exactly (case and surrounding space ignored) on the button's
    #: payload or text.
    good: _Patterns = ("Yes, thanks!", "Yes", "👍", "😀 Great", "Helpful")
    bad: _Patterns = ("No", "👎", "🙁 Bad", "Not helpful")
    #: A bot reply after which the customer was handed to a human is bad.
    escalation: bool = True
    #: The bot's fallback replies (case-insensitive regular expressions) are bad.
    fallback: _Patterns = (
        r"\b(didn't|did not|don't|do not) (understand|get) (that|you)\b",
        r"\bcouldn't (understand|open) that\b",
        r"\bnot sure (i understand|what you mean)\b",
        r"\bcan only read text\b",
        r"\b(rephrase|say that again)\b",
    )

    @model_validator(mode="after")
    def _valid(self) -> Feedback:
        try:
            _compiles(self.fallback)
        except ValueError as exc:
            raise ValueError(f"feedback.fallback: {exc}") from None
        both = {v.strip().casefold() for v in self.good} & {v.strip().casefold() for v in self.bad}
        if both:
            raise ValueError(f"feedback.good and feedback.bad both hold {sorted(both)[0]!r}")
        return self


class Recipe(_Section):
    """A validated recipe. :attr:`origin` and :attr:`text` say where it came from (the card
    quotes them)."""

    name: str
    format: str = "openai"
    source: Source = Source()
    conversations: Conversations = Conversations()
    examples: Examples = Examples()
    filter: Filter = Filter()
    redact: Redact = Redact()
    split: Split = Split()
    preference: Preference = Preference()
    feedback: Feedback = Feedback()

    _origin: str | None = PrivateAttr(default=None)
    _text: str | None = PrivateAttr(default=None)

    @property
    def origin(self) -> str | None:
        """The file the recipe was read from, as given."""
        return self._origin

    @property
    def text(self) -> str | None:
        """The recipe file's text as written (comments included)."""
        return self._text

    @model_validator(mode="after")
    def _coherent(self) -> Recipe:
        # The writers know their formats; imported here because they build on this module.
        from hooklake.datasets.formats import WRITERS

        ex = self.examples
        if not _NAME.match(self.name):
            raise ValueError(
                "name must be letters, digits, '_', '.', '-' (it names the output folder)"
            )
        writer = WRITERS.get(self.format)
        if writer is None:
            raise ValueError(f"format must be one of {', '.join(WRITERS)}")
        problem = writer.recipe_problem(self)
        if problem:
            raise ValueError(problem)
        if ex.targets == "agent" and ex.agent_turns != "keep":
            raise ValueError('examples.targets = "agent" needs examples.agent_turns = "keep"')
        if ex.system_prompt is not None and not ex.system_prompt.strip():
            raise ValueError("examples.system_prompt must not be blank (leave it out instead)")
        return self

    @property
    def split_authors(self) -> bool:
        """Whether bot and agent replies are trained differently, so they never share a turn."""
        ex = self.examples
        return ex.agent_turns == "weight0" or ex.targets != "assistant"

    @property
    def weighted(self) -> bool:
        """Whether assistant messages carry a 0/1 ``weight`` (some replies are context only)."""
        ex = self.examples
        return ex.agent_turns == "weight0" or ex.targets != "assistant" or ex.unit == "turn"

    def to_dict(self) -> dict[str, Any]:
        """The recipe with every default filled in, as plain JSON-able values."""
        return self.model_dump(mode="json")

    def to_json(self) -> bytes:
        return orjson.dumps(self.to_dict(), option=orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2)


def _where(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif not part.startswith(("function-", "constrained-")):
            out += f".{part}" if out else part
    return out


def _message(err: ErrorDetails) -> str:
    """One pydantic error as a sentence about the recipe key."""
    kind = err["type"]
    where = _where(tuple(err["loc"]))
    ctx = err.get("ctx") or {}
    if kind == "extra_forbidden":
        return f"{where} is not a known key"
    if kind == "missing":
        return f"{where} is required"
    if kind == "literal_error":
        options = re.findall(r"'([^']*)'", str(ctx.get("expected", "")))
        return f"{where} must be one of {', '.join(options)}"
    if kind == "value_error":
        # Model-level checks already name their keys.
        text = str(ctx.get("error", err["msg"]))
        return f"{where}: {text}" if where and not text.startswith(where) else text
    msg = str(err["msg"])
    msg = msg[0].lower() + msg[1:] if msg else msg
    return f"{where}: {msg}" if where else msg


def parse_recipe(doc: dict[str, Any], origin: str = "<recipe>") -> Recipe:
    """A recipe from an already parsed TOML document."""
    try:
        recipe = Recipe.model_validate(doc)
    except ValidationError as exc:
        raise ConfigError(f"recipe {origin}: {_message(exc.errors()[0])}") from None
    recipe._origin = origin
    return recipe


def load_recipe(path: Path | str) -> Recipe:
    """Read and validate the recipe file at ``path``."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"recipe {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"recipe {path} cannot be read: {exc}") from None
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"recipe {path} is not valid TOML: {exc}") from None
    recipe = parse_recipe(doc, str(path))
    recipe._text = text
    return recipe
