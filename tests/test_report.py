import types

import nbformat
import pytest

from aml.runs import atomic_path
from aml.tables import Table
from tools import report

FAKE_MACHINE = {"date": "2030-01-02 03:04", "cpu": "Test CPU", "cpu_count": 2, "gpu": None}



def content(report):
    """The report's cells without the raw LaTeX set-up cell."""
    return [c for c in report.cells if c.cell_type != "raw"]

def write_notebook(path, *cells, run=None):
    nb = nbformat.v4.new_notebook()
    nb.cells = list(cells)
    if run is not None:
        nb.metadata["aml_run"] = run
    nbformat.write(nb, path)
    return path


def md(source):
    return nbformat.v4.new_markdown_cell(source)


def code(source):
    return nbformat.v4.new_code_cell(source)


@pytest.fixture
def clean_env(monkeypatch):
    """The variables main() sets are restored (removed) after the test, whatever the caller's shell had."""
    for name in ("AML_SMOKE", "AML_OUTPUT_DIR", "AML_DATA_DIR"):
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)


@pytest.fixture
def make(tmp_path, monkeypatch, capsys, clean_env):
    """A repository with two tiny notebooks, fake PDF tools and export, and kernels replaced by a counter.

    Returns ``make(*args)`` -> (exit code, stdout, stderr); ``make.kernels`` lists the notebooks run
    and ``make.reports`` the combined notebooks exported.
    """
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    write_notebook(notebooks / "01_a.ipynb", md("# Q2a\n\nThis notebook derives it."), code("x = 1"))
    write_notebook(notebooks / "02_b.ipynb", md("# Q3a"), code("y = 2"))
    aml_source = tmp_path / "fake_aml.py"
    aml_source.write_text("A = 1\n")
    monkeypatch.setattr(report, "NOTEBOOK_DIR", notebooks)
    monkeypatch.setattr(report, "shared_inputs", lambda: [aml_source])
    monkeypatch.setattr(report.shutil, "which", lambda tool: "/usr/bin/" + tool)
    monkeypatch.setattr(report, "ensure_data", lambda: None)
    monkeypatch.setattr(report, "machine_info", lambda: dict(FAKE_MACHINE))
    kernels, reports = [], []

    def fake_run_cells(nb, name, *, timeout):
        kernels.append(name)
        for cell in nb.cells:
            if cell.cell_type == "code":
                cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=f"ran {len(kernels)}")]

    def fake_export(combined, out):
        reports.append(combined)
        return out / "report.pdf"

    monkeypatch.setattr(report, "run_cells", fake_run_cells)
    monkeypatch.setattr(report, "export", fake_export)

    def make(*args, out=tmp_path / "out"):
        code_ = report.main(["--out", str(out), *args])
        captured = capsys.readouterr()
        return code_, captured.out, captured.err

    make.kernels, make.reports, make.notebooks, make.aml_source = kernels, reports, notebooks, aml_source
    return make


def test_missing_tex_is_named_before_any_work(monkeypatch):
    monkeypatch.setattr(report.shutil, "which", lambda tool: None if tool == "xelatex" else "/usr/bin/" + tool)
    with pytest.raises(report.ReportError, match="xelatex.*texlive-xetex texlive-fonts-recommended "
                                                 "texlive-plain-generic pandoc"):
        report.check_tools()


def test_combine_keeps_answers_and_drops_progress_and_parameters(tmp_path, monkeypatch):
    monkeypatch.setattr(report, "machine_info", lambda: dict(FAKE_MACHINE))
    params = code("SMOKE = False")
    params.metadata["tags"] = ["parameters"]
    work = code("train()")
    work.outputs = [nbformat.v4.new_output("stream", name="stderr", text="100%|####|"),
                    nbformat.v4.new_output("stream", name="stdout", text="val acc 0.6")]
    path = write_notebook(tmp_path / "01_x.ipynb", md("# Q2a"), params, work, code("import numpy"),
                          run={"seconds": 90.0, "date": "2030-01-01 10:00", "smoke": True})
    combined = report.combine([path], smoke=True, status={"01_x.ipynb": "executed"})
    sources = [c.source for c in content(combined)]
    assert "| 01_x | 1.5 min | 2030-01-01 10:00 | small (smoke) | executed |" in sources[0]
    assert "| **Total** | **1.5 min** |" in sources[0]
    assert "smoke" in sources[0]
    assert sources[1:] == ["# Q2a", "train()"]
    assert [o["name"] for o in content(combined)[2].outputs] == ["stdout"]


