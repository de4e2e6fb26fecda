"""``POST /hooks/{hook}``: the collector's hot path, as a bare ASGI endpoint.

Every Landbot message passes through here, so it skips what it does not need: no request
model, no dependency injection, one pass over the headers. It checks the hook and its token,
reads the body up to the size limit (refusing early on a large ``Content-Length`` and never
holding more than the limit), judges it with :func:`~hooklake.collector.check.check_body`
and answers only once the journal's fsync covers its record.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson

from hooklake.collector.check import BodyError, check_body
from hooklake.collector.failures import RepeatedFailure
from hooklake.collector.journal import GroupCommitter, encode_record
from hooklake.collector.metrics import Metrics
from hooklake.errors import StorageError
from hooklake.settings import Hook

log = logging.getLogger("hooklake.collector")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

#: Request headers kept with each record. Authorization never is.
KEPT_HEADERS = {
    b"sentry-trace": "sentry-trace",
    b"user-agent": "user-agent",
    b"content-type": "content-type",
}
_JSON = (b"content-type", b"application/json")
_UNAUTHORIZED = orjson.dumps({"detail": "missing or wrong 'Authorization: Token <token>' header"})


class _TooLarge(Exception):
    pass


class _Disconnected(Exception):
    pass


def authorized(hook: Hook, header: bytes | None) -> bool:
    """``Authorization: Token <token>``: the scheme is case-insensitive (RFC 9110); the
    secret is compared whole and in constant time, as the bytes that were sent."""
    if hook.token is None:
        return True
    if header is None:
        return False
    scheme, _, token = header.partition(b" ")
    ok_scheme = scheme.lower() == b"token"
    ok_token = hmac.compare_digest(token.strip(), hook.token.encode())
    return ok_scheme and ok_token


async def _read_body(receive: Receive, declared: bytes | None, limit: int) -> bytes:
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _TooLarge
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _Disconnected
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _TooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


class HookReceiver:
    """The ASGI app behind ``POST /hooks/{hook}``."""

    def __init__(
        self,
        hooks: dict[str, Hook],
        journal: GroupCommitter,
        metrics: Metrics,
        *,
        max_body_bytes: int,
        body_timeout: float,
    ) -> None:
        self.hooks = hooks
        self.journal = journal
        self.metrics = metrics
        self.limit = max_body_bytes
        self.body_timeout = body_timeout
        # A full disk refuses every request until space returns: one line, not one each.
        self._storage = RepeatedFailure("the journal", "answering 503 meanwhile")
        self._too_large = orjson.dumps(
            {"detail": f"body larger than the limit of {max_body_bytes} bytes"}
        )
        self._counters: dict[tuple[str, int], Any] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        name: str = scope["path_params"]["hook"]
        hook = self.hooks.get(name)
        if hook is None:
            body = orjson.dumps({"detail": f"no hook named {name!r} is configured"})
            await self._answer(send, "", 404, body)
            return
        try:
            status, body, extra = await self._handle(hook, scope, receive)
        except _Disconnected:
            return
        await self._answer(send, name, status, body, extra)

    async def _handle(
        self, hook: Hook, scope: Scope, receive: Receive
    ) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
        auth = declared = None
        kept: dict[str, str] = {}
        for key, value in scope["headers"]:
            if key == b"authorization":
                if auth is None:
                    auth = value
            elif key == b"content-length":
                declared = value
            elif key in KEPT_HEADERS:
                kept[KEPT_HEADERS[key]] = value.decode("latin-1")
        if not authorized(hook, auth):
            return 401, _UNAUTHORIZED, [(b"www-authenticate", b"Token")]
        try:
            async with asyncio.timeout(self.body_timeout):
                raw = await _read_body(receive, declared, self.limit)
        except _TooLarge:
            return 413, self._too_large, []
        except TimeoutError:
            detail = f"body not received within {self.body_timeout:g} s"
            return 408, orjson.dumps({"detail": detail}), []
        header: dict[str, Any] = {
            "kind": "message",
            "hook": hook.name,
            "t": time.time_ns() // 1000,
            "h": kept,
        }
        try:
            header["n"] = n = check_body(raw)
        except BodyError as exc:
            header.update(kind="reject", reason=str(exc), code=exc.code, index=exc.index)
            failed = await self._journal(encode_record(header, raw))
            if failed is not None:
                return failed
            self.metrics.rejects.labels(hook.name, exc.code).inc()
            log.info("rejected hook=%s code=%s reason=%s", hook.name, exc.code, exc)
            return 400, orjson.dumps({"detail": str(exc), "stored": "rejected"}), []
        failed = await self._journal(encode_record(header, raw))
        if failed is not None:
            return failed
        self.metrics.messages.labels(hook.name).inc(n)
        return 200, orjson.dumps({"accepted": n}), []

    async def _journal(self, record: bytes) -> tuple[int, bytes, list[tuple[bytes, bytes]]] | None:
        try:
            await self.journal.append(record)
        except StorageError as err:
            self._storage.failed(err)
            body = orjson.dumps({"detail": f"{err}; retry later"})
            return 503, body, [(b"retry-after", b"5")]
        self._storage.worked()
        return None

    async def _answer(
        self,
        send: Send,
        hook: str,
        status: int,
        body: bytes,
        extra: list[tuple[bytes, bytes]] | None = None,
    ) -> None:
        counter = self._counters.get((hook, status))
        if counter is None:
            counter = self._counters[(hook, status)] = self.metrics.requests.labels(
                hook, str(status)
            )
        counter.inc()
        headers = [_JSON, (b"content-length", str(len(body)).encode()), *(extra or ())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
