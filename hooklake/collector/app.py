"""The HTTP shell of the collector: ``POST /hooks/{hook}``, ``/healthz``, ``/metrics``.

``POST /hooks/{hook}`` is :class:`~hooklake.collector.receiver.HookReceiver`; this module
builds the app around it from settings and ties the journal to the app's lifespan.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import orjson
from fastapi import FastAPI
from fastapi.responses import Response
from starlette.routing import Route

from hooklake.collector.flush import journal_backlog
from hooklake.collector.journal import GroupCommitter, SegmentWriter
from hooklake.collector.metrics import Metrics
from hooklake.collector.receiver import HookReceiver
from hooklake.settings import CollectorSettings

log = logging.getLogger("hooklake.collector")

CONFIG_ENV = "HOOKLAKE_COLLECTOR_CONFIG"
#: Set by ``hooklake serve --workers N`` to its own pid: a worker whose parent is not (or no
#: longer) that process stops (see :func:`_stop_without_supervisor`).
SUPERVISOR_ENV = "HOOKLAKE_SUPERVISOR_PID"
#: Seconds between a worker's checks that its supervisor is still there.
SUPERVISOR_POLL = 0.5
#: ``/healthz`` says "flush behind" once the oldest unflushed journal segment is this many
#: seconds old (or ten flush intervals, if longer): flushes are failing or cannot keep up.
FLUSH_LAG_ALARM = 60.0


async def _stop_without_supervisor(supervisor: int) -> None:
    """Stop this worker gracefully once its supervisor is gone (killed with -9, say).

    Orphaned workers would go on answering Landbot with nobody flushing what they journal, and
    keep the port, so the collector could not start again until they were found and killed.
    A SIGTERM to itself is uvicorn's graceful shutdown: requests in flight finish and the
    journal seals its segment, which the next start (or ``hooklake flush``) commits."""
    while os.getppid() == supervisor:
        await asyncio.sleep(SUPERVISOR_POLL)
    log.warning("the collector's supervisor (pid %d) is gone: this worker stops", supervisor)
    os.kill(os.getpid(), signal.SIGTERM)


def _json(status: int, payload: dict[str, Any]) -> Response:
    return Response(orjson.dumps(payload), status, media_type="application/json")


def create_app(settings: CollectorSettings) -> FastAPI:
    """Build the collector app for ``settings``; the journal opens in the app's lifespan."""
    hooks = dict(settings.hooks)
    metrics = Metrics(settings.lake, settings.journal)
    writer = SegmentWriter(
        settings.lake,
        journal=settings.journal,
        segment_max_bytes=settings.segment_max_bytes,
        fsync_observer=metrics.fsync.observe,
    )
    journal = GroupCommitter(writer, settings.seal_interval, on_batch=metrics.batch.observe)
    receiver = HookReceiver(
        hooks,
        journal,
        metrics,
        max_body_bytes=settings.max_body_bytes,
        body_timeout=settings.body_timeout,
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await journal.start()
        # Long-lived start-up objects need no more GC scans; keeps collection pauses short.
        gc.freeze()
        log.info(
            "collector writer=%s lake=%s hooks=%s", writer.writer_id, settings.lake, sorted(hooks)
        )
        supervisor = os.environ.get(SUPERVISOR_ENV)
        watch = None
        if supervisor is not None:
            # Checked from the start: a worker still starting when its supervisor died would
            # otherwise never find out.
            watch = asyncio.create_task(_stop_without_supervisor(int(supervisor)))
        try:
            yield
        finally:
            if watch is not None:
                watch.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watch
            await journal.close()

    app = FastAPI(
        title="Hooklake collector",
        summary="Receives Landbot MessageHooks and stores them durably in a lake of Delta tables.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.journal = journal

    # A bare ASGI route: the hot path needs none of FastAPI's request parsing. The URL pasted
    # into Landbot may end in a slash (its own API's URLs do): that is the same hook, not a 307
    # redirect, which a webhook sender need not follow and which stores nothing.
    for path in ("/hooks/{hook}", "/hooks/{hook}/"):
        app.router.routes.append(Route(path, receiver, methods=["POST"]))

    @app.get("/healthz")
    async def healthz() -> Response:
        # Always 200 while requests are answered: a 2xx still means the body is on this disk.
        # A collector whose flushes fail (the lake's storage gone) says so in the body; a
        # balancer that took every such replica out would turn Landbot away and lose messages.
        unflushed, lag = await asyncio.to_thread(journal_backlog, settings.lake, settings.journal)
        behind = lag > max(FLUSH_LAG_ALARM, 10 * settings.flush_interval)
        return _json(
            200,
            {
                "status": "flush behind" if behind else "ok",
                "writer": writer.writer_id,
                "unflushed_bytes": unflushed,
                "flush_lag_seconds": round(lag, 1),
            },
        )

    @app.get("/metrics")
    async def prometheus() -> Response:
        return Response(metrics.render(), media_type="text/plain; version=0.0.4")

    return app


def app_from_env() -> FastAPI:
    """App factory for ``uvicorn --factory``: settings come as JSON in an environment
    variable, so every worker process of ``hooklake serve --workers N`` builds the same app."""
    raw = os.environ.get(CONFIG_ENV)
    settings = CollectorSettings.model_validate_json(raw) if raw else CollectorSettings()
    return create_app(settings)
