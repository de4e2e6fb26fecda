"""Format writers: one file per split, in the shape a training stack reads directly.

=============  ===============================================================================
``openai``     ``{split}.jsonl``, ``{"messages": [{"role", "content", "weight"?}]}`` per line,
               checked against OpenAI's fine-tuning data rules before it is written
``sharegpt``   ``{split}.jsonl``, ``{"conversations": [{"from", "value"}]}`` per line
=============  ===============================================================================

Hugging Face Parquet (``hf``) is in :mod:`.parquet`, TRL's own shapes (prompt-completion,
preference, feedback) in :mod:`.trl`; the registry of every format is :mod:`.formats`.

:class:`Writer` owns everything formats share: paths, a temporary file per split renamed into
place on :meth:`Writer.close` (readers never see half a dataset), cleanup on failure, row counts
and SHA-256 digests. A format class is the one home of its format: how one example is written
and checked, its description and loader for the dataset card (:attr:`Writer.description`,
:attr:`Writer.loader`), how its files read back (:meth:`Writer.read`, for :mod:`.explore`),
which recipes it accepts (:meth:`Writer.recipe_problem`) and its file suffix (for the clean-up
of other formats' files).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any, ClassVar

import orjson

from hooklake.datasets.flat import FlatExamples, flatten
from hooklake.datasets.jsonl import openai_lines, openai_ok
from hooklake.datasets.recipe import SPLITS
from hooklake.datasets.render import Example
from hooklake.errors import BuildError
from hooklake.layout import fsync_dir

if TYPE_CHECKING:
    from hooklake.datasets.card import DatasetStats
    from hooklake.datasets.recipe import Recipe

#: What the card says wherever replies carry a weight, because the trainer most users reach
#: for does not read it.
TRL_WEIGHT_NOTE = (
    "**Training with Hugging Face TRL?** TRL ignores the `weight` key: with a stock chat "
    "template every assistant message is trained on, context-only replies (weight 0) included. "
    'For TRL build the same recipe with `format = "prompt-completion"` and `unit = "turn"`: '
    "one row per trained reply, everything before it in the prompt, which TRL never trains on."
)

#: An example read back from a file: its (role, content) messages in order.
ReadBack = list[tuple[str, str]]

OPENAI_ROLES = frozenset({"system", "user", "assistant"})
OPENAI_KEYS = frozenset({"role", "content", "name", "weight"})


@dataclass(frozen=True, slots=True)
class OutputFile:
    """A finished output file: where it is, how many examples it holds, its digest."""

    path: Path
    rows: int
    size: int
    sha256: str


def shard_name(split: str, shard: int, suffix: str) -> str:
    """The file of one shard of a split; shard numbers sort in the order they were built."""
    return f"{split}-{shard:05d}.{suffix}"


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class Writer(ABC):
    """Writes examples into one file per split under ``out_dir``.

    Use as a context manager: leaving it normally renames every file into place, leaving it
    with an exception deletes the temporary files and leaves earlier outputs untouched.
    """

    format: ClassVar[str]
    suffix: ClassVar[str]
    #: One sentence for the dataset card: what a row looks like and what it is for.
    description: ClassVar[str]
    #: The ``datasets.load_dataset`` builder that reads the files (``json`` or ``parquet``).
    loader: ClassVar[str] = "json"
    #: Rows come from customers' signals (:mod:`.signals`), not from whole dialogues.
    from_signals: ClassVar[bool] = False
    #: Whether incremental builds may add shards (``train-00001.jsonl``) of this format.
    shards: ClassVar[bool] = True
    #: Columns that keep Landbot's ids of the customer (which redaction leaves as they are).
    id_columns: ClassVar[tuple[str, ...]] = ()

    def __init__(
        self,
        out_dir: Path,
        *,
        weighted: bool = False,
        splits: Sequence[str] = SPLITS,
        shard: int | None = None,
    ) -> None:
        self.out_dir = Path(out_dir)
        self.weighted = weighted
        self.splits = tuple(splits)
        self.shard = shard
        self.counts = dict.fromkeys(self.splits, 0)
        self._tmp: dict[str, Path] = {}
        self._sinks: dict[str, Any] = {}
        self.out_dir.mkdir(parents=True, exist_ok=True)
        tag = uuid.uuid4().hex[:12]
        try:
            for split in self.splits:
                tmp = self.out_dir / f".tmp-{tag}-{self.filename(split)}"
                self._tmp[split] = tmp
                self._sinks[split] = self._open(tmp)
        except BaseException:
            self.abort()
            raise

    def filename(self, split: str) -> str:
        """``train.jsonl``, or ``train-00003.jsonl`` for shard 3 of an incremental build."""
        if self.shard is None:
            return f"{split}.{self.suffix}"
        return shard_name(split, self.shard, self.suffix)

    def path(self, split: str) -> Path:
        return self.out_dir / self.filename(split)

    def write(self, split: str, example: Example) -> None:
        """Append ``example`` to ``split``; raises :class:`BuildError` if it would be invalid."""
        self._write(self._sinks[split], example, split, self.counts[split] + 1)
        self.counts[split] += 1

    def write_many(
        self, split: str, examples: Sequence[Example], flat: FlatExamples | None = None
    ) -> None:
        """Append ``examples`` to ``split`` in order (a format may write them in one go, from
        their columns ``flat`` when the caller has them)."""
        for example in examples:
            self.write(split, example)

    def write_flat(self, split: str, flat: FlatExamples) -> bool:
        """Append the examples ``flat`` holds to ``split`` straight from their columns, if this
        format can and every one passes its checks; False (nothing written) otherwise, and
        the caller hands them to :meth:`write_many` as records."""
        return False

    def close(self) -> dict[str, OutputFile]:
        """Finish every split file and move it into place. Returns them by split."""
        for split in self.splits:
            sink = self._sinks.pop(split)
            try:
                self._finish(sink)
            except BaseException:
                self.abort()
                raise
        out: dict[str, OutputFile] = {}
        for split in self.splits:
            final = self.path(split)
            os.replace(self._tmp.pop(split), final)
            out[split] = OutputFile(
                final, self.counts[split], final.stat().st_size, sha256_file(final)
            )
        fsync_dir(self.out_dir)
        return out

    def abort(self) -> None:
        """Drop everything written so far (no output file is touched)."""
        for sink in self._sinks.values():
            # A sink that fails to close must not stop the temporary files being removed.
            with contextlib.suppress(Exception):
                self._discard(sink)
        self._sinks.clear()
        for tmp in self._tmp.values():
            tmp.unlink(missing_ok=True)
        self._tmp.clear()

    def __enter__(self) -> Writer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is not None:
            self.abort()

    # What a format implements -------------------------------------------------------------

    @classmethod
    def recipe_problem(cls, recipe: Recipe) -> str | None:
        """Why ``recipe`` cannot be built in this format (``None`` when it can)."""
        return None

    @classmethod
    def card_section(cls, recipe: Recipe, stats: DatasetStats) -> list[str]:
        """Markdown lines this format adds to the dataset card after "How it was made"."""
        return [TRL_WEIGHT_NOTE, ""] if recipe.weighted else []

    @classmethod
    def read(cls, path: Path) -> Iterator[ReadBack]:
        """Each example of one written split file as (role, content) pairs."""
        with open(path, "rb") as lines:
            for line in lines:
                yield cls.read_record(orjson.loads(line))

    @classmethod
    def read_record(cls, record: dict[str, Any]) -> ReadBack:
        """One JSON line as (role, content) pairs."""
        return [(m["role"], m["content"]) for m in record["messages"]]

    @abstractmethod
    def _open(self, tmp: Path) -> Any:
        """Open the temporary file of one split and return the sink examples go to."""

    @abstractmethod
    def _write(self, sink: Any, example: Example, split: str, line: int) -> None:
        """Write one example (``line`` is its 1-based position in the split, for errors)."""

    @abstractmethod
    def _finish(self, sink: Any) -> None:
        """Flush, fsync and close a sink."""

    def _discard(self, sink: Any) -> None:
        sink.close()


class JsonlWriter(Writer):
    """One JSON object per line; a format only says what the object is."""

    suffix = "jsonl"

    @abstractmethod
    def record(self, example: Example) -> dict[str, Any]:
        """The JSON object for one example."""

    def check(self, record: dict[str, Any]) -> str | None:
        """Why ``record`` may not be written (``None`` when it is fine)."""
        return None

    def _open(self, tmp: Path) -> IO[bytes]:
        return open(tmp, "wb", buffering=1 << 20)

    def _write(self, sink: IO[bytes], example: Example, split: str, line: int) -> None:
        sink.write(self._line(example, split, line))

    def _line(self, example: Example, split: str, line: int) -> bytes:
        record = self.record(example)
        problem = self.check(record)
        if problem:
            raise BuildError(
                f"{self.filename(split)} line {line} (conversation {example.conversation_id}) "
                f"would not pass the {self.format} format checks: {problem}"
            )
        return orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE)

    def write_many(
        self, split: str, examples: Sequence[Example], flat: FlatExamples | None = None
    ) -> None:
        # One write call per batch and split instead of one per line.
        first = self.counts[split] + 1
        lines = [self._line(ex, split, first + i) for i, ex in enumerate(examples)]
        self._sinks[split].write(b"".join(lines))
        self.counts[split] += len(lines)

    def _finish(self, sink: IO[bytes]) -> None:
        sink.flush()
        os.fsync(sink.fileno())
        sink.close()


def openai_problem(record: dict[str, Any]) -> str | None:
    """The first reason ``record`` would fail OpenAI's chat fine-tuning data checks, or the
    stricter shape Hooklake promises: optional system first, then user and assistant turns
    alternating, ending with the assistant; weights 0/1 on assistant messages only."""
    messages = record.get("messages")
    if set(record) != {"messages"} or not isinstance(messages, list) or not messages:
        return 'a line must be {"messages": [...]} with at least one message'
    expected = "user"
    for i, m in enumerate(messages):
        if not isinstance(m, dict):
            return f"message {i} is not an object"
        unknown = set(m) - OPENAI_KEYS
        if unknown:
            return f"message {i} has unknown key {sorted(unknown)[0]!r}"
        role, content = m.get("role"), m.get("content")
        if role not in OPENAI_ROLES:
            return f"message {i} has unknown role {role!r}"
        if not isinstance(content, str) or not content.strip():
            return f"message {i} ({role}) has no text content"
        if "weight" in m and (role != "assistant" or m["weight"] not in (0, 1)):
            return f"message {i} ({role}) has weight {m['weight']!r}; only assistant 0/1"
        if role == "system":
            if i != 0:
                return f"message {i} is a system message after the first position"
            continue
        if role != expected:
            return f"message {i} is {role} where {expected} must come (strict alternation)"
        expected = "assistant" if role == "user" else "user"
    roles = [m["role"] for m in messages]
    if "user" not in roles or "assistant" not in roles:
        return "an example needs at least one user and one assistant message"
    if roles[-1] != "assistant":
        return "the last message must be the assistant's"
    if any("weight" in m for m in messages) and not any(m.get("weight") == 1 for m in messages):
        return "every assistant message has weight 0, so there is nothing to learn"
    return None


def openai_record(example: Example, weighted: bool) -> dict[str, Any]:
    """One line of the ``openai`` format; ``weight`` only when ``weighted``."""
    out = []
    for m in example.messages:
        msg: dict[str, Any] = {"role": m.role, "content": m.content}
        if weighted and m.weight is not None:
            msg["weight"] = m.weight
        out.append(msg)
    return {"messages": out}


class OpenAIWriter(JsonlWriter):
    format = "openai"
    description = (
        'one JSON object per line, `{"messages": [{"role", "content"}]}` (OpenAI chat '
        "fine-tuning format); assistant messages carry `weight` 0/1 when some replies are "
        "context only"
    )

    def record(self, example: Example) -> dict[str, Any]:
        return openai_record(example, self.weighted)

    def write_many(
        self, split: str, examples: Sequence[Example], flat: FlatExamples | None = None
    ) -> None:
        # The whole batch by Arrow when every example clears the checks (the usual case);
        # otherwise line by line, which stops at the first bad line and names it.
        if examples and self.write_flat(split, flat if flat is not None else flatten(examples)):
            return
        super().write_many(split, examples)

    def write_flat(self, split: str, flat: FlatExamples) -> bool:
        if not openai_ok(flat, self.weighted).all():
            return False
        self._sinks[split].write(openai_lines(flat, self.weighted))
        self.counts[split] += len(flat)
        return True

    def check(self, record: dict[str, Any]) -> str | None:
        return openai_problem(record)


class ShareGPTWriter(JsonlWriter):
    format = "sharegpt"
    description = (
        'one JSON object per line, `{"conversations": [{"from": "system"|"human"|"gpt", "value"}]}`'
    )
    FROM: ClassVar[dict[str, str]] = {"system": "system", "user": "human", "assistant": "gpt"}
    ROLE: ClassVar[dict[str, str]] = {v: k for k, v in FROM.items()}

    @classmethod
    def recipe_problem(cls, recipe: Recipe) -> str | None:
        if recipe.examples.unit == "conversation" and recipe.weighted:
            return "sharegpt has no per-message weight: use format openai or hf, or unit turn"
        return None

    @classmethod
    def read_record(cls, record: dict[str, Any]) -> ReadBack:
        return [(cls.ROLE.get(t["from"], t["from"]), t["value"]) for t in record["conversations"]]

    def record(self, example: Example) -> dict[str, Any]:
        return {
            "conversations": [
                {"from": self.FROM[m.role], "value": m.content} for m in example.messages
            ]
        }

    def check(self, record: dict[str, Any]) -> str | None:
        turns = record["conversations"]
        if not turns or turns[-1]["from"] != "gpt" or not any(t["from"] == "human" for t in turns):
            return "a conversation needs a human turn and must end with a gpt turn"
        return None
