"""Spark's ordering core gives the rows of DuckDB's ``hooklake_messages_ordered``, row for row
and column for column, on real lakes: simulated traffic, the JSON lake cases and random streams
full of duplicates, late deliveries, equal timestamps and gaps on the session-gap boundary."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa

from hooklake.datasets.lake import Lake
from hooklake.spark import ordered_messages
from tests.conftest import SeededRandom
from tests.datasets.test_lake_support import CASES, ingest_case, load_case, row, write_rows

_ORDER = [("channel_id", "ascending"), ("customer_id", "ascending"), ("_rn", "ascending")]


def _duckdb(lake: Path, gap: timedelta, version: int | None = None) -> pa.Table:
    with Lake(lake, session_gap=gap, as_of=version) as lk:
        return lk.sql("SELECT * FROM hooklake_messages_ordered").to_arrow_table()


def assert_same_rows(spark_rows: pa.Table, duck_rows: pa.Table) -> None:
    assert spark_rows.schema.names == duck_rows.schema.names
    assert spark_rows.schema.types == duck_rows.schema.types
    assert spark_rows.num_rows == duck_rows.num_rows > 0
    assert spark_rows.sort_by(_ORDER).to_pylist() == duck_rows.sort_by(_ORDER).to_pylist()


def test_spark_orders_simulated_traffic_like_the_views_at_any_version(
    spark: Any, sim_lake: Path
) -> None:
    gap = timedelta(minutes=30)
    latest = ordered_messages(spark, sim_lake).toArrow()
    assert_same_rows(latest, _duckdb(sim_lake, gap))
    older = ordered_messages(spark, sim_lake, version=1).toArrow()
    assert_same_rows(older, _duckdb(sim_lake, gap, version=1))
    assert older.num_rows < latest.num_rows


def _edge_rows(rng: SeededRandom) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Random customer streams (on time, then late) with the cases that decide an order:
    equal timestamps with and without seq, gaps of exactly the session gap and one second
    more, system events without a role, hand-off evidence, and redeliveries that arrive
    before and after the first delivery of the same key."""
    on_time: list[dict[str, Any]] = []
    late: list[dict[str, Any]] = []
    steps = [0, 0, 0.5, 3, 60, 420, 421, 3600]  # the gap is 7 minutes: 420 s stays, 421 s splits
    for customer in range(1, 25):
        channel = 10 if customer % 3 else 11
        t = rng.uniform(0, 600)
        for i in range(rng.randint(3, 14)):
            t += rng.choice(steps)
            sender = rng.choice(["customer", "customer", "bot", "bot", "agent", "sys"])
            key = f"c{customer}-m{i}"
            fields: dict[str, Any] = {
                "customer": customer,
                "channel": channel,
                "t": t,
                "sender": sender,
                "seq": rng.choice([None, None, rng.randint(0, 5)]),
                "action": rng.choice([None] * 4 + ["assign", "unassign"])
                if sender == "sys"
                else None,
                "agent_id": rng.choice([None, None, 77]),
            }
            arrive = t + rng.uniform(0.01, 2)
            target = late if rng.random() < 0.2 else on_time
            target.append(row(key, arrive=arrive, **fields))
            if rng.random() < 0.25:  # Landbot redelivered it, sooner or later
                again = arrive + rng.choice([-0.005, 5, 900])
                rng.choice([on_time, late]).append(row(key, arrive=again, **fields))
    return on_time, late


def test_spark_orders_edge_cases_like_the_views_with_a_non_default_gap(
    spark: Any, tmp_path: Path, rng: SeededRandom
) -> None:
    lake = tmp_path / "lake"
    for case in sorted(CASES.glob("*.json")):
        ingest_case(lake, load_case(case.name))
    on_time, late = _edge_rows(rng)
    write_rows(lake, on_time, name="on-time")
    write_rows(lake, late, name="late")
    gap = timedelta(minutes=7)
    rows = ordered_messages(spark, lake, session_gap=gap).toArrow()
    assert_same_rows(rows, _duckdb(lake, gap))
    # One row per key of a customer's stream, and streams cut into several conversations of
    # several messages.
    ids = (rows[c].to_pylist() for c in ("channel_id", "customer_id", "message_key"))
    keys = list(zip(*ids, strict=True))
    streams = {(channel, customer) for channel, customer, _ in keys}
    assert len(keys) == len(set(keys))
    assert len(set(rows.column("conversation_id").to_pylist())) > len(streams)
    assert max(rows.column("position").to_pylist()) > 1
