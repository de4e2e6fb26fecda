"""``hooklake demo`` and demo lakes: Hooklake end to end on this machine, in under a minute.

It starts the real collector (``hooklake serve``) on a free loopback port with a token, sends
it simulated Landbot traffic over HTTP, stops it (which flushes the journal), shows what the
lake holds and a reconstructed conversation, builds a dataset from a recipe, and says where
everything is. The collector runs in its own process group and is always stopped, even when
the demo fails or is interrupted. :func:`demo_lake` gives notebooks a lake to explore: the
one named by ``$HOOKLAKE_LAKE``, or a small simulated one written as the collector writes.
"""

from __future__ import annotations

import math
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

from hooklake.errors import HooklakeError, LakeError, StorageError
from hooklake.index import update_index
from hooklake.wording import counted

if TYPE_CHECKING:
    from hooklake.datasets.lake import Lake

Echo = Callable[[str], None]
DEMO_HOOK = "landbot"


@dataclass
class DemoResult:
    directory: Path
    lake: Path
    out: Path
    acknowledged: int
    messages: int
    conversations: int
    examples: dict[str, int]


#: Customers in the lake :func:`demo_lake` simulates: big enough for every kind of traffic
#: (handovers, returns, WhatsApp, ...), small enough to build in about a second.
DEMO_CUSTOMERS = 60
#: New customers per hour in the simulated lake: slow enough that 60 of them spread over a
#: day, so volume charts show the daily rhythm rather than one busy hour.
DEMO_CUSTOMERS_PER_HOUR = 3.0
#: The notebook (in a clone's ``notebooks/``) the demo suggests running on its lake.
NEXT_NOTEBOOK = "conversations.ipynb"


def demo_lake(
    path: str | os.PathLike[str] | None = None,
    *,
    customers: int = DEMO_CUSTOMERS,
    seed: int = 0,
    customers_per_hour: float = DEMO_CUSTOMERS_PER_HOUR,
) -> Lake:
    """The lake a notebook explores: ``$HOOKLAKE_LAKE`` when it is set, else a simulated one.

    Point ``HOOKLAKE_LAKE`` at the directory your collector writes to explore real traffic.
    Without it, the traffic of ``customers`` simulated customers (arriving at
    ``customers_per_hour``) is stored exactly as the collector would store it, into ``path``
    (kept) or, by default, a temporary directory that is removed when the returned Lake is
    garbage-collected or Python exits.
    """
    from hooklake.datasets.lake import Lake

    configured = os.environ.get("HOOKLAKE_LAKE")
    if configured:
        lake = Lake(configured)
        # Every notebook charts what the lake holds; on a lake with no messages yet the first
        # chart would fail with matplotlib's "no numeric data to plot", far from the cause.
        if not lake.sql("SELECT EXISTS (SELECT 1 FROM messages)").fetchall()[0][0]:
            lake.close()
            raise LakeError(
                f"the lake at {configured} (HOOKLAKE_LAKE) holds no messages yet: send it "
                "traffic first (hooklake serve, then Landbot or hooklake simulate), or unset "
                "HOOKLAKE_LAKE to explore a simulated lake"
            )
        return lake
    if path is not None:
        return simulated_lake(
            path, customers=customers, seed=seed, customers_per_hour=customers_per_hour
        )
    directory = Path(tempfile.mkdtemp(prefix="hooklake-demo-"))
    try:
        lake = simulated_lake(
            directory / "lake",
            customers=customers,
            seed=seed,
            customers_per_hour=customers_per_hour,
        )
    except BaseException:
        shutil.rmtree(directory, ignore_errors=True)
        raise
    weakref.finalize(lake, shutil.rmtree, directory, ignore_errors=True)
    return lake


