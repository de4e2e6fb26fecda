"""``hooklake serve``: recover, then run the HTTP workers and a background flusher.

The flusher is its own process so that turning JSON into Parquet never competes with request
handling for one interpreter lock. It flushes every few seconds, exits with a last flush when
told to stop, and exits by itself if the server process disappears (a later start recovers
whatever it left); so do the HTTP workers of ``--workers N``. Worker processes only journal;
any process may flush any writer's sealed segments, and a writer's flush lock keeps two
flushers off the same writer.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import math
import multiprocessing as mp
import os
import shutil
import signal
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import uvicorn
import uvicorn.config

from hooklake import tables
from hooklake.collector.app import CONFIG_ENV, SUPERVISOR_ENV
from hooklake.collector.failures import RepeatedFailure
from hooklake.collector.flush import FlushReport, flush_lake
from hooklake.collector.journal import journal_root
from hooklake.collector.metrics import MULTIPROC_ENV
from hooklake.errors import StorageError
from hooklake.settings import CollectorSettings
from hooklake.storage import lake_location

log = logging.getLogger("hooklake.collector")


def recover(lake: Path | str, journal: Path | None = None, *, create: bool = True) -> FlushReport:
    """Flush what earlier runs left: sealed segments and dead writers' open segments. Waits for
    other flushers busy with some of them, so that on return they are all committed (what
    ``hooklake flush`` and ``hooklake forget`` promise).

    A collector starting creates the lake's and the journal's directories. Without ``create``
    (a command run on a lake that should exist), a journal that is not there means nothing
    to flush, and a local lake that is not there an error: a mistyped ``--lake`` is told so
    instead of gaining an empty lake."""
    loc = lake_location(lake)
    if not create:
        from hooklake.datasets.lake import check_lake

        check_lake(loc)  # a mistyped --lake beside a real --journal too
        if not journal_root(lake, journal).exists():
            return FlushReport()
    for directory, what in ((loc.local, "lake"), (journal_root(lake, journal), "journal")):
        if directory is None:
            continue
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(
                f"cannot create the {what} directory {directory}: {exc.strerror}"
            ) from None
        if not os.access(directory, os.W_OK):
            raise StorageError(f"the {what} directory {directory} is not writable")
    return flush_lake(lake, journal, wait=True)


def _update_index(lake: str, failing: RepeatedFailure) -> bool:
    """Fold what was flushed into the conversation index, once someone created one
    (`hooklake index`): readers then compute nothing for the customers it touched. An index
    another version of Hooklake wrote is rebuilt. Returns False when the update failed."""
    from hooklake import index, layout, tables

    try:
        if tables.open_table(lake_location(lake), layout.INDEX) is not None:
            index.update_index(lake)
    except Exception as exc:  # the index is derived data: the next round, or a reader, catches up
        failing.failed(exc)
        return False
    failing.worked()
    return True


#: The most of its time a flusher gives to index updates. An update costs at least what reading
#: the index for its customers costs, which grows with the lake (about 1.1 s for ~6,500 new
#: messages of ~500 customers on a 10M-message lake, 0.31 s for ~300 on 1M): past
#: ``index_interval / INDEX_SHARE`` seconds per update, updates come further apart, so that
#: flushing keeps its pace and readers compute a little more of what the index is behind on.
INDEX_SHARE = 0.05


def next_index_update(started: float, ended: float, index_interval: float) -> float:
    """When a flusher may update the index again, after an update from ``started`` to ``ended``
    (monotonic seconds): ``index_interval`` after it started, or later for a slow one, so that
    updates take at most :data:`INDEX_SHARE` of the flusher's time."""
    return started + max(index_interval, (ended - started) / INDEX_SHARE)


#: How the collector's own lines look, in every process of ``hooklake serve``.
LOG_FORMAT = "%(asctime)s %(name)s %(message)s"


def _log_config() -> dict[str, Any]:
    """uvicorn's logging, with times, plus the collector's own lines, for uvicorn to set up in
    every process it runs the app in: the workers of ``--workers N`` are fresh interpreters
    (spawn) that would otherwise drop the collector's info lines (its writer, each reject) and
    print its warnings and errors bare, without a time."""
    config = copy.deepcopy(uvicorn.config.LOGGING_CONFIG)
    config["formatters"]["hooklake"] = {"format": LOG_FORMAT}
    # uvicorn's own lines (start-up, shutdown, its errors) with the time too, as ours.
    config["formatters"]["default"]["fmt"] = "%(asctime)s %(name)s %(levelprefix)s %(message)s"
    config["handlers"]["hooklake"] = {
        "class": "logging.StreamHandler",
        "formatter": "hooklake",
        "stream": "ext://sys.stderr",
    }
    config["loggers"]["hooklake"] = {"handlers": ["hooklake"], "level": "INFO", "propagate": False}
    return config


#: The metrics directory of ``serve --workers N`` is named for the process that made it.
METRICS_PREFIX = "hooklake-metrics-"


