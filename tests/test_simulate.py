"""The traffic simulator: realistic bodies, exact ground truth, NDJSON output and the sender."""

from __future__ import annotations

import itertools
import json
import re
import socket
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from hooklake.cli import main
from hooklake.errors import ConfigError
from hooklake.fields import lookup
from hooklake.simulate import (
    DEFAULT_START,
    FEATURES,
    MAX_GAP,
    RETURN_GAP,
    USER_AGENT,
    Delivery,
    bodies,
    check_reachable,
    send,
    simulate,
    write_ndjson,
)
from hooklake.simulate.texts import iban_valid, luhn_valid
from tests.conftest import Collector, examples, wait_until

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT.parent / "shared" / "landbot" / "payloads"

MESSAGE_KEYS = {"_raw", "type", "data", "timestamp", "sender", "customer", "channel"}
RAW_KEYS = {
    "uuid", "extra", "chat", "ui_key", "type", "channel", "timestamp", "author_type",
    "author_uuid", "read", "seq", "message", "rich_text",
}  # fmt: skip
LEGACY_RAW_KEYS = {"extra", "chat", "type", "channel", "timestamp", "read", "readed_at", "message"}
WEB_CUSTOMER = {
    "agent_id",
    "name",
    "country",
    "url",
    "id",
    "archived",
    "is_external",
    "webchat_type",
}
WHATSAPP_CUSTOMER = {"agent_id", "name", "phone", "id", "archived"}
LEGACY_CUSTOMER = {"country", "url", "id"}
KNOWN_TYPES = {"text", "button", "dialog", "image", "iframe", "event", "card_template"}
# Where real traffic puts content besides data (simulate/encode.py): flat in _raw, or an
# event's action and agent at the top level.
FLAT_RAW_KEYS = {"action", "agent_id", "payload", "buttons", "payloads", "address", "url"}
TOP_KEYS = {"action", "agent_id"}


def message(d: Delivery) -> dict[str, Any]:
    body = orjson.loads(d.body)
    assert isinstance(body, dict) and list(body) == ["messages"]
    assert isinstance(body["messages"], list) and len(body["messages"]) == 1
    msg: dict[str, Any] = body["messages"][0]
    return msg


def conversations(deliveries: list[Delivery]) -> dict[str, list[Delivery]]:
    """First deliveries grouped by true conversation, in true order."""
    out: dict[str, list[Delivery]] = defaultdict(list)
    for d in deliveries:
        if not d.truth.retry:
            out[d.truth.conversation_id].append(d)
    for ds in out.values():
        ds.sort(key=lambda d: d.truth.position)
    return out


