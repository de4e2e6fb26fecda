"""What the one process at the end of a build does with shaped batches, in build order: drop
duplicate examples (the first in build order is kept, :mod:`.dedupe`), write the rest to their
split files, note each example's source messages for the manifest, and count everything for
the card.
"""

from __future__ import annotations

from pathlib import Path
from typing import IO

import numpy as np
import orjson

from hooklake.datasets.card import DatasetStats
from hooklake.datasets.dedupe import Deduper, fingerprints, flat_fingerprints
from hooklake.datasets.distinct import StringSet, add_groups
from hooklake.datasets.flat import ExampleColumns, flatten
from hooklake.datasets.jsonl import json_list_lines
from hooklake.datasets.recipe import SPLITS
from hooklake.datasets.render import Example, Message
from hooklake.datasets.shape import ShapedBatch
from hooklake.datasets.writers import Writer


def compared(ex: Example) -> list[Message]:
    """What makes two examples duplicates: their messages, plus the rejected reply and the
    label of preference and feedback rows."""
    out = [*ex.messages, *(ex.rejected or [])]
    if ex.label is not None:
        out.append(Message("system", f"label={ex.label}"))
    return out


class BuildOutput:
    """Dedupe, split files, sources and counts: what one process does with shaped batches."""

    def __init__(
        self,
        writer: Writer,
        deduper: Deduper | None,
        stats: DatasetStats,
        tmp: Path,
        *,
        keep_conversations: bool = False,
    ) -> None:
        self.writer = writer
        self.deduper = deduper
        self.stats = stats
        self.groups: dict[str, StringSet] = {s: StringSet() for s in SPLITS}
        #: (conversation id, group, split) of every conversation read, kept only when asked
        #: (an incremental build's state records them): 40-60 MB per million conversations.
        self.conversations: list[tuple[str, str, int]] = []
        self._keep_conversations = keep_conversations
        # Open for the life of the build: close_sources() closes them.
        self.sources: dict[str, IO[bytes]] = {
            split: open(tmp / f"{split}.sources", "wb", buffering=1 << 20)  # noqa: SIM115
            for split in SPLITS
        }
        self.source_paths = {split: tmp / f"{split}.sources" for split in SPLITS}

    def add(self, shaped: ShapedBatch) -> None:
        st = self.stats
        st.messages_read += shaped.messages_read
        st.conversations_read += len(shaped.conversations)
        st.dropped.update(shaped.dropped)
        st.redactions.update(shaped.redactions)
        st.signal_notes.update(shaped.signal_notes)
        add_groups(self.groups, shaped.groups, shaped.conversation_splits)
        if self._keep_conversations:
            self.conversations += zip(
                shaped.conversations, shaped.groups, shaped.conversation_splits, strict=True
            )
        if shaped.columns is not None:
            self._add_columns(shaped.columns, shaped.splits)
            return
        kept: dict[str, list[int]] = {s: [] for s in SPLITS}
        used: set[str] = set()
        # Dialogue examples (no rejected reply, no label, known roles) go through the rest as
        # columns; preference and feedback rows one by one.
        flat = flatten(shaped.examples) if _plain(shaped.examples) else None
        if flat is not None and bool((flat.roles < 0).any()):
            flat = None
        digests: list[int] = []
        if self.deduper is not None:
            digests = (
                flat_fingerprints(flat)
                if flat is not None
                else fingerprints([compared(ex) for ex in shaped.examples])
            )
        fresh = self.deduper.first_times(digests).tolist() if self.deduper is not None else None
        for i, (ex, code) in enumerate(zip(shaped.examples, shaped.splits, strict=True)):
            if fresh is not None and not fresh[i]:
                st.dropped["duplicate_examples"] += 1
                continue
            kept[SPLITS[code]].append(i)
            used.add(ex.conversation_id)
        st.conversations_used += len(used)
        for split, picks in kept.items():
            if not picks:
                continue
            examples = [shaped.examples[i] for i in picks]
            part = flat.subset(np.array(picks, dtype=np.int64)) if flat is not None else None
            self.writer.write_many(split, examples, part)
            self.sources[split].write(
                b"".join(orjson.dumps(ex.sources or ex.source_keys) + b"\n" for ex in examples)
            )
            if part is not None:
                st.splits[split].add_flat(part)
                continue
            for ex in examples:
                st.splits[split].add(ex)
                st.add_signal(ex)

    def _add_columns(self, columns: ExampleColumns, splits: list[int]) -> None:
        """:meth:`add` for examples that came as columns: no record is made unless the
        writer needs them."""
        st = self.stats
        codes = np.array(splits, dtype=np.int64)
        fresh = np.ones(len(columns), dtype=bool)
        if self.deduper is not None:
            fresh = self.deduper.first_times(flat_fingerprints(columns.flat))
            repeated = int((~fresh).sum())
            if repeated:
                st.dropped["duplicate_examples"] += repeated
        ids = columns.conversation_ids
        st.conversations_used += len({ids[i] for i in np.flatnonzero(fresh).tolist()})
        records: list[Example] | None = None
        for code, split in enumerate(SPLITS):
            picks = np.flatnonzero(fresh & (codes == code))
            if not len(picks):
                continue
            part = columns.flat.subset(picks)
            if not self.writer.write_flat(split, part):
                records = records if records is not None else columns.to_examples()
                self.writer.write_many(split, [records[i] for i in picks.tolist()], part)
            self.sources[split].write(json_list_lines(*columns.source_keys(picks)))
            st.splits[split].add_flat(part)

    def close_sources(self) -> None:
        for fh in self.sources.values():
            fh.close()


def _plain(examples: list[Example]) -> bool:
    """Whether every example is a plain dialogue: no rejected reply, label or signal."""
    return all(ex.rejected is None and ex.label is None and ex.signal is None for ex in examples)
