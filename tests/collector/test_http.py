"""The collector over real HTTP: what each request gets back and what ends up on disk."""

from __future__ import annotations

import gzip
import json
import os
import time
from typing import Any

import httpx
import orjson
import pytest

from hooklake.collector.journal import (
    FLUSH_LOCK_NAME,
    SegmentWriter,
    encode_record,
    try_lock,
    unlock,
)
from tests.conftest import CASES, LANDBOT, Collector, lake_rows, sample, wait_until

EXPECTED = json.loads((CASES / "collector" / "expected_rows.json").read_text())
HOOKS = '[hooks.support]\ntoken = "s3cret-Token"\n[hooks.open]\n'
AUTH = {"Authorization": "Token s3cret-Token"}


def test_every_sample_payload_is_accepted_and_normalised(collector_factory: Any) -> None:
    c: Collector = collector_factory(hooks=HOOKS)
    with httpx.Client(headers=AUTH) as client:
        for name in EXPECTED:
            r = client.post(c.hook_url("support"), content=sample(name))
            assert r.status_code == 200, (name, r.text)
            assert r.json() == {"accepted": len(EXPECTED[name])}
    assert c.stop() == 0
    stored = lake_rows(c.lake)
    assert len(stored) == sum(len(v) for v in EXPECTED.values())
    assert lake_rows(c.lake, "rejected") == []
    by_key: dict[str, list[dict[str, Any]]] = {}
    for row in stored:
        by_key.setdefault(row["message_key"], []).append(row)
    for name, expected in EXPECTED.items():
        body = orjson.loads(sample(name))
        for i, want in enumerate(expected):
            got = by_key[want["message_key"]][0]
            for col, value in want.items():
                if col == "ts":
                    assert int(got["ts"].timestamp() * 1_000_000) == pytest.approx(value, abs=1)
                else:
                    assert got[col] == value, (name, col)
            # Nothing is lost: the whole message, data and customer objects are kept.
            assert any(
                orjson.loads(r["raw"]) == body["messages"][i] for r in by_key[want["message_key"]]
            )
            assert got["hook"] == "support"
            assert str(got["date"]) == got["ts"].strftime("%Y-%m-%d")
    custom = next(r for r in stored if r["message_key"] == "7c1e9a44-2b6d-4f0e-a1c3-9e8d7f6a5b40")
    assert (
        orjson.loads(custom["customer"])
        == orjson.loads(sample("text_from_customer.json"))["messages"][0]["customer"]
    )


def test_sentry_trace_and_user_agent_are_kept_but_never_the_token(collector_factory: Any) -> None:
    c: Collector = collector_factory(hooks=HOOKS)
    headers = {**AUTH, "sentry-trace": "abc-123-0", "User-Agent": "landbot/webhooks"}
    assert (
        httpx.post(
            c.hook_url("support"), content=sample("agent_message.json"), headers=headers
        ).status_code
        == 200
    )
    c.stop()
    (row,) = lake_rows(c.lake)
    assert row["sentry_trace"] == "abc-123-0"
    for path in c.lake.rglob("*"):
        if path.is_file():
            assert b"s3cret-Token" not in path.read_bytes(), path
    assert "s3cret-Token" not in c.log.read_text()


@pytest.mark.parametrize(
    ("hook", "headers", "status"),
    [
        ("nope", AUTH, 404),
        ("support", {}, 401),
        ("support", {"Authorization": "Token wrong"}, 401),
        ("support", {"Authorization": "Token s3cret-token"}, 401),
        ("support", {"Authorization": "Bearer s3cret-Token"}, 401),
        ("support", {"Authorization": "s3cret-Token"}, 401),
    ],
)
def test_unknown_hooks_and_bad_tokens_store_nothing(
    collector_factory: Any, hook: str, headers: dict[str, str], status: int
) -> None:
    c: Collector = collector_factory(hooks=HOOKS)
    r = httpx.post(c.hook_url(hook), content=sample("dialog.json"), headers=headers)
    assert r.status_code == status
    assert r.json()["detail"]
    c.stop()
    assert lake_rows(c.lake) == [] and lake_rows(c.lake, "rejected") == []


