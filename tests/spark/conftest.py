"""One local[2] SparkSession for every Spark test (starting one takes about 12 s), and the lakes
they share: real Delta lakes written by the collector's ingest path and by the test helpers.

Without pyspark the Spark tests are skipped with the command that installs it, except in CI
(``CI`` set), where a missing extra is a broken set-up and fails.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hooklake.collector.ingest import ingest_bodies
from hooklake.simulate import simulate

RECEIVED_US = 1_800_000_000_000_000


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    try:
        import pyspark  # noqa: F401
    except ImportError:
        if os.environ.get("CI"):
            raise
        pytest.skip("pyspark is not installed: pip install -e '.[dev,spark]'")
    from hooklake.spark import spark_session

    session = spark_session(
        "local[2]",
        {
            # Test lakes are small, and every empty task costs time.
            "spark.sql.shuffle.partitions": "2",
            "spark.default.parallelism": "2",
            # Small Arrow batches, so conversations straddle batches inside the build's tasks
            # as they do on big lakes (10,000 rows a batch by default).
            "spark.sql.execution.arrow.maxRecordsPerBatch": "97",
        },
    )
    yield session
    session.stop()


@pytest.fixture(scope="session")
def sim_lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Simulated Landbot traffic (retried deliveries, hand-offs, personal data, media) stored
    in two commits, so version 1 is half of the latest."""
    lake = tmp_path_factory.mktemp("spark-sim") / "lake"
    bodies = [d.body for d in simulate(120, seed=12)]
    half = len(bodies) // 2
    ingest_bodies(lake, bodies[:half], received_at_us=RECEIVED_US)
    ingest_bodies(lake, bodies[half:], received_at_us=RECEIVED_US + 1_000_000)
    return lake
