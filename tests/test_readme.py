"""The README's snippets: Python imports resolve, and the quickstart runs as pasted."""

from __future__ import annotations

import ast
import importlib
import os
import re
import subprocess
import sys
from pathlib import Path

from tests.conftest import free_port

README = Path(__file__).resolve().parent.parent / "README.md"


def test_every_hooklake_import_in_the_readme_resolves() -> None:
    blocks = re.findall(r"^```python\n(.*?)^```", README.read_text(), re.S | re.M)
    assert blocks
    imported = []
    for block in blocks:
        for node in ast.walk(ast.parse(block)):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("hooklake"):
                module = importlib.import_module(node.module or "")
                for alias in node.names:
                    # A submodule (`from hooklake.datasets import explore`) or a name in it.
                    name = f"{node.module}.{alias.name}"
                    assert hasattr(module, alias.name) or importlib.import_module(name), name
                    imported.append(name)
    assert "hooklake.datasets.explore" in imported


def test_the_quickstart_without_landbot_runs_as_pasted(tmp_path: Path) -> None:
    """Serve, simulate, stop, stats: what the block promises ("a clean stop flushes
    everything") is what `stats` shows right after it, not an empty lake."""
    (block,) = [
        b
        for b in re.findall(r"^```bash\n(.*?)^```", README.read_text(), re.S | re.M)
        if "hooklake simulate --to http://127.0.0.1:8000/hooks/default" in b
    ]
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    env.pop("HOOKLAKE_LAKE", None)
    done = subprocess.run(
        ["bash", "-c", block.replace("8000", str(free_port()))],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    sent = re.search(r"^sent .* \((\d+) messages, ", done.stdout, re.M)
    stored = re.search(r"^messages +(\d+)$", done.stdout, re.M)
    assert sent and stored, done.stdout
    assert stored.group(1) == sent.group(1) != "0"
