"""Hostile bodies over real HTTP: generated ones and mutations of the real samples.

One collector serves the whole module. Whatever a body holds, the answer is 2xx or 4xx, never
5xx, and the server stays healthy. Every authenticated 4xx is kept in the lake's rejects with
the reason the sender was told; every 2xx body ends in the lake, as message rows or (for a
message the flush cannot place) as a reject. Each test posts to its own hook, so its checks
look at its own rows only.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hooklake.layout import MESSAGES, REJECTED
from tests.collector.test_check import bodies as generated_bodies
from tests.conftest import LANDBOT, Collector, SeededRandom, examples, lake_rows, start_collector

TOKEN = "h0stile-T0ken"
HOOK_NAMES = ("generated", "bytes", "flips", "cuts", "types", "edges")
HOOKS = "".join(f'[hooks.{name}]\ntoken = "{TOKEN}"\n' for name in HOOK_NAMES)
AUTH = {"Authorization": f"Token {TOKEN}"}
LIMIT = 1 << 20
SAMPLES = {p.name: p.read_bytes() for p in sorted(LANDBOT.glob("*.json"))}
FAST = {"HOOKLAKE_SEAL_INTERVAL": "0.3", "HOOKLAKE_FLUSH_INTERVAL": "0.3"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Collector]:
    root = tmp_path_factory.mktemp("hostile")
    c = start_collector(root / "lake", hooks=HOOKS, env=FAST)
    yield c
    c.kill()


class Sender:
    """Posts bodies to one hook and remembers what each got back."""

    def __init__(self, server: Collector, hook: str) -> None:
        self.server = server
        self.hook = hook
        self.client = httpx.Client(headers=AUTH, timeout=30)
        self.sent: list[tuple[bytes, httpx.Response]] = []

    def post(self, raw: bytes) -> httpx.Response:
        r = self.client.post(self.server.hook_url(self.hook), content=raw)
        assert r.status_code < 500, (r.status_code, r.text, raw[:200])
        assert r.status_code in (200, 400), (r.status_code, r.text)
        if r.status_code == 400:
            assert r.json()["stored"] == "rejected" and r.json()["detail"]
        self.sent.append((raw, r))
        return r

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> Sender:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _rows(lake: Path, table: str, hook: str) -> list[dict[str, Any]]:
    return [r for r in lake_rows(lake, table) if r["hook"] == hook]


def _canon(value: Any) -> str:
    # The json module, not orjson: it writes nesting deeper than orjson's 255 levels.
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _mismatch(sender: Sender) -> str | None:
    """What the lake lacks, or holds that nobody sent, for ``sender``'s requests."""
    lake = sender.server.lake
    stored = Counter(_canon(orjson.loads(r["raw"])) for r in _rows(lake, MESSAGES, sender.hook))
    rejected = [
        (r["body"], r["reason"], r["message_index"]) for r in _rows(lake, REJECTED, sender.hook)
    ]
    told = Counter((raw, r.json()["detail"]) for raw, r in sender.sent if r.status_code == 400)
    kept = Counter((body, reason) for body, reason, _ in rejected)
    if told - kept:
        return f"400 bodies not in rejects with their reason: {list(told - kept)[:2]}"
    # The other rejects are messages of 2xx bodies that the flush could not place.
    at_flush = Counter(
        (body, index) for body, reason, index in rejected if (body, reason) not in told
    )
    needed: Counter[str] = Counter()
    for raw, r in sender.sent:
        if r.status_code != 200:
            continue
        messages = orjson.loads(raw)["messages"]
        if len(messages) != r.json()["accepted"]:
            return f"accepted {r.json()['accepted']} of {len(messages)} messages"
        for i, msg in enumerate(messages):
            if at_flush[(raw, i)] > 0:
                at_flush[(raw, i)] -= 1
            else:
                needed[_canon(msg)] += 1
    if +at_flush:
        return f"rejects nobody was told about: {list(+at_flush)[:2]}"
    if needed - stored:
        return f"2xx messages not in the lake: {list(needed - stored)[:2]}"
    if stored - needed:
        return f"message rows nobody sent: {list(stored - needed)[:2]}"
    return None