def check_traffic(deliveries: list[Delivery]) -> Counter[str]:
    """Every property a simulation of at least ``len(FEATURES)`` customers must have; returns
    how often each case was seen."""
    assert deliveries
    seen: Counter[str] = Counter()
    firsts: dict[str, Delivery] = {}
    arrival = [d.deliver_at for d in deliveries]
    assert arrival == sorted(arrival), "the stream is in delivery order"
    for d in deliveries:
        t, msg = d.truth, message(d)
        assert MESSAGE_KEYS <= set(msg) <= MESSAGE_KEYS | (TOP_KEYS if t.shape == "flat" else set())
        seen[f"shape-{t.shape}"] += 1
        assert d.headers == {
            "Content-Type": "application/json",
            "User-Agent": "landbot/webhooks",
            "sentry-trace": t.sentry_trace,
        }
        raw, customer, sender = msg["_raw"], msg["customer"], msg["sender"]
        assert msg["timestamp"] == raw["timestamp"] == t.ts
        assert msg["type"] == raw["type"] == t.type
        assert sender["type"] == t.sender_type
        if isinstance(sender["id"], str):
            seen["text-ids"] += 1
        assert (
            customer["id"] == t.customer_id
            and int(msg["channel"]["id"]) == raw["channel"] == t.channel_id
        )
        assert msg["channel"]["type"] == t.channel_type
        assert set(msg["channel"]) == {"id", "name", "type"}
        if t.legacy:
            seen["legacy"] += 1
            assert "uuid" not in raw and t.message_key is None
            assert LEGACY_RAW_KEYS <= set(raw) <= LEGACY_RAW_KEYS | {"payload"}
            assert set(customer) >= LEGACY_CUSTOMER and "agent_id" not in customer
            assert (raw["readed_at"] is not None) == raw["read"]
        else:
            seen["new"] += 1
            assert raw["uuid"] == t.message_key and raw["seq"] == t.seq
            flat = FLAT_RAW_KEYS if t.shape in ("core", "flat") else set()
            assert RAW_KEYS <= set(raw) <= RAW_KEYS | {"samurai"} | flat, t.shape
            if t.shape != "samples" and t.sender_type == "bot":
                seen[f"extra-{json.dumps(raw['extra'])[:9]}"] += 1
            expected = WHATSAPP_CUSTOMER if t.channel_type == "whatsapp" else WEB_CUSTOMER
            assert expected <= set(customer)
            assert customer["agent_id"] == t.agent_id
            author = {"customer": "user", "bot": "bot", "agent": "agent", "sys": "sys"}
            assert raw["author_type"] == author[t.sender_type]
            sender_id = int(sender["id"])
            samurai = {"bot": -sender_id, "agent": sender_id, "sys": 0}.get(t.sender_type)
            if isinstance(raw.get("samurai"), str):
                seen["samurai-text"] += 1
            assert (None if "samurai" not in raw else int(raw["samurai"])) == samurai
            if t.sender_type == "agent":
                assert sender_id == customer["agent_id"]
        if t.sender_type == "customer":
            assert int(sender["id"]) == customer["id"] and sender["name"] == customer.get(
                "name", sender["name"]
            )
            if t.channel_type == "whatsapp":
                assert type(msg["timestamp"]) is int
                seen["whole-second"] += 1
        elif t.sender_type == "sys":
            assert sender == {"id": 0, "name": "Landbot", "type": "sys"}
        if any(isinstance(v, str) and v.startswith("['") for v in customer.values()):
            seen["repr-list-field"] += 1
        if t.sender_type == "sys" and lookup(msg, "action") is None:
            seen["sys-opening"] += 1
            assert t.position == 1, "sys deliveries open a session"
        elif t.type == "stripe":
            seen["payment"] += 1
            assert t.sender_type == "bot"
        elif t.type not in KNOWN_TYPES:
            seen["unknown-type"] += 1
            seen[t.type] += 1
            assert t.sender_type == "customer"
        text = msg["data"].get("body") or ""
        for kind, value in t.pii:
            assert value in text
            seen[f"pii-{kind}"] += 1
            if kind == "card":
                assert luhn_valid(value)
            if kind == "iban":
                assert iban_valid(value)
            if kind == "phone":
                seen["phone-intl" if value.startswith("+") else "phone-local"] += 1
        if t.retry:
            seen["retry"] += 1
            first = firsts[t.sentry_trace]
            assert first.body == d.body, "a retry repeats the body byte for byte"
            assert first.truth.conversation_id == t.conversation_id
            assert d.deliver_at >= first.deliver_at + 5
        else:
            assert t.sentry_trace not in firsts, "sentry-trace is unique per message"
            firsts[t.sentry_trace] = d
    keys = [d.truth.message_key for d in firsts.values() if d.truth.message_key]
    assert len(keys) == len(set(keys))

    by_customer: dict[int, list[list[Delivery]]] = defaultdict(list)
    for cid, ds in conversations(deliveries).items():
        head = ds[0].truth
        assert [d.truth.position for d in ds] == list(range(1, head.size + 1)), cid
        assert all(d.truth.size == head.size for d in ds)
        order = [(d.truth.ts, d.truth.seq or 0) for d in ds]
        assert order == sorted(order) and len(set(order)) == len(order), (
            "(ts, seq) is a total order"
        )
        gaps = [b.truth.ts - a.truth.ts for a, b in itertools.pairwise(ds)]
        assert all(0 <= g < MAX_GAP for g in gaps)
        if any(g == 0 for g in gaps):
            seen["equal-ts"] += 1
        delivered = sorted(ds, key=lambda d: d.deliver_at)
        if [d.truth.position for d in delivered] != [d.truth.position for d in ds]:
            seen["out-of-order"] += 1
        day = datetime.fromtimestamp(ds[0].truth.ts, UTC).date()
        if datetime.fromtimestamp(ds[-1].truth.ts, UTC).date() != day:
            seen["midnight"] += 1
        check_flow(ds, seen)
        by_customer[head.customer_id].append(ds)
    for convs in by_customer.values():
        convs.sort(key=lambda ds: ds[0].truth.ts)
        assert [ds[0].truth.conversation for ds in convs] == list(range(1, len(convs) + 1))
        assert len({ds[0].truth.channel_id for ds in convs}) == 1
        for a, b in itertools.pairwise(convs):
            assert b[0].truth.ts - a[-1].truth.ts >= RETURN_GAP[0]
            seen["return"] += 1
    for feature in (
        "legacy", "new", "whole-second", "repr-list-field", "unknown-type", "pii-email",
        "pii-phone", "pii-card", "pii-iban", "phone-intl", "phone-local", "retry", "equal-ts",
        "out-of-order", "midnight", "return", "handover", "button", "card_template", "image",
        "iframe", "agent",
    ):  # fmt: skip
        assert seen[feature], f"no {feature} in the traffic"
    return seen


