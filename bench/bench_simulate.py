"""How fast the simulator produces deliveries, against the least work a body could cost.

Baseline (same process, same count): take one sample message, set a fresh uuid, timestamp and
text, and serialise it with orjson; that is the floor for "a new body". The ratio says how
much the realistic traffic (flows, customers, truth, ordering heap, retries) costs on top.
Rates are per second of CPU time, so other work on the machine does not skew them.

    /work/venv/bin/python bench/bench_simulate.py [--messages 1000000] [--per-hour 2000]
"""

from __future__ import annotations

import argparse
import itertools
import random
import resource
import time

import orjson

from hooklake.simulate import simulate

SAMPLE = {
    "_raw": {
        "uuid": "", "extra": {}, "chat": 473716610, "ui_key": None, "type": "text",
        "channel": 2955840, "timestamp": 0.0, "author_type": "bot", "author_uuid": "x",
        "read": False, "seq": None, "message": "", "rich_text": None, "samurai": -1819347,
    },
    "type": "text", "data": {"body": ""}, "timestamp": 0.0,
    "sender": {"id": 1819347, "name": "New bot", "type": "bot"},
    "customer": {
        "agent_id": None, "name": "Visitor #473548616", "country": "United States",
        "url": "https://landbot.site/v3/H-2955840-YBOL4P79UNIGME5S/index.html",
        "id": 473548616, "archived": False, "is_external": "False", "webchat_type": "Native",
    },
    "channel": {"id": 2955840, "name": "New bot", "type": "landbot"},
}  # fmt: skip


def baseline(n: int) -> float:
    rng = random.Random(0)
    began = time.process_time()
    t = 1.79e9
    for i in range(n):
        t += 0.5
        raw = dict(SAMPLE["_raw"])  # type: ignore[call-overload]
        raw["uuid"] = f"{rng.getrandbits(128):032x}"
        raw["timestamp"] = t
        raw["message"] = f"message {i}"
        msg = dict(SAMPLE, _raw=raw, timestamp=t, data={"body": raw["message"]})
        orjson.dumps({"messages": [msg]})
    return time.process_time() - began


def simulated(n: int, per_hour: float) -> tuple[float, int]:
    began = time.process_time()
    size = 0
    for d in itertools.islice(simulate(None, seed=0, customers_per_hour=per_hour), n):
        size += len(d.body)
    return time.process_time() - began, size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--per-hour", type=float, default=2000.0)
    args = parser.parse_args()
    n = args.messages
    base = baseline(n)
    sim, size = simulated(n, args.per_hour)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"baseline  (sample body + orjson): {n / base:>10,.0f} bodies/s")
    print(
        f"simulate  (realistic traffic):     {n / sim:>10,.0f} deliveries/s, {size / n:.0f} B avg"
    )
    print(f"ratio simulate/baseline speed: {base / sim:.2f}   peak RSS {rss:.0f} MiB")


if __name__ == "__main__":
    main()