def settle(sender: Sender, timeout: float = 120) -> None:
    """Wait for the background flush to store everything ``sender`` sent, then check it. The
    deadline is for a flusher that never catches up, not a slow one."""
    sender.close()
    deadline = time.monotonic() + timeout
    while (problem := _mismatch(sender)) and time.monotonic() < deadline:
        time.sleep(0.25)
    assert problem is None, problem
    assert httpx.get(f"{sender.server.url}/healthz").status_code == 200
    assert sender.server.proc.poll() is None, "the collector died"
    log = sender.server.log.read_text()
    assert "Traceback" not in log and "Exception in ASGI application" not in log, log[-3000:]


# --- generated ------------------------------------------------------------------------------


def test_generated_bodies(server: Collector) -> None:
    with Sender(server, "generated") as sender:

        @settings(max_examples=examples(250), suppress_health_check=list(HealthCheck))
        @given(raw=generated_bodies)
        def post(raw: bytes) -> None:
            sender.post(raw)

        post()
        settle(sender)
    assert {r.status_code for _, r in sender.sent} == {200, 400}


def test_generated_bytes(server: Collector) -> None:
    with Sender(server, "bytes") as sender:

        @settings(max_examples=examples(150), suppress_health_check=list(HealthCheck))
        @given(raw=st.binary(max_size=300) | st.text(max_size=100).map(str.encode))
        def post(raw: bytes) -> None:
            sender.post(raw)

        post()
        settle(sender)


# --- mutations of real samples --------------------------------------------------------------


def test_bit_flips_of_real_samples(server: Collector) -> None:
    with Sender(server, "flips") as sender:

        @settings(max_examples=examples(250), suppress_health_check=list(HealthCheck))
        @given(
            name=st.sampled_from(sorted(SAMPLES)),
            flips=st.lists(
                st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 7)), max_size=4
            ),
        )
        def post(name: str, flips: list[tuple[float, int]]) -> None:
            raw = bytearray(SAMPLES[name])
            for where, bit in flips:
                raw[int(where * len(raw))] ^= 1 << bit
            sender.post(bytes(raw))

        post()
        settle(sender)


def test_truncations_of_real_samples(server: Collector, rng: SeededRandom) -> None:
    with Sender(server, "cuts") as sender:
        for raw in SAMPLES.values():
            for cut in {0, 1, len(raw) - 1, *rng.sample(range(len(raw)), 12)}:
                sender.post(raw[:cut])
        settle(sender)
    statuses = Counter(r.status_code for _, r in sender.sent)
    assert statuses[400] > 10 * statuses[200], statuses  # only a cut newline leaves valid JSON


WRONG_VALUES: list[Any] = [None, "text", 1747943104, 12.5, True, [], {}, [None], "9" * 40, -1]


