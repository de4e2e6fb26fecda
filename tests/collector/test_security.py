"""Who may write, what is never written down, and who cannot hold the collector up.

Tokens: other hooks' tokens, near misses, environment tokens overriding the hooks file, a
comparison that takes the same time wherever a guess goes wrong, and no token (right or wrong)
in logs, journal or lake. Slow senders and oversized bodies: the others are served meanwhile.
"""

from __future__ import annotations

import contextlib
import hmac
import select
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from hooklake.collector import receiver
from hooklake.settings import Hook
from tests.conftest import Collector, lake_rows, sample

BODY = sample("dialog.json")


def stored_hooks(lake: Path) -> list[str]:
    return sorted(r["hook"] for r in lake_rows(lake))


def post(c: Collector, hook: str, headers: Any = None) -> int:
    return httpx.post(c.hook_url(hook), content=BODY, headers=headers).status_code


# --- tokens ---------------------------------------------------------------------------------

TWO_HOOKS = """
[hooks.sales]
token = "sales-Secret-0001"
[hooks.support]
token = "support-Secret-0002"
[hooks.open]
"""


def test_a_token_opens_its_own_hook_only(collector_factory: Any) -> None:
    c: Collector = collector_factory(hooks=TWO_HOOKS)
    sales, support = "sales-Secret-0001", "support-Secret-0002"
    refused = [
        ("sales", f"Token {support}"),
        ("support", f"Token {sales}"),
        ("sales", f"Token {sales[:-1]}"),  # a prefix
        ("sales", f"Token {sales}1"),  # the token plus more
        ("sales", f"Token {sales[:-1]}2"),  # one character off
        ("sales", f"Token {sales.upper()}"),
        ("sales", f"Token {sales} {sales}"),
        ("sales", "Token"),
        ("sales", sales),
        ("sales", f"Basic {sales}"),
        ("sales", f"Token\t{sales}"),
    ]
    for hook, header in refused:
        r = httpx.post(c.hook_url(hook), content=BODY, headers={"Authorization": header})
        assert r.status_code == 401, (hook, header)
        assert r.headers["WWW-Authenticate"] == "Token"
    # Non-ASCII bytes in the header are refused, not an error.
    raw = [(b"Authorization", b"Token \xff\xfe" + sales.encode())]
    assert httpx.post(c.hook_url("sales"), content=BODY, headers=raw).status_code == 401
    # Two Authorization headers, the wrong one first: refused.
    both = [(b"Authorization", b"Token wrong"), (b"Authorization", f"Token {sales}".encode())]
    assert httpx.post(c.hook_url("sales"), content=BODY, headers=both).status_code == 401

    assert post(c, "sales", {"Authorization": f"Token {sales}"}) == 200
    assert post(c, "sales", {"Authorization": f"TOKEN  {sales}"}) == 200
    assert post(c, "support", {"Authorization": f"Token {support}"}) == 200
    assert post(c, "open", {"Authorization": "Token anything"}) == 200
    assert post(c, "open") == 200
    assert c.stop() == 0
    assert stored_hooks(c.lake) == ["open", "open", "sales", "sales", "support"]


def test_environment_tokens_override_the_hooks_file(collector_factory: Any) -> None:
    hooks = '[hooks.support]\ntoken = "from-the-file"\n[hooks.web-chat]\n[hooks.plain]\n'
    env = {"HOOKLAKE_TOKEN_SUPPORT": "from-the-env", "HOOKLAKE_TOKEN_WEB_CHAT": "web-env-token"}
    c: Collector = collector_factory(hooks=hooks, env=env)
    assert post(c, "support", {"Authorization": "Token from-the-file"}) == 401
    assert post(c, "support", {"Authorization": "Token from-the-env"}) == 200
    assert post(c, "web-chat") == 401  # no token in the file, one in the environment
    assert post(c, "web-chat", {"Authorization": "Token web-env-token"}) == 200
    assert post(c, "plain") == 200
    assert c.stop() == 0
    log = c.log.read_text()
    # Only the hook that really is open is named in the warning.
    warning = next(line for line in log.splitlines() if "without a token" in line)
    assert "plain" in warning and "support" not in warning and "web-chat" not in warning


def test_an_environment_token_closes_the_default_hook(collector_factory: Any) -> None:
    c: Collector = collector_factory(env={"HOOKLAKE_TOKEN_DEFAULT": "dflt-token"})
    assert post(c, "default") == 401
    assert post(c, "default", {"Authorization": "Token dflt-token"}) == 200
    assert "without a token" not in c.log.read_text()


