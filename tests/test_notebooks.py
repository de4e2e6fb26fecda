"""The analyst notebooks in ``notebooks/`` run top to bottom, draw their plots, and are
committed without outputs.

Each notebook runs in a real Jupyter kernel (nbclient) started from this interpreter, against a
small simulated lake named by ``HOOKLAKE_LAKE``; one also runs with it unset, so that it builds
its own lake as a new user's would.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import nbformat
import pytest

from hooklake import demo
from tests.datasets.test_lake_support import row, write_rows

if TYPE_CHECKING:
    from jupyter_client.kernelspec import KernelSpecManager

NOTEBOOK_DIR = Path(__file__).parent.parent / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
KERNEL = "python3"

# Jupyter's own deprecations are not ours to fix and must not fail these tests: depending on
# the installed versions, jupyter_core announces its move to platformdirs when imported, and
# jupyter_client, nbclient, zmq and tornado deprecate ways of getting an asyncio event loop.
# (The versions pinned today raise none.) Only the tests that start a kernel ignore them, and
# they import Jupyter lazily so the import happens under this mark; cell errors and warnings
# inside the notebooks are still caught, through the cells' stderr outputs.
kernel_warnings = pytest.mark.filterwarnings(
    "ignore:Jupyter is migrating its paths:DeprecationWarning",
    "ignore:There is no current event loop:DeprecationWarning",
    "ignore::DeprecationWarning:jupyter_client",
    "ignore::DeprecationWarning:nbclient",
    "ignore::DeprecationWarning:zmq",
    "ignore::DeprecationWarning:tornado",
)


@pytest.fixture(scope="module")
def kernel_specs(tmp_path_factory: pytest.TempPathFactory) -> KernelSpecManager:
    """A kernelspec ``python3`` that runs this very interpreter, whatever is installed globally."""
    from jupyter_client.kernelspec import KernelSpecManager

    root = tmp_path_factory.mktemp("kernels")
    spec = root / KERNEL
    spec.mkdir()
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    spec.joinpath("kernel.json").write_text(
        json.dumps({"argv": argv, "display_name": "Python 3", "language": "python"})
    )
    return KernelSpecManager(kernel_dirs=[str(root)], ensure_native_kernel=False)


@pytest.fixture(scope="module")
def lake_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    path = tmp_path_factory.mktemp("notebook-lake") / "lake"
    demo.simulated_lake(path, customers=demo.DEMO_CUSTOMERS, seed=5).close()
    yield path


def read(path: Path) -> Any:
    """The notebook at ``path`` (an nbformat NotebookNode; nbformat has no type hints)."""
    return nbformat.read(path, as_version=4)  # type: ignore[no-untyped-call]


def run(path: Path, kernel_specs: KernelSpecManager) -> Any:
    """Execute the notebook at ``path`` and return it with its outputs."""
    from jupyter_client.manager import KernelManager
    from nbclient import NotebookClient

    nb = read(path)
    # One extra cell at the end proves the kernel ran this interpreter.
    check = nbformat.v4.new_code_cell("import sys; print(sys.executable)")  # type: ignore[no-untyped-call]
    nb.cells.append(check)
    # Shutting down, the kernel removes the lake it built (test below); Jupyter's default of
    # 5 s before it kills the kernel is too short for a busy machine, so wait much longer.
    km = KernelManager(kernel_name=KERNEL, kernel_spec_manager=kernel_specs, shutdown_wait_time=120)
    # The kernel starts in the notebook's folder, as in Jupyter (dataset-qa reads ../datasets).
    client = NotebookClient(
        nb,
        km=km,
        timeout=300,
        startup_timeout=300,
        kernel_name=KERNEL,
        resources={"metadata": {"path": str(path.parent)}},
    )
    # cleanup_kc: shut the kernel down and close its sockets, although we made its manager.
    client.execute(cleanup_kc=True)  # raises CellExecutionError on the first failing cell
    return nb


def stdout(cell: Any) -> str:
    return "".join(
        o["text"] for o in cell.outputs if o.output_type == "stream" and o.name == "stdout"
    )


def first_code(nb: Any) -> Any:
    return next(c for c in nb.cells if c.cell_type == "code")


def check_ran_cleanly(nb: Any) -> None:
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert stdout(code[-1]).strip() == sys.executable
    for cell in code:
        assert cell.execution_count is not None
        stderr = [o["text"] for o in cell.outputs if o.get("name") == "stderr"]
        assert not stderr, f"cell wrote to stderr (a warning?):\n{cell.source}\n{stderr}"
        if "plt.show()" in cell.source:
            images = [o for o in cell.outputs if "image/png" in o.get("data", {})]
            assert images, f"no plot from:\n{cell.source}"


def shown(cell: Any) -> str:
    """What the cell's last expression displayed, as text."""
    return "".join(o.data["text/plain"] for o in cell.outputs if o.output_type == "execute_result")