def test_token_scheme_is_case_insensitive(collector_factory: Any) -> None:
    c: Collector = collector_factory(hooks=HOOKS)
    r = httpx.post(
        c.hook_url("support"),
        content=sample("dialog.json"),
        headers={"Authorization": "token s3cret-Token"},
    )
    assert r.status_code == 200


def test_a_hook_url_ending_in_a_slash_is_the_same_hook(collector_factory: Any) -> None:
    """Landbot's hook URL is pasted by hand, often with a trailing slash: the delivery is
    stored, not answered with a redirect (a non-2xx Landbot retries and then drops)."""
    c: Collector = collector_factory(hooks=HOOKS)
    for hook, headers in (("support", AUTH), ("open", {})):
        r = httpx.post(c.hook_url(hook) + "/", content=sample("dialog.json"), headers=headers)
        assert r.status_code == 200, r.text
    r = httpx.post(c.hook_url("support") + "/", content=sample("dialog.json"))
    assert r.status_code == 401
    r = httpx.post(c.hook_url("nope") + "/", content=sample("dialog.json"), headers=AUTH)
    assert r.status_code == 404 and "nope" in r.json()["detail"]
    c.stop()
    assert sorted(r["hook"] for r in lake_rows(c.lake)) == ["open", "support"]


def test_oversized_bodies_get_413_and_store_nothing(collector_factory: Any) -> None:
    c: Collector = collector_factory(hooks=HOOKS, args=("--max-body", "2048"))
    big = b'{"messages": [], "pad": "' + b"x" * 4096 + b'"}'
    r = httpx.post(c.hook_url("open"), content=big)
    assert r.status_code == 413 and "2048" in r.json()["detail"]

    def chunks() -> Any:  # no Content-Length: the limit must hold while streaming
        yield b'{"messages": [], "pad": "'
        for _ in range(64):
            yield b"y" * 1024
        yield b'"}'

    r = httpx.post(c.hook_url("open"), content=chunks())
    assert r.status_code == 413
    assert httpx.post(c.hook_url("open"), content=sample("dialog.json")).status_code == 200
    c.stop()
    assert len(lake_rows(c.lake)) == 1 and lake_rows(c.lake, "rejected") == []


BAD_BODIES = [
    (b"", "empty"),
    (b"not json", "not valid JSON"),
    (b"[1, 2]", "JSON list"),
    (b'{"message": []}', "no 'messages'"),
    (b'{"messages": {"a": 1}}', "'messages' is dict"),
    (b'{"messages": [null]}', "messages[0] is null"),
    (b'{"messages": [{"timestamp": "1747943104", "customer": {"id": 1}}]}', "timestamp must be"),
    (b'{"messages": [{"timestamp": 1747943104006, "customer": {"id": 1}}]}', "milliseconds"),
    (b'{"messages": [{"timestamp": 1747943104.1}]}', "customer.id is missing"),
    (b'{"messages": [{"timestamp": 1747943104.1, "customer": 7}]}', "customer must be an object"),
    (
        b'{"messages": [{"timestamp": 1747943104.1, "customer": {"id": "x1"}}]}',
        "customer.id must be an integer",
    ),
    (b"\xff\xfe{}", "not UTF-8 (byte 0xff at offset 0)"),
    ('{"messages": [{"text": "caf\u00e9"}]}'.encode("latin-1"), "byte 0xe9 at offset 27"),
    (gzip.compress(b'{"messages": []}'), "gzip-compressed; send it uncompressed"),
]


def test_bad_bodies_get_400_with_reason_and_are_kept_in_rejects(collector_factory: Any) -> None:
    c: Collector = collector_factory(hooks=HOOKS)
    with httpx.Client(headers=AUTH) as client:
        for body, reason in BAD_BODIES:
            r = client.post(c.hook_url("support"), content=body)
            assert r.status_code == 400, body
            assert reason in r.json()["detail"], (body, r.json())
    c.stop()
    assert lake_rows(c.lake) == []
    rejected = lake_rows(c.lake, "rejected")
    assert [r["body"] for r in rejected] == [b for b, _ in BAD_BODIES]
    for row, (_, reason) in zip(rejected, BAD_BODIES, strict=True):
        assert reason in row["reason"] and row["hook"] == "support"


