"""Arrow string arrays as NumPy bytes, for the few text passes a build makes over every byte
(JSON escapes, whitespace in dedupe): a comparison over a batch's bytes costs less than a
regex run text by text. Only ASCII bytes are ever matched or changed, and the bytes of a
multi-byte UTF-8 character are all 0x80 or above, so working on bytes keeps texts valid."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

_TAB, _CR, _FS, _US, _SPACE = 0x09, 0x0D, 0x1C, 0x1F, 0x20


@dataclass(frozen=True)
class TextBytes:
    """The bytes of a string array's texts, back to back, and where each text ends."""

    #: The array's type (``string`` or ``large_string``).
    kind: pa.DataType
    #: Text ``i`` is ``data[offsets[i]:offsets[i + 1]]``.
    offsets: npt.NDArray[np.int64]
    data: npt.NDArray[np.uint8]
    #: The array's validity as a bitmap of its own (None: no nulls).
    validity: pa.Buffer | None

    @classmethod
    def of(cls, texts: pa.Array) -> TextBytes:
        large = pa.types.is_large_string(texts.type)
        n = len(texts)
        _, offsets_buffer, data_buffer = texts.buffers()
        stored = np.frombuffer(offsets_buffer, dtype=np.int64 if large else np.int32)
        offsets = stored[texts.offset : texts.offset + n + 1].astype(np.int64)
        base = int(offsets[0])
        data = np.zeros(0, dtype=np.uint8)
        if data_buffer is not None and n:
            data = np.frombuffer(data_buffer, dtype=np.uint8)[base : int(offsets[-1])]
        # A slice's validity bits start mid-byte in its buffer: copied into a bitmap of their
        # own, they line up with the offsets above.
        validity = pc.is_valid(texts).buffers()[1] if texts.null_count else None
        return cls(texts.type, offsets - base, data, validity)

    def owners(self, positions: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        """The text each byte position lies in."""
        found: npt.NDArray[np.int64] = np.searchsorted(self.offsets, positions, side="right")
        return found - 1

    def replaced(self, data: npt.NDArray[np.uint8], offsets: npt.NDArray[np.int64]) -> pa.Array:
        """An array of the same type, nulls and length with the texts ``data`` and ``offsets``
        (``large_string`` if they no longer fit a ``string`` array's offsets)."""
        kind = self.kind
        if not pa.types.is_large_string(kind) and len(offsets) and offsets[-1] >= 2**31:
            kind = pa.large_string()
        width = np.int64 if pa.types.is_large_string(kind) else np.int32
        buffers = [self.validity, pa.py_buffer(offsets.astype(width)), pa.py_buffer(data)]
        null_count = -1 if self.validity is not None else 0
        return pa.Array.from_buffers(kind, len(offsets) - 1, buffers, null_count=null_count)


def _other_white(d: npt.NDArray[np.uint8]) -> npt.NDArray[np.bool_]:
    """Which bytes are ASCII whitespace other than the space (``\\s`` in ASCII: tab to carriage
    return, and the four separators 0x1C-0x1F)."""
    return ((d >= _TAB) & (d <= _CR)) | ((d >= _FS) & (d <= _US))


def other_space_or_runs(texts: pa.Array) -> npt.NDArray[np.bool_]:
    """Per text: whether it holds ASCII whitespace other than a space, or two spaces in a row
    (what collapsing whitespace would change in an ASCII text besides its ends)."""
    b = TextBytes.of(texts)
    d = b.data
    other = np.flatnonzero(_other_white(d))
    space = d == _SPACE
    pairs = np.flatnonzero(space[:-1] & space[1:])
    found = np.zeros(len(texts), dtype=bool)
    found[b.owners(other)] = True
    owner = b.owners(pairs)
    found[owner[owner == b.owners(pairs + 1)]] = True
    return found


def ascii_runs_collapsed(texts: pa.Array) -> pa.Array:
    """The texts with every run of ASCII whitespace (``\\s`` in ASCII, spaces included) as one
    space: what ``re.sub(r"[\\t-\\r\\x1c-\\x1f ]+", " ", text)`` gives, for every text at once."""
    b = TextBytes.of(texts)
    d = b.data
    white = _other_white(d) | (d == _SPACE)
    # A whitespace byte stays when the byte before it in its text is not whitespace.
    after_white = np.zeros(len(d), dtype=bool)
    after_white[1:] = white[:-1]
    starts = b.offsets[:-1]
    after_white[starts[starts < len(d)]] = False
    keep = ~white | ~after_white
    data = np.where(white, np.uint8(_SPACE), d)[keep]
    kept = np.concatenate(([0], np.cumsum(keep, dtype=np.int64)))
    return b.replaced(data, kept[b.offsets])
