"""The plain way to shape a batch: one conversation, one message at a time, as Hooklake 0.1
did. :func:`.shape.shape_batch` must give exactly what this gives (a property test compares
them on random conversations); the benchmark runs it as the baseline.
"""

from __future__ import annotations

from itertools import groupby
from typing import Any

import pyarrow as pa

from hooklake.datasets.examples import Conversation, conversation_examples_of
from hooklake.datasets.recipe import Recipe
from hooklake.datasets.redact import Redactor, known_values
from hooklake.datasets.render import Rendered, render_message
from hooklake.datasets.shape import ShapedBatch
from hooklake.datasets.signals import Rules
from hooklake.datasets.split import Splitter, group_key


def shape_reference(
    batch: pa.RecordBatch | pa.Table, recipe: Recipe, rules: Rules | None = None
) -> ShapedBatch:
    """What :func:`.shape.shape_batch` returns for ``batch``, computed message by message."""
    table = batch if isinstance(batch, pa.Table) else pa.Table.from_batches([batch])
    out = ShapedBatch()
    redactor = Redactor()
    splitter = Splitter(recipe.split.fractions(), recipe.split.seed)
    since, until = recipe.source.since, recipe.source.until
    spec = recipe.examples
    rows: list[dict[str, Any]] = table.to_pylist()
    for conv_id, group in groupby(rows, key=lambda r: r["conversation_id"]):
        messages = list(group)
        first = messages[0]["date"]
        if (since is not None and first < since) or (until is not None and first > until):
            continue
        out.messages_read += len(messages)
        conv = Conversation(conv_id, messages[0]["channel_id"], messages[0]["customer_id"])
        key = group_key(recipe.split.group_by, conv_id, conv.channel_id, conv.customer_id)
        split = splitter(key)
        out.conversations.append(conv_id)
        out.groups.append(key)
        out.conversation_splits.append(split)
        rendered: list[Rendered] = []
        for m in messages:
            r = render_message(
                m["message_key"], m["sender_type"], m["type"], m["text"], m["url"], m["message"],
                spec.media,
            )  # fmt: skip
            if r is not None:
                r.kind, r.payload = m["type"] or "", m["payload"]
                rendered.append(r)
        if recipe.redact.pii and rendered:
            known = known_values(m["customer"] for m in messages)
            for r in rendered:
                r.text = redactor.redact(r.text, known)
                if r.payload:
                    r.payload = redactor.redact(r.payload, known)
        examples, dropped = conversation_examples_of(
            conv, rendered, recipe, rules, out.signal_notes
        )
        if dropped:
            out.dropped[dropped] += 1
            continue
        out.examples += examples
        out.splits += [split] * len(examples)
    out.redactions = redactor.counts
    return out
