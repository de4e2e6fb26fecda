"""Every CLI error is one readable line and a non-zero exit, never a traceback (unless
HOOKLAKE_DEBUG=1 asks for one): wrong command lines, a port already taken, a bad hooks file."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from hooklake.cli import main
from hooklake.collector.ingest import ingest_bodies
from hooklake.datasets.lake import Lake
from tests.conftest import Collector, sample

ROOT = Path(__file__).parents[1]
RECIPE = str(ROOT / "datasets" / "support-bot.toml")


@pytest.fixture(autouse=True)
def _no_debug(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HOOKLAKE_DEBUG", raising=False)


def run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args), env=env)
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def lake(tmp_path: Path) -> Path:
    path = tmp_path / "lake"
    ingest_bodies(path, [sample("dialog.json")])
    return path


def usage_errors(lake: Path) -> list[tuple[list[str], str]]:
    """Wrong command lines and the one line each gets."""
    return [
        (
            ["sql", "--lake", str(lake), "--format", "xml", "SELECT 1"],
            "Invalid value for '--format': 'xml' is not one of 'table', 'csv', 'json' "
            "(see hooklake sql --help)",
        ),
        (
            ["build", RECIPE, "--lake", str(lake), "--format", "xml"],
            "No such option '--format'. Did you mean '--out'? (see hooklake build --help)",
        ),
        (
            ["forget", "--lake", str(lake), "--customer", "abc"],
            "Invalid value for '--customer': 'abc' is not a valid integer "
            "(see hooklake forget --help)",
        ),
        (
            ["forget", "--lake", str(lake)],
            "Missing option '--customer' (see hooklake forget --help)",
        ),
        (
            ["ingest", "--lake", str(lake), str(lake / "missing.json")],
            f"Invalid value for 'PATHS...': File '{lake / 'missing.json'}' does not exist "
            "(see hooklake ingest --help)",
        ),
        (
            ["build", RECIPE, "--lake", str(lake), "--out", str(ROOT / "README.md")],
            f"Invalid value for '--out': Directory '{ROOT / 'README.md'}' is a file "
            "(see hooklake build --help)",
        ),
        (["sql", "--lake", str(lake)], "Missing argument 'QUERY' (see hooklake sql --help)"),
        (
            ["index", "--lake", str(lake), "--as-of", "1"],
            "--as-of and --out go with --engine spark (see hooklake index --help)",
        ),
        (
            ["index", "--lake", str(lake), "--engine", "spark", "--rebuild"],
            "--rebuild goes with the index itself: leave out --engine spark "
            "(see hooklake index --help)",
        ),
        (["nosuch"], "No such command 'nosuch' (see hooklake --help)"),
        (["--bogus"], "No such option '--bogus' (see hooklake --help)"),
    ]


def test_usage_errors_are_one_line_with_exit_code_2(lake: Path) -> None:
    for args, message in usage_errors(lake):
        code, out, err = run(*args)
        assert (code, out, err) == (2, "", f"Error: {message}\n"), args


def test_usage_errors_of_the_installed_command_are_one_line(lake: Path) -> None:
    """The real entry point (``python -m hooklake``), not only Click's test runner."""
    args, message = usage_errors(lake)[0]
    proc = subprocess.run(
        [sys.executable, "-m", "hooklake", *args], capture_output=True, text=True, check=False
    )
    assert (proc.returncode, proc.stdout, proc.stderr) == (2, "", f"Error: {message}\n")


def test_help_and_version_still_work() -> None:
    code, _, err = run()  # the help, as Click gives it when a command is missing
    assert code == 2 and err.startswith("Usage: hooklake [OPTIONS] COMMAND")
    code, out, _ = run("build", "--help")
    assert code == 0 and out.startswith("Usage: hooklake build [OPTIONS] RECIPE")
    code, out, _ = run("--version")
    assert code == 0 and out.startswith("hooklake, version ")


# --- HOOKLAKE_DEBUG ---------------------------------------------------------------------------