def check_flow(ds: list[Delivery], seen: Counter[str]) -> None:
    """Buttons answer the menu before them; agents talk only once a hand-off has started; the
    hand-off's earliest evidence is marked in the truth. Content is read wherever the body's
    shape put it (:func:`hooklake.fields.lookup`)."""
    menu: dict[str, Any] | None = None
    assigned: int | None = None  # customer.agent_id of the previous message
    started = False
    for d in ds:
        msg, t = message(d), d.truth
        data = msg["data"]
        if t.type == "dialog":
            menu = {"buttons": lookup(msg, "buttons"), "payloads": lookup(msg, "payloads")}
            if t.shape == "samples":
                assert msg["_raw"]["extra"] == menu
        elif t.type == "card_template":
            seen["card_template"] += 1
            menu = {
                "buttons": [b["title"] for b in data["buttons"]],
                "payloads": [b["payload"] for b in data["buttons"]],
            }
        elif t.type == "button":
            seen["button"] += 1
            assert menu is not None, "a click follows a menu"
            i = menu["buttons"].index(data["body"])
            assert lookup(msg, "payload") == menu["payloads"][i]
        elif t.type in ("image", "iframe"):
            seen[t.type] += 1
            assert data["url"].startswith("https://")
        elif t.type == "event" and (action := lookup(msg, "action")) is not None:
            assert action in ("assign", "unassign")
            assert (action == "assign") == (t.agent_id is not None)
            if action == "assign":
                assert lookup(msg, "event_agent_id") == t.agent_id
            if t.shape == "samples":
                assert msg["_raw"]["extra"]["action"] == action
        if t.handover:
            seen["handover"] += 1
            seen[f"handover-{t.sender_type}"] += 1
            assert assigned is None and t.agent_id is not None, "a hand-off starts here"
            started = True
        elif t.agent_id is None:
            started = False
        if t.sender_type == "agent":
            seen["agent"] += 1
            assert started and t.agent_id is not None
        assigned = t.agent_id


@pytest.fixture(scope="module")
def traffic() -> list[Delivery]:
    return list(simulate(60, seed=0))


def test_traffic_has_every_case(traffic: list[Delivery]) -> None:
    check_traffic(traffic)


def test_traffic_has_the_shapes_of_real_material_in_realistic_proportions(
    traffic: list[Delivery],
) -> None:
    """Drawn at random per conversation, so checked on a fixed, larger simulation."""
    seen = check_traffic(traffic)
    firsts = [d.truth for d in traffic if not d.truth.retry]
    n_conversations = len({t.conversation_id for t in firsts})
    new = [t for t in firsts if not t.legacy]
    for shape, share in (("core", 0.55), ("samples", 0.30), ("flat", 0.15)):
        got = sum(t.shape == shape for t in new) / len(new)
        assert abs(got - share) < 0.15, (shape, got)
    # 7 of 8 real sessions open with a sys delivery.
    opened = sum(t.position == 1 and t.sender_type == "sys" for t in firsts)
    assert 0.7 < opened / n_conversations < 0.98, (opened, n_conversations)
    # Hand-offs start with the event, with a customer message ahead of it, or with the agent.
    assert seen["handover-sys"] and seen["handover-customer"], seen
    assert seen["samurai-text"] and seen["text-ids"], seen
    assert any(k.startswith("extra-null") for k in seen) and seen['extra-{"typing"'], seen


def test_same_seed_same_bytes_other_seed_other_bytes() -> None:
    a = [d.body for d in simulate(15, seed=5)]
    assert a == [d.body for d in simulate(15, seed=5)]
    assert a != [d.body for d in simulate(15, seed=6)]
    assert a == list(bodies(15, seed=5))


