"""Baseline for bench/ingest.py: a FastAPI endpoint that only reads and parses the body."""

from __future__ import annotations

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import Response

app = FastAPI()


@app.post("/hooks/{hook}")
async def receive(hook: str, request: Request) -> Response:
    body = orjson.loads(await request.body())
    return Response(
        orjson.dumps({"accepted": len(body["messages"])}), media_type="application/json"
    )
