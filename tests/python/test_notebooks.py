"""Every notebook in notebooks/ runs end to end (a failing cell fails the test), and every figure
it draws is in its executed output: a code cell that makes a matplotlib figure must leave an
image/png among its outputs, so a figure that never renders (a non-interactive backend forced
before plt.show(), a figure closed before display) fails."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).resolve().parents[2] / "notebooks").glob("*.ipynb"))

# A cell that makes a figure: pyplot's constructors, or a plot call on pyplot itself.
DRAWS = re.compile(r"\bplt\.(subplots|figure|imshow|plot|hist|bar|scatter|pcolormesh)\(")


def test_there_are_notebooks() -> None:
    assert NOTEBOOKS


def figures_promised_and_shown(notebook: nbformat.NotebookNode) -> list[tuple[int, bool]]:
    """(cell index, whether an image/png is among its outputs) for each cell that draws."""
    found = []
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type == "code" and DRAWS.search(cell.source):
            shown = any("image/png" in output.get("data", {}) for output in cell.get("outputs", []))
            found.append((index, shown))
    return found


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs_and_shows_its_figures(path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    NotebookClient(notebook, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    missing = [index for index, shown in figures_promised_and_shown(notebook) if not shown]
    assert not missing, f"{path.name}: cells {missing} draw a figure that is not in their output"


def test_a_figure_that_never_renders_is_caught() -> None:
    """The check itself: the Agg backend forced before plt.show() leaves no image (the defect
    notebook 00 had), and the same cell without it leaves one."""
    draw = "import matplotlib.pyplot as plt\nfig, ax = plt.subplots()\nax.plot([1, 3])\nplt.show()"
    cells = ["import matplotlib\nmatplotlib.use('Agg')\n" + draw, draw]
    for source, expect_image in zip(cells, (False, True)):
        notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source)])
        NotebookClient(notebook, timeout=120, kernel_name="python3").execute()
        assert figures_promised_and_shown(notebook) == [(0, expect_image)]