def test_front_page_is_no_section_and_names_no_generator(tmp_path, monkeypatch):
    monkeypatch.setattr(report, "machine_info", lambda: dict(FAKE_MACHINE))
    runs = [{"seconds": 60.0, "date": "2030-01-01 10:00", "smoke": False, "machine": "Old CPU, 8 cores; GPU: none"},
            {"seconds": 120.0, "date": "2030-01-02 11:00", "smoke": False}]
    paths = [write_notebook(tmp_path / "01_a.ipynb", md("# Q2"), run=runs[0]),
             write_notebook(tmp_path / "02_b.ipynb", md("# Q3"), run=runs[1])]
    combined = report.combine(paths, status={"01_a.ipynb": "reused", "02_b.ipynb": "executed"})
    front = content(combined)[0].source
    assert content(combined)[0].cell_type == "markdown"
    assert not any(line.lstrip().startswith("#") for line in front.splitlines())
    assert combined.metadata["authors"] == [{"name": "AML Assignment 2 team"}]
    assert "generated by make report" not in str(combined.metadata)
    assert "aml_run" not in combined.metadata
    assert "| 01_a | 1.0 min | 2030-01-01 10:00 | full | reused |" in front
    assert "| 02_b | 2.0 min | 2030-01-02 11:00 | full | executed |" in front
    assert "| **Total** | **3.0 min** |" in front
    assert "**Machine:** Old CPU, 8 cores; GPU: none" in front
    assert "**Seeds:**" in front and "**Software:** Python" in front


def test_combine_calls_a_notebook_a_section(tmp_path, monkeypatch):
    monkeypatch.setattr(report, "machine_info", lambda: dict(FAKE_MACHINE))
    prose = md("# Q3b\n\nThis notebook tunes the net; this notebook's search ran once. Notebooks 01-04.")
    path = write_notebook(tmp_path / "03_x.ipynb", prose, code("# this notebook is fast"))
    combined = report.combine([path])
    assert content(combined)[1].source == ("# Q3b\n\nThis section tunes the net; this section's search ran once. "
                                        "Notebooks 01-04.")
    assert not any("this notebook" in c.source.lower() for c in combined.cells if c.cell_type == "markdown")


def test_check_pdf_rejects_this_notebook(tmp_path, monkeypatch):
    pdf = tmp_path / "report.pdf"
    pdf.write_bytes(b"%PDF")
    text = " ".join(report.QUESTIONS) + " as this\nnotebook shows"
    monkeypatch.setattr(report.shutil, "which", lambda tool: "/usr/bin/" + tool)
    monkeypatch.setattr(report.subprocess, "run", lambda *a, **k: types.SimpleNamespace(stdout=text))
    with pytest.raises(report.ReportError, match="this section"):
        report.check_pdf(pdf)


def test_failing_notebook_names_itself_and_the_cell_without_colour(tmp_path, monkeypatch):
    path = write_notebook(tmp_path / "09_bad.ipynb", code("x = 1"), code("raise ValueError('boom')"))
    monkeypatch.setattr(report, "NOTEBOOK_DIR", tmp_path)
    with pytest.raises(report.ReportError, match=r"09_bad.ipynb failed in cell 1:\nraise ValueError") as info:
        report.execute(path, tmp_path / "out.ipynb", timeout=120)
    assert "\x1b" not in str(info.value) and "boom" in str(info.value)
    assert not (tmp_path / "out.ipynb").exists()


def test_dead_kernel_names_the_notebook_and_the_cell(tmp_path, monkeypatch):
    path = write_notebook(tmp_path / "09_dies.ipynb", md("# Q"), code("x = 1"), code("import os\nos._exit(1)"))
    monkeypatch.setattr(report, "NOTEBOOK_DIR", tmp_path)
    with pytest.raises(report.ReportError, match=r"09_dies.ipynb: its kernel died .* in cell 2:\nimport os"):
        report.execute(path, tmp_path / "out.ipynb", timeout=60)


