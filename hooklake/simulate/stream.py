"""The simulated traffic as one stream of deliveries, in the order they reach the collector.

Customers arrive at random (more by day than by night, UTC), talk for a few minutes, and some
come back hours later. Each conversation is scripted when it starts and its deliveries wait in
a heap until they are due, so memory holds only the conversations in progress and the
customers still expected back: it stays flat however many deliveries are drawn.
"""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from hooklake.simulate.customers import Customer, new_customer
from hooklake.simulate.encode import Encoder
from hooklake.simulate.records import Delivery
from hooklake.simulate.script import Msg, Script, next_midnight
from hooklake.simulate.world import CHANNELS, Channel
from hooklake.wording import counted

#: Where simulated time starts unless told otherwise: a fixed Monday morning, so that the
#: same seed gives the same bytes on every machine and every day.
DEFAULT_START = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)

#: Smallest and largest pause before a customer comes back for a new conversation.
RETURN_GAP = (2 * 3600.0, 30 * 3600.0)

# Relative arrival rate by UTC hour (mean 1): quiet nights, busy late mornings and evenings.
_HOURLY = (
    0.25, 0.15, 0.1, 0.1, 0.1, 0.2, 0.4, 0.8, 1.2, 1.5, 1.6, 1.6,
    1.5, 1.4, 1.4, 1.5, 1.5, 1.4, 1.4, 1.5, 1.4, 1.1, 0.7, 0.4,
)  # fmt: skip
_PEAK = max(_HOURLY)
_NORM = sum(_HOURLY) / len(_HOURLY)


def simulate(
    customers: int | None = 100,
    *,
    seed: int = 0,
    start: datetime = DEFAULT_START,
    customers_per_hour: float = 60.0,
    channels: tuple[Channel, ...] = CHANNELS,
) -> Iterator[Delivery]:
    """Landbot MessageHooks traffic from ``customers`` simulated customers (None: endless).

    The same arguments give byte-identical bodies. Deliveries come in arrival order at the
    collector (``Delivery.deliver_at``), which differs from timestamp order inside bursts and
    for retries. Each customer ``i`` shows one guaranteed trait ``FEATURES[i % 10]``, so any
    run of 10 or more customers contains handovers, returns, WhatsApp, the old payload shape,
    equal-timestamp bursts, personal data, retries, a conversation across midnight, unknown
    types and media. Customer ids depend on the arrival index only, not on the seed, so two
    runs with different seeds share ids: ingest one run per lake. Cut the stream short
    (``itertools.islice``) and the last conversations are cut too: then ``Truth.size``
    overstates them.

    ``start`` is when the first customer arrives (timezone-aware). Customers keep arriving at
    ``customers_per_hour`` on average, so a run spans about ``customers / customers_per_hour``
    hours plus up to 30 hours of returning customers.
    """
    if start.tzinfo is None:
        raise ValueError("start must be timezone-aware (e.g. datetime.now(UTC))")
    if customers is not None and customers < 0:
        raise ValueError("customers must be >= 0")
    if customers_per_hour <= 0:
        raise ValueError("customers_per_hour must be > 0")
    return _run(customers, random.Random(seed), start.timestamp(), customers_per_hour, channels)


def bodies(customers: int | None = 100, **options: object) -> Iterator[bytes]:
    """Just the POST bodies of :func:`simulate` (same arguments), e.g. for ``ingest_bodies``."""
    for delivery in simulate(customers, **options):  # type: ignore[arg-type]
        yield delivery.body


@dataclass(slots=True)
class _Visit:
    start: float
    order: int
    customer: Customer
    msgs: list[Msg] | None = field(default=None)

    def __lt__(self, other: _Visit) -> bool:
        return (self.start, self.order) < (other.start, other.order)


