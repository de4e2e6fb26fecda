"""``hooklake demo`` as a new user runs it: one command, real collector, real dataset."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import orjson
import pytest


def _processes_mentioning(text: str) -> list[str]:
    found = []
    for pid in os.listdir("/proc"):
        if pid.isdigit() and int(pid) != os.getpid():
            try:
                cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if text in cmd:
                found.append(cmd)
    return found


REPO = Path(__file__).resolve().parent.parent


def run_demo(where: Path, customers: int) -> subprocess.CompletedProcess[str]:
    """``hooklake demo`` into ``where``, run from the clone as a new user would."""
    command = ["demo", "--dir", str(where), "--customers", str(customers)]
    done = subprocess.run(
        [sys.executable, "-m", "hooklake", *command],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done


def test_demo_collects_over_http_builds_a_dataset_and_leaves_no_process(tmp_path: Path) -> None:
    where = tmp_path / "demo"
    done = run_demo(where, 30)
    out = done.stdout
    assert "0 failed" in out and "acknowledged" in out
    assert "A conversation with a human handover" in out
    assert f"hooklake stats --lake {where / 'lake'}" in out
    # The lake got its conversation index, and the stats read through it.
    assert "conversation index rebuilt" in out and "covers messages version" in out
    # The recipe shipped in datasets/ was used, and the dataset is complete.
    dataset = where / "out" / "support-bot"
    assert (dataset / "README.md").is_file() and (dataset / "manifest.json").is_file()
    lines = (dataset / "train.jsonl").read_bytes().splitlines()
    assert lines and all(
        orjson.loads(line)["messages"][-1]["role"] == "assistant" for line in lines
    )
    # Every acknowledged message is in the lake; nothing is left running.
    assert list((where / "lake" / "messages").glob("date=*/*.parquet"))
    assert not list((where / "lake" / "_journal").glob("*/*.seg"))
    assert _processes_mentioning(str(where)) == []
    assert "from 30 customers" in out


def _next_steps(out: str) -> list[str]:
    return out.split("\nNext:\n", 1)[1].splitlines()


def test_the_demo_suggests_next_steps_that_work(tmp_path: Path) -> None:
    """What the demo says to do next runs with what `.[dev]` installed (no Jupyter Lab), and
    the collector it suggests listens where Landbot can reach it."""
    where = tmp_path / "demo"
    steps = _next_steps(run_demo(where, 5).stdout)
    assert not any("jupyter lab" in s for s in steps)
    serve = next(s for s in steps if "hooklake serve" in s)
    assert "--host 0.0.0.0 --port 8000" in serve and f"--hooks {where / 'hooks.toml'}" in serve
    assert any(":8000/hooks/landbot" in s for s in steps)
    # The notebook line, run as printed from the clone, with this interpreter's tools first.
    line = next(s for s in steps if "jupyter execute" in s).split()
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    env.update(v.split("=", 1) for v in line if v.startswith("HOOKLAKE_LAKE="))
    command = [v for v in line if not v.startswith("HOOKLAKE_LAKE=")]
    ran = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert ran.returncode == 0, ran.stderr
    executed = orjson.loads((where / "conversations.ipynb").read_bytes())
    outputs = [o for c in executed["cells"] if c["cell_type"] == "code" for o in c["outputs"]]
    assert any("image/png" in o.get("data", {}) for o in outputs)
    printed = "".join("".join(o["text"]) for o in outputs if o["output_type"] == "stream")
    assert str(where / "lake") in printed
    assert not any(o["output_type"] == "error" for o in outputs)


def test_the_demo_collector_moves_to_another_port_when_its_port_is_taken(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another program takes the chosen port before the collector binds it."""
    import httpx

    from hooklake import demo

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        ports = [taken.getsockname()[1], demo._free_port()]
        monkeypatch.setattr(demo, "_free_port", ports.pop)
        ports.reverse()  # the taken port first
        hooks = tmp_path / "hooks.toml"
        hooks.write_text('[hooks.default]\ntoken = "t"\n')
        log = tmp_path / "serve.log"
        with demo.running_collector(tmp_path / "lake", hooks, log) as url:
            assert httpx.get(f"{url}/healthz").status_code == 200
            assert not url.endswith(f":{taken.getsockname()[1]}")
    assert b"address already in use" in log.read_bytes().lower()


@pytest.mark.parametrize("minute", [0, 10, 20, 54])
def test_the_demo_traffic_ends_before_the_demo_runs(minute: int) -> None:
    """How long a simulated run lasts depends on the hours it covers: started two days before
    these times, 120 customers' traffic ran hours past them, and the demo's lake had its newest
    messages in the future."""
    from datetime import UTC, datetime, timedelta

    from hooklake.demo import _traffic_start
    from hooklake.simulate import simulate

    now = datetime(2026, 11, 29, 8, minute, 57, tzinfo=UTC)
    start = _traffic_start(120, 7, now)
    assert now - start >= timedelta(days=2)
    last = max(d.deliver_at for d in simulate(120, seed=7, start=start))
    assert last < now.timestamp()
    plain_end = max(d.deliver_at for d in simulate(120, seed=7, start=now - timedelta(days=2)))
    if minute == 54:  # the case a demo run met: the plain two days ran past `now`
        assert plain_end > now.timestamp()
