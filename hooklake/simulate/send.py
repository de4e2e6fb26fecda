"""POSTing simulated deliveries to a collector the way Landbot does.

Each delivery is one POST with Landbot's headers over pooled keep-alive connections. A
delivery that gets no 2xx (an error status, or no answer at all) is sent again after a linear
backoff (``backoff``, then ``2 * backoff``, …) up to ``attempts`` times in all, as Landbot
does with about 5 s steps. Worker threads rather than asyncio, so this works the same from a
script, a test or a Jupyter cell that already runs an event loop.

Those retries carry a run over a collector restart, but they would also keep a run against a
wrong port busy for minutes: :func:`check_reachable` tells, before sending, whether anything
listens at the URL at all, and ``on_retrying`` reports deliveries that keep failing meanwhile.
"""

from __future__ import annotations

import re
import socket
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from hooklake.errors import ConfigError
from hooklake.simulate.records import USER_AGENT, Delivery
from hooklake.simulate.stream import Tally
from hooklake.wording import counted

if TYPE_CHECKING:
    import httpx

#: Statuses that mean the URL or token is wrong: retrying cannot help, so sending stops.
FATAL_STATUSES = (401, 403, 404)
#: How long :func:`check_reachable` tries a collector that refuses connections: enough for
#: one started a moment before (``hooklake serve … &``) to listen, far less than the retries.
REACH_WAIT = 5.0
#: ``on_retrying`` is called once some delivery has been failing this many seconds…
RETRY_NOTICE_AFTER = 5.0
#: … and then at most once every this many seconds while deliveries keep failing.
RETRY_NOTICE_EVERY = 10.0


