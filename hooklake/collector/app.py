"""The HTTP shell of the collector: ``POST /hooks/{hook}``, ``/healthz``, ``/metrics``.

The hot path reads the raw body (size-limited, streamed), judges it with
:mod:`hooklake.collector.normalize` and hands the bytes to the journal; it answers only after
the fsync that covers the record. No pydantic body model: validation works on raw bytes.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import Response

from hooklake.collector.journal import GroupCommitter, SegmentWriter, encode_record
from hooklake.collector.metrics import Metrics
from hooklake.collector.normalize import BodyError, check_body
from hooklake.errors import StorageError
from hooklake.settings import CollectorSettings, Hook

log = logging.getLogger("hooklake.collector")

#: Request headers kept with each record (lower-case). Authorization never is.
KEPT_HEADERS = ("sentry-trace", "user-agent", "content-type")
CONFIG_ENV = "HOOKLAKE_COLLECTOR_CONFIG"


class _TooLarge(Exception):
    pass


def _json(status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(payload), status, headers, media_type="application/json")


async def _read_limited(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _TooLarge
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _TooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def _authorized(hook: Hook, header: str | None) -> bool:
    if hook.token is None:
        return True
    if header is None:
        return False
    scheme, _, token = header.partition(" ")
    # The scheme is case-insensitive (RFC 9110); the secret is compared whole, in constant time.
    ok_scheme = scheme.lower() == "token"
    # Header values arrive decoded as latin-1: encoding back gives the bytes that were sent,
    # so a token with non-ASCII characters (configured as UTF-8) can match too.
    ok_token = hmac.compare_digest(token.strip().encode("latin-1"), hook.token.encode())
    return ok_scheme and ok_token


def create_app(settings: CollectorSettings) -> FastAPI:
    """Build the collector app for ``settings``; the journal opens in the app's lifespan."""
    hooks = dict(settings.hooks)
    metrics = Metrics(settings.lake)
    writer = SegmentWriter(
        settings.lake,
        segment_max_bytes=settings.segment_max_bytes,
        fsync_observer=metrics.fsync.observe,
    )
    journal = GroupCommitter(writer, settings.seal_interval, on_batch=metrics.batch.observe)
    limit = settings.max_body_bytes
    body_timeout = settings.body_timeout

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await journal.start()
        log.info(
            "collector writer=%s lake=%s hooks=%s", writer.writer_id, settings.lake, sorted(hooks)
        )
        try:
            yield
        finally:
            await journal.close()

    app = FastAPI(
        title="Hooklake collector",
        summary="Receives Landbot MessageHooks and stores them durably in a Parquet lake.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.journal = journal

    @app.post("/hooks/{hook}")
    async def receive(hook: str, request: Request) -> Response:
        spec = hooks.get(hook)
        if spec is None:
            metrics.requests.labels("", "404").inc()
            return _json(404, {"detail": f"no hook named {hook!r} is configured"})
        status = await _receive(spec, request)
        metrics.requests.labels(hook, str(status.status_code)).inc()
        return status

    async def _receive(spec: Hook, request: Request) -> Response:
        if not _authorized(spec, request.headers.get("authorization")):
            return _json(
                401,
                {"detail": "missing or wrong 'Authorization: Token <token>' header"},
                {"WWW-Authenticate": "Token"},
            )
        try:
            async with asyncio.timeout(body_timeout):
                raw = await _read_limited(request, limit)
        except _TooLarge:
            return _json(413, {"detail": f"body larger than the limit of {limit} bytes"})
        except TimeoutError:
            return _json(408, {"detail": f"body not received within {body_timeout:g} s"})
        received_us = time.time_ns() // 1000
        kept = {h: v for h in KEPT_HEADERS if (v := request.headers.get(h)) is not None}
        header: dict[str, Any] = {"kind": "message", "hook": spec.name, "t": received_us, "h": kept}
        try:
            header["n"] = n = check_body(raw)
        except BodyError as exc:
            header.update(kind="reject", reason=str(exc), code=exc.code, index=exc.index)
            try:
                await journal.append(encode_record(header, raw))
            except StorageError as err:
                return _storage_failed(err)
            metrics.rejects.labels(spec.name, exc.code).inc()
            log.info("rejected hook=%s code=%s reason=%s", spec.name, exc.code, exc)
            return _json(400, {"detail": str(exc), "stored": "rejected"})
        try:
            await journal.append(encode_record(header, raw))
        except StorageError as err:
            return _storage_failed(err)
        metrics.messages.labels(spec.name).inc(n)
        return _json(200, {"accepted": n})

    def _storage_failed(err: StorageError) -> Response:
        log.error("storage failure: %s", err)
        return _json(503, {"detail": f"{err}; retry later"}, {"Retry-After": "5"})

    @app.get("/healthz")
    async def healthz() -> Response:
        return _json(200, {"status": "ok", "writer": writer.writer_id})

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
