"""The example notebook runs top to bottom against a live server, so it never rots."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import nbformat
import pytest
from conftest import ROOT
from ipykernel.kernelspec import write_kernel_spec
from nbclient import NotebookClient

NOTEBOOK = ROOT / "examples" / "headline_question.ipynb"


def _outputs(nb: nbformat.NotebookNode, tag: str) -> str:
    """All text a tagged cell printed or displayed."""
    (cell,) = [c for c in nb.cells if tag in c.metadata.get("tags", [])]
    parts = []
    for out in cell.outputs:
        parts.append(out.get("text", ""))
        parts.append(out.get("data", {}).get("text/plain", ""))
    return "".join(parts)


@pytest.mark.slow
def test_example_notebook_runs_against_a_live_server(
    live_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A "python3" kernel that runs this interpreter (the venv's, where qa is installed); JUPYTER_PATH puts it
    # before any user-wide kernelspec of the same name.
    spec = write_kernel_spec(tmp_path / "kernels" / "python3")
    assert sys.executable in (Path(spec) / "kernel.json").read_text()
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path))
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "runtime"))
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    monkeypatch.setenv("QA_BASE_URL", live_url)
    nb = nbformat.read(NOTEBOOK, as_version=4)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), (
        "commit the notebook without outputs"
    )

    started = time.monotonic()
    NotebookClient(
        nb, kernel_name="python3", timeout=60, resources={"metadata": {"path": str(NOTEBOOK.parent)}}
    ).execute()
    assert time.monotonic() - started < 60

    assert "[1]" in _outputs(nb, "headline")
    table = _outputs(nb, "trials")
    assert "pembrolizumab" in table and "melanoma" in table
    citation = _outputs(nb, "citation")
    assert "section:" in citation and f"{live_url}/documents/" in citation
    assert "melanoma" in _outputs(nb, "follow-up")