def _run(
    customers: int | None,
    rng: random.Random,
    t0: float,
    per_hour: float,
    channels: tuple[Channel, ...],
) -> Iterator[Delivery]:
    encoder = Encoder(rng)
    visits: list[_Visit] = []
    pending: list[tuple[float, int, Delivery]] = []
    order = 0
    arrived = 0
    peak_rate = per_hour / 3600.0 * _PEAK / _NORM

    def next_arrival(t: float) -> float:
        # Thinning: a Poisson process at the peak rate, keeping each point with the hour's share.
        while True:
            t += rng.expovariate(peak_rate)
            hour = int(t // 3600.0) % 24
            if rng.random() * _PEAK < _HOURLY[hour]:
                return t

    arrival = t0
    push, pop = heapq.heappush, heapq.heappop
    inf = math.inf
    while True:
        arrival_due = arrival if customers is None or arrived < customers else inf
        visit_due = visits[0].start if visits else inf
        horizon = arrival_due if arrival_due < visit_due else visit_due
        while pending and pending[0][0] <= horizon:
            yield pop(pending)[2]
        if horizon == inf:
            return
        if arrival_due <= visit_due:
            cust = new_customer(rng, arrived, channels)
            visit = _Visit(arrival, order, cust)
            arrived += 1
            arrival = next_arrival(arrival)
        else:
            visit = pop(visits)
            cust = visit.customer
        cust.visits_done += 1
        msgs = visit.msgs
        if msgs is None:
            msgs = _script(rng, cust)
        deliveries, end = encoder.conversation(cust, msgs, visit.start, cust.visits_done)
        for d in deliveries:
            order += 1
            push(pending, (d.deliver_at, order, d))
        if cust.visits_done < cust.visits:
            order += 1
            push(visits, _next_visit(rng, cust, end, order))


def _script(rng: random.Random, cust: Customer) -> list[Msg]:
    # The guaranteed trait shows in the first conversation, or the second for "midnight".
    forced = cust.visits_done == (2 if cust.feature == "midnight" else 1)
    return Script(rng, cust, forced).run()


def _next_visit(rng: random.Random, cust: Customer, end: float, order: int) -> _Visit:
    lo, hi = RETURN_GAP
    if cust.feature == "midnight" and cust.visits_done == 1:
        # Script it now to know its length, then place it so that midnight UTC falls inside.
        cust.visits_done += 1
        msgs = _script(rng, cust)
        cust.visits_done -= 1
        length = msgs[-1].t
        midnight = next_midnight(end + lo + length)
        return _Visit(midnight - length * rng.uniform(0.2, 0.8), order, cust, msgs)
    gap = math.exp(rng.uniform(math.log(lo), math.log(hi)))
    return _Visit(end + gap, order, cust)


@dataclass(slots=True)
class Tally:
    """Counts over a stream of deliveries, for one-line summaries."""

    deliveries: int = 0
    messages: int = 0
    retries: int = 0
    conversations: int = 0
    customers: int = 0
    bytes: int = 0

    def add(self, delivery: Delivery) -> None:
        truth = delivery.truth
        self.deliveries += 1
        self.bytes += len(delivery.body)
        if truth.attempt:
            self.retries += 1
            return
        self.messages += 1
        if truth.position == 1:
            self.conversations += 1
            if truth.conversation == 1:
                self.customers += 1

    def describe(self) -> str:
        return (
            f"{counted(self.deliveries, 'delivery', 'deliveries')} "
            f"({counted(self.messages, 'message')}, {counted(self.retries, 'retry', 'retries')}) "
            f"in {counted(self.conversations, 'conversation')} of "
            f"{counted(self.customers, 'customer')}"
        )


def write_ndjson(deliveries: Iterable[Delivery], out: Path | IO[bytes]) -> Tally:
    """Write one body per line (NDJSON) to ``out``; returns what was written."""
    tally = Tally()
    if isinstance(out, Path):
        with open(out, "wb") as fh:
            return write_ndjson(deliveries, fh)
    write = out.write
    for delivery in deliveries:
        write(delivery.body)
        write(b"\n")
        tally.add(delivery)
    return tally