def test_cell_timeout_names_the_notebook_and_the_cell(tmp_path, monkeypatch):
    path = write_notebook(tmp_path / "09_slow.ipynb", code("import time\ntime.sleep(60)"))
    monkeypatch.setattr(report, "NOTEBOOK_DIR", tmp_path)
    with pytest.raises(report.ReportError, match=r"09_slow.ipynb timed out \(after 2 s\) in cell 0:\nimport time"):
        report.execute(path, tmp_path / "out.ipynb", timeout=2)


def test_report_error_strips_colour_codes():
    assert str(report.ReportError("\x1b[0;31mValueError\x1b[0m: boom")) == "ValueError: boom"


def test_out_that_is_a_file_fails_before_any_notebook(make, tmp_path):
    (tmp_path / "taken").write_text("not a folder")
    code_, _, err = make(out=tmp_path / "taken")
    assert code_ == 1 and make.kernels == []
    assert err.startswith("make report: --out must be a folder. Got ") and "which is a file" in err


def test_out_under_a_file_fails_before_any_notebook(make, tmp_path):
    (tmp_path / "taken").write_text("not a folder")
    code_, _, err = make("--smoke", out=tmp_path / "taken" / "report")
    assert code_ == 1 and make.kernels == []
    assert "--out must be a folder" in err and f"under the file {tmp_path / 'taken'}" in err


def test_unwritable_out_fails_before_any_notebook(make, tmp_path, monkeypatch):
    def refuse(dir):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(report, "tempfile", types.SimpleNamespace(TemporaryFile=refuse))
    code_, _, err = make(out=tmp_path / "readonly")
    assert code_ == 1 and make.kernels == []
    assert "--out must be a folder this user can write" in err and "(Permission denied)" in err


def test_missing_pdftotext_fails_before_any_work(make, monkeypatch):
    monkeypatch.setattr(report.shutil, "which", lambda tool: None if tool == "pdftotext" else "/usr/bin/" + tool)
    code_, _, err = make("--smoke", "--check")
    assert code_ == 1 and make.kernels == []
    assert "make report: --check needs pdftotext" in err and "poppler-utils" in err


def test_unknown_only_value_is_named_with_the_valid_ones(make):
    code_, _, err = make("--only", "01", "5")
    assert code_ == 1 and make.kernels == []
    assert "--only takes two-digit notebook numbers, one of 01, 02" in err and "Got '5' instead" in err


def test_only_with_no_execute_is_refused(make):
    code_, _, err = make("--no-execute", "--only", "01")
    assert code_ == 1 and "--no-execute executes nothing" in err


def test_os_error_while_writing_is_one_line(make, monkeypatch):
    def full_disk(combined, out):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(report, "export", full_disk)
    code_, _, err = make()
    assert code_ == 1 and err == "make report: [Errno 28] No space left on device\n"


def test_second_run_reuses_unchanged_notebooks(make):
    assert make()[0] == 0
    assert make.kernels == ["01_a.ipynb", "02_b.ipynb"]
    run = nbformat.read(make.notebooks / "01_a.ipynb", as_version=4).metadata["aml_run"]
    assert run["smoke"] is False and len(run["inputs_hash"]) == 64 and run["date"]
    code_, out, _ = make()
    assert code_ == 0 and make.kernels == ["01_a.ipynb", "02_b.ipynb"]
    assert f"[1/2] 01_a.ipynb reused (code and aml unchanged since its run of {run['date']})" in out
    assert out.rstrip().endswith("reused: 01_a.ipynb, 02_b.ipynb")
    assert content(make.reports[-1])[2].outputs[0]["text"] == "ran 1"   # the outputs of the first run


def test_edited_markdown_is_reused_and_exported(make):
    make()
    path = make.notebooks / "01_a.ipynb"
    nb = nbformat.read(path, as_version=4)
    nb.cells[0].source = "# Q2a\n\nNew prose."
    nbformat.write(nb, path)
    code_, out, _ = make()
    assert code_ == 0 and len(make.kernels) == 2 and "01_a.ipynb reused" in out
    assert content(make.reports[-1])[1].source == "# Q2a\n\nNew prose."