def test_start_moves_the_clock() -> None:
    start = datetime(2030, 5, 17, 13, 45, tzinfo=UTC)
    moved = list(simulate(5, start=start))
    assert min(d.truth.ts for d in moved) == pytest.approx(start.timestamp(), abs=1)
    default = list(simulate(5))
    assert min(d.truth.ts for d in default) == pytest.approx(DEFAULT_START.timestamp(), abs=1)
    with pytest.raises(ValueError, match="timezone"):
        simulate(5, start=datetime(2030, 1, 1))


def test_bodies_have_the_shape_of_the_samples(traffic: list[Delivery]) -> None:
    if not SAMPLES.is_dir():
        pytest.skip(f"Landbot samples not found at {SAMPLES}")
    by_type: dict[tuple[str, str, bool, str], dict[str, Any]] = {}
    for path in SAMPLES.glob("*.json"):
        body = json.loads(path.read_text())
        if "channel" in body:  # the APIchat envelope is not a MessageHook
            continue
        for msg in body["messages"]:
            shape = (
                msg["type"],
                msg["sender"]["type"],
                "uuid" in msg["_raw"],
                msg["channel"]["type"],
            )
            by_type[shape] = msg
    matched = set()
    for d in traffic:
        if d.truth.shape not in ("samples", "legacy") or d.truth.sender_type == "sys":
            continue  # where content sits in other shapes is checked by check_traffic
        msg = message(d)
        shape = (msg["type"], msg["sender"]["type"], "uuid" in msg["_raw"], msg["channel"]["type"])
        sample = by_type.get(shape)
        if sample is None:
            continue
        matched.add(shape)
        assert set(msg) == set(sample)
        assert set(msg["data"]) == set(sample["data"]), shape
        assert set(msg["_raw"]) - {"samurai", "payload"} == set(sample["_raw"]) - {
            "samurai",
            "payload",
        }
        assert type(msg["timestamp"]) is type(sample["timestamp"])
        assert set(msg["sender"]) == set(sample["sender"])
        customer_keys = set(sample["customer"]) - {"email", "interests"}  # custom fields vary
        assert customer_keys <= set(msg["customer"]), shape
    assert len(matched) >= 9, f"only {sorted(matched)} matched a sample"


@settings(max_examples=examples(6))
@given(seed=st.integers(0, 2**32), customers=st.integers(len(FEATURES), 3 * len(FEATURES)))
def test_any_seed_and_size_has_exact_truth(seed: int, customers: int) -> None:
    deliveries = list(simulate(customers, seed=seed, customers_per_hour=200))
    check_traffic(deliveries)
    assert len({d.truth.customer_id for d in deliveries}) == customers


def test_endless_stream_is_lazy() -> None:
    stream = simulate(None, seed=1, customers_per_hour=5000)
    first = list(itertools.islice(stream, 20_000))
    assert len(first) == 20_000
    assert len({d.truth.customer_id for d in first}) > 500


def test_write_ndjson_and_cli_out(tmp_path: Path) -> None:
    expected = [d.body for d in simulate(12, seed=3)]
    tally = write_ndjson(simulate(12, seed=3), tmp_path / "lib.ndjson")
    assert (tmp_path / "lib.ndjson").read_bytes().splitlines() == expected
    assert tally.deliveries == len(expected) and tally.customers == 12
    assert tally.messages + tally.retries == tally.deliveries

    out = tmp_path / "cli.ndjson"
    result = CliRunner().invoke(
        main, ["simulate", "--out", str(out), "--customers", "12", "--seed", "3"]
    )
    assert result.exit_code == 0, result.output
    assert out.read_bytes().splitlines() == expected
    assert f"wrote {len(expected)} deliveries" in result.output and "12 customers" in result.output

    result = CliRunner().invoke(
        main, ["simulate", "--out", "-", "--customers", "2", "--start", "now"]
    )
    assert result.exit_code == 0
    lines = result.stdout_bytes.splitlines()
    assert lines and all(orjson.loads(line)["messages"] for line in lines)
    first_ts = orjson.loads(lines[0])["messages"][0]["timestamp"]
    assert abs(first_ts - datetime.now(UTC).timestamp()) < 3600


