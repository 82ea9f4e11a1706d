"""The quickstart notebook runs in a real Jupyter kernel (nbclient), as `jupyter nbconvert
--execute` runs it, and leaves nothing next to itself."""

from __future__ import annotations

import shutil
from pathlib import Path

import nbclient  # the dev and test extras install nbclient, nbformat and ipykernel
import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "quickstart.ipynb"


@pytest.fixture(scope="module")
def executed(tmp_path_factory, mlflow_isolation):
    """The notebook executed in a kernel whose working folder is a copy of ``notebooks/``."""
    folder = tmp_path_factory.mktemp("notebooks")
    temporary = tmp_path_factory.mktemp("tmp")
    shutil.copy(NOTEBOOK, folder / NOTEBOOK.name)
    notebook = nbformat.read(folder / NOTEBOOK.name, as_version=4)
    # the kernel inherits the environment: a clean MLflow setting, temporary files here
    with mlflow_isolation(), pytest.MonkeyPatch.context() as patch:
        patch.delenv("RETAIN_WORKSPACE", raising=False)
        patch.setenv("TMPDIR", str(temporary))
        client = nbclient.NotebookClient(
            notebook, timeout=600, kernel_name="python3",
            resources={"metadata": {"path": str(folder)}},
        )  # fmt: skip
        client.execute()
    return notebook, folder, temporary


def _outputs(notebook, kind: str) -> list:
    return [
        output
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.outputs
        if output.output_type == kind
    ]


def test_notebook_runs_in_a_kernel_without_errors(executed):
    notebook, _, _ = executed
    assert not _outputs(notebook, "error")
    stderr = "".join(o.text for o in _outputs(notebook, "stream") if o.name == "stderr")
    # DuckDB refuses any progress-bar setting in Jupyter without ipywidgets: not an error here
    assert "Could not change the progress bar setting" not in stderr


def test_notebook_outputs_are_readable(executed):
    notebook, _, _ = executed
    shown = "\n".join(o.data.get("text/plain", "") for o in _outputs(notebook, "execute_result"))
    assert "bound method" not in shown
    assert "transactions" in shown and "churn_probability" in shown
    assert "validation ROC-AUC" in shown and "recommended_action" in shown
    assert "profit_to_date" in shown and "cost_to_serve" in shown  # the P&L by segment
    assert any("image/png" in o.data for o in _outputs(notebook, "display_data")) or (
        "Figure" in shown
    )


def test_notebook_leaves_nothing_next_to_itself(executed):
    _, folder, temporary = executed
    assert sorted(path.name for path in folder.iterdir()) == [NOTEBOOK.name]
    (workspace,) = temporary.glob("retain-quickstart-*")
    assert (workspace / "value_at_risk_by_tier.png").stat().st_size > 5_000
    assert (workspace / "mlruns" / "mlflow.db").is_file()
    assert list((workspace / "serving" / "output").iterdir())
    assert (workspace / "whale_curve.png").stat().st_size > 5_000
    [pnl] = (workspace / "serving" / "profitability").iterdir()
    assert (pnl / "pnl.parquet").is_file() and (pnl / "by_segment.parquet").is_file()
