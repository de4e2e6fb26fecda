"""Prometheus metrics of one collector process.

Each process has its own registry (so tests can run several apps side by side); journal
backlog and flush lag are read from the lake at scrape time, so they cover every writer.
"""

from __future__ import annotations

from pathlib import Path

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)

from hooklake.collector.flush import journal_backlog

# The *_created series only add noise to scrapes of a long-running collector.
disable_created_metrics()  # type: ignore[no-untyped-call]


class Metrics:
    def __init__(self, lake: Path) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "hooklake_requests",
            "Requests to /hooks/{hook} by hook and HTTP status.",
            ["hook", "status"],
            registry=self.registry,
        )
        self.messages = Counter(
            "hooklake_messages_accepted",
            "Messages acknowledged (durably journaled) by hook.",
            ["hook"],
            registry=self.registry,
        )
        self.rejects = Counter(
            "hooklake_rejects",
            "Bodies refused with 4xx and kept in the lake's rejects, by reason.",
            ["hook", "reason"],
            registry=self.registry,
        )
        self.fsync = Histogram(
            "hooklake_journal_fsync_seconds",
            "Time of one group-commit write + fdatasync.",
            buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1.0),
            registry=self.registry,
        )
        self.batch = Histogram(
            "hooklake_journal_batch_records",
            "Records covered by one fsync.",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
            registry=self.registry,
        )
        backlog = Gauge(
            "hooklake_journal_unflushed_bytes",
            "Bytes in journal segments not yet flushed to Parquet (all writers).",
            registry=self.registry,
        )
        lag = Gauge(
            "hooklake_flush_lag_seconds",
            "Age of the oldest journal segment not yet flushed (all writers).",
            registry=self.registry,
        )
        backlog.set_function(lambda: float(journal_backlog(lake)[0]))
        lag.set_function(lambda: journal_backlog(lake)[1])

    def render(self) -> bytes:
        return generate_latest(self.registry)