def test_edited_code_cell_is_executed_again(make):
    make()
    path = make.notebooks / "02_b.ipynb"
    nb = nbformat.read(path, as_version=4)
    nb.cells[1].source = "y = 3"
    nbformat.write(nb, path)
    code_, out, _ = make()
    assert code_ == 0 and make.kernels[2:] == ["02_b.ipynb"]
    assert "executed: 02_b.ipynb" in out and "reused: 01_a.ipynb" in out


def test_force_executes_everything(make):
    make()
    assert make("--force")[0] == 0
    assert make.kernels[2:] == ["01_a.ipynb", "02_b.ipynb"]


def test_changed_aml_source_executes_everything(make):
    make()
    make.aml_source.write_text("A = 2\n")
    assert make()[0] == 0
    assert make.kernels[2:] == ["01_a.ipynb", "02_b.ipynb"]


def test_smoke_run_always_executes_copies_and_is_never_reused(make, tmp_path):
    make()
    before = (make.notebooks / "01_a.ipynb").read_text()
    assert make("--smoke")[0] == 0 and make("--smoke")[0] == 0
    assert make.kernels[2:] == ["01_a.ipynb", "02_b.ipynb"] * 2
    assert (make.notebooks / "01_a.ipynb").read_text() == before
    copy = nbformat.read(tmp_path / "out" / "notebooks" / "01_a.ipynb", as_version=4)
    assert copy.metadata["aml_run"]["smoke"] is True


def test_full_run_after_smoke_source_is_reused_but_smoke_record_is_not(make):
    path = make.notebooks / "01_a.ipynb"
    nb = nbformat.read(path, as_version=4)
    nb.metadata["aml_run"] = {"smoke": True, "inputs_hash": report.inputs_hash(nb), "date": "x", "seconds": 1}
    nbformat.write(nb, path)
    make()
    assert make.kernels == ["01_a.ipynb", "02_b.ipynb"]


def test_only_forces_the_named_notebooks_and_keeps_the_others(make):
    make()
    code_, out, _ = make("--only", "02")
    assert code_ == 0 and make.kernels[2:] == ["02_b.ipynb"]
    assert "executed: 02_b.ipynb" in out and "kept (partial build): 01_a.ipynb" in out


def test_no_execute_exports_committed_outputs(make):
    code_, out, _ = make("--no-execute")
    assert code_ == 0 and make.kernels == [] and len(make.reports) == 1
    assert "committed outputs: 01_a.ipynb, 02_b.ipynb" in out


def test_relative_data_dir_is_made_absolute_from_the_callers_folder(tmp_path):
    env = {"AML_DATA_DIR": "../shared/data"}
    assert report.resolve_data_dir(env, cwd=tmp_path / "repo") == str(tmp_path / "repo" / "../shared/data")
    assert env["AML_DATA_DIR"] == str(tmp_path / "repo" / "../shared/data")
    env = {"AML_DATA_DIR": "/abs/data"}
    assert report.resolve_data_dir(env, cwd=tmp_path) == "/abs/data"
    assert report.resolve_data_dir({}, cwd=tmp_path) is None


def test_kernels_see_the_absolute_data_dir(tmp_path, monkeypatch, capsys, clean_env):
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    write_notebook(notebooks / "01_env.ipynb", code("import os\nprint(os.environ['AML_DATA_DIR'])"))
    caller = tmp_path / "repo"
    caller.mkdir()
    monkeypatch.chdir(caller)
    monkeypatch.setenv("AML_DATA_DIR", "../shared/data")
    monkeypatch.setattr(report, "NOTEBOOK_DIR", notebooks)
    monkeypatch.setattr(report.shutil, "which", lambda tool: "/usr/bin/" + tool)
    monkeypatch.setattr(report, "ensure_data", lambda: None)
    monkeypatch.setattr(report, "machine_info", lambda: dict(FAKE_MACHINE))
    monkeypatch.setattr(report, "export", lambda combined, out: out / "report.pdf")
    assert report.main(["--smoke", "--out", str(tmp_path / "out")]) == 0, capsys.readouterr().err
    executed = nbformat.read(tmp_path / "out" / "notebooks" / "01_env.ipynb", as_version=4)
    assert executed.cells[0].outputs[0]["text"].strip() == str(caller / "../shared/data")


def test_help_documents_force(capsys):
    with pytest.raises(SystemExit):
        report.main(["--help"])
    assert "--force" in capsys.readouterr().out


