"""Commands of the write side: ``serve``, ``flush``, ``ingest``."""

from __future__ import annotations

from pathlib import Path

import click

from hooklake.cli.common import journal_option, lake_option
from hooklake.wording import counted


@click.command()
@lake_option
@journal_option
@click.option(
    "--hooks",
    "hooks_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help='Hooks file (TOML): [hooks.NAME] tables with an optional token = "...".',
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(1, 64),
    help="HTTP worker processes; each writes its own journal.",
)
@click.option(
    "--max-body",
    "max_body",
    type=click.IntRange(1),
    default=1 << 20,
    show_default=True,
    help="Largest accepted body in bytes (larger: 413).",
)
def serve(
    lake: Path | str,
    journal: Path | None,
    hooks_file: Path | None,
    host: str,
    port: int,
    workers: int,
    max_body: int,
) -> None:
    """Receive Landbot MessageHooks at POST /hooks/NAME and store them in the lake.

    Every 2xx answer means the body is on disk. Point Landbot's MessageHook at
    http://HOST:PORT/hooks/NAME and give it the hook's token.

    \b
    Examples:
      hooklake serve --hooks hooks.toml --lake lake/ --host 0.0.0.0 --port 8000
      hooklake serve --lake s3://bucket/hooklake --journal /var/lib/hooklake/journal
    """
    import logging

    from hooklake import tables
    from hooklake.collector.service import LOG_FORMAT
    from hooklake.collector.service import serve as run
    from hooklake.settings import CollectorSettings, load_hooks
    from hooklake.storage import lake_location

    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    hooks = load_hooks(hooks_file)
    check_can_listen(host, port)
    open_hooks = sorted(name for name, hook in hooks.items() if hook.token is None)
    if open_hooks:
        click.echo(
            f"Warning: hook(s) {', '.join(open_hooks)} accept requests without a token; "
            "anyone who can reach this address can write to the lake.",
            err=True,
        )
    settings = CollectorSettings(
        lake=str(lake), journal=journal, hooks=hooks, max_body_bytes=max_body
    )
    # Reachable before it says it collects (serve checks again, for callers of the library).
    tables.check_reachable(lake_location(settings.lake))
    where = str(lake).rstrip("/")
    click.echo(
        f"Collecting into {where}/ — POST http://{host}:{port}/hooks/{{{','.join(hooks)}}}",
        err=True,
    )
    run(settings, host=host, port=port, workers=workers)


def check_can_listen(host: str, port: int) -> None:
    """Raise a one-line error now if ``host:port`` cannot be listened on (taken by another
    server, a privileged port, an unknown host), instead of letting uvicorn log its start-up
    and then fail. The check binds what uvicorn binds (every address of ``host``, with
    SO_REUSEADDR, IPv6 sockets v6-only) and lets go at once."""
    import errno
    import socket

    from hooklake.errors import ConfigError

    def fail(exc: OSError) -> ConfigError:
        reason = str(exc.strerror or exc)
        return ConfigError(f"cannot listen on {host}:{port}: {reason[:1].lower()}{reason[1:]}")

    try:
        addresses = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except OSError as exc:  # socket.gaierror: a host name that does not resolve
        raise fail(exc) from None
    for family, kind, proto, _, address in addresses:
        try:
            sock = socket.socket(family, kind, proto)
        except OSError:
            continue  # a family this machine has switched off (IPv6 in many containers)
        with sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                sock.bind(address)
            except OSError as exc:
                # An address of a family that is off (::1 listed in /etc/hosts without IPv6):
                # asyncio, which uvicorn listens with, skips it too.
                if exc.errno == errno.EADDRNOTAVAIL:
                    continue
                raise fail(exc) from None


@click.command()
@lake_option
@journal_option
def flush(lake: Path | str, journal: Path | None) -> None:
    """Commit sealed journal segments (and those of stopped collectors) to the lake's tables.

    \b
    Examples:
      hooklake flush --lake lake/
      hooklake flush --lake s3://bucket/hooklake --journal /var/lib/hooklake/journal
    """
    from hooklake.collector.service import recover

    report = recover(lake, journal, create=False)
    click.echo(
        f"flushed {counted(report.segments, 'segment')}: {counted(report.messages, 'message')}, "
        f"{counted(report.rejected, 'reject')}, {counted(len(report.commits), 'commit')}"
    )


@click.command()
@lake_option
@journal_option
@click.option("--hook", default="default", show_default=True, help="Hook name to record.")
@click.argument(
    "paths", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
def ingest(lake: Path | str, journal: Path | None, hook: str, paths: tuple[Path, ...]) -> None:
    """Backfill saved bodies: one JSON body per file, or NDJSON (one body per line).

    Bodies are validated as the collector does; bad ones go to the lake's rejects.

    \b
    Example:
      hooklake ingest --lake lake/ --hook support captures/*.json
    """
    from hooklake.collector.ingest import ingest_bodies, read_bodies
    from hooklake.collector.service import recover

    recover(lake, journal)
    report = ingest_bodies(lake, read_bodies(paths), hook=hook, journal=journal)
    click.echo(
        f"ingested {counted(report.bodies, 'body', 'bodies')}: "
        f"{counted(report.messages, 'message')}, {report.rejected} rejected"
    )


COMMANDS = [serve, flush, ingest]