def test_a_token_with_non_ascii_characters_works(collector_factory: Any) -> None:
    c: Collector = collector_factory(hooks='[hooks.intl]\ntoken = "cl\u00e9-\u79d8\u5bc6"\n')
    right = [(b"Authorization", "Token cl\u00e9-\u79d8\u5bc6".encode())]
    wrong = [(b"Authorization", "Token cl\u00e9-\u79d8".encode())]
    assert httpx.post(c.hook_url("intl"), content=BODY, headers=right).status_code == 200
    assert httpx.post(c.hook_url("intl"), content=BODY, headers=wrong).status_code == 401


def test_tokens_are_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every presented token goes through ``hmac.compare_digest`` against the whole secret,
    whatever its scheme, length or first wrong character: no early exit tells a guesser how
    far they got."""
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)  # the module the collector calls
    hook = Hook(name="h", token="s3cret-value")
    cases = {
        "Token s3cret-value": True,
        "token s3cret-value": True,
        "Token s3cret-valuX": False,
        "Token X3cret-value": False,
        "Token s3": False,
        "Token " + "s3cret-value" * 100: False,
        "Bearer s3cret-value": False,
        "Token ": False,
        "garbage": False,
    }
    for header, ok in cases.items():
        calls.clear()
        assert receiver.authorized(hook, header.encode()) is ok, header
        assert len(calls) == 1, header
        assert b"s3cret-value" in calls[0]  # the whole secret, not a slice of it
    assert receiver.authorized(hook, None) is False
    assert receiver.authorized(Hook(name="o"), None) is True


def _scan(paths: list[Path], secrets: list[bytes]) -> list[tuple[Path, bytes]]:
    found = []
    for root in paths:
        for path in [root] if root.is_file() else root.rglob("*"):
            if path.is_file():
                data = path.read_bytes()
                found += [(path, s) for s in secrets if s in data]
    return found


def test_no_token_right_or_wrong_reaches_logs_journal_or_lake(
    collector_factory: Any, tmp_path: Path
) -> None:
    hooks = '[hooks.support]\ntoken = "file-Token-7f3a"\n[hooks.env]\ntoken = "unused"\n'
    env = {"HOOKLAKE_TOKEN_ENV": "env-Token-91c2"}
    secrets = [b"file-Token-7f3a", b"env-Token-91c2", b"guess-Token-0000", b"file-Token-7f3b"]
    c: Collector = collector_factory(hooks=hooks, env=env)
    with httpx.Client() as client:
        for i in range(30):
            for hook, token in (
                ("support", "file-Token-7f3a"),
                ("env", "env-Token-91c2"),
                ("support", "guess-Token-0000"),
                ("support", "file-Token-7f3b"),
                ("nope", "file-Token-7f3a"),
            ):
                headers = {"Authorization": f"Token {token}", "sentry-trace": f"t-{i}"}
                client.post(c.hook_url(hook), content=BODY, headers=headers)
                client.post(c.hook_url(hook), content=b"not json", headers=headers)
        metrics = client.get(f"{c.url}/metrics").text
    assert not [s for s in secrets if s.decode() in metrics]
    c.kill()  # the journal as a crash leaves it, not yet flushed
    assert (c.lake / "_journal").is_dir()
    leaks = _scan([c.lake, c.log], secrets)
    assert leaks == []
    c2: Collector = collector_factory(c.lake, hooks=hooks, env=env)
    assert c2.stop() == 0
    done = subprocess.run(
        [sys.executable, "-m", "hooklake", "flush", "--lake", str(c.lake)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0
    assert len(stored_hooks(c.lake)) == 60
    leaks = _scan([c.lake, c.log, c2.log, *tmp_path.glob("*.log")], secrets)
    assert leaks == []  # the file token is in the hooks file only
    assert "rejected hook=support code=invalid_json" in c.log.read_text()


# --- slow and oversized senders -------------------------------------------------------------


def _raw_request(c: Collector, head: str) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", c.port))
    sock.sendall(head.encode())
    return sock


def _response_status(sock: socket.socket, timeout: float = 60) -> int:
    sock.settimeout(timeout)
    data = b""
    while b"\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return int(data.split(b" ", 2)[1]) if data else 0


def _answered(socks: list[socket.socket]) -> list[socket.socket]:
    """The sockets on which the collector has answered (or hung up) by now."""
    return select.select(socks, [], [], 0)[0] if socks else []


def _serve(c: Collector, n: int) -> None:
    """``n`` requests one after the other, each answered 200; a busy machine may be slow."""
    with httpx.Client(timeout=60) as client:
        for _ in range(n):
            assert client.post(c.hook_url(), content=BODY).status_code == 200


@pytest.fixture
def trickle() -> Iterator[list[socket.socket]]:
    socks: list[socket.socket] = []
    yield socks
    for s in socks:
        s.close()


@contextlib.contextmanager
def dripping(bodies: list[socket.socket], heads: list[socket.socket]) -> Iterator[None]:
    """One byte to each socket every 0.1 s (never a whole body or head) while the block runs;
    the block starts once every socket has had a few bytes."""
    stop = threading.Event()
    started = threading.Event()

    def drip() -> None:
        i = 0
        while not stop.is_set() and i < len(BODY) - 1:
            for s in bodies:
                s.send(BODY[i : i + 1])
            for s in heads:
                s.send(b"X")
            i += 1
            if i == 3:
                started.set()
            time.sleep(0.1)

    dripper = threading.Thread(target=drip)
    dripper.start()
    try:
        assert started.wait(60), "the slow senders did not start"
        yield
    finally:
        stop.set()
        dripper.join()


def test_slow_senders_do_not_hold_up_others(
    collector_factory: Any, trickle: list[socket.socket]
) -> None:
    """Others are answered while slow requests are still reading their bodies: not one slow
    request has been answered (the body timeout is the default 30 s) when all others are."""
    c: Collector = collector_factory()
    head = f"POST /hooks/default HTTP/1.1\r\nHost: x\r\nContent-Length: {len(BODY)}\r\n\r\n"
    slow_bodies = [_raw_request(c, head) for _ in range(40)]
    slow_heads = [_raw_request(c, "POST /hooks/default HTTP/1.1\r\nHost: x\r\n") for _ in range(40)]
    trickle += slow_bodies + slow_heads
    with dripping(slow_bodies, slow_heads):
        _serve(c, 100)
        assert _answered(slow_bodies + slow_heads) == [], "the others waited for slow senders"
    for s in trickle:
        s.close()  # hang up: the slow requests end without storing anything
    assert c.stop() == 0
    assert len(stored_hooks(c.lake)) == 100


def test_slow_bodies_time_out_with_408_and_store_nothing(
    collector_factory: Any, trickle: list[socket.socket]
) -> None:
    c: Collector = collector_factory(env={"HOOKLAKE_BODY_TIMEOUT": "1"})
    head = f"POST /hooks/default HTTP/1.1\r\nHost: x\r\nContent-Length: {len(BODY)}\r\n\r\n"
    slow_bodies = [_raw_request(c, head) for _ in range(10)]
    trickle += slow_bodies
    # Bytes keep arriving, but the whole body does not: the timeout is for all of it.
    with dripping(slow_bodies, []):
        statuses = [_response_status(s) for s in slow_bodies]
    assert statuses == [408] * len(slow_bodies)
    assert httpx.post(c.hook_url(), content=BODY, timeout=60).status_code == 200
    assert c.stop() == 0
    assert len(stored_hooks(c.lake)) == 1


def test_oversized_bodies_are_refused_early_and_do_not_hold_up_others(
    collector_factory: Any, trickle: list[socket.socket]
) -> None:
    # A body timeout that cannot run out while the uploads are held open below.
    env = {"HOOKLAKE_BODY_TIMEOUT": "600"}
    c: Collector = collector_factory(args=("--max-body", str(64 << 10)), env=env)
    huge = 512 << 20
    # Declared too large: refused before a byte of the body is sent.
    declared = [
        _raw_request(
            c, f"POST /hooks/default HTTP/1.1\r\nHost: x\r\nContent-Length: {huge}\r\n\r\n"
        )
        for _ in range(8)
    ]
    trickle += declared
    assert [_response_status(s) for s in declared] == [413] * 8

    # Not declared (chunked): each upload sends half the limit and is held there, so it is
    # provably in flight while others are served; released, it is refused once past the limit.
    errors: list[BaseException] = []
    statuses: list[int] = []
    underway = threading.Semaphore(0)
    release = threading.Event()

    def stream_big() -> None:
        def chunks() -> Iterator[bytes]:
            yield b"x" * (32 << 10)
            underway.release()  # asked for more: the first chunk has been sent
            release.wait(300)
            for _ in range(4096):  # up to 256 MiB, if nobody stopped it
                yield b"x" * 65536

        try:
            statuses.append(httpx.post(c.hook_url(), content=chunks(), timeout=60).status_code)
        except httpx.HTTPError as exc:  # the server may close the connection mid-upload
            errors.append(exc)

    senders = [threading.Thread(target=stream_big) for _ in range(6)]
    for t in senders:
        t.start()
    try:
        for _ in senders:
            assert underway.acquire(timeout=60), "an upload did not start"
        _serve(c, 60)
        assert statuses == [] and errors == [], "an upload ended before it was released"
    finally:
        release.set()
        for t in senders:
            t.join(120)
    assert not any(t.is_alive() for t in senders)
    assert set(statuses) <= {413} and len(statuses) + len(errors) == 6
    pid = c.proc.pid
    peak_kib = int(
        next(
            line.split()[1]
            for line in Path(f"/proc/{pid}/status").read_text().splitlines()
            if line.startswith("VmHWM:")
        )
    )
    assert peak_kib < 400_000, f"the collector peaked at {peak_kib} KiB: it read bodies whole"
    assert c.stop() == 0
    assert len(stored_hooks(c.lake)) == 60
