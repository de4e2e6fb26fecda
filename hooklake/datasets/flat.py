"""A batch of examples as columns: every message of every example in one set of arrays.

What the one writing process does per example (fingerprints for dedupe, the ``openai`` lines
and their checks, the card's counts) reads the same few fields of every message. Laid out
once per batch as Arrow and NumPy columns, each of those is a handful of passes over the
batch instead of a Python loop per message.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from hooklake.datasets.render import Example, Message

#: Role codes of :attr:`FlatExamples.roles`.
ROLES = ("system", "user", "assistant")
_ROLE_CODE = {r: i for i, r in enumerate(ROLES)}
#: Weight codes: no weight, 0, 1 (anything else, which no example carries, is "other").
NO_WEIGHT, WEIGHT_0, WEIGHT_1, OTHER_WEIGHT = 0, 1, 2, 3
_WEIGHT_CODE = {0: WEIGHT_0, 1: WEIGHT_1}
#: The weight each code stands for (no example carries "other").
_WEIGHT_OF: dict[int, int | None] = {NO_WEIGHT: None, WEIGHT_0: 0, WEIGHT_1: 1}


@dataclass(frozen=True)
class FlatExamples:
    """The messages of ``len(starts) - 1`` examples; example ``k`` holds messages
    ``starts[k]:starts[k + 1]``, in order."""

    starts: npt.NDArray[np.int64]
    #: Index into :data:`ROLES` (-1: a role no example should hold).
    roles: npt.NDArray[np.int64]
    contents: pa.StringArray
    #: :data:`NO_WEIGHT`, :data:`WEIGHT_0`, :data:`WEIGHT_1` or :data:`OTHER_WEIGHT`.
    weights: npt.NDArray[np.int64]
    humans: npt.NDArray[np.bool_]

    def __len__(self) -> int:
        return len(self.starts) - 1

    @property
    def example_of(self) -> npt.NDArray[np.int64]:
        """The example of each message."""
        return np.repeat(np.arange(len(self)), np.diff(self.starts))

    def subset(self, picks: npt.NDArray[np.int64]) -> FlatExamples:
        """The examples ``picks`` (ascending), in that order."""
        sizes = np.diff(self.starts)[picks]
        rows = np.flatnonzero(np.repeat(np.isin(np.arange(len(self)), picks), np.diff(self.starts)))
        return FlatExamples(
            np.concatenate(([0], np.cumsum(sizes))).astype(np.int64),
            self.roles[rows],
            self.contents.take(pa.array(rows, pa.int64())),
            self.weights[rows],
            self.humans[rows],
        )


def flatten(examples: Sequence[Example]) -> FlatExamples:
    """The messages of ``examples`` as columns."""
    sizes = [len(ex.messages) for ex in examples]
    messages = [m for ex in examples for m in ex.messages]
    role = _ROLE_CODE.get
    weight = _WEIGHT_CODE.get
    weights = [m.weight for m in messages]
    return FlatExamples(
        np.concatenate(([0], np.cumsum(sizes, dtype=np.int64))).astype(np.int64),
        np.array([role(m.role, -1) for m in messages], dtype=np.int64),
        pa.array([m.content for m in messages], pa.string()),
        np.array(
            [NO_WEIGHT if w is None else weight(w, OTHER_WEIGHT) for w in weights], dtype=np.int64
        ),
        np.array([m.human for m in messages], dtype=np.bool_),
    )


@dataclass(frozen=True)
class ExampleColumns:
    """The examples a batch gave as columns, with whose they are: what a build writes without
    making an :class:`~.render.Example` per example (:meth:`to_examples` makes them for
    writers that need them)."""

    flat: FlatExamples
    #: Per example: the conversation, its channel and customer.
    conversation_ids: list[str]
    channel_ids: list[int | None]
    customer_ids: list[int | None]
    #: The source message keys of every example back to back; example ``k`` holds
    #: ``keys[key_starts[k]:key_starts[k + 1]]``.
    keys: pa.Array
    key_starts: npt.NDArray[np.int64]

    def __len__(self) -> int:
        return len(self.flat)

    def to_examples(self) -> list[Example]:
        """The examples as records."""
        roles = [ROLES[r] for r in self.flat.roles.tolist()]
        contents = self.flat.contents.to_pylist()
        weights = [_WEIGHT_OF[w] for w in self.flat.weights.tolist()]
        humans = self.flat.humans.tolist()
        keys = self.keys.to_pylist()
        starts = self.flat.starts.tolist()
        key_starts = self.key_starts.tolist()
        return [
            Example(
                [
                    Message(roles[i], contents[i], weights[i], humans[i])  # type: ignore[arg-type]
                    for i in range(starts[k], starts[k + 1])
                ],
                self.conversation_ids[k],
                self.channel_ids[k],
                self.customer_ids[k],
                keys[key_starts[k] : key_starts[k + 1]],
            )
            for k in range(len(self))
        ]

    def source_keys(self, picks: npt.NDArray[np.int64]) -> tuple[pa.Array, npt.NDArray[np.int64]]:
        """The source keys of the examples ``picks`` (ascending) back to back, and where each
        example's start (plus the end)."""
        sizes = np.diff(self.key_starts)[picks]
        offsets = np.concatenate(([0], np.cumsum(sizes))).astype(np.int64)
        rows = np.repeat(self.key_starts[picks] - offsets[:-1], sizes) + np.arange(offsets[-1])
        return self.keys.take(pa.array(rows, pa.int64())), offsets
