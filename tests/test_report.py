import nbformat
import pytest

from aml import report
from aml.utils import Table, atomic_path


def test_missing_tex_is_named_before_any_work(monkeypatch):
    monkeypatch.setattr(report.shutil, "which", lambda tool: None if tool == "xelatex" else "/usr/bin/" + tool)
    with pytest.raises(report.ReportError, match="xelatex.*texlive-xetex texlive-fonts-recommended "
                                                 "texlive-plain-generic pandoc"):
        report.check_tools()


def test_combine_keeps_answers_and_drops_progress_and_parameters(tmp_path):
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell("SMOKE = False")
    params.metadata["tags"] = ["parameters"]
    work = nbformat.v4.new_code_cell("train()")
    work.outputs = [nbformat.v4.new_output("stream", name="stderr", text="100%|####|"),
                    nbformat.v4.new_output("stream", name="stdout", text="val acc 0.6")]
    silent = nbformat.v4.new_code_cell("import numpy")
    nb.cells = [nbformat.v4.new_markdown_cell("# Q2a"), params, work, silent]
    path = tmp_path / "01_x.ipynb"
    nbformat.write(nb, path)
    combined = report.combine([path], total_seconds=90.0, smoke=True)
    sources = [c.source for c in combined.cells]
    assert "Total run time of the notebooks:** 1.5 minutes" in sources[0]
    assert "smoke" in sources[0]
    assert sources[1:] == ["# Q2a", "train()"]
    assert [o["name"] for o in combined.cells[2].outputs] == ["stdout"]


def test_failing_notebook_names_itself_and_the_cell(tmp_path, monkeypatch):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("x = 1"), nbformat.v4.new_code_cell("raise ValueError('boom')")]
    path = tmp_path / "09_bad.ipynb"
    nbformat.write(nb, path)
    monkeypatch.setattr(report, "NOTEBOOK_DIR", tmp_path)
    with pytest.raises(report.ReportError, match=r"09_bad.ipynb failed in cell 1:\nraise ValueError"):
        report.execute(path, tmp_path / "out.ipynb", timeout=120)
    assert not (tmp_path / "out.ipynb").exists()


def test_atomic_path_leaves_old_file_on_failure(tmp_path):
    target = tmp_path / "report.pdf"
    target.write_text("good")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("crash")
    assert target.read_text() == "good" and [p.name for p in tmp_path.iterdir()] == ["report.pdf"]


def test_table_renders_markdown_and_escaped_latex():
    t = Table([{"name": "a_b & c", "acc": 0.61234}], {"name": "run", "acc": "val acc|.3f"})
    assert t._repr_markdown_().splitlines() == ["| run | val acc |", "|---|---|", "| a_b & c | 0.612 |"]
    latex = t._repr_latex_()
    assert r"\begin{tabular}{lr}" in latex and r"a\_b \& c & 0.612 \\" in latex