def test_atomic_path_leaves_old_file_on_failure(tmp_path):
    target = tmp_path / "report.pdf"
    target.write_text("good")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("crash")
    assert target.read_text() == "good" and [p.name for p in tmp_path.iterdir()] == ["report.pdf"]


def test_table_renders_markdown_and_escaped_latex():
    t = Table([{"name": "a_b & c", "acc": 0.61234}], {"name": "run", "acc": "val acc|.3f"})
    assert t._repr_markdown_().splitlines() == ["| run | val acc |", "|---|---|", "| a_b & c | 0.612 |"]
    latex = t._repr_latex_()
    assert r"\begin{tabular}{lr}" in latex and r"a\_b \& c & 0.612 \\" in latex


def test_report_latex_has_unnumbered_sections_floating_capped_figures_and_kept_headings(tmp_path):
    import base64

    from nbconvert import LatexExporter
    nb = nbformat.v4.new_notebook()
    png = base64.b64encode(bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000"
                                         "1f15c4890000000d49444154789c6360000002000001e221bc330000000049454e44ae426082"))
    cell = nbformat.v4.new_code_cell("plot()")
    cell.outputs = [nbformat.v4.new_output("display_data", data={"image/png": png.decode()})]
    nb.cells = [nbformat.v4.new_markdown_cell("# Q2: backprop\n\n## Q2a"), cell]
    path = tmp_path / "01_x.ipynb"
    nbformat.write(nb, path)
    tex, _ = report.latex_exporter(LatexExporter).from_notebook_node(report.combine([path]))
    preamble, body = tex.split(r"\begin{document}")
    assert r"\setcounter{secnumdepth}{0}" in preamble and r"\raggedbottom" in preamble
    assert r"\section{Q2: backprop}" in body and r"\subsection{Q2a}" in body
    assert r"\adjustimage{max size={0.9\linewidth}{0.45\paperheight}}" in body and "plot()" not in body
    # a figure floats (text fills the page where it does not fit), and a heading never sits at a page's foot
    assert r"\begin{figure}[htbp]" in body and r"\newcommand{\amlneedspace}" in preamble
    # with \raggedbottom, a negative penalty before a section or a list would end a page early
    assert all(rf"\{name}=0" in preamble for name in ("@secpenalty", "@beginparpenalty", "@endparpenalty"))
    assert body.index(r"\amlneedspace{0.18\textheight}") < body.index(r"\section{Q2: backprop}")


def test_report_latex_keeps_a_label_on_its_table_s_page(tmp_path):
    from nbconvert import LatexExporter
    table = Table([{"a": i} for i in range(5)], {"a": "value"})
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("show()")
    cell.outputs = [nbformat.v4.new_output("display_data", data={"text/markdown": "**The label**"}),
                    nbformat.v4.new_output("display_data", data={"text/latex": table._repr_latex_(),
                                                                  "text/markdown": table.markdown})]
    nb.cells = [cell]
    path = tmp_path / "01_x.ipynb"
    nbformat.write(nb, path)
    tex, _ = report.latex_exporter(LatexExporter).from_notebook_node(report.combine([path]))
    body = tex.split(r"\begin{document}")[1]
    # 6 rows (header and 5) + 4 lines: asked for before the label, so the label moves with its table
    assert body.index(r"\amlneedspace{10\baselineskip}") < body.index("The label") < body.index(r"\begin{tabular}")
    assert body.count(r"\amlneedspace{10\baselineskip}") == 1


def test_summary_notebook_runs_whenever_an_earlier_one_runs(tmp_path, monkeypatch):
    paths = []
    for name, meta in (("01_a.ipynb", {}), ("02_summary.ipynb", {"aml": {"reads_results": True}})):
        nb = nbformat.v4.new_notebook()
        nb.metadata.update(meta)
        nbformat.write(nb, tmp_path / name)
        paths.append(tmp_path / name)
    monkeypatch.setattr(report, "is_current", lambda path: path.name != "01_a.ipynb")
    assert list(report.plan(paths, smoke=False, force=False, only=set()).values()) == ["execute", "execute"]
    monkeypatch.setattr(report, "is_current", lambda path: True)
    assert list(report.plan(paths, smoke=False, force=False, only=set()).values()) == ["reuse", "reuse"]