def simulated_lake(
    path: str | os.PathLike[str],
    *,
    customers: int = DEMO_CUSTOMERS,
    seed: int = 0,
    customers_per_hour: float = DEMO_CUSTOMERS_PER_HOUR,
) -> Lake:
    """Build a lake at ``path`` (a new or empty directory) from :mod:`hooklake.simulate`
    traffic and open it. The same arguments give the same messages."""
    from hooklake.collector.ingest import ingest_bodies
    from hooklake.datasets.lake import Lake
    from hooklake.simulate import bodies

    lake = Path(path)
    if lake.exists() and any(lake.iterdir()):
        raise LakeError(f"{lake} is not empty: give simulated_lake a new or empty directory")
    lake.mkdir(parents=True, exist_ok=True)
    ingest_bodies(lake, bodies(customers, seed=seed, customers_per_hour=customers_per_hour))
    return Lake(lake)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start_collector(
    lake: Path, hooks_file: Path, log: Path
) -> tuple[subprocess.Popen[bytes], str]:
    """Start ``hooklake serve`` on a free loopback port and wait until it answers. Another
    program can take the port between choosing and binding it: then try another one."""
    for _ in range(3):
        port = _free_port()
        cmd = [sys.executable, "-m", "hooklake", "serve", "--lake", str(lake), "--port", str(port)]
        cmd += ["--hooks", str(hooks_file)]
        start = log.stat().st_size if log.exists() else 0
        with open(log, "ab") as out:
            proc = subprocess.Popen(
                cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while proc.poll() is None:
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    return proc, url
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                raise StorageError(f"the collector did not start within 30 s; see {log}")
            time.sleep(0.1)
        with open(log, "rb") as fh:
            fh.seek(start)
            if b"address already in use" not in fh.read().lower():
                break
    raise StorageError(f"the collector exited at start-up; see {log}")


@contextmanager
def running_collector(lake: Path, hooks_file: Path, log: Path) -> Iterator[str]:
    """Run ``hooklake serve`` until the block ends; yields its base URL."""
    proc, url = _start_collector(lake, hooks_file, log)
    try:
        yield url
        proc.send_signal(signal.SIGTERM)  # graceful: seals and flushes the journal
        proc.wait(60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _recipe(recipe: Path | None) -> object:
    from hooklake.datasets.recipe import load_recipe, parse_recipe

    if recipe is not None:
        return load_recipe(recipe)
    shipped = Path("datasets") / "support-bot.toml"
    if shipped.is_file():
        return load_recipe(shipped)
    return parse_recipe({"name": "demo-support"}, "built-in demo recipe")


def _traffic_start(customers: int, seed: int, now: datetime) -> datetime:
    """When the demo's simulated traffic starts: about two days ago, and early enough that its
    last delivery comes before ``now`` (a lake whose newest message lies in the future would
    puzzle whoever looks at it). How long a run lasts depends on the hours it covers (fewer
    customers arrive at night), so the start moves back until the run fits."""
    from hooklake.simulate import simulate

    start = now - timedelta(days=2)
    for _ in range(8):
        end = max((d.deliver_at for d in simulate(customers, seed=seed, start=start)), default=0.0)
        late = end - (now - timedelta(minutes=5)).timestamp()
        if late <= 0:
            break
        start -= timedelta(seconds=math.ceil(late)) + timedelta(hours=1)
    return start


def run_demo(
    directory: Path,
    *,
    customers: int = 120,
    seed: int = 7,
    recipe: Path | None = None,
    echo: Echo = print,
    progress: bool = True,
) -> DemoResult:
    """Run the demo in ``directory`` (created; an earlier demo there is replaced)."""
    from tqdm import tqdm

    from hooklake.datasets.build import build
    from hooklake.datasets.lake import Lake
    from hooklake.simulate import send, simulate

    lake, out = directory / "lake", directory / "out"
    for old in (lake, out):
        if old.exists():
            shutil.rmtree(old)
    directory.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(16)
    hooks_file = directory / "hooks.toml"
    hooks_file.write_text(f'[hooks.{DEMO_HOOK}]\ntoken = "{token}"\n')
    log = directory / "collector.log"

    echo(f"1/4  Starting the collector (log: {log})")
    start = _traffic_start(customers, seed, datetime.now(UTC).replace(microsecond=0))
    with running_collector(lake, hooks_file, log) as url:
        hook_url = f"{url}/hooks/{DEMO_HOOK}"
        echo(f"     POST {hook_url}  (Authorization: Token …)")
        who = counted(customers, "customer")
        echo(f"2/4  Sending simulated Landbot traffic from {who} over HTTP")
        with tqdm(desc="     deliveries", unit="req", disable=not progress, leave=False) as bar:
            report = send(
                simulate(customers, seed=seed, start=start),
                hook_url,
                token=token,
                concurrency=16,
                backoff=0.2,
                on_result=lambda _d, _s: bar.update(),
            )
        echo(f"     {report.describe()}")
        if report.failed:
            raise HooklakeError(f"{report.failed} deliveries were not acknowledged; see {log}")
    echo("     collector stopped; its journal is flushed into the lake")
    # What `hooklake index` does: the views then read conversations instead of recomputing them.
    indexed = update_index(lake)
    in_order = counted(indexed.rows_written, "message", thousands=True)
    echo(f"     conversation index {indexed.action}: {in_order} in order")

    echo("3/4  What the lake holds")
    with Lake(lake) as lk:
        stats = lk.stats()
        for name, value in stats.rows():
            echo(f"     {name:<22} {value}")
        by_source = lk.sql(
            "SELECT source, count(*) FROM handovers GROUP BY source ORDER BY source"
        ).fetchall()
        if by_source:
            found_by = ", ".join(f"{n} from {source.replace('_', ' ')}" for source, n in by_source)
            echo(f"     {'hand-offs':<22} {sum(n for _, n in by_source)} ({found_by})")
        found = lk.sql(
            "SELECT conversation_id FROM conversations WHERE has_agent "
            "ORDER BY n_messages DESC, conversation_id LIMIT 1"
        ).fetchall()
        if found:
            conv = found[0]
            echo(f"     A conversation with a human handover ({conv[0]}):")
            turns = lk.sql(
                "SELECT role, sender_type, text FROM turns WHERE conversation_id = ? "
                "ORDER BY turn_index LIMIT 12",
                [conv[0]],
            ).fetchall()
            for role, sender, text in turns:
                line = " ".join(str(text or "").split())
                echo(f"       {role:>9} ({sender}): {line[:90]}")
        n_messages = stats.messages
        n_conv = stats.conversations

    chosen = _recipe(recipe)
    name = getattr(chosen, "name", "dataset")
    echo(f"4/4  Building the dataset '{name}'")
    result = build(chosen, lake, out / name, progress=progress)  # type: ignore[arg-type]
    echo(f"     {result.summary()}")
    echo("")
    echo("Done. Everything is under " + str(directory))
    echo(f"  lake:     {lake}/  (Delta tables messages/, rejected/ and the index/)")
    echo(f"  dataset:  {out / name}/  (train/validation/test, README.md card, manifest.json)")
    echo("Next:")
    echo(f'  hooklake sql --lake {lake} "select * from conversations limit 5"')
    echo(f"  hooklake stats --lake {lake}")
    notebook = Path("notebooks") / NEXT_NOTEBOOK
    if notebook.is_file():
        # The kernel runs in the notebook's folder: the lake and the output need full paths.
        ran = directory.resolve() / notebook.stem
        echo(f"  HOOKLAKE_LAKE={lake.resolve()} jupyter execute --output={ran} {notebook}")
        echo(
            "     (runs the notebook on this lake in the kernel of the `notebooks` extra; "
            f"{ran}.ipynb then holds its tables and charts)"
        )
    echo(f"  hooklake serve --hooks {hooks_file} --lake {lake} --host 0.0.0.0 --port 8000")
    echo(
        f"     (listens on every interface: point a Landbot MessageHook at "
        f"http://<this host>:8000/hooks/{DEMO_HOOK} with the token in {hooks_file}, "
        "behind HTTPS for real traffic)"
    )
    return DemoResult(
        directory, lake, out, report.acknowledged, n_messages, n_conv, result.counts()
    )
