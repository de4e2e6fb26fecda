"""The README's Python snippets import what they use from where it is."""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

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