def check_charts_count_what_their_axes_say(nb: Any) -> None:
    """preference-pairs: the "hand-offs" axis counts hand-offs only (the build's notes also
    count the messages pairs pass over: those have a chart of their own, in messages)."""
    code = [c for c in nb.cells if c.cell_type == "code"]
    for label in ("hand-offs", "messages"):
        (cell,) = [c for c in code if f'ax.set(xlabel="{label}")' in c.source]
        bars = shown(cell).splitlines()[:-1]  # the last line is the Series' name and dtype
        assert bars, shown(cell)
        assert all(b.startswith("hand-offs") == (label == "hand-offs") for b in bars), bars


def test_there_are_notebooks() -> None:
    names = {p.name for p in NOTEBOOKS}
    assert {"conversations.ipynb", "handovers.ipynb", "dataset-qa.ipynb"} <= names


@kernel_warnings
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_on_the_lake_it_is_given(
    path: Path,
    lake_dir: Path,
    kernel_specs: KernelSpecManager,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HOOKLAKE_LAKE", str(lake_dir))  # the kernel inherits our environment
    before = sorted(path.parent.iterdir())
    nb = run(path, kernel_specs)
    check_ran_cleanly(nb)
    assert sorted(path.parent.iterdir()) == before, "the notebook wrote into notebooks/"
    assert str(lake_dir) in stdout(first_code(nb)), "the notebook explored another lake"
    if path.name == "preference-pairs.ipynb":
        check_charts_count_what_their_axes_say(nb)


@kernel_warnings
def test_notebook_builds_its_own_lake_without_hooklake_lake(
    kernel_specs: KernelSpecManager, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HOOKLAKE_LAKE", raising=False)
    nb = run(NOTEBOOKS[0], kernel_specs)
    check_ran_cleanly(nb)
    shown = Path(stdout(first_code(nb)).split(":")[0])
    assert shown.parent.name.startswith("hooklake-demo-")
    assert not shown.parent.exists(), "the notebook's own lake is removed when its kernel exits"


@kernel_warnings
def test_dataset_qa_runs_on_a_lake_with_no_personal_data(
    tmp_path: Path, kernel_specs: KernelSpecManager, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing to redact is a finding too, not a failed chart ("no numeric data to plot")."""
    rows = [
        row(f"{c}-{k}", customer=c, t=c * 7200 + k * 10, sender=sender, text=text)
        for c in range(1, 41)
        for k, (sender, text) in enumerate(
            [("customer", "where is my order"), ("bot", "It ships tomorrow.")]
        )
    ]
    write_rows(tmp_path / "lake", rows)
    monkeypatch.setenv("HOOKLAKE_LAKE", str(tmp_path / "lake"))
    nb = run(NOTEBOOK_DIR / "dataset-qa.ipynb", kernel_specs)
    code = [c for c in nb.cells if c.cell_type == "code"]
    (redactions,) = [c for c in code if "report.stats.redactions" in c.source]
    assert stdout(redactions).strip() == "The build found no personal data to replace."


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_is_committed_without_outputs(path: Path) -> None:
    nb = read(path)
    nbformat.validate(nb)
    assert nb.cells[0].cell_type == "markdown", "a notebook opens with what it is for"
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [], f"outputs left in {path.name}: strip them before committing"
            assert cell.execution_count is None
    assert nb.metadata.get("kernelspec", {}).get("name") == KERNEL
