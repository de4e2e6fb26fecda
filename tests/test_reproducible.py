"""The suite replays its own failures: a seeded ``rng`` that every failure names, and Hypothesis
profiles that a test's own ``@settings`` build on."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import DEFAULT_SEED, SEED_ENV, SeededRandom, examples

pytest_plugins = ["pytester"]
CONFTEST = Path(__file__).with_name("conftest.py")


def test_a_tests_own_settings_keep_the_profiles_other_values() -> None:
    own = settings(max_examples=examples(7))
    assert own.max_examples == 7 * settings.default.max_examples // 100
    for name in ("derandomize", "database", "deadline", "print_blob", "suppress_health_check"):
        assert getattr(own, name) == getattr(settings.default, name), name


def test_the_ci_profile_draws_the_same_examples_every_run() -> None:
    if not settings.default.derandomize:
        pytest.skip("a randomized profile (explore) is loaded")
    assert settings.default.database is None and settings.default.deadline is None

    def draw() -> list[int]:
        seen: list[int] = []

        @settings(max_examples=examples(20))
        @given(st.integers())
        def prop(i: int) -> None:
            seen.append(i)

        prop()
        return seen

    assert draw() == draw()


def test_rng_is_seeded_and_its_seed_replays_it(rng: SeededRandom) -> None:
    again = SeededRandom(rng.initial_seed)
    assert [rng.random() for _ in range(5)] == [again.random() for _ in range(5)]
    assert str(rng) == f"{SEED_ENV}={rng.initial_seed}"


@pytest.mark.parametrize(("value", "shown"), [("", str(DEFAULT_SEED)), ("4242", "4242")])
def test_a_failure_names_the_seed_to_replay_it(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, value: str, shown: str
) -> None:
    monkeypatch.setenv(SEED_ENV, value)
    monkeypatch.setenv("PYTHONPATH", str(CONFTEST.parent.parent))  # it imports tests.*
    pytester.makeconftest(CONFTEST.read_text())
    pytester.makepyfile(
        test_it="""
        def test_uses_rng(rng):
            assert rng.random() > 2, "drew a small number"

        def test_without_rng():
            assert False, "plain"
        """
    )
    result = pytester.runpytest_subprocess("-ra", "-vv")  # -vv: summary lines in full
    result.assert_outcomes(failed=2)
    out = result.stdout.str()
    assert f"hooklake: {SEED_ENV}={shown}" in out  # the report header
    result.stdout.fnmatch_lines(
        [
            f"FAILED test_it.py::test_uses_rng - [[]{SEED_ENV}={shown}[]] AssertionError: drew*",
            "FAILED test_it.py::test_without_rng - AssertionError: plain*",
        ]
    )
    assert f"replay with {SEED_ENV}={shown}" in out
    assert f"rng = SeededRandom({SEED_ENV}={shown})" in out


def test_a_random_seed_is_drawn_and_shown(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SEED_ENV, "random")
    monkeypatch.setenv("PYTHONPATH", str(CONFTEST.parent.parent))  # it imports tests.*
    pytester.makeconftest(CONFTEST.read_text())
    pytester.makepyfile(test_it="def test_ok(rng):\n    assert rng.random() < 1\n")
    shown = set()
    for _ in range(2):
        result = pytester.runpytest_subprocess()
        result.assert_outcomes(passed=1)
        (line,) = [ln for ln in result.outlines if ln.startswith(f"hooklake: {SEED_ENV}=")]
        shown.add(line.split("=", 1)[1].split()[0])
    assert len(shown) == 2, "two runs drew the same seed"

    monkeypatch.setenv(SEED_ENV, "soon")
    result = pytester.runpytest_subprocess()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*{SEED_ENV} must be an integer or 'random', not 'soon'*"])
