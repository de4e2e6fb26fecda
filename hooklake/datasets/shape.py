"""The engine-neutral core of a build: a batch of whole conversations in, their examples out.

:func:`shape_batch` is what every engine calls: the DuckDB pipeline of :mod:`.build` on the
batches :mod:`.stream` cuts, and a Spark job on its partitions. It selects the conversations
the recipe's dates pick, gives each its split (:mod:`.split`), renders every message
(:mod:`.render`), redacts the batch (:meth:`.Redactor.redact_batch`) and shapes each
conversation's examples (:mod:`.examples`). What stays with the one process that writes is
what depends on the order of the whole build: dropping duplicate examples (the first one in
build order is kept, :mod:`.dedupe`) and writing.

Per message, the work is columnar: roles and kinds are looked up once per distinct value,
texts and buttons are trimmed by Arrow, dialogs, cards and media (about a fifth of the
messages) are rendered once per distinct (type, text, URL, shown part of the stored message:
a bot shows the same few dialogs and cards over and over), and redaction scans the whole batch
in a few regex passes. Recipes that make one example per conversation (the common case) get
their turns and examples from :mod:`.dialogues`, over arrays; the others conversation by
conversation (:mod:`.examples`). :mod:`.reference` is the plain per-message version this must
equal.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from hooklake.datasets.dialogues import batch_examples, handles
from hooklake.datasets.examples import Conversation, conversation_examples_of
from hooklake.datasets.flat import ExampleColumns
from hooklake.datasets.recipe import Recipe
from hooklake.datasets.redact import Redactor, known_values_of
from hooklake.datasets.render import (
    SENDER_ROLES,
    SILENT_TYPES,
    TEXT_TYPES,
    Example,
    Rendered,
    render_text,
)
from hooklake.datasets.signals import Rules
from hooklake.datasets.split import Splitter, group_key

#: The columns a batch must hold (``build_messages.sql``), one row per message, ordered by
#: conversation and position, every conversation whole. ``message`` is the stored message
#: (``raw``) of the types rendered from it, whole or cut to the part rendering reads
#: (``hooklake_shown`` in ``macros.sql``): both render the same.
BUILD_COLUMNS = (
    "conversation_id",
    "channel_id",
    "customer_id",
    "message_key",
    "sender_type",
    "type",
    "text",
    "url",
    "message",
    "payload",
    "customer",
    "date",
)

#: Their types.
BUILD_SCHEMA = pa.schema(
    [
        pa.field("conversation_id", pa.string()),
        pa.field("channel_id", pa.int64()),
        pa.field("customer_id", pa.int64()),
        pa.field("message_key", pa.string()),
        pa.field("sender_type", pa.string()),
        pa.field("type", pa.string()),
        pa.field("text", pa.string()),
        pa.field("url", pa.string()),
        pa.field("message", pa.string()),
        pa.field("payload", pa.string()),
        pa.field("customer", pa.string()),
        pa.field("date", pa.date32()),
    ]
)

#: What Python's ``str.strip()`` strips, for Arrow's trim to do the same.
_WHITESPACE = "".join(chr(c) for c in range(0x110000) if chr(c).isspace())
_SILENT, _TEXT, _OTHER = 0, 1, 2
_SENDER_CODE = {s: i for i, s in enumerate(SENDER_ROLES)}


@dataclass
class ShapedBatch:
    """What one batch gave, in build order.

    ``examples[i]`` goes to split ``splits[i]`` (a code of :mod:`.split`). ``conversations``,
    ``groups`` and ``conversation_splits`` describe every conversation the recipe selected
    from the batch (those outside ``source.since``/``until`` are not counted), whether it gave
    examples or not; ``dropped`` counts those that gave none, by reason.
    """

    #: The examples as records, unless they came as columns (:attr:`columns`): then
    #: :attr:`examples` makes them on first use.
    records: list[Example] | None = None
    #: The examples as columns: recipes :mod:`.dialogues` shapes (one example per
    #: conversation) give them so, and the writer reads them without records.
    columns: ExampleColumns | None = None
    splits: list[int] = field(default_factory=list)
    conversations: list[str] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)
    conversation_splits: list[int] = field(default_factory=list)
    messages_read: int = 0
    dropped: Counter[str] = field(default_factory=Counter)
    redactions: Counter[str] = field(default_factory=Counter)
    signal_notes: Counter[str] = field(default_factory=Counter)

    @property
    def examples(self) -> list[Example]:
        """The examples in build order, as records."""
        if self.records is None:
            self.records = self.columns.to_examples() if self.columns is not None else []
        return self.records

    @examples.setter
    def examples(self, examples: list[Example]) -> None:
        self.records, self.columns = examples, None


def conversation_starts(ids: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Row indices where a new conversation starts in rows ordered by conversation (plus the
    row count at the end), so conversation ``k`` is rows ``starts[k]:starts[k + 1]``."""
    n = len(ids)
    if n == 0:
        return np.zeros(1, dtype=np.int64)
    change = pc.not_equal(ids[1:], ids[:-1]).to_numpy(zero_copy_only=False)
    return np.concatenate(([0], np.flatnonzero(change) + 1, [n])).astype(np.int64)