def _remove_orphaned_metrics() -> None:
    """Remove the metrics directories of collectors that are gone without removing them
    (kill -9 of ``serve --workers N``): one more after every such crash, for good."""
    for path in Path(tempfile.gettempdir()).glob(f"{METRICS_PREFIX}*-*"):
        pid = path.name.removeprefix(METRICS_PREFIX).split("-")[0]
        if not pid.isdigit():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(path, ignore_errors=True)
        except PermissionError:  # alive, another user's
            pass


def _flusher_main(
    lake: str, journal: str | None, interval: float, index_interval: float, parent: int
) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s flusher %(message)s")
    # Answering Landbot comes first: flushing is background work and can wait its turn.
    os.nice(10)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the server's shutdown decides when we stop
    flushed, due = False, -math.inf  # whether the index is behind; when to update it next
    failing = RepeatedFailure("flush", f"retrying every {interval:.1f} s")
    index_failing = RepeatedFailure("conversation index update", "retried at the next update")
    done = _Flushed()
    while not stop.is_set():
        try:
            report = flush_lake(lake, Path(journal) if journal else None)
        except Exception as exc:  # keep flushing; a bad segment must not stop the others
            failing.failed(exc)
        else:
            failing.worked()
            flushed = flushed or report.segments > 0
            done.add(report)
        if flushed and time.monotonic() >= due:
            started = time.monotonic()
            flushed = not _update_index(lake, index_failing)
            due = next_index_update(started, time.monotonic(), index_interval)
        if os.getppid() != parent:
            return
        stop.wait(interval)
    with contextlib.suppress(Exception):
        done.add(flush_lake(lake, Path(journal) if journal else None))
    done.report()


class _Flushed:
    """What the flusher committed, logged once a minute (and when it stops) rather than at
    every flush: a line every 2 s of traffic is 43,000 a day for each collector."""

    EVERY = 60.0

    def __init__(self) -> None:
        self.total = FlushReport()
        self.since = time.monotonic()

    def add(self, report: FlushReport) -> None:
        self.total.add(report)
        if time.monotonic() - self.since >= self.EVERY:
            self.report()

    def report(self) -> None:
        now, t = time.monotonic(), self.total
        if t.segments:
            log.info(
                "flushed in the last %.0f s: segments=%d messages=%d rejected=%d",
                now - self.since, t.segments, t.messages, t.rejected,
            )  # fmt: skip
        self.total, self.since = FlushReport(), now


def start_flusher(
    lake: Path | str, interval: float, journal: Path | None = None, index_interval: float = 0.0
) -> mp.process.BaseProcess:
    proc = mp.get_context("spawn").Process(
        target=_flusher_main,
        args=(str(lake), str(journal) if journal else None, interval, index_interval, os.getpid()),
        name="hooklake-flusher",
        daemon=False,
    )
    proc.start()
    return proc


def stop_flusher(proc: mp.process.BaseProcess, timeout: float = 60.0) -> None:
    if proc.is_alive() and proc.pid is not None:
        os.kill(proc.pid, signal.SIGTERM)
    proc.join(timeout)
    if proc.is_alive():
        proc.kill()
        proc.join()


class _Stop(Exception):
    pass


def _stop_requested(signum: int, frame: object) -> None:
    raise _Stop


def serve(settings: CollectorSettings, host: str, port: int, workers: int = 1) -> None:
    """Run the collector until interrupted; flush everything before returning."""
    # recover() uses delta-rs here, whose runtime does not survive fork: this is safe only
    # because uvicorn starts its workers, and we start the flusher, with spawn.
    tables.check_reachable(lake_location(settings.lake))
    report = recover(settings.lake, settings.journal)
    if report.segments:
        log.info("recovered %d journal segments (%d messages)", report.segments, report.messages)
    os.environ[CONFIG_ENV] = settings.model_dump_json()
    metrics_dir = None
    if workers > 1:
        # Workers are started with spawn and import prometheus_client afresh: with this set,
        # they share their counters through files and /metrics sums every worker's.
        _remove_orphaned_metrics()
        metrics_dir = tempfile.mkdtemp(prefix=f"{METRICS_PREFIX}{os.getpid()}-")
        os.environ[MULTIPROC_ENV] = metrics_dir
        # Workers stop by themselves if this process disappears (app._stop_without_supervisor).
        os.environ[SUPERVISOR_ENV] = str(os.getpid())
    else:
        # The app runs in this process, whose parent is whoever started it: never watched.
        os.environ.pop(SUPERVISOR_ENV, None)
    flusher = start_flusher(
        settings.lake, settings.flush_interval, settings.journal, settings.index_interval
    )
    # uvicorn re-raises the signal that stopped it once it has shut down; with these
    # handlers that becomes an exception here instead of an exit, so the last flush runs.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _stop_requested)
    try:
        uvicorn.run(
            "hooklake.collector.app:app_from_env",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            access_log=False,
            log_config=_log_config(),
            log_level="info",
            timeout_graceful_shutdown=10,
        )
    except _Stop:
        pass
    finally:
        stop_flusher(flusher)
        # Workers sealed their segments on shutdown; this takes anything still left.
        flush_lake(settings.lake, settings.journal)
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)
