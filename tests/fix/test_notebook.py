"""`%load_ext envdoctor`: the magics in a real IPython shell; the cell output is recorded instead of shown."""

from __future__ import annotations

from pathlib import Path

import pytest
from fixtools import freeze

from envdoctor import _notebook


class RecordingCell:
    """Stands in for a notebook output area: keeps every in-place update."""

    cells: list[RecordingCell] = []

    def __init__(self) -> None:
        self.updates: list[str] = []
        RecordingCell.cells.append(self)

    def update(self, markup: str) -> None:
        self.updates.append(markup)


@pytest.fixture
def shell(monkeypatch):  # type: ignore[no-untyped-def]
    from IPython.core.interactiveshell import InteractiveShell

    RecordingCell.cells = []
    monkeypatch.setattr(_notebook, "Cell", RecordingCell)
    ip = InteractiveShell.instance()
    _notebook.load_ipython_extension(ip)
    yield ip
    InteractiveShell.clear_instance()


def test_fix_magic_shows_plan_progress_in_place_and_result(tmp_path: Path, shell, make_venv, wheelhouse) -> None:  # type: ignore[no-untyped-def]
    python = make_venv("alpha==1.0", "beta==1.0")
    req = tmp_path / "requirements.txt"
    req.write_text("beta==2.0\n", encoding="utf-8")
    shell.run_line_magic("envdoctor", f"fix -r {req} --python {python} --no-index --find-links {wheelhouse}")
    plan_cell, progress_cell, result_cell = RecordingCell.cells
    assert "<table" in plan_cell.updates[0] and "beta==2.0" in plan_cell.updates[0] and "$ " in plan_cell.updates[0]
    assert len(progress_cell.updates) >= 3  # redrawn in place: snapshot note, running, done
    assert "&#9203;" in "".join(progress_cell.updates) and "&#10004;" in progress_cell.updates[-1]
    assert "alpha" in result_cell.updates[0] and "1.0 -&gt; 2.0" in result_cell.updates[0]
    assert "beta==2.0" in freeze(python)


def test_check_magic_renders_the_report_as_html(shell, make_venv, write_matrix) -> None:  # type: ignore[no-untyped-def]
    python = make_venv("alpha==1.0")
    ref = write_matrix('[[packages]]\nname = "alpha"\nspecifier = ">=2"\nreason = "needs the new API"\n')
    shell.run_line_magic("envdoctor", f"check --matrix {ref} --python {python} --gpu none")
    (cell,) = RecordingCell.cells
    html = cell.updates[0]
    assert "FAIL" in html and "alpha 1.0 does not satisfy &gt;=2" in html


def test_magic_errors_are_one_line_in_the_cell(shell) -> None:  # type: ignore[no-untyped-def]
    shell.run_line_magic("envdoctor", "fix -r /nonexistent/requirements.txt")
    (cell,) = RecordingCell.cells
    assert "envdoctor: error:" in cell.updates[0] and "no such requirements file" in cell.updates[0]


def test_terminal_ipython_gets_text_not_html_object_reprs(tmp_path: Path, make_venv, wheelhouse, capsys) -> None:  # type: ignore[no-untyped-def]
    # Terminal IPython shows text/plain only: before, every cell printed '<IPython.core.display.HTML object>'.
    from IPython.terminal.interactiveshell import TerminalInteractiveShell

    python = make_venv("alpha==1.0")
    req = tmp_path / "requirements.txt"
    req.write_text("alpha==2.0\n", encoding="utf-8")
    ip = TerminalInteractiveShell.instance()
    try:
        _notebook.load_ipython_extension(ip)
        ip.run_line_magic("envdoctor", f"fix -r {req} --python {python} --no-index --find-links {wheelhouse} --dry-run")
        ip.run_line_magic("envdoctor", "fix -r /nonexistent/requirements.txt")
    finally:
        TerminalInteractiveShell.clear_instance()
    out, err = capsys.readouterr()
    assert "HTML object" not in out + err
    assert "alpha                        1.0 -> 2.0" in out and "-c " in out
    assert "envdoctor: error: -r /nonexistent/requirements.txt: no such requirements file" in err