def _selected(batch: pa.Table, starts: np.ndarray, recipe: Recipe) -> tuple[pa.Table, np.ndarray]:
    """The batch without conversations that start outside the recipe's dates: a
    conversation's date is that of its first message the build reads."""
    since, until = recipe.source.since, recipe.source.until
    if (since is None and until is None) or batch.num_rows == 0:
        return batch, starts
    first = pc.take(batch.column("date"), pa.array(starts[:-1]))
    keep = pa.array(np.ones(len(first), dtype=bool))
    if since is not None:
        keep = pc.and_(keep, pc.greater_equal(first, pa.scalar(since, pa.date32())))
    if until is not None:
        keep = pc.and_(keep, pc.less_equal(first, pa.scalar(until, pa.date32())))
    keep_conv = keep.to_numpy(zero_copy_only=False)
    if keep_conv.all():
        return batch, starts
    rows = np.repeat(keep_conv, np.diff(starts))
    batch = batch.filter(pa.array(rows))
    return batch, conversation_starts(batch.column("conversation_id"))


def _encoded(column: pa.ChunkedArray) -> tuple[list[str | None], npt.NDArray[np.int64]]:
    """The distinct values of a string column, ``None`` last, and for each row the index of
    its value among them (a null's is the last)."""
    encoded = pc.dictionary_encode(column).combine_chunks()
    values: list[str | None] = [*encoded.dictionary.to_pylist(), None]
    codes = encoded.indices.fill_null(len(values) - 1).to_numpy(zero_copy_only=False)
    return values, codes.astype(np.int64)


def _per_value(column: pa.ChunkedArray, code: Callable[[str | None], int]) -> npt.NDArray[np.int64]:
    """``code`` of every value of a string column, computed once per distinct value."""
    values, codes = _encoded(column)
    table = np.array([code(v) for v in values], dtype=np.int64)
    return table[codes]


def _kind(msg_type: str | None) -> int:
    kind = (msg_type or "").lower()
    return _SILENT if kind in SILENT_TYPES else _TEXT if kind in TEXT_TYPES else _OTHER


def render_batch(
    batch: pa.Table, media: str
) -> tuple[npt.NDArray[np.int64], pa.StringArray, npt.NDArray[np.int64]]:
    """The rows of ``batch`` that show something in the dialogue, what each shows, as
    :func:`~.render.render_message` would say, and who sent each (an index into
    :data:`~.render.SENDER_ROLES`): (row indices, texts, senders)."""
    roles = _per_value(batch.column("sender_type"), lambda v: _SENDER_CODE.get(v or "", -1))
    kinds = _per_value(batch.column("type"), _kind)
    wanted = roles >= 0
    text_rows = np.flatnonzero(wanted & (kinds == _TEXT))
    trimmed = pc.utf8_trim(
        pc.take(batch.column("text"), pa.array(text_rows, pa.int64())), characters=_WHITESPACE
    )
    other_rows = np.flatnonzero(wanted & (kinds == _OTHER))
    # A bot shows the same dialogs and cards over and over, and the build query gives the
    # part of each stored message rendering reads (hooklake_shown): each distinct
    # (type, text, url, message) is rendered once.
    first, inverse = _distinct_rows(batch, ("type", "text", "url", "message"), other_rows)
    take = pa.array(first, pa.int64())
    cols = [pc.take(batch.column(c), take).to_pylist() for c in ("type", "text", "url")]
    stored = _stored(batch.column("message"), first)
    distinct = pa.array(
        [
            render_text(k, text, url, msg, media)
            for k, text, url, msg in zip(*cols, stored, strict=True)
        ],
        pa.string(),
    )
    rendered = distinct.take(pa.array(inverse, pa.int64()))
    # Both kinds back in row order; rows that show nothing ("" or no text) go.
    at = np.concatenate((text_rows, other_rows))
    order = np.argsort(at, kind="stable")
    shown = pa.concat_arrays([trimmed.combine_chunks(), rendered]).take(pa.array(order))
    keep = pc.fill_null(pc.greater(pc.binary_length(shown), 0), False)
    rows = at[order][keep.to_numpy(zero_copy_only=False)].astype(np.int64)
    return rows, shown.filter(keep), roles[rows]


