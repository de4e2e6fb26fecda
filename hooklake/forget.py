"""``hooklake forget``: erase one customer's data from the lake (a GDPR erasure request).

1. The local journal is flushed first (sealed segments and those of stopped collectors), so the
   customer's unflushed messages on this machine are in the tables, not left behind in
   segments that would bring them back later.
2. One Delta delete per table: ``messages`` rows of the customer (``customer_id``, and
   ``channel_id`` when given), and ``rejected`` bodies that name the customer (a ``customer``
   object with that ``id`` anywhere in the JSON body; bodies that are not JSON cannot be
   attributed and stay).
   The conversation index, brought up to date first, loses the same rows in the same step.
3. The deleted rows still sit in the data files older versions read, until
   ``hooklake compact --vacuum`` deletes those files (with a retention of 0 hours, at once).
   The Delta log never held them: its statistics are restricted to non-personal columns. It
   holds numeric ids, though, the customer's among them: file statistics, and the delete's
   own commit (``customer_id = N``). The vacuum deletes those log entries too.

A collector that is running keeps its open segment (at most a few seconds of traffic) until it
seals it; run forget again after the customer's traffic has stopped, on every machine that
runs a collector (each has its own journal).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from hooklake import index, layout, tables
from hooklake.errors import ConfigError
from hooklake.storage import LakeLocation, lake_location

#: What the report says when it flushed no journal: a collector's acknowledged messages of the
#: customer would come back with its next flush.
_NO_JOURNAL = (
    "none: no --journal given (the lake is on object storage): run forget with each "
    "collector's --journal DIR"
)


@dataclass(frozen=True)
class ForgetReport:
    customer_id: int
    channel_id: int | None
    segments_flushed: int
    messages_deleted: int
    rejects_deleted: int
    #: Table versions of the delete commits, by table.
    versions: dict[str, int]
    #: False when no journal was looked at: a lake on object storage without ``journal``.
    journal_flushed: bool = True

    def rows(self) -> list[tuple[str, Any]]:
        who = f"customer {self.customer_id}" + (
            f" of channel {self.channel_id}" if self.channel_id is not None else ""
        )
        return [
            ("forgotten", who),
            (
                "journal segments flushed first",
                self.segments_flushed if self.journal_flushed else _NO_JOURNAL,
            ),
            ("messages deleted", self.messages_deleted),
            ("rejects deleted", self.rejects_deleted),
            *((f"{t} version", v) for t, v in sorted(self.versions.items())),
            ("next step", "hooklake compact --vacuum --retention-hours 0 removes the old files"),
        ]


def forget(
    lake: str | os.PathLike[str] | LakeLocation,
    customer_id: int,
    channel_id: int | None = None,
    *,
    journal: Path | None = None,
) -> ForgetReport:
    """Delete customer ``customer_id`` (of ``channel_id`` only, when given) from ``lake``."""
    for name, value in (("customer", customer_id), ("channel", channel_id)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise ConfigError(f"the {name} id must be a whole number, not {value!r}")
    # Imported here: the collector package is the write side, which this erasure drives.
    from hooklake.collector.service import recover

    loc = lake_location(lake)
    # Without create, a mistyped local --lake is an error here, not a success on a new lake
    # (a lake on object storage has no journal of its own unless given one).
    if _has_journal(loc, journal):
        flushed = recover(loc.local or loc.uri, journal, create=False)
    else:
        flushed = None
    versions: dict[str, int] = {}
    deleted = {layout.MESSAGES: 0, layout.REJECTED: 0}
    with tables.delta_errors(f"cannot erase customer {customer_id} from {loc}"):
        dt = tables.open_table(loc, layout.MESSAGES)
        if dt is not None:
            predicate = f"customer_id = {int(customer_id)}"
            if channel_id is not None:
                predicate += f" AND channel_id = {int(channel_id)}"
            # An index behind the table when the delete removes files it read has to be
            # rebuilt (index.erase): minutes on a large lake, with readers recomputing the
            # views from the raw tables meanwhile. Brought up to date first, the erasure
            # leaves it current, unless a collector commits in between.
            if index.read_state(loc) is not None:
                index.update_index(loc, fold=False)
            before = dt.version()
            metrics = dt.delete(predicate)
            deleted[layout.MESSAGES] = int(metrics.get("num_deleted_rows", 0))
            if deleted[layout.MESSAGES]:
                versions[layout.MESSAGES] = dt.version()
            # The index holds copies of the rows: they go too, whatever the delete found.
            index.erase(loc, predicate, before, dt.version())
        rj = tables.open_table(loc, layout.REJECTED)
        if rj is not None:
            sources = sorted(_rejects_of(rj, customer_id, channel_id))
            if sources:
                quoted = ", ".join("'" + s.replace("'", "''") + "'" for s in sources)
                metrics = rj.delete(f"source IN ({quoted})")
                deleted[layout.REJECTED] = int(metrics.get("num_deleted_rows", 0))
                versions[layout.REJECTED] = rj.version()
    return ForgetReport(
        customer_id=customer_id,
        channel_id=channel_id,
        segments_flushed=flushed.segments if flushed is not None else 0,
        messages_deleted=deleted[layout.MESSAGES],
        rejects_deleted=deleted[layout.REJECTED],
        versions=versions,
        journal_flushed=flushed is not None,
    )


def _has_journal(loc: LakeLocation, journal: Path | None) -> bool:
    return journal is not None or loc.local is not None


def _rejects_of(dt: Any, customer_id: int, channel_id: int | None) -> set[str]:
    """The ``source`` of every reject row whose body names the customer."""
    found: set[str] = set()
    scanner = dt.to_pyarrow_dataset().scanner(columns=["source", "body"], batch_size=10_000)
    for batch in scanner.to_batches():
        table = pa.Table.from_batches([batch])
        for source, body in zip(
            table["source"].to_pylist(),
            pc.cast(table["body"], pa.binary()).to_pylist(),
            strict=True,
        ):
            if body is not None and _names_customer(body, customer_id, channel_id):
                found.add(source)
    return found


def _names_customer(body: bytes, customer_id: int, channel_id: int | None) -> bool:
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return False
    customers = {_as_int(c.get("id")) for c in _objects(doc, "customer")}
    if customer_id not in customers:
        return False
    if channel_id is None:
        return True
    return channel_id in {_as_int(c.get("id")) for c in _objects(doc, "channel")}


def _objects(doc: Any, key: str) -> Iterator[dict[str, Any]]:
    """Every object stored under ``key`` anywhere in ``doc``."""
    stack = [doc]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            for k, v in node.items():
                if k == key and isinstance(v, dict):
                    yield v
                stack.append(v)
        elif isinstance(node, list):
            stack.extend(node)


def _as_int(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None
