"""``hooklake demo`` as a new user runs it: one command, real collector, real dataset."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson


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


def test_demo_collects_over_http_builds_a_dataset_and_leaves_no_process(tmp_path: Path) -> None:
    where = tmp_path / "demo"
    repo = Path(__file__).resolve().parent.parent
    done = subprocess.run(
        [sys.executable, "-m", "hooklake", "demo", "--dir", str(where), "--customers", "30"],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "0 failed" in out and "acknowledged" in out
    assert "A conversation with a human handover" in out
    assert f"hooklake stats --lake {where / 'lake'}" in out
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