def _paths(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(value, dict):
        for k, v in value.items():
            yield (*path, k)
            yield from _paths(v, (*path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield (*path, i)
            yield from _paths(v, (*path, i))


def _replace(doc: Any, path: tuple[Any, ...], new: Any) -> Any:
    copy = orjson.loads(orjson.dumps(doc))
    target = copy
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = new
    return copy


def test_wrong_types_in_every_field(server: Collector) -> None:
    """Each field any sample has, in turn, holds a value of each JSON type."""
    with Sender(server, "types") as sender:
        seen: set[tuple[Any, ...]] = set()
        for raw in SAMPLES.values():
            doc = orjson.loads(raw)
            for path in _paths(doc):
                shape = tuple("#" if isinstance(p, int) else p for p in path)
                if shape in seen:
                    continue
                seen.add(shape)
                for value in WRONG_VALUES:
                    sender.post(orjson.dumps(_replace(doc, path, value)))
        settle(sender)
    statuses = Counter(r.status_code for _, r in sender.sent)
    assert statuses[200] and statuses[400], statuses


def _sample_with(text: str) -> bytes:
    doc = orjson.loads(SAMPLES["text_from_customer.json"])
    doc["messages"][0]["data"]["body"] = text
    return orjson.dumps(doc)


def _nest(depth: int, open_: bytes = b"[", close: bytes = b"]") -> bytes:
    return open_ * depth + close * depth


ACCEPTED = ("huge string", "huge unicode", "many good", "300-deep in")
REFUSED: tuple[str, ...] = ("100k", "300-deep c", "invalid utf", "overlong", "lone", "messages [")
REFUSED += ("empty", "ts as", "ms ", "NaN")


def test_edge_bodies(server: Collector) -> None:
    with Sender(server, "edges") as sender:
        good = SAMPLES["text_from_customer.json"]
        message = orjson.loads(good)["messages"][0]
        pad = LIMIT - len(_sample_with("")) - 16
        cases: dict[str, bytes] = {
            "empty": b"",
            "spaces": b" \n\t ",
            "bom": b"\xef\xbb\xbf" + good,
            "nul": b"\x00",
            "100k-deep array": _nest(100_000),
            "100k-deep object": b'{"a":' * 100_000 + b"1" + b"}" * 100_000,
            "100k-deep in messages": b'{"messages": [' + _nest(100_000) + b"]}",
            "300-deep in data": good.replace(
                b'"data": {', b'"data": {"deep": ' + _nest(300) + b", ", 1
            ),
            "300-deep customer id": good.replace(b'"id": 473548616', b'"id": ' + _nest(300)),
            "huge string under the limit": _sample_with("x" * pad),
            "huge unicode string under the limit": _sample_with("\u00e9\u4e2d" * (pad // 6)),
            "invalid utf-8 in a string": good.replace(b"order status", b"order \xff\xfe status"),
            "overlong utf-8": good.replace(b"order status", b"order \xc0\xaf status"),
            "lone surrogate escape": good.replace(b"order status", b"order \\ud800 status"),
            "escaped nul": good.replace(b"order status", b"order \\u0000 status"),
            "duplicate messages keys": b'{"messages": [], ' + good.lstrip()[1:],
            "duplicate timestamp, good last": orjson.dumps({"messages": [message]}).replace(
                b'"timestamp":', b'"timestamp":"soon","timestamp":', 1
            ),
            "duplicate timestamp, bad last": orjson.dumps({"messages": [message]}).replace(
                b'"timestamp":1747943061.402917', b'"timestamp":1747943061.4,"timestamp":null', 1
            ),
            "messages [null]": b'{"messages": [null]}',
            "messages [good, null]": orjson.dumps({"messages": [message, None]}),
            "messages null": b'{"messages": null}',
            "messages 0": b'{"messages": 0}',
            "no messages": b'{"data": []}',
            "top-level list": b"[" + good + b"]",
            "top-level string": b'"messages"',
            "NaN": good.replace(b"1747943061.402917,", b"NaN,"),
            "Infinity": good.replace(b"1747943061.402917,", b"1e999,"),
            "huge integer id": good.replace(b'"id": 473548616', b'"id": ' + b"9" * 400),
            "long integer id": good.replace(b'"id": 473548616', b'"id": ' + b"9" * 19),
            "negative zero ts": good.replace(b"1747943061.402917,", b"-0.0,"),
            "ms timestamp": good.replace(b"1747943061.402917,", b"1747943061402,"),
            "ts as text": good.replace(b"1747943061.402917,", b'"1747943061.402917",'),
            "customer as number": orjson.dumps({"messages": [{**message, "customer": 473548616}]}),
            "trailing garbage": good + b"}",
            "two bodies": good + good,
            "many empty messages": b'{"messages": [' + b",".join([b"{}"] * 50_000) + b"]}",
            "many good messages": orjson.dumps({"messages": [message] * 1000}),
        }
        for name, raw in cases.items():
            assert len(raw) <= LIMIT, name
            r = sender.post(raw)
            if name.startswith(ACCEPTED):
                assert r.status_code == 200, (name, r.text)
            if name.startswith(REFUSED):
                assert r.status_code == 400, (name, r.text)
        settle(sender)
