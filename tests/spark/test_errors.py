"""What a user sees when Spark cannot run: one line naming the cause and the fix, for a
missing Java, a Java too old, a missing pyspark and a lake the cluster cannot read; and the
``spark-submit`` entry point."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner

from hooklake.cli import main
from hooklake.collector.ingest import ingest_bodies
from hooklake.datasets.lake import Lake
from hooklake.errors import SparkError
from hooklake.simulate import simulate
from hooklake.spark import ordered_messages
from hooklake.spark.session import MIN_JAVA, check_java, java_major
from hooklake.spark.submit import arguments
from tests.datasets.test_lake_support import row, write_rows

RECIPE = str(Path(__file__).parents[2] / "datasets" / "support-bot.toml")


def _cli(
    tmp_path: Path, env: dict[str, str], prelude: str = ""
) -> subprocess.CompletedProcess[str]:
    """``hooklake build --engine spark`` in a fresh interpreter (no JVM started yet)."""
    code = f"{prelude}from hooklake.cli import main; main(prog_name='hooklake')"
    args = ["build", RECIPE, "--lake", str(tmp_path), "--engine", "spark", "--no-progress"]
    return subprocess.run(
        [sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, timeout=120
    )


def _env_without_java() -> dict[str, str]:
    # Only the venv's own bin directory: java lives in /usr/bin (and /bin) with everything else.
    env = {k: v for k, v in os.environ.items() if k != "JAVA_HOME"}
    return {**env, "PATH": str(Path(sys.executable).parent)}


def test_no_java_is_one_line_naming_the_package(tmp_path: Path) -> None:
    env = _env_without_java()
    assert shutil.which("java", path=env["PATH"]) is None
    proc = _cli(tmp_path, env)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        f"Error: Spark needs Java {MIN_JAVA} or newer, and no java on PATH and JAVA_HOME is not "
        "set: install Java 17 (Debian/Ubuntu: apt-get install openjdk-17-jre-headless) or point "
        "JAVA_HOME at one"
    ]
    proc = _cli(tmp_path, {**env, "JAVA_HOME": str(tmp_path)})
    assert proc.returncode == 1
    assert f"JAVA_HOME={tmp_path} has no bin/java" in proc.stderr


def test_java_versions_are_read_from_what_each_jdk_prints() -> None:
    assert java_major('openjdk version "17.0.15" 2025-04-15\nOpenJDK Runtime Environment') == 17
    assert java_major('openjdk version "21" 2023-09-19') == 21
    assert java_major('openjdk version "11.0.22" 2024-01-16') == 11
    assert java_major('java version "1.8.0_392"\nJava(TM) SE Runtime Environment') == 8
    assert java_major("Picked up JAVA_TOOL_OPTIONS: -Xmx1g") is None
    # This machine's Java is one Spark accepts.
    assert check_java() >= MIN_JAVA


def test_missing_pyspark_names_the_extra(tmp_path: Path) -> None:
    # None in sys.modules makes `import pyspark` fail as if it were not installed.
    proc = _cli(tmp_path, dict(os.environ), prelude="import sys; sys.modules['pyspark'] = None; ")
    assert proc.returncode == 1
    assert proc.stderr.strip() == "Error: Spark builds need pyspark: pip install 'hooklake[spark]'"


def test_a_lake_whose_files_the_cluster_cannot_read_is_a_spark_error(
    spark: Any, tmp_path: Path
) -> None:
    lake = tmp_path / "lake"
    (gone,) = write_rows(lake, [row("a", t=0), row("b", t=5, sender="bot")])
    (lake / "messages" / gone).unlink()  # as a vacuum of a version still read would
    with pytest.raises(SparkError, match=f"the Spark cluster cannot read lake {lake}"):
        ordered_messages(spark, lake).collect()


def test_index_on_spark_counts_and_writes_the_ordered_rows(
    spark: Any, sim_lake: Path, tmp_path: Path
) -> None:
    out = tmp_path / "ordered"
    args = ["index", "--engine", "spark", "--lake", str(sim_lake), "--gap-minutes", "45"]
    result = CliRunner().invoke(main, [*args, "--out", str(out), "--format", "json"])
    assert result.exit_code == 0, result.output
    stats = {r["stat"]: r["value"] for r in orjson.loads(result.output)}
    with Lake(sim_lake, session_gap=45) as lk:
        ((messages, conversations),) = lk.sql(
            "SELECT count(*), count(DISTINCT conversation_id) FROM hooklake_messages_ordered"
        ).fetchall()
        ((written,),) = lk.sql(f"SELECT count(*) FROM read_parquet('{out}/*.parquet')").fetchall()
    assert (stats["messages"], stats["conversations"]) == (messages, conversations)
    assert written == messages


def test_submitted_builds_and_indexes_run_on_spark() -> None:
    assert arguments(["build", "r.toml", "--lake", "s3a://b/l"]) == [
        "build", "--engine", "spark", "r.toml", "--lake", "s3a://b/l",
    ]  # fmt: skip
    assert arguments(["index", "--engine=spark"]) == ["index", "--engine=spark"]
    assert arguments(["stats", "--lake", "x"]) == ["stats", "--lake", "x"]


def test_index_on_spark_never_replaces_a_folder_it_did_not_write(
    spark: Any, sim_lake: Path, tmp_path: Path
) -> None:
    # Spark's overwrite deletes the whole --out folder first: `--out lake` erased the lake.
    lake = tmp_path / "lake"
    shutil.copytree(sim_lake, lake)
    before = sorted(p.relative_to(lake) for p in lake.rglob("*"))
    args = ["index", "--engine", "spark", "--lake", str(lake), "--out"]
    result = CliRunner().invoke(main, [*args, str(lake)])
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        f"Error: --out {lake} holds files Spark did not write (_journal, messages); "
        "writing the ordered rows replaces the whole folder: pass a new or empty folder"
    ]
    assert sorted(p.relative_to(lake) for p in lake.rglob("*")) == before
    # An earlier ordering's folder is replaced, as the README's command run twice does.
    out = tmp_path / "ordered"
    for _ in range(2):
        result = CliRunner().invoke(main, [*args, str(out)])
        assert result.exit_code == 0, result.output
    (out / "notes.txt").write_text("mine")
    result = CliRunner().invoke(main, [*args, str(out)])
    assert result.exit_code == 1
    assert "holds files Spark did not write (notes.txt)" in result.output
    assert (out / "notes.txt").read_text() == "mine"


@pytest.mark.parametrize(
    ("lake_arg", "extra", "expected"),
    [
        ("missing", [], "Error: no lake at {lake}: the directory does not exist"),
        ("sim", ["--as-of", "99"], "Error: the messages table of lake {lake} has no version 99"),
    ],
)
def test_index_on_spark_names_a_wrong_lake_or_version_before_starting_spark(
    sim_lake: Path, tmp_path: Path, lake_arg: str, extra: list[str], expected: str
) -> None:
    # A fresh interpreter, so nothing has started a JVM: its start-up lines go to stderr.
    lake = sim_lake if lake_arg == "sim" else tmp_path / "missing"
    code = "from hooklake.cli import main; main(prog_name='hooklake')"
    args = ["index", "--engine", "spark", "--lake", str(lake), *extra]
    proc = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 1
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith(expected.format(lake=lake))


def test_a_lake_on_s3_without_an_s3_connector_names_the_connector(
    spark: Any, sim_lake: Path, s3_lake: str, tmp_path: Path
) -> None:
    # pyspark from PyPI has no S3 filesystem: the error said so as a flattened Java stack.
    ingest_bodies(s3_lake, [d.body for d in simulate(5, seed=3)], journal=tmp_path / "journal")
    lake = s3_lake.replace("s3://", "s3a://")
    fix = (
        "this Spark has no filesystem for s3a:// (pyspark from PyPI ships no S3 connector): run "
        "on a cluster that has one (EMR, Dataproc and Databricks do) or add hadoop-aws for "
        "Spark's Hadoop version (spark-submit --packages org.apache.hadoop:hadoop-aws:VERSION), "
        "and write s3a:// paths"
    )
    runs = [
        (["build", RECIPE, "--engine", "spark", "--no-progress", "--lake", lake, "--out",
          str(tmp_path / "out")], f"Error: the Spark cluster cannot read lake {lake}: {fix}"),
        (["index", "--engine", "spark", "--lake", lake],
         f"Error: the Spark cluster cannot read lake {lake}: {fix}"),
        (["index", "--engine", "spark", "--lake", str(sim_lake), "--out", f"{lake}-ordered"],
         f"Error: cannot write the ordered rows to --out {lake}-ordered: {fix}"),
    ]  # fmt: skip
    for args, expected in runs:
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 1
        assert result.output.splitlines() == [expected], args


def test_workers_without_hooklake_are_one_line_naming_the_install(
    sim_lake: Path, tmp_path: Path
) -> None:
    # Workers on a Python without Hooklake (a node it is not installed on, or PYSPARK_PYTHON
    # naming another interpreter) failed with every task's Java and Python stacks on stderr.
    bare = tmp_path / "bare"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(bare)], check=True)
    env = {**os.environ, "PYSPARK_PYTHON": str(bare / "bin" / "python")}
    proc = _cli(sim_lake, env)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    # Which module fails first depends on what the worker finds (hooklake itself, from the
    # working directory, then its dependencies).
    assert re.fullmatch(
        r"Error: Spark's Python workers cannot import (\w+) \(No module named '\1'\): "
        r"install hooklake\[spark\], the same version, in the Python Spark runs on every node "
        r"\(PYSPARK_PYTHON, spark\.pyspark\.python\) or ship a packed virtualenv with "
        r"--archives \(README: Spark\)",
        lines[-1],
    )
    # Only the JVM's start-up lines come before it: no stack of any task.
    assert not [line for line in lines if "Traceback" in line or line.startswith("\tat ")]
    assert len(lines) < 10, proc.stderr
