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

from hooklake.datasets.render import Example

#: Role codes of :attr:`FlatExamples.roles`.
ROLES = ("system", "user", "assistant")
_ROLE_CODE = {r: i for i, r in enumerate(ROLES)}
#: Weight codes: no weight, 0, 1 (anything else, which no example carries, is "other").
NO_WEIGHT, WEIGHT_0, WEIGHT_1, OTHER_WEIGHT = 0, 1, 2, 3
_WEIGHT_CODE = {0: WEIGHT_0, 1: WEIGHT_1}


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
