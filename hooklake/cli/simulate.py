"""``hooklake simulate``: realistic Landbot traffic, sent to a collector or written to a file."""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import click


def _start(value: str | None) -> datetime | None:
    if value is None:
        return None
    if value == "now":
        return datetime.now(UTC)
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(f"{value!r} is not an ISO time or 'now'") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _retrying(deliveries: int, seconds: float, error: str) -> None:
    what = "delivery is" if deliveries == 1 else "deliveries are"
    click.echo(
        f"{deliveries} {what} failing and being retried, the oldest for {seconds:.0f} s "
        f"(last error: {error})",
        err=True,
    )


@click.command("simulate")
@click.option(
    "--to",
    "url",
    metavar="URL",
    help="Collector hook URL (http:// or https://) to POST every delivery to.",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, allow_dash=True, path_type=Path),
    help="Write the bodies as NDJSON (one per line) here instead; '-' for stdout.",
)
@click.option("--token", help="Hook token, sent as 'Authorization: Token <token>'.")
@click.option(
    "--customers",
    type=click.IntRange(min=0),
    default=100,
    show_default=True,
    help="Customers to simulate (about 20 messages each).",
)
@click.option(
    "--rate",
    type=click.FloatRange(min=0, min_open=True),
    help="Cap on deliveries per second (with --to).",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Same seed, same bytes.")
@click.option(
    "--start",
    "start",
    help="Simulated start time: ISO 8601 or 'now'. [default: 2026-11-02T08:00:00Z]",
)
@click.option(
    "--per-hour",
    type=click.FloatRange(min=0, min_open=True),
    default=60.0,
    show_default=True,
    help="Average customers arriving per simulated hour.",
)
@click.option(
    "--concurrency",
    type=click.IntRange(min=1),
    default=8,
    show_default=True,
    help="Requests in flight at once.",
)
@click.option(
    "--attempts",
    type=click.IntRange(min=1),
    default=6,
    show_default=True,
    help="Attempts per delivery; failed ones are retried after 5, 10, 15… s like Landbot.",
)
def simulate_command(
    url: str | None,
    out: Path | None,
    token: str | None,
    customers: int,
    rate: float | None,
    seed: int,
    start: str | None,
    per_hour: float,
    concurrency: int,
    attempts: int,
) -> None:
    """Generate seeded Landbot MessageHooks traffic and send it or save it.

    Customers on Web and WhatsApp bots click menus, type (with emails, phone numbers and card
    numbers in it), get handed to agents and come back later; deliveries arrive out of order
    and some are retried, as Landbot does. Give exactly one of --to and --out.

    With --to, simulate stops at once when nothing accepts connections at the URL. Once it is
    sending, failed deliveries are retried for about 75 s, as Landbot does, so a collector
    restart loses nothing; deliveries failing for a while are reported on stderr.

    \b
    Examples:
      hooklake simulate --to http://127.0.0.1:8000/hooks/default --token s3cret --customers 50
      hooklake simulate --out traffic.ndjson --customers 1000 --seed 7
    """
    from hooklake.simulate import DEFAULT_START, check_reachable, send, simulate, write_ndjson

    if (url is None) == (out is None):
        raise click.UsageError("give exactly one of --to URL and --out FILE")
    if url is not None:
        check_reachable(url)  # a wrong URL or port fails now, not after minutes of retries
    stream = simulate(
        customers, seed=seed, start=_start(start) or DEFAULT_START, customers_per_hour=per_hour
    )
    if url is not None:
        report = send(
            stream,
            url,
            token=token,
            rate=rate,
            concurrency=concurrency,
            attempts=attempts,
            on_retrying=_retrying,
        )
        click.echo(report.describe())
        if report.failed:
            sys.exit(1)
        return
    assert out is not None
    began = time.monotonic()
    if str(out) == "-":
        tally = write_ndjson(stream, sys.stdout.buffer)
        sys.stdout.flush()
        click.echo(f"wrote {tally.describe()} to stdout", err=True)
        return
    tally = write_ndjson(stream, out)
    elapsed = time.monotonic() - began
    click.echo(f"wrote {tally.describe()} to {out} in {elapsed:.1f} s")


COMMANDS = [simulate_command]
