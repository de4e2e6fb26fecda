"""Hooklake's version is written once, in ``hooklake.__version__``: the package metadata,
``hooklake --version`` and dataset cards all say the same."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import hooklake

REPO = Path(__file__).resolve().parent.parent


def test_pyproject_takes_the_version_from_the_package() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert "version" not in project["project"]
    assert "version" in project["project"]["dynamic"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "hooklake.__version__"}
    # A literal, so setuptools reads it without importing Hooklake.
    init = (REPO / "hooklake" / "__init__.py").read_text()
    assert re.search(rf'^__version__ = "{re.escape(hooklake.__version__)}"$', init, re.M)


def test_hooklake_version_prints_it() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "hooklake", "--version"], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"hooklake, version {hooklake.__version__}"