def test_repeated_deliveries_keep_one_message_key(collector_factory: Any) -> None:
    c: Collector = collector_factory()
    for _ in range(3):
        for name in ("agent_message.json", "help_center_sample.json"):
            assert httpx.post(c.hook_url(), content=sample(name)).status_code == 200
    c.stop()
    stored = lake_rows(c.lake)
    assert len(stored) == 6
    assert len({r["message_key"] for r in stored}) == 2


def test_metrics_count_requests_messages_and_rejects(collector_factory: Any) -> None:
    c: Collector = collector_factory(hooks=HOOKS)
    httpx.post(c.hook_url("support"), content=sample("multi_message_batch.json"), headers=AUTH)
    httpx.post(c.hook_url("support"), content=b"nope", headers=AUTH)
    httpx.post(c.hook_url("support"), content=b"{}")
    text = httpx.get(f"{c.url}/metrics").text
    assert 'hooklake_requests_total{hook="support",status="200"} 1.0' in text
    assert 'hooklake_requests_total{hook="support",status="400"} 1.0' in text
    assert 'hooklake_requests_total{hook="support",status="401"} 1.0' in text
    assert 'hooklake_messages_accepted_total{hook="support"} 2.0' in text
    assert 'hooklake_rejects_total{hook="support",reason="invalid_json"} 1.0' in text
    assert "hooklake_journal_fsync_seconds_count 2.0" in text
    assert "hooklake_flush_lag_seconds" in text and "hooklake_journal_unflushed_bytes" in text


def test_background_flush_makes_messages_readable_while_serving(collector_factory: Any) -> None:
    c: Collector = collector_factory()
    assert httpx.post(c.hook_url(), content=sample("dialog.json")).status_code == 200
    rows = wait_until(lambda: lake_rows(c.lake), "the flusher stored the message while serving")
    assert [r["message_key"] for r in rows] == ["9a8b7c6d-5e4f-4a3b-2c1d-0e9f8a7b6c5d"]
    assert c.proc.poll() is None, "read while the collector still runs"


def test_healthz_says_when_flushing_falls_behind(collector_factory: Any) -> None:
    """``/healthz`` answers 200 while the collector answers (a 2xx still means the body is on
    its disk), and says "flush behind" while a journal segment has waited over a minute: here
    one whose flush lock this test holds, as a flusher stuck on unreachable storage would."""
    c: Collector = collector_factory()
    health = httpx.get(f"{c.url}/healthz")
    assert health.status_code == 200 and health.json()["status"] == "ok"
    writer = SegmentWriter(c.lake)
    writer.open()
    held = try_lock(writer.directory / FLUSH_LOCK_NAME)
    assert held is not None
    try:
        head = {"kind": "message", "hook": "default", "t": 1, "h": {}, "n": 1}
        writer.write(encode_record(head, sample("dialog.json")))
        segment = writer.seal()
        assert segment is not None
        ten_minutes_ago = time.time() - 600
        os.utime(segment, (ten_minutes_ago, ten_minutes_ago))
        health = httpx.get(f"{c.url}/healthz")
        assert health.status_code == 200
        body = health.json()
        assert body["status"] == "flush behind", body
        assert body["flush_lag_seconds"] >= 600 and body["unflushed_bytes"] > 0
    finally:
        unlock(held)
        writer.close()
    # Released, the segment is flushed (as a dead writer's) and the collector is well again.
    wait_until(
        lambda: httpx.get(f"{c.url}/healthz").json()["status"] == "ok", "the segment flushed"
    )
    assert [r["message_key"] for r in lake_rows(c.lake)] == ["9a8b7c6d-5e4f-4a3b-2c1d-0e9f8a7b6c5d"]


def test_all_samples_in_the_shared_folder_are_covered() -> None:
    assert sorted(EXPECTED) == sorted(p.name for p in LANDBOT.glob("*.json"))
