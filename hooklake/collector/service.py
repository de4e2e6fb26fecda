"""``hooklake serve``: recover, then run the HTTP workers and a background flusher.

The flusher is its own process so that turning JSON into Parquet never competes with request
handling for one interpreter lock. It flushes every few seconds, exits with a last flush when
told to stop, and exits by itself if the server process disappears (a later start recovers
whatever it left). Worker processes only journal; any process may flush any sealed segment,
and segment locks keep two flushers off the same one.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing as mp
import os
import signal
import threading
from pathlib import Path

import uvicorn

from hooklake.collector.app import CONFIG_ENV
from hooklake.collector.flush import FlushReport, flush_lake
from hooklake.errors import StorageError
from hooklake.settings import CollectorSettings

log = logging.getLogger("hooklake.collector")


def recover(lake: Path) -> FlushReport:
    """Flush what earlier runs left: sealed segments and dead writers' open segments."""
    try:
        lake.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StorageError(f"cannot create the lake directory {lake}: {exc.strerror}") from None
    if not os.access(lake, os.W_OK):
        raise StorageError(f"the lake directory {lake} is not writable")
    return flush_lake(lake)


def _flusher_main(lake: str, interval: float, parent: int) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s flusher %(message)s")
    # Answering Landbot comes first: flushing is background work and can wait its turn.
    os.nice(10)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the server's shutdown decides when we stop
    while not stop.is_set():
        try:
            flush_lake(Path(lake))
        except Exception:  # keep flushing; a bad segment must not stop the others
            log.exception("flush failed; retrying in %.1f s", interval)
        if os.getppid() != parent:
            return
        stop.wait(interval)
    with contextlib.suppress(Exception):
        flush_lake(Path(lake))


def start_flusher(lake: Path, interval: float) -> mp.process.BaseProcess:
    proc = mp.get_context("spawn").Process(
        target=_flusher_main,
        args=(str(lake), interval, os.getpid()),
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
    report = recover(settings.lake)
    if report.segments:
        log.info("recovered %d journal segments (%d messages)", report.segments, report.messages)
    os.environ[CONFIG_ENV] = settings.model_dump_json()
    flusher = start_flusher(settings.lake, settings.flush_interval)
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
            log_level="info",
            timeout_graceful_shutdown=10,
        )
    except _Stop:
        pass
    finally:
        stop_flusher(flusher)
        # Workers sealed their segments on shutdown; this takes anything still left.
        flush_lake(settings.lake)