def test_hooklake_errors_are_one_line_and_with_debug_follow_their_traceback(
    tmp_path: Path,
) -> None:
    missing = tmp_path / "nowhere"
    line = (
        f"Error: no lake at {missing}: the directory does not exist (pass --lake or set "
        "HOOKLAKE_LAKE to the directory your collector writes)"
    )
    assert run("stats", "--lake", str(missing)) == (1, "", f"{line}\n")

    code, out, err = run("stats", "--lake", str(missing), env={"HOOKLAKE_DEBUG": "1"})
    assert (code, out) == (1, "")
    assert err.startswith("Traceback (most recent call last):\n")
    assert "\nhooklake.errors.LakeError: no lake at " in err
    assert err.endswith(f"\n{line}\n")


def test_unexpected_errors_with_debug_follow_their_traceback(
    lake: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(self: Lake, query: str, params: object = None) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(Lake, "query", broken)
    line = "Error: RuntimeError: a bug"
    code, out, err = run("sql", "--lake", str(lake), "SELECT 1")
    assert (code, out, err) == (1, "", f"{line} (set HOOKLAKE_DEBUG=1 for the traceback)\n")

    code, out, err = run("sql", "--lake", str(lake), "SELECT 1", env={"HOOKLAKE_DEBUG": "1"})
    assert (code, out) == (1, "")
    assert err.startswith("Traceback (most recent call last):\n")
    assert "\nRuntimeError: a bug\n" in err
    assert err.endswith(f"\n{line}\n")


def test_usage_errors_with_debug_follow_their_traceback(lake: Path) -> None:
    code, out, err = run("sql", "--lake", str(lake), env={"HOOKLAKE_DEBUG": "1"})
    assert (code, out) == (2, "")
    assert err.startswith("Traceback (most recent call last):\n")
    assert err.endswith("\nError: Missing argument 'QUERY' (see hooklake sql --help)\n")


# --- hooks file ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("hooks", "key", "message"),
    [
        (
            "[hooks.support]\ntoken = 12345\n",
            "hooks.support.token",
            'Input should be a valid string (quote it: token = "12345")',
        ),
        ("[hooks.support]\ntoken = [1]\n", "hooks.support.token", "Input should be a valid string"),
        (
            '[hooks.support]\ntoken = " padded"\n',
            "hooks.support.token",
            "a token must be non-empty printable text without surrounding spaces",
        ),
        (
            '[hooks."two words"]\ntoken = "x"\n',
            "hooks.two words",
            "hook names are letters, digits, '_', '.', '-' (at most 64)",
        ),
    ],
)
def test_a_bad_hooks_file_names_the_key(tmp_path: Path, hooks: str, key: str, message: str) -> None:
    path = tmp_path / "hooks.toml"
    path.write_text(hooks)
    code, out, err = run("serve", "--hooks", str(path), "--lake", str(tmp_path / "lake"))
    assert (code, out, err) == (1, "", f"Error: hooks file {path}: {key}: {message}\n")


def test_a_bad_token_from_the_environment_names_the_variable(tmp_path: Path) -> None:
    path = tmp_path / "hooks.toml"
    path.write_text('[hooks.support]\ntoken = "fine"\n')
    code, out, err = run(
        "serve",
        "--hooks",
        str(path),
        "--lake",
        str(tmp_path / "lake"),
        env={"HOOKLAKE_TOKEN_SUPPORT": " padded"},
    )
    assert (code, out) == (1, "")
    assert err == (
        "Error: HOOKLAKE_TOKEN_SUPPORT (the token of hook support): a token must be non-empty "
        "printable text without surrounding spaces\n"
    )


# --- serve on a port in use ------------------------------------------------------------------


@pytest.mark.parametrize("workers", [1, 2])
def test_serve_on_a_port_in_use_is_one_line(
    tmp_path: Path, collector_factory: Callable[..., Collector], workers: int
) -> None:
    """A real collector holds the port; a second one says so in one line, before anything
    claims to have started, and leaves the first one serving."""
    first = collector_factory()
    proc = subprocess.run(
        [
            *(sys.executable, "-m", "hooklake", "serve", "--lake", str(tmp_path / "other")),
            *("--port", str(first.port), "--workers", str(workers)),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={k: v for k, v in os.environ.items() if k != "HOOKLAKE_DEBUG"},
        check=False,
    )
    line = f"Error: cannot listen on 127.0.0.1:{first.port}: address already in use\n"
    assert (proc.returncode, proc.stdout, proc.stderr) == (1, "", line)
    assert not (tmp_path / "other").exists()
    assert httpx.get(f"{first.url}/healthz", timeout=10).status_code == 200
