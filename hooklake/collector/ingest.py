"""Backfill: store saved MessageHooks bodies exactly as the HTTP collector would.

Bodies go through the same validation and the same journal (so rejects land in the lake's
rejects with their reason), then the journal is flushed.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hooklake.collector.check import BodyError, check_body
from hooklake.collector.flush import flush_lake
from hooklake.collector.journal import SegmentWriter, encode_record
from hooklake.errors import ConfigError

_BATCH_BYTES = 8 << 20


@dataclass
class IngestReport:
    bodies: int = 0
    messages: int = 0
    rejected: int = 0


def ingest_bodies(
    lake: Path | str,
    bodies: Iterable[bytes],
    *,
    hook: str = "default",
    received_at_us: int | None = None,
    headers: dict[str, str] | None = None,
    journal: Path | None = None,
) -> IngestReport:
    """Journal ``bodies`` for ``hook`` and flush them into the lake. ``received_at_us`` fixes
    the receive time (microseconds since the epoch), e.g. for reproducible test lakes."""
    report = IngestReport()
    writer = SegmentWriter(lake, journal=journal)
    writer.open()
    try:
        batch: list[bytes] = []
        size = 0
        for raw in bodies:
            t = received_at_us if received_at_us is not None else time.time_ns() // 1000
            header: dict[str, Any] = {"kind": "message", "hook": hook, "t": t, "h": headers or {}}
            try:
                header["n"] = n = check_body(raw)
                report.messages += n
            except BodyError as exc:
                header.update(kind="reject", reason=str(exc), code=exc.code, index=exc.index)
                report.rejected += 1
            record = encode_record(header, raw)
            batch.append(record)
            size += len(record)
            report.bodies += 1
            if size >= _BATCH_BYTES:
                writer.write(b"".join(batch))
                batch, size = [], 0
        if batch:
            writer.write(b"".join(batch))
    finally:
        writer.close()
    flush_lake(lake, journal)
    return report


def read_bodies(paths: Iterable[Path]) -> Iterator[bytes]:
    """Bodies saved as files: one JSON body per file, or NDJSON with one body per line."""
    for path in paths:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from None
        lines = [line for line in data.splitlines() if line.strip()]
        if path.suffix in {".ndjson", ".jsonl"} or (len(lines) > 1 and _each_line_is_json(lines)):
            yield from lines
        else:
            yield data


def _each_line_is_json(lines: list[bytes]) -> bool:
    # A pretty-printed body spans lines that are not JSON on their own; NDJSON lines all are.
    return all(line.lstrip()[:1] == b"{" and line.rstrip()[-1:] == b"}" for line in lines)