def test_cli_needs_exactly_one_destination(tmp_path: Path) -> None:
    runner = CliRunner()
    neither = runner.invoke(main, ["simulate"])
    both = runner.invoke(main, ["simulate", "--to", "http://x", "--out", str(tmp_path / "f")])
    for result in (neither, both):
        assert result.exit_code == 2 and "exactly one of --to" in result.output
    help_text = runner.invoke(main, ["simulate", "--help"]).output
    assert "hooklake simulate --to http://" in help_text and "--out" in help_text


class Recorder:
    """A tiny real collector: records every POST; answers 503 to the first try of some."""

    def __init__(self, flaky_every: int = 0, status: int = 200) -> None:
        self.requests: list[tuple[str, dict[str, str], bytes, tuple[str, int]]] = []
        self.lock = threading.Lock()
        self.flaky_every = flaky_every
        self.status = status
        self.refused: set[str] = set()
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                trace = self.headers["sentry-trace"]
                with recorder.lock:
                    n = len(recorder.requests)
                    recorder.requests.append(
                        (self.path, dict(self.headers), body, self.client_address)
                    )
                    flaky = recorder.flaky_every and n % recorder.flaky_every == 0
                    status = recorder.status
                    if flaky and trace not in recorder.refused:
                        recorder.refused.add(trace)
                        status = 503
                payload = b'{"ok":true}'
                self.send_response(status)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/default"

    def __enter__(self) -> Recorder:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    with Recorder(flaky_every=7) as rec:
        yield rec


def test_send_retries_until_acknowledged(recorder: Recorder) -> None:
    deliveries = list(simulate(6, seed=2))
    done: list[tuple[str, int | None]] = []
    report = send(
        deliveries,
        recorder.url,
        token="s3cret",
        concurrency=4,
        backoff=0.01,
        on_result=lambda d, status: done.append((d.truth.sentry_trace, status)),
    )
    assert report.sent == len(deliveries) == len(done)
    assert report.acknowledged == len(deliveries) and report.failed == 0
    refused = len(recorder.refused)
    assert refused > 0 and report.statuses == Counter({200: len(deliveries), 503: refused})
    assert report.requests == len(recorder.requests) == len(deliveries) + refused
    assert all(status == 200 for _, status in done)

    # Every body arrived, byte for byte, with Landbot's headers.
    got = Counter(body for _, _, body, _ in recorder.requests)
    want = Counter(d.body for d in deliveries)
    for trace in recorder.refused:
        want[next(d.body for d in deliveries if d.truth.sentry_trace == trace)] += 1
    assert got == want
    for path, headers, body, _ in recorder.requests:
        assert path == "/hooks/default"
        assert headers["Authorization"] == "Token s3cret"
        assert headers["User-Agent"] == USER_AGENT and headers["Content-Type"] == "application/json"
        assert headers["sentry-trace"] == next(
            d.truth.sentry_trace for d in deliveries if d.body == body
        )
    # Keep-alive: far fewer connections than requests.
    assert len({addr for *_, addr in recorder.requests}) <= 4 < len(recorder.requests)


def test_send_gives_up_after_attempts() -> None:
    with Recorder(status=503) as rec:
        deliveries = list(itertools.islice(simulate(1), 5))
        report = send(deliveries, rec.url, attempts=3, backoff=0.01, concurrency=2)
    assert report.sent == report.failed == 5 and report.acknowledged == 0
    assert report.statuses == Counter({503: 15}) and len(rec.requests) == 15


def test_send_counts_connection_errors() -> None:
    with Recorder() as rec:
        url = rec.url
    deliveries = list(itertools.islice(simulate(1), 3))  # the server is gone now
    report = send(deliveries, url, attempts=2, backoff=0.01, concurrency=1, timeout=2)
    assert report.failed == 3 and report.errors == 6 and not report.statuses


