"""Prometheus metrics of the collector.

With one worker, each app has its own registry (so tests can run several apps side by side).
With ``--workers N``, ``hooklake serve`` sets ``PROMETHEUS_MULTIPROC_DIR`` before the workers
start: every worker then writes its counters and histograms to files there, and whichever
worker answers ``/metrics`` sums them all (prometheus_client's multiprocess mode), so a scrape
shows the whole collector. Journal backlog and flush lag are read from the journal at scrape
time, so they cover every writer either way.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from hooklake.collector.flush import journal_backlog

# The *_created series only add noise to scrapes of a long-running collector.
disable_created_metrics()  # type: ignore[no-untyped-call]


MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


class _Backlog(Collector):
    """Journal backlog and flush lag, measured on the journal at scrape time."""

    def __init__(self, lake: Path | str, journal: Path | None) -> None:
        self.lake, self.journal = lake, journal

    def collect(self) -> Iterator[GaugeMetricFamily]:
        size, lag = journal_backlog(self.lake, self.journal)
        yield GaugeMetricFamily(
            "hooklake_journal_unflushed_bytes",
            "Bytes in journal segments not yet flushed to the lake (all writers).",
            value=float(size),
        )
        yield GaugeMetricFamily(
            "hooklake_flush_lag_seconds",
            "Age of the oldest journal segment not yet flushed (all writers).",
            value=lag,
        )


class Metrics:
    def __init__(self, lake: Path | str, journal: Path | None = None) -> None:
        self.multiprocess_dir = os.environ.get(MULTIPROC_ENV)
        # In multiprocess mode values live in files; registering them here as well would
        # count this worker twice.
        self.registry = CollectorRegistry()
        own = None if self.multiprocess_dir else self.registry
        self.requests = Counter(
            "hooklake_requests",
            "Requests to /hooks/{hook} by hook and HTTP status.",
            ["hook", "status"],
            registry=own,
        )
        self.messages = Counter(
            "hooklake_messages_accepted",
            "Messages acknowledged (durably journaled) by hook.",
            ["hook"],
            registry=own,
        )
        self.rejects = Counter(
            "hooklake_rejects",
            "Bodies refused with 4xx and kept in the lake's rejects, by reason.",
            ["hook", "reason"],
            registry=own,
        )
        self.fsync = Histogram(
            "hooklake_journal_fsync_seconds",
            "Time of one group-commit write + fdatasync.",
            buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1.0),
            registry=own,
        )
        self.batch = Histogram(
            "hooklake_journal_batch_records",
            "Records covered by one fsync.",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
            registry=own,
        )
        self.registry.register(_Backlog(lake, journal))
        if self.multiprocess_dir:
            MultiProcessCollector(self.registry, path=self.multiprocess_dir)  # type: ignore[no-untyped-call]

    def render(self) -> bytes:
        return generate_latest(self.registry)