def hook_address(url: str) -> tuple[str, int]:
    """The host and port of a collector URL; :class:`~hooklake.errors.ConfigError` unless it
    is an ``http://`` or ``https://`` URL with a host (and a valid port, if any)."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = 0
    if parts.scheme not in ("http", "https") or not parts.hostname or port == 0:
        raise ConfigError(
            f"{url!r} is not an http:// or https:// URL with a host, "
            "e.g. http://127.0.0.1:8000/hooks/default"
        )
    return parts.hostname, port or (443 if parts.scheme == "https" else 80)


def check_reachable(url: str, wait: float = REACH_WAIT) -> None:
    """Raise :class:`~hooklake.errors.ConfigError` unless the host and port of ``url`` accept
    a TCP connection within ``wait`` seconds (a refused one is tried again until then).

    Only a connection is opened and closed, no request is sent, so nothing is stored. Skipped
    when a proxy from the environment (``HTTP_PROXY``…) would carry the requests."""
    host, port = hook_address(url)
    scheme = urlsplit(url).scheme
    proxies = urllib.request.getproxies()
    if (proxies.get(scheme) or proxies.get("all")) and not urllib.request.proxy_bypass(host):
        return
    deadline = time.monotonic() + wait
    while True:
        left = deadline - time.monotonic()
        try:
            with socket.create_connection((host, port), timeout=max(left, 0.5)):
                return
        except socket.gaierror as exc:
            reason, hint = f"unknown host {host!r}: {describe(exc)}", "check the URL"
        except OSError as exc:
            reason, hint = describe(exc), "is hooklake serve running?"
            if isinstance(exc, ConnectionRefusedError) and left > 0.2:
                time.sleep(0.2)
                continue
        raise ConfigError(f"cannot reach {url}: {reason} ({hint})")


def describe(exc: BaseException) -> str:
    """A failed connection in a few words: ``connection refused``, ``timed out``."""
    if isinstance(exc, OSError) and exc.strerror:
        text = exc.strerror
    else:  # httpx's errors say "[Errno 111] Connection refused"
        text = re.sub(r"^\[Errno -?\d+\]\s*", "", str(exc)) or type(exc).__name__
    return text[:1].lower() + text[1:]


@dataclass(slots=True)
class SendReport:
    """What happened to the deliveries handed to :func:`send`.

    ``sent`` deliveries were taken from the stream and posted; each ended ``acknowledged``
    (some attempt got a 2xx) or ``failed`` (every attempt failed, or sending was stopped).
    ``requests`` counts HTTP attempts, retries included; ``statuses`` counts the status of
    every attempt that got an answer and ``errors`` those that got none (refused, reset,
    timed out). ``tally`` describes the deliveries themselves.
    """

    sent: int = 0
    acknowledged: int = 0
    failed: int = 0
    requests: int = 0
    errors: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    elapsed: float = 0.0
    tally: Tally = field(default_factory=Tally)

    @property
    def rate(self) -> float:
        """Deliveries per second of wall-clock time."""
        return self.sent / self.elapsed if self.elapsed > 0 else 0.0

    def describe(self) -> str:
        codes = ", ".join(f"{code}×{n}" for code, n in sorted(self.statuses.items())) or "none"
        errors = f", {counted(self.errors, 'connection error')}" if self.errors else ""
        return (
            f"sent {self.tally.describe()}: {self.acknowledged} acknowledged, "
            f"{self.failed} failed (HTTP {codes}{errors}) in {self.elapsed:.1f} s, "
            f"{self.rate:.0f}/s"
        )


def send(
    deliveries: Iterable[Delivery],
    url: str,
    *,
    token: str | None = None,
    rate: float | None = None,
    concurrency: int = 8,
    attempts: int = 6,
    backoff: float = 5.0,
    timeout: float = 30.0,
    fatal_statuses: Collection[int] = FATAL_STATUSES,
    on_result: Callable[[Delivery, int | None], None] | None = None,
    on_retrying: Callable[[int, float, str], None] | None = None,
) -> SendReport:
    """POST every delivery to ``url`` and report what the collector answered.

    ``token`` is sent as ``Authorization: Token <token>``. ``rate`` caps new deliveries per
    second (None: as fast as the collector answers) and ``concurrency`` is the number of
    requests in flight. ``on_result(delivery, status)`` is called once per delivery when it is
    done (status None when the last attempt got no answer), one call at a time, e.g. to move a
    progress bar. A status in ``fatal_statuses`` (by default 401, 403, 404) stops sending and
    raises :class:`~hooklake.errors.ConfigError`, since the URL or token must be fixed first.
    ``on_retrying(deliveries, seconds, last_error)`` is called from the calling thread once a
    delivery has been failing for :data:`RETRY_NOTICE_AFTER` seconds and then at most every
    :data:`RETRY_NOTICE_EVERY` while any keeps failing: how many deliveries are failing, for
    how long the oldest has, and what the last failed attempt got (``connection refused``,
    ``HTTP 503``). A URL that is not ``http(s)://host…`` raises ConfigError before anything
    is sent; whether anything listens there is :func:`check_reachable`'s to tell.
    """
    import httpx  # here, so that importing the simulator stays cheap

    hook_address(url)
    if concurrency < 1 or attempts < 1:
        raise ValueError("concurrency and attempts must be >= 1")
    if rate is not None and rate <= 0:
        raise ValueError("rate must be > 0")
    report = SendReport()
    lock = threading.Lock()
    stop = threading.Event()
    source = iter(deliveries)
    interval = 1.0 / rate if rate else 0.0
    clock = [time.monotonic()]
    problems: list[BaseException] = []
    fatal: list[tuple[int, str]] = []
    failing: dict[int, float] = {}  # worker -> when its current delivery first failed
    last_error = [""]
    noticed = [-RETRY_NOTICE_EVERY]
    headers = {"User-Agent": USER_AGENT, "Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Token {token}"

    def take() -> Delivery | None:
        with lock:
            if stop.is_set():
                return None
            delivery = next(source, None)
            if delivery is None:
                return None
            report.sent += 1
            report.tally.add(delivery)
            if not interval:
                return delivery
            now = time.monotonic()
            slot = max(clock[0], now)
            clock[0] = slot + interval
        if slot > now:
            stop.wait(slot - now)
        return delivery

    def post(client: httpx.Client, delivery: Delivery, worker: int) -> tuple[bool, int | None]:
        status: int | None = None
        detail = ""
        for attempt in range(1, attempts + 1):
            try:
                response = client.post(
                    url,
                    content=delivery.body,
                    headers={"sentry-trace": delivery.truth.sentry_trace},
                )
                status = response.status_code
                detail = response.text[:200] if status in fatal_statuses else ""
                error = f"HTTP {status}"
            except httpx.TimeoutException:
                status, error = None, f"no answer within {timeout:g} s"
            except httpx.TransportError as exc:
                status, error = None, describe(exc)
            with lock:
                report.requests += 1
                if status is None:
                    report.errors += 1
                else:
                    report.statuses[status] += 1
                if status is None or not 200 <= status < 300:
                    failing.setdefault(worker, time.monotonic())
                    last_error[0] = error
            if status is not None and 200 <= status < 300:
                return True, status
            if status is not None and status in fatal_statuses:
                fatal.append((status, detail))
                stop.set()
                return False, status
            if attempt < attempts and stop.wait(backoff * attempt):
                break  # interrupted while waiting to retry
        return False, status

    def work(client: httpx.Client, worker: int) -> None:
        try:
            while (delivery := take()) is not None:
                ok, status = post(client, delivery, worker)
                with lock:
                    failing.pop(worker, None)
                    if ok:
                        report.acknowledged += 1
                    else:
                        report.failed += 1
                    if on_result is not None:
                        on_result(delivery, status)
        except BaseException as exc:  # surfaced in the calling thread below
            problems.append(exc)
            stop.set()

    def notice() -> None:
        if on_retrying is None:
            return
        now = time.monotonic()
        with lock:
            if not failing or now - noticed[0] < RETRY_NOTICE_EVERY:
                return
            oldest = now - min(failing.values())
            if oldest < RETRY_NOTICE_AFTER:
                return
            noticed[0] = now
            retrying, error = len(failing), last_error[0]
        on_retrying(retrying, oldest, error)

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    began = time.monotonic()
    with httpx.Client(headers=headers, limits=limits, timeout=timeout) as client:
        threads = [
            threading.Thread(target=work, args=(client, i), name=f"hooklake-send-{i}", daemon=True)
            for i in range(concurrency)
        ]
        for thread in threads:
            thread.start()
        try:
            for thread in threads:
                while thread.is_alive():
                    thread.join(0.2)
                    notice()
        except KeyboardInterrupt:
            stop.set()
            for thread in threads:
                thread.join()
            raise
    report.elapsed = time.monotonic() - began
    if problems:
        raise problems[0]
    if fatal:
        status, text = fatal[0]
        hint = "check the token" if status in (401, 403) else "check the URL and hook name"
        raise ConfigError(f"{url} answered {status} ({text.strip() or 'no detail'}); {hint}")
    return report