def test_send_reports_deliveries_that_keep_failing(monkeypatch: pytest.MonkeyPatch) -> None:
    sending = sys.modules["hooklake.simulate.send"]  # hooklake.simulate.send is the function
    monkeypatch.setattr(sending, "RETRY_NOTICE_AFTER", 0.2)
    monkeypatch.setattr(sending, "RETRY_NOTICE_EVERY", 0.5)
    notices: list[tuple[float, int, float, str]] = []
    with Recorder(status=503) as rec:
        deliveries = list(itertools.islice(simulate(1), 2))
        report = send(
            deliveries,
            rec.url,
            attempts=5,
            backoff=0.15,  # retried after 0.15, 0.3, 0.45, 0.6 s: failing for 1.5 s in all
            concurrency=2,
            on_retrying=lambda *args: notices.append((time.monotonic(), *args)),
        )
    assert report.failed == 2
    assert notices and all(
        n in (1, 2) and oldest >= 0.2 and error == "HTTP 503" for _, n, oldest, error in notices
    ), notices
    assert all(b[0] - a[0] >= 0.5 for a, b in itertools.pairwise(notices)), "at most every 0.5 s"


def test_send_stops_on_a_wrong_token() -> None:
    with Recorder(status=401) as rec:
        with pytest.raises(ConfigError, match=r"401.*token"):
            send(simulate(5), rec.url, token="wrong", backoff=0.01, concurrency=2)
        assert len(rec.requests) <= 2


def test_send_respects_rate(recorder: Recorder) -> None:
    deliveries = list(itertools.islice(simulate(3), 30))
    recorder.flaky_every = 0
    report = send(deliveries, recorder.url, rate=200, concurrency=4)
    assert report.acknowledged == 30
    assert report.elapsed >= 29 / 200 * 0.9


def test_cli_sends_to_a_collector() -> None:
    with Recorder() as rec:
        result = CliRunner().invoke(
            main, ["simulate", "--to", rec.url, "--customers", "3", "--token", "t"]
        )
    assert result.exit_code == 0, result.output
    assert "acknowledged" in result.output and "0 failed" in result.output
    assert len(rec.requests) == len(list(simulate(3)))


def hooklake(*args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """The real ``hooklake`` command in a process of its own."""
    cmd = [sys.executable, "-m", "hooklake", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, **kwargs)


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A loopback port where nothing listens: bound but not listening, so connections to it
    are refused and no other program can start listening there during the test."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield int(s.getsockname()[1])


def test_cli_stops_at_once_when_nothing_listens(closed_port: int) -> None:
    url = f"http://127.0.0.1:{closed_port}/hooks/default"
    began = time.monotonic()
    result = hooklake("simulate", "--to", url, "--customers", "1")
    elapsed = time.monotonic() - began
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.splitlines() == [
        f"Error: cannot reach {url}: connection refused (is hooklake serve running?)"
    ]
    # Not the minutes of Landbot-like retries (5 + 10 + … + 25 s for each delivery).
    assert elapsed < 30


@pytest.mark.parametrize("url", ["localhost:8000", "127.0.0.1:8000/hooks/default", "http://"])
def test_cli_needs_an_http_url(url: str) -> None:
    result = hooklake("simulate", "--to", url, "--customers", "1")
    assert result.returncode != 0 and result.stdout == ""
    assert result.stderr.splitlines() == [
        f"Error: {url!r} is not an http:// or https:// URL with a host, "
        "e.g. http://127.0.0.1:8000/hooks/default"
    ]


def test_send_and_check_reachable_refuse_a_url_without_scheme(closed_port: int) -> None:
    with pytest.raises(ConfigError, match="not an http:// or https:// URL"):
        send(simulate(1), "localhost:8000")
    with pytest.raises(ConfigError, match="not an http:// or https:// URL"):
        check_reachable("ftp://127.0.0.1/hooks/default")
    with pytest.raises(ConfigError, match=r"cannot reach .*: connection refused"):
        check_reachable(f"http://127.0.0.1:{closed_port}/hooks/default", wait=0.5)
    with Recorder() as rec:
        check_reachable(rec.url)
        assert rec.requests == [], "only a connection, no request that would be stored"


def test_simulate_rides_out_a_collector_restart(tmp_path: Path, collector_factory: Any) -> None:
    """A collector killed while simulate sends, and started again on its port, still gets
    every message: the retries carry the deliveries over the gap and say so meanwhile."""
    lake = tmp_path / "lake"
    run = ["--customers", "3", "--rate", "10"]  # 94 deliveries: about 10 s
    first: Collector = collector_factory(lake)
    err = tmp_path / "simulate.err"
    with err.open("wb") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "hooklake", "simulate", "--to", first.hook_url(), *run],
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
    try:

        def acknowledged() -> int:
            metrics = httpx.get(f"{first.url}/metrics").text
            found = re.search(
                r'hooklake_requests_total\{hook="default",status="200"\} (\d+)', metrics
            )
            return int(found.group(1)) if found else 0

        wait_until(acknowledged, "the collector acknowledged a delivery")
        first.kill()
        assert proc.poll() is None, "simulate goes on while the collector is away"
        wait_until(lambda: "being retried" in err.read_text(), "simulate said it is retrying")
        second: Collector = collector_factory(lake, port=first.port)
        out, _ = proc.communicate(timeout=240)
    finally:
        if proc.poll() is None:
            proc.kill()
    notices = err.read_text().splitlines()
    assert proc.returncode == 0, (out, notices)
    assert " 0 failed" in out and "connection errors" in out
    assert notices and all(
        re.fullmatch(
            r"\d+ deliver(y is|ies are) failing and being retried, the oldest for "
            r"\d+ s \(last error: .+\)",
            line,
        )
        for line in notices
    ), notices
    assert second.stop() == 0
    from hooklake.datasets.lake import Lake

    firsts = [d for d in simulate(3) if not d.truth.retry]
    with Lake(lake) as lk:
        [(stored,)] = lk.sql("select count(*) from messages").fetchall()
    assert stored == len(firsts)


