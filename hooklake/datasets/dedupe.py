"""Drop examples whose text was already seen (bots repeat themselves; so do customers).

Two examples are duplicates when their roles and normalised text (case folded, whitespace
collapsed) match, whatever their weights or source messages. The first one in build order
(conversation id, then position) is kept, so the outcome is deterministic.

Memory: one 64-bit digest per distinct example, 8 bytes each (:mod:`.distinct`; a Python set
of ints took about 80 MB per million). With 64-bit BLAKE2b digests the chance of any false
duplicate stays below one in a million up to about six million examples.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from hooklake.datasets.distinct import DigestSet
from hooklake.datasets.flat import ROLES, FlatExamples
from hooklake.datasets.render import Message
from hooklake.datasets.text_bytes import ascii_runs_collapsed, other_space_or_runs

_SPACE = re.compile(r"\s+")
# What ``\s`` matches in a Python ``str`` pattern, spelled for RE2 (Arrow's regex engine).
_RE2_SPACE = "[" + "".join(f"\\x{{{c:x}}}" for c in range(0x110000) if chr(c).isspace()) + "]+"


def normalise(text: str) -> str:
    """The form texts are compared in: case folded, runs of whitespace as one space."""
    return _SPACE.sub(" ", text.casefold()).strip()


def fingerprint(messages: Iterable[Message]) -> int:
    """A 64-bit digest of an example's roles and normalised texts."""
    # One digest call over the joined parts: the same bytes as one update per part.
    data = "".join(f"{m.role}\x1f{normalise(m.content)}\x1e" for m in messages)
    return int.from_bytes(hashlib.blake2b(data.encode(), digest_size=8).digest(), "little")


def fingerprints(examples: Sequence[Sequence[Message]]) -> list[int]:
    """``[fingerprint(ex) for ex in examples]``, normalising every text of the batch in one
    Arrow pass instead of one regex call per message."""
    roles = [m.role for ex in examples for m in ex]
    folded = pa.array([m.content.casefold() for ex in examples for m in ex], pa.large_string())
    spaced = pc.replace_substring_regex(folded, _RE2_SPACE, " ")
    texts = pc.utf8_trim(spaced, characters=" ").to_pylist()
    out = []
    at = 0
    for ex in examples:
        end = at + len(ex)
        data = "".join(f"{r}\x1f{t}\x1e" for r, t in zip(roles[at:end], texts[at:end], strict=True))
        out.append(int.from_bytes(hashlib.blake2b(data.encode(), digest_size=8).digest(), "little"))
        at = end
    return out


class Deduper:
    """Remembers the digests of examples kept so far (``seen``: those of earlier increments
    of an incremental build, so a later shard never repeats an earlier one), 8 bytes each
    (:class:`.distinct.DigestSet`)."""

    def __init__(self, seen: Iterable[int] | np.ndarray = ()) -> None:
        self._seen = DigestSet(seen)
        self.dropped = 0
        self._added: list[np.ndarray] = []

    def first_times(self, digests: Sequence[int] | np.ndarray) -> np.ndarray:
        """For each of a batch's digests (:func:`fingerprints`), in build order, whether it
        is the first time it is seen; remembers them."""
        batch = np.asarray(digests, dtype=np.uint64)
        fresh = self._seen.first_seen(batch)
        self.dropped += int(len(fresh) - fresh.sum())
        self._added.append(batch[fresh])
        return fresh

    @property
    def added(self) -> np.ndarray:
        """The digests first seen since this deduper was made, in order (what an increment
        persists)."""
        return np.concatenate(self._added) if self._added else np.zeros(0, dtype=np.uint64)

    def __len__(self) -> int:
        return len(self._seen)


def normalised(texts: pa.StringArray) -> pa.LargeStringArray:
    """:func:`normalise` of every text. Most texts are ASCII with single spaces: for them,
    case folding is lower-casing ASCII letters and nothing but the ends needs trimming. ASCII
    texts with other whitespace or runs of it (a dialog's options on lines of their own) also
    have their runs collapsed, on their bytes (:mod:`.text_bytes`); only the others (other
    scripts, other spaces) go through Python's own case folding and splitting, each distinct
    one once."""
    wide = pc.cast(texts, pa.large_string())
    lowered = pc.ascii_lower(wide)
    out = pc.utf8_trim(lowered, characters=" ")
    ascii_ = pc.string_is_ascii(wide).to_numpy(zero_copy_only=False)
    spaced = np.flatnonzero(ascii_ & other_space_or_runs(wide))
    other = np.flatnonzero(~ascii_)
    if not len(spaced) and not len(other):
        return out
    # Bots and customers repeat themselves (a dialog's options on lines of their own): each
    # distinct text has its runs collapsed, or goes through Python, once.
    spaced_codes = pc.dictionary_encode(lowered.take(pa.array(spaced, pa.int64())))
    runs = ascii_runs_collapsed(spaced_codes.dictionary)
    collapsed = pc.utf8_trim(runs, characters=" ").take(spaced_codes.indices)
    encoded = pc.dictionary_encode(wide.take(pa.array(other, pa.int64())))
    distinct = [" ".join(t.casefold().split()) for t in encoded.dictionary.to_pylist()]
    python = pa.array(distinct, pa.large_string()).take(encoded.indices)
    # Each text from the first Arrow pass, the second, or Python's.
    where = np.arange(len(texts), dtype=np.int64)
    where[spaced] = len(texts) + np.arange(len(spaced))
    where[other] = len(texts) + len(spaced) + np.arange(len(other))
    return pa.concat_arrays([out, collapsed, python]).take(pa.array(where))


def flat_fingerprints(flat: FlatExamples) -> list[int]:
    """:func:`fingerprints` of the examples in ``flat``, their texts joined by Arrow too."""
    texts = normalised(flat.contents)
    roles = pa.array(ROLES, pa.large_string()).take(pa.array(flat.roles))

    def s(text: str) -> pa.Scalar:
        return pa.scalar(text, pa.large_string())

    parts = pc.binary_join_element_wise(roles, s("\x1f"), texts, s("\x1e"), s(""))
    lists = pa.LargeListArray.from_arrays(pa.array(flat.starts, pa.int64()), parts)
    data = pc.cast(pc.binary_join(lists, s("")), pa.large_binary())
    return [
        int.from_bytes(hashlib.blake2b(d, digest_size=8).digest(), "little")
        for d in data.to_pylist()
    ]