def _distinct_rows(
    batch: pa.Table, columns: tuple[str, ...], rows: npt.NDArray[np.int64]
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """The distinct values of ``columns`` over ``rows`` of ``batch``: the row of ``batch``
    where each first occurs, and for each of ``rows`` which of them it holds."""
    if not len(rows):
        return rows, rows
    take = pa.array(rows, pa.int64())
    key = np.zeros(len(rows), dtype=np.int64)
    for name in columns:
        values, codes = _encoded(pc.take(batch.column(name), take))
        # Renumbered densely after each column, so the key stays below len(rows) ** 2.
        _, key = np.unique(key * len(values) + codes, return_inverse=True)
    _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    return rows[first], inverse.astype(np.int64)


def _stored(column: pa.ChunkedArray, rows: npt.NDArray[np.int64]) -> list[memoryview | None]:
    """The stored messages of ``rows`` as views of Arrow's bytes: orjson reads them as they
    lie, with no copy of the column and no Python string per message."""
    messages = column.combine_chunks()
    if not len(rows):
        return []
    if messages.null_count == len(messages):
        return [None] * len(rows)
    wide = pa.types.is_large_string(messages.type)
    offsets = np.frombuffer(messages.buffers()[1], dtype=np.int64 if wide else np.int32)
    offsets = offsets[messages.offset : messages.offset + len(messages) + 1]
    data = memoryview(messages.buffers()[2])
    valid = messages.is_valid().to_numpy(zero_copy_only=False)[rows].tolist()
    begin, end = offsets[rows].tolist(), offsets[rows + 1].tolist()
    return [data[b:e] if v else None for b, e, v in zip(begin, end, valid, strict=True)]


def _known_by_conversation(
    customers: pa.ChunkedArray,
    conv_of_row: npt.NDArray[np.int64],
    owner: npt.NDArray[np.int64],
    count: int,
) -> list[tuple[tuple[str, str], ...]]:
    """The known values (:func:`~.redact.known_values`) of each of ``count`` conversations
    that has rendered rows (``owner``), from the distinct ``customer`` snapshots of its rows:
    each distinct snapshot of the batch is read from Arrow, and parsed, once."""
    values, codes = _encoded(customers)
    # Snapshots numbered in the order of their texts, the order known_values reads them in.
    order = sorted(range(len(values) - 1), key=lambda i: values[i] or "")
    rank = np.empty(len(values), dtype=np.int64)
    rank[order] = np.arange(len(order))
    rank[-1] = len(order)  # null
    # Distinct (conversation, snapshot) pairs of the conversations with rendered rows.
    wanted = np.zeros(count, dtype=bool)
    wanted[owner] = True
    rows = np.flatnonzero(wanted[conv_of_row])
    pairs = np.unique(conv_of_row[rows] * len(values) + rank[codes[rows]])
    conv, ranked = np.divmod(pairs, len(values))
    bounds = np.searchsorted(conv, np.arange(count + 1)).tolist()
    ranked_of = ranked.tolist()
    snapshots = [values[i] for i in order] + [None]
    return known_values_of(snapshots, (ranked_of[bounds[k] : bounds[k + 1]] for k in range(count)))


def shape_batch(
    batch: pa.RecordBatch | pa.Table,
    recipe: Recipe,
    rules: Rules | None = None,
) -> ShapedBatch:
    """Shape a batch of whole conversations into examples: the core every build engine calls.

    ``batch`` holds the rows of :data:`BUILD_COLUMNS` (what ``build_messages.sql`` returns),
    ordered by conversation id and position, with every conversation complete (no
    conversation may continue in another batch). ``rules`` are the recipe's compiled signal
    rules (:class:`~.signals.Rules`) for the ``preference`` and ``feedback`` formats, else
    ``None``.

    Returns a :class:`ShapedBatch`: the examples of the conversations the recipe's dates
    select, in build order (conversation id, then position), each with its split, and what
    the batch counted (messages read, redactions, conversations dropped and why). Duplicate
    examples are still in it: dropping them keeps the first in the order of the whole build,
    so it is the caller's, on one process, as is writing.

    The result is a function of the batch and the recipe only, so batches can be shaped in
    any order and on any machine, and equals what :func:`.reference.shape_reference` gives
    one message at a time.
    """
    table = batch if isinstance(batch, pa.Table) else pa.Table.from_batches([batch])
    missing = [c for c in BUILD_COLUMNS if c not in table.column_names]
    if missing:
        raise ValueError(f"shape_batch needs the columns of build_messages.sql; missing {missing}")
    out = ShapedBatch()
    starts = conversation_starts(table.column("conversation_id"))
    table, starts = _selected(table, starts, recipe)
    if table.num_rows == 0:
        return out
    out.messages_read = table.num_rows
    rows, shown, senders_code = render_batch(table, recipe.examples.media)
    conv_of_row = np.repeat(np.arange(len(starts) - 1), np.diff(starts))
    owner = conv_of_row[rows] if len(rows) else np.zeros(0, dtype=np.int64)
    take = pa.array(rows)
    keys = pc.take(table.column("message_key"), take).combine_chunks()
    # Payloads are few (button clicks): only the rows that hold one are read.
    payload_column = pc.take(table.column("payload"), take).combine_chunks()
    paid = np.flatnonzero(
        pc.fill_null(pc.greater(pc.binary_length(payload_column), 0), False).to_numpy(
            zero_copy_only=False
        )
    )
    paid_texts = payload_column.take(pa.array(paid, pa.int64()))

    redactor = Redactor()
    texts: pa.Array = shown
    if recipe.redact.pii and len(rows):
        known = _known_by_conversation(
            table.column("customer"), conv_of_row, owner, len(starts) - 1
        )
        redacted = redactor.redact_array(
            pa.concat_arrays([shown.cast(pa.large_string()), paid_texts.cast(pa.large_string())]),
            np.concatenate((owner, owner[paid])),
            known,
        )
        texts = redacted.slice(0, len(shown))
        paid_texts = redacted.slice(len(shown))
    out.redactions = redactor.counts

    ids = pc.take(table.column("conversation_id"), pa.array(starts[:-1])).to_pylist()
    channels = pc.take(table.column("channel_id"), pa.array(starts[:-1])).to_pylist()
    customer_ids = pc.take(table.column("customer_id"), pa.array(starts[:-1])).to_pylist()
    splitter = Splitter(recipe.split.fractions(), recipe.split.seed)
    group_by = recipe.split.group_by
    if rules is None and handles(recipe):
        columns, why = batch_examples(
            recipe, len(ids), owner, senders_code, texts, keys, ids, channels, customer_ids
        )
        out.columns = columns
        for k, conv_id in enumerate(ids):
            group = group_key(group_by, conv_id, channels[k], customer_ids[k])
            split = splitter(group)
            out.conversations.append(conv_id)
            out.groups.append(group)
            out.conversation_splits.append(split)
            if why[k] is not None:
                out.dropped[why[k] or ""] += 1
                continue
            out.splits.append(split)
        return out
    payloads: list[str | None] = [None] * len(rows)
    for j, p in zip(paid.tolist(), paid_texts.to_pylist(), strict=True):
        payloads[j] = p
    texts_of: list[str] = texts.to_pylist()
    keys_of: list[str] = keys.to_pylist()
    senders = pc.take(table.column("sender_type"), take).to_pylist()
    kinds = pc.take(table.column("type"), take).to_pylist()
    said = [
        Rendered(*SENDER_ROLES[s or ""], t, key)
        for s, t, key in zip(senders, texts_of, keys_of, strict=True)
    ]
    if rules is not None:
        for r, kind, payload in zip(said, kinds, payloads, strict=True):
            r.kind, r.payload = kind or "", payload
    # Rendered rows of conversation k: said[ends[k - 1]:ends[k]] (owners ascend).
    ends = np.searchsorted(owner, np.arange(len(ids)), side="right").tolist()
    for k, conv_id in enumerate(ids):
        conv = Conversation(conv_id, channels[k], customer_ids[k])
        group = group_key(group_by, conv_id, conv.channel_id, conv.customer_id)
        split = splitter(group)
        out.conversations.append(conv_id)
        out.groups.append(group)
        out.conversation_splits.append(split)
        rendered = said[ends[k - 1] if k else 0 : ends[k]]
        examples, dropped = conversation_examples_of(
            conv, rendered, recipe, rules, out.signal_notes
        )
        if dropped:
            out.dropped[dropped] += 1
            continue
        out.examples += examples
        out.splits += [split] * len(examples)
    return out
