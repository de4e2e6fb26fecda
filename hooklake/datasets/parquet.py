"""The ``hf`` format: Hugging Face Parquet, ``{split}.parquet`` with an explicit schema.

``messages`` list<struct<role, content, weight>> plus ``conversation_id``, ``customer_id``,
``channel_id`` and ``source_keys``, for ``datasets.load_dataset("parquet", ...)`` and chat
templates. Row groups have a fixed size, so the bytes depend on the data only.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from hooklake.datasets.render import Example
from hooklake.datasets.writers import ReadBack, Writer

HF_SCHEMA = pa.schema(
    [
        pa.field(
            "messages",
            pa.list_(
                pa.struct(
                    [
                        pa.field("role", pa.string()),
                        pa.field("content", pa.string()),
                        pa.field("weight", pa.int64()),
                    ]
                )
            ),
        ),
        pa.field("conversation_id", pa.string()),
        pa.field("customer_id", pa.int64()),
        pa.field("channel_id", pa.int64()),
        pa.field("source_keys", pa.list_(pa.string())),
    ]
)


class _ParquetSink:
    """Rows buffered into row groups of a fixed size, so output bytes depend on data only."""

    ROWS_PER_GROUP = 10_000

    def __init__(self, tmp: Path) -> None:
        # Open for the life of the sink: finish() or close() closes it.
        self.fh = open(tmp, "wb")  # noqa: SIM115
        self.writer = pq.ParquetWriter(self.fh, HF_SCHEMA, compression="zstd")
        self.rows: list[dict[str, Any]] = []

    def add(self, row: dict[str, Any]) -> None:
        self.rows.append(row)
        if len(self.rows) >= self.ROWS_PER_GROUP:
            self.flush()

    def flush(self) -> None:
        if self.rows:
            self.writer.write_table(pa.Table.from_pylist(self.rows, schema=HF_SCHEMA))
            self.rows = []

    def finish(self) -> None:
        self.flush()
        self.writer.close()
        self.fh.flush()
        os.fsync(self.fh.fileno())
        self.fh.close()

    def close(self) -> None:
        self.rows = []
        try:
            self.writer.close()
        finally:
            self.fh.close()


class HFWriter(Writer):
    """Parquet with an explicit schema, for ``datasets.load_dataset("parquet", ...)``.
    Assistant messages always carry their weight (1 unless the recipe made them context
    only); system and user messages have a null weight."""

    format = "hf"
    suffix = "parquet"
    loader = "parquet"
    id_columns = ("conversation_id", "customer_id", "channel_id")
    description = (
        "Parquet with `messages` (list of {role, content, weight}), `conversation_id`, "
        "`customer_id`, `channel_id`, `source_keys`; weight is 0/1 on assistant messages, null "
        "otherwise"
    )

    @classmethod
    def read(cls, path: Path) -> Iterator[ReadBack]:
        for record in pq.read_table(path, columns=["messages"]).to_pylist():
            yield [(m["role"], m["content"]) for m in record["messages"]]

    def _open(self, tmp: Path) -> _ParquetSink:
        return _ParquetSink(tmp)

    def _write(self, sink: _ParquetSink, example: Example, split: str, line: int) -> None:
        sink.add(
            {
                "messages": [
                    {"role": m.role, "content": m.content, "weight": m.weight}
                    for m in example.messages
                ],
                "conversation_id": example.conversation_id,
                "customer_id": example.customer_id,
                "channel_id": example.channel_id,
                "source_keys": example.source_keys,
            }
        )

    def _finish(self, sink: _ParquetSink) -> None:
        sink.finish()
