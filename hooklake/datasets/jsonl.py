"""The ``openai`` format's lines for a whole batch of examples, written by Arrow.

:class:`~.writers.OpenAIWriter` checks each record and serialises it with orjson, one example at
a time. For a batch laid out as columns (:mod:`.flat`) the same bytes come from a few passes
over the batch: texts escaped as orjson escapes them (on their bytes, with numpy), message
objects and lines joined from their parts by Arrow. The checks :func:`~.writers.openai_problem`
makes become comparisons over the columns; a batch holding an example they cannot clear goes
back to the writer's own path, which names the line and the problem.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from hooklake.datasets.flat import NO_WEIGHT, OTHER_WEIGHT, ROLES, WEIGHT_1, FlatExamples
from hooklake.datasets.text_bytes import TextBytes

SYSTEM, USER, ASSISTANT = 0, 1, 2
#: What ``str.strip()`` strips (the check wants text left after it).
_WHITESPACE = "".join(chr(c) for c in range(0x110000) if chr(c).isspace())
#: What orjson writes for each byte it escapes, after the backslash: a letter for the short
#: escapes, ``u00XY`` (lower-case hex) for every other byte below 0x20.
_SHORT = {0x5C: "\\", 0x22: '"', 0x0A: "n", 0x0D: "r", 0x09: "t", 0x08: "b", 0x0C: "f"}
_ESCAPED_BYTES = [*range(0x20), 0x22, 0x5C]
#: Per escaped byte: how many bytes go in before it, which (at most five), and the byte that
#: takes its place: "\\" before "n" for a newline, "\\u00" and "1" before "f" for 0x1F.
_INSERTED = np.zeros(256, dtype=np.int64)
_BEFORE = np.zeros((256, 5), dtype=np.uint8)
_REPLACED = np.zeros(256, dtype=np.uint8)
for _byte in _ESCAPED_BYTES:
    _sequence = ("\\" + _SHORT.get(_byte, f"u{_byte:04x}")).encode()
    _INSERTED[_byte] = len(_sequence) - 1
    _BEFORE[_byte, : len(_sequence) - 1] = list(_sequence[:-1])
    _REPLACED[_byte] = _sequence[-1]


def json_strings(texts: pa.Array) -> pa.Array:
    """Each text (``string`` or ``large_string``) as a JSON string, quotes included, byte for
    byte what ``orjson.dumps`` gives; nulls stay null.

    The escapes go into the texts' bytes all at once with numpy (comparisons find the bytes to
    escape, one insertion writes every sequence), not text by text: half the time of Arrow's
    replacements on a build's texts, and none when nothing needs escaping (message keys)."""
    b = TextBytes.of(texts)
    escaped = np.flatnonzero((b.data < 0x20) | (b.data == 0x22) | (b.data == 0x5C))
    if len(escaped):
        byte = b.data[escaped]
        inserted = _INSERTED[byte]
        out = b.data.copy()
        out[escaped] = _REPLACED[byte]
        out = np.insert(
            out, np.repeat(escaped, inserted), _BEFORE[byte][np.arange(5) < inserted[:, None]]
        )
        # Each text's end moves by what was inserted before it.
        grown = np.concatenate(([0], np.cumsum(inserted)))
        texts = b.replaced(out, b.offsets + grown[np.searchsorted(escaped, b.offsets)])
    quote = pa.scalar('"', texts.type)
    return pc.binary_join_element_wise(quote, texts, quote, pa.scalar("", texts.type))


def openai_ok(flat: FlatExamples, weighted: bool) -> npt.NDArray[np.bool_]:
    """Examples sure to pass :func:`~.writers.openai_problem`: an optional system message
    first, then user and assistant alternating from the user and ending with the assistant,
    every text with something besides whitespace, 0/1 weights on assistant messages only and
    at least one 1 when there are weights."""
    sizes = np.diff(flat.starts)
    ok = np.zeros(len(flat), dtype=bool)
    full = np.flatnonzero(sizes > 0)
    if not len(full):
        return ok
    roles = flat.roles
    first = flat.starts[:-1]
    owner = flat.example_of
    j = np.arange(len(roles)) - first[owner]
    has_system = roles[first[owner]] == SYSTEM
    expected = np.where((j - has_system) % 2 == 0, USER, ASSISTANT)
    good = np.where(roles == SYSTEM, j == 0, roles == expected)
    trimmed = pc.utf8_trim(flat.contents, characters=_WHITESPACE)
    good &= pc.greater(pc.binary_length(trimmed), 0).to_numpy(zero_copy_only=False)
    shown = flat.weights != NO_WEIGHT if weighted else np.zeros(len(roles), dtype=bool)
    good &= ~shown | ((roles == ASSISTANT) & (flat.weights != OTHER_WEIGHT))
    # Empty examples hold no messages, so the other examples' runs stay whole without them.
    at = first[full]
    ok[full] = np.logical_and.reduceat(good, at) & (roles[flat.starts[full + 1] - 1] == ASSISTANT)
    if weighted:
        ok[full] &= ~np.logical_or.reduceat(shown, at) | np.logical_or.reduceat(
            flat.weights == WEIGHT_1, at
        )
    return ok


def openai_lines(flat: FlatExamples, weighted: bool) -> bytes:
    """The ``openai`` lines of every example in ``flat``, newline after each, as one block."""
    if len(flat) == 0:
        return b""
    roles = pa.array(ROLES, pa.string()).take(pa.array(flat.roles))
    weight_part: pa.Array | pa.Scalar = pa.scalar("", pa.string())
    if weighted:
        weights = pa.array(["", ',"weight":0', ',"weight":1', ""], pa.string())
        weight_part = weights.take(pa.array(flat.weights))
    objects = pc.binary_join_element_wise(
        '{"role":"', roles, '","content":', json_strings(flat.contents), weight_part, "}", ""
    )
    lists = pa.ListArray.from_arrays(pa.array(flat.starts, pa.int32()), objects)
    lines = pc.binary_join_element_wise('{"messages":[', pc.binary_join(lists, ","), "]}\n", "")
    return _block(lines)


def json_list_lines(texts: pa.StringArray, starts: npt.NDArray[np.int64]) -> bytes:
    """A line per run ``texts[starts[k]:starts[k + 1]]``: the run as a JSON list of strings,
    byte for byte what ``orjson.dumps`` gives, then a newline."""
    if len(starts) < 2:
        return b""
    lists = pa.ListArray.from_arrays(pa.array(starts, pa.int32()), json_strings(texts))
    return _block(pc.binary_join_element_wise("[", pc.binary_join(lists, ","), "]\n", ""))


def _block(lines: pa.StringArray) -> bytes:
    """The strings of ``lines`` back to back, as they lie in the array's data buffer."""
    if not len(lines):
        return b""
    offsets = np.frombuffer(lines.buffers()[1], dtype=np.int32)[lines.offset :]
    start, end = int(offsets[0]), int(offsets[len(lines)])
    block: bytes = lines.buffers()[2].slice(start, end - start).to_pybytes()
    return block