def test_conversation_gap_is_unambiguous(traffic: list[Delivery]) -> None:
    # Splitting each customer's stream at gaps >= 30 minutes gives exactly the true conversations.
    by_customer: dict[int, list[Delivery]] = defaultdict(list)
    for d in traffic:
        if not d.truth.retry:
            by_customer[d.truth.customer_id].append(d)
    for ds in by_customer.values():
        ds.sort(key=lambda d: (d.truth.ts, d.truth.seq or 0))
        n = 1
        for prev, d in zip([None, *ds], ds, strict=False):
            if (
                prev is not None
                and d.truth.ts - prev.truth.ts >= timedelta(minutes=30).total_seconds()
            ):
                n += 1
            assert d.truth.conversation == n


def test_the_lake_rebuilds_the_true_conversations(tmp_path: Path) -> None:
    # The collector accepts every simulated body and the views find exactly the truth.
    from hooklake.collector.ingest import ingest_bodies
    from hooklake.datasets.lake import Lake

    deliveries = list(simulate(30, seed=4))
    report = ingest_bodies(tmp_path / "lake", (d.body for d in deliveries))
    assert report.rejected == 0 and report.bodies == len(deliveries)
    rows = (
        Lake(tmp_path / "lake")
        .sql("select message_key, conversation_id, position from messages")
        .fetchall()
    )
    firsts = [d.truth for d in deliveries if not d.truth.retry]
    assert len(rows) == len(firsts)
    truth = {t.message_key: t for t in firsts if t.message_key}
    found: dict[str, str] = {}
    for key, conversation, position in rows:
        t = truth.get(key)
        if t is None:
            continue  # older shape: the lake keys it by a content hash
        assert position == t.position
        assert found.setdefault(conversation, t.conversation_id) == t.conversation_id
    assert (
        len(set(found.values())) == len(found) == len({t.conversation_id for t in truth.values()})
    )


def test_planted_signals_are_consistent_truth(traffic: list[Delivery]) -> None:
    """Each hand-off after a failed bot reply is one need (customer), one rejected reply (bot,
    after it) and one chosen answer (agent, after both); ratings and fallbacks mark bot
    messages good or bad, never both."""
    first = [d.truth for d in traffic if not d.truth.retry]
    by_conv: dict[str, dict[str, list[Any]]] = {}
    for t in first:
        for mark in t.signals:
            by_conv.setdefault(t.conversation_id, {}).setdefault(mark, []).append(t)
        assert not {"good", "bad"} <= set(t.signals)
        if {"good", "bad", "rejected"} & set(t.signals):
            assert t.sender_type == "bot"
    triples = 0
    for marks in by_conv.values():
        if "need" not in marks and "chosen" not in marks:
            continue
        (need,), (rejected,), (chosen,) = marks["need"], marks["rejected"], marks["chosen"]
        assert (need.sender_type, chosen.sender_type) == ("customer", "agent")
        assert need.position < rejected.position < chosen.position
        assert "bad" in rejected.signals
        triples += 1
    labels = Counter(m for t in first for m in t.signals if m in ("good", "bad"))
    assert triples >= 3 and labels["good"] and labels["bad"], (triples, labels)
