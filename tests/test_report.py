import os
import shutil
import types
from pathlib import Path

import nbformat
import pytest

from aml import ledger
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


LEDGER_ROW = {"utc": "2030-01-01T00:00:00Z", "question": "q3b", "config_hash": "abcdef012345", "seed": 0, "n_test": 10,
              "accuracy": 0.5, "commit": "c0ffee", "smoke": False}


@pytest.fixture
def make(tmp_path, monkeypatch, capsys, clean_env):
    """A checkout (``tmp_path``) with three tiny notebooks (the third a summary that reads the others'
    results), a committed record (results, ledger, figure, report), fake PDF tools and export, and
    kernels replaced by a fake that writes a results file, a figure and (02) a ledger row into the
    run folder it is given (``AML_OUTPUT_DIR``), as the real notebooks do.

    Returns ``make(*args)`` -> (exit code, stdout, stderr); ``make.kernels`` lists the notebooks run,
    ``make.env`` what each kernel saw, ``make.reports`` the combined notebooks exported, and
    ``make.state`` the installed package versions and data identity the build sees.
    """
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    write_notebook(notebooks / "01_a.ipynb", md("# Q2a\n\nThis notebook derives it."), code("x = 1"))
    write_notebook(notebooks / "02_b.ipynb", md("# Q3a"), code("y = 2"))
    summary = write_notebook(notebooks / "03_summary.ipynb", md("# Summary"), code("z = 3"))
    nb = nbformat.read(summary, as_version=4)
    nb.metadata["aml"] = {"reads_results": True}
    nbformat.write(nb, summary)
    for folder in ("results", "imgs", "report"):
        (tmp_path / folder).mkdir()
    (tmp_path / "results" / "committed.json").write_text('{"kept": true}\n')
    ledger.append_row(dict(LEDGER_ROW), tmp_path / "results" / "test_ledger.csv")
    (tmp_path / "report" / "report.pdf").write_text("committed pdf")
    aml_source = tmp_path / "fake_aml.py"
    aml_source.write_text("A = 1\n")
    state = {"versions": {"python": "3.12.0", "numpy": "2.0.0"}, "data": "data-v1"}
    monkeypatch.setattr(report, "ROOT", tmp_path)
    monkeypatch.setattr(report, "NOTEBOOK_DIR", notebooks)
    monkeypatch.setattr(report, "shared_inputs", lambda: [aml_source])
    monkeypatch.setattr(report.shutil, "which", lambda tool: "/usr/bin/" + tool)
    monkeypatch.setattr(report, "ensure_data", lambda: None)
    monkeypatch.setattr(report, "data_identity", lambda: state["data"])
    monkeypatch.setattr(report, "package_versions", lambda: dict(state["versions"]))
    monkeypatch.setattr(report, "machine_info", lambda: dict(FAKE_MACHINE))
    kernels, reports, env, checked = [], [], [], []

    def fake_run_cells(nb, name, *, timeout, cwd):
        kernels.append(name)
        run = Path(os.environ["AML_OUTPUT_DIR"])
        env.append({"cwd": cwd, "AML_OUTPUT_DIR": run, "AML_SMOKE": os.environ["AML_SMOKE"],
                    "PYTHONPATH": os.environ["PYTHONPATH"]})
        for i, cell in enumerate(c for c in nb.cells if c.cell_type == "code"):
            cell.execution_count = i + 1
            cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=f"ran {len(kernels)}")]
        (run / "results").mkdir(exist_ok=True)
        (run / "results" / f"{name[:2]}.json").write_text(f'{{"ran": {len(kernels)}}}\n')
        (run / "imgs").mkdir(exist_ok=True)
        (run / "imgs" / f"{name[:2]}.png").write_bytes(b"png %d" % len(kernels))
        if name.startswith("02"):
            ledger.append_row({**LEDGER_ROW, "accuracy": 0.6, "smoke": os.environ["AML_SMOKE"] == "1"})

    def fake_export(combined, out):
        reports.append(combined)
        out.mkdir(parents=True, exist_ok=True)
        for suffix in ("pdf", "html", "ipynb"):
            (out / f"report.{suffix}").write_text(f"report {len(reports)}")
        return out / "report.pdf"

    monkeypatch.setattr(report, "run_cells", fake_run_cells)
    monkeypatch.setattr(report, "export", fake_export)
    monkeypatch.setattr(report, "check_pdf", lambda pdf: checked.append(pdf))

    def make(*args, out=None):
        code_ = report.main([*(["--out", str(out)] if out is not None else []), *args])
        captured = capsys.readouterr()
        return code_, captured.out, captured.err

    make.kernels, make.reports, make.notebooks, make.aml_source = kernels, reports, notebooks, aml_source
    make.env, make.checked, make.state, make.root = env, checked, state, tmp_path
    return make


def committed_record(root):
    """Every file of the committed record (notebooks, results, figures, ledger, report) -> its bytes."""
    return {str(p.relative_to(root)): p.read_bytes()
            for folder in ("notebooks", "results", "imgs", "report") for p in sorted((root / folder).rglob("*"))
            if p.is_file()}


def run_folders(root):
    return sorted((root / "runs").iterdir()) if (root / "runs").is_dir() else []


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
    assert "| 01_x | 1.5 min | 2030-01-01 10:00 | small (smoke) | executed |" in sources[-1]
    assert "| **Total** | **1.5 min** |" in sources[-1] and sources[-1].startswith("# Appendix E: how this report")
    assert "smoke" in sources[0]
    assert sources[1:-1] == ["# Q2a", "train()"]
    assert [o["name"] for o in content(combined)[2].outputs] == ["stdout"]


def test_front_page_is_no_section_and_names_no_generator(tmp_path, monkeypatch):
    monkeypatch.setattr(report, "machine_info", lambda: dict(FAKE_MACHINE))
    key = {"versions": {"python": "3.12.0", "numpy": "2.0.0"}}
    runs = [{"seconds": 60.0, "date": "2030-01-01 10:00", "smoke": False, "machine": "Old CPU, 8 cores; GPU: none",
             "key": key},
            {"seconds": 120.0, "date": "2030-01-02 11:00", "smoke": False, "key": key}]
    paths = [write_notebook(tmp_path / "01_a.ipynb", md("# Q2"), run=runs[0]),
             write_notebook(tmp_path / "02_b.ipynb", md("# Q3"), run=runs[1])]
    combined = report.combine(paths, status={"01_a.ipynb": "reused", "02_b.ipynb": "executed"})
    front = content(combined)[0].source
    assert content(combined)[0].cell_type == "markdown"
    assert not any(line.lstrip().startswith("#") for line in front.splitlines())
    assert combined.metadata["authors"] == [{"name": "AML Assignment 2 team"}]
    assert "generated by make report" not in str(combined.metadata)
    assert "aml_run" not in combined.metadata
    built = content(combined)[-1].source
    assert "| 01_a | 1.0 min | 2030-01-01 10:00 | full | reused |" in built
    assert "| 02_b | 2.0 min | 2030-01-02 11:00 | full | executed |" in built
    assert "| **Total** | **3.0 min** |" in built
    assert "**Machine:** Old CPU, 8 cores; GPU: none" in front
    assert "**Seeds:**" in front and front.endswith("**Software:** Python 3.12.0, numpy 2.0.0")


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


def test_a_promoting_build_needs_pdftotext_before_any_work(make, monkeypatch):
    monkeypatch.setattr(report.shutil, "which", lambda tool: None if tool == "pdftotext" else "/usr/bin/" + tool)
    code_, _, err = make()
    assert code_ == 1 and make.kernels == [] and "needs pdftotext" in err


def test_unknown_only_value_is_named_with_the_valid_ones(make):
    code_, _, err = make("--only", "01", "5")
    assert code_ == 1 and make.kernels == []
    assert "--only takes two-digit notebook numbers, one of 01, 02, 03" in err and "Got '5' instead" in err


def test_only_with_no_execute_is_refused(make):
    code_, _, err = make("--no-execute", "--only", "01")
    assert code_ == 1 and "--no-execute executes nothing" in err


def test_os_error_while_exporting_is_one_message_naming_the_run_folder(make, monkeypatch):
    def full_disk(combined, out):
        raise OSError(28, "No space left on device")

    before = committed_record(make.root)
    monkeypatch.setattr(report, "export", full_disk)
    code_, _, err = make()
    assert code_ == 1 and err.startswith("make report: [Errno 28] No space left on device\n")
    assert f"The run folder {run_folders(make.root)[0]} holds what this build did." in err
    assert "Nothing was promoted" in err and committed_record(make.root) == before


def test_full_build_runs_in_a_run_folder_and_promotes(make):
    committed_ledger = (make.root / "results" / "test_ledger.csv").read_bytes()
    code_, out, err = make()
    assert code_ == 0, err
    [run] = run_folders(make.root)
    assert f"run folder: {run}" in out
    assert {e["AML_OUTPUT_DIR"] for e in make.env} == {run}
    assert {e["cwd"] for e in make.env} == {run / "notebooks"} and {e["AML_SMOKE"] for e in make.env} == {"0"}
    assert all(e["PYTHONPATH"].split(os.pathsep)[0] == str(make.root) for e in make.env)
    assert "AML_OUTPUT_DIR" not in os.environ       # the kernels' environment is not left behind
    # promoted: notebooks with outputs, results and figures, the new ledger row appended, the report
    executed = nbformat.read(make.notebooks / "02_b.ipynb", as_version=4)
    assert executed.cells[1].outputs[0]["text"] == "ran 2"
    assert (make.root / "results" / "02.json").read_text() == '{"ran": 2}\n'
    assert (make.root / "imgs" / "03.png").read_bytes() == b"png 3"
    assert (make.root / "results" / "committed.json").read_text() == '{"kept": true}\n'
    ledger_now = (make.root / "results" / "test_ledger.csv").read_bytes()
    assert ledger_now.startswith(committed_ledger)
    assert [r["accuracy"] for r in ledger.read_ledger(make.root / "results" / "test_ledger.csv")] == [0.5, 0.6]
    assert (make.root / "report" / "report.pdf").read_text() == "report 1"
    assert make.checked == [run / "report" / "report.pdf"]   # checked before it was promoted
    assert out.rstrip().endswith("executed: 01_a.ipynb, 02_b.ipynb, 03_summary.ipynb")


def test_failed_build_leaves_the_committed_record_and_names_the_run_folder(make, monkeypatch):
    make()
    before = committed_record(make.root)
    make.aml_source.write_text("A = 2\n")
    fake = report.run_cells

    def fail_in_02(nb, name, *, timeout, cwd):
        fake(nb, name, timeout=timeout, cwd=cwd)
        if name.startswith("02"):
            raise report.ReportError("Notebook 02_b.ipynb failed in cell 1:\ny = 2")

    monkeypatch.setattr(report, "run_cells", fail_in_02)
    code_, _, err = make()
    assert code_ == 1 and "02_b.ipynb failed in cell 1" in err
    assert f"The run folder {run_folders(make.root)[-1]} holds what this build did." in err
    assert "Nothing was promoted" in err
    assert committed_record(make.root) == before   # 01 ran and wrote results, yet nothing was promoted


def test_failed_pdf_check_promotes_nothing(make, monkeypatch):
    before = committed_record(make.root)

    def bad_pdf(pdf):
        raise report.ReportError(f"{pdf} does not name ['Q4c'].")

    monkeypatch.setattr(report, "check_pdf", bad_pdf)
    code_, _, err = make()
    assert code_ == 1 and "does not name" in err and committed_record(make.root) == before


def test_a_notebook_edited_during_the_build_is_not_overwritten(make, monkeypatch):
    fake = report.run_cells

    def edit_while_running(nb, name, *, timeout, cwd):
        fake(nb, name, timeout=timeout, cwd=cwd)
        if name.startswith("03"):
            write_notebook(make.notebooks / "02_b.ipynb", md("# Q3a, edited meanwhile"), code("y = 2"))

    monkeypatch.setattr(report, "run_cells", edit_while_running)
    code_, _, err = make()
    assert code_ == 1 and "notebooks/02_b.ipynb changed while the build ran" in err
    assert "edited meanwhile" in (make.notebooks / "02_b.ipynb").read_text()
    assert not (make.root / "results" / "01.json").exists()


def test_smoke_builds_never_promote(make, monkeypatch):
    make()
    before = committed_record(make.root)
    code_, out, err = make("--smoke")
    assert code_ == 0, err
    run = run_folders(make.root)[-1]
    assert run.name.endswith("-smoke") and {e["AML_SMOKE"] for e in make.env[3:]} == {"1"}
    assert (run / "report" / "report.pdf").read_text() == "report 2"    # the report stays in the run folder
    copy = nbformat.read(run / "notebooks" / "01_a.ipynb", as_version=4)
    assert copy.metadata["aml_run"]["smoke"] is True
    # AML_SMOKE in the environment is a smoke build too, --only or not (the tester's report)
    for value in ("1", "true", "YES", " on "):
        monkeypatch.setenv("AML_SMOKE", value)
        assert make("--only", "02")[0] == 0
    assert committed_record(make.root) == before


def test_smoke_build_refuses_the_committed_report_folder(make):
    before = committed_record(make.root)
    code_, _, err = make("--smoke", out=make.root / "report")
    assert code_ == 1 and make.kernels == [] and "never writes the committed report/" in err
    assert committed_record(make.root) == before


def test_unknown_aml_smoke_fails_before_any_notebook(make, monkeypatch):
    monkeypatch.setenv("AML_SMOKE", "maybe")
    code_, _, err = make()
    assert code_ == 1 and make.kernels == [] and run_folders(make.root) == []
    assert "AML_SMOKE must be one of 1, true, yes, on" in err and "Got 'maybe' instead" in err


def test_second_run_reuses_unchanged_notebooks(make):
    assert make()[0] == 0
    assert make.kernels == ["01_a.ipynb", "02_b.ipynb", "03_summary.ipynb"]
    run = nbformat.read(make.notebooks / "01_a.ipynb", as_version=4).metadata["aml_run"]
    assert run["smoke"] is False and len(run["outputs_hash"]) == 64 and run["date"]
    assert run["key"]["versions"] == {"python": "3.12.0", "numpy": "2.0.0"} and run["key"]["data"] == "data-v1"
    assert run["files"].keys() == {"results/01.json", "imgs/01.png"}
    code_, out, _ = make()
    assert code_ == 0 and len(make.kernels) == 3
    assert f"[1/3] 01_a.ipynb reused (unchanged since its run of {run['date']}" in out
    assert out.rstrip().endswith("reused: 01_a.ipynb, 02_b.ipynb, 03_summary.ipynb")
    assert content(make.reports[-1])[2].outputs[0]["text"] == "ran 1"   # the outputs of the first run


def test_cleared_outputs_are_executed_again_and_the_log_says_why(make):
    make()
    path = make.notebooks / "02_b.ipynb"
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:                       # JupyterLab's "Clear All Outputs", then save
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    nbformat.write(nb, path)
    code_, out, _ = make()
    assert code_ == 0 and make.kernels[3:] == ["02_b.ipynb", "03_summary.ipynb"]
    assert "02: outputs differ from the build's (cleared or re-run interactively)" in out
    assert "03: reads the results of 02, which run in this build" in out
    assert content(make.reports[-1])[4].outputs[0]["text"] == "ran 4"


def test_a_cell_re_run_interactively_is_executed_again(make):
    make()
    path = make.notebooks / "01_a.ipynb"
    nb = nbformat.read(path, as_version=4)
    nb.cells[1].execution_count = 7             # edited, run, edit undone, saved: same code, same text
    nbformat.write(nb, path)
    code_, out, _ = make()
    assert code_ == 0 and make.kernels[3] == "01_a.ipynb"
    assert "01: outputs differ from the build's" in out


def test_a_results_file_changed_since_the_run_is_executed_again(make):
    make()
    (make.root / "results" / "02.json").write_text('{"ran": 99}\n')
    code_, out, _ = make()
    assert code_ == 0 and make.kernels[3:] == ["02_b.ipynb", "03_summary.ipynb"]
    assert "02: results/02.json differs from the one its run wrote" in out


def test_changed_package_versions_or_data_execute_again(make):
    make()
    make.state["versions"]["numpy"] = "2.1.0"
    code_, out, _ = make()
    assert code_ == 0 and len(make.kernels) == 6
    assert "01: package versions changed (numpy 2.0.0 -> 2.1.0)" in out
    make.state["data"] = "data-v2"
    code_, out, _ = make()
    assert code_ == 0 and len(make.kernels) == 9 and "01: the CIFAR-10 files changed" in out


def test_reused_notebooks_show_the_versions_of_their_run(make):
    make()
    make.state["versions"] = {"python": "3.13.1", "numpy": "3.0.0"}    # installed now, not used by the runs
    assert make("--no-execute")[0] == 0
    front = content(make.reports[-1])[0].source
    assert "**Software:** Python 3.12.0, numpy 2.0.0" in front and "3.0.0" not in front


def test_front_page_groups_differing_recorded_versions():
    runs = {"01_a.ipynb": {"key": {"versions": {"python": "3.12.0", "numpy": "2.0.0"}}},
            "02_b.ipynb": {"key": {"versions": {"python": "3.12.0", "numpy": "2.1.0", "torch": "none"}}},
            "03_c.ipynb": {}}
    assert report.software_versions(runs) == ("01: Python 3.12.0, numpy 2.0.0; 02: Python 3.12.0, numpy 2.1.0; "
                                              "03: not recorded")


def test_edited_markdown_is_reused_and_exported(make):
    make()
    path = make.notebooks / "01_a.ipynb"
    nb = nbformat.read(path, as_version=4)
    nb.cells[0].source = "# Q2a\n\nNew prose."
    nbformat.write(nb, path)
    code_, out, _ = make()
    assert code_ == 0 and len(make.kernels) == 3 and "01_a.ipynb reused" in out
    assert content(make.reports[-1])[1].source == "# Q2a\n\nNew prose."
    assert (make.root / "report" / "report.pdf").read_text() == "report 2"


def test_edited_code_cell_is_executed_again(make):
    make()
    path = make.notebooks / "02_b.ipynb"
    nb = nbformat.read(path, as_version=4)
    nb.cells[1].source = "y = 3"
    nbformat.write(nb, path)
    code_, out, _ = make()
    assert code_ == 0 and make.kernels[3:] == ["02_b.ipynb", "03_summary.ipynb"]
    assert "02: code cells changed" in out
    assert "executed: 02_b.ipynb, 03_summary.ipynb" in out and "reused: 01_a.ipynb" in out


def test_force_executes_everything(make):
    make()
    assert make("--force")[0] == 0
    assert make.kernels[3:] == ["01_a.ipynb", "02_b.ipynb", "03_summary.ipynb"]


def test_changed_aml_source_executes_everything(make):
    make()
    make.aml_source.write_text("A = 2\n")
    code_, out, _ = make()
    assert code_ == 0 and make.kernels[3:] == ["01_a.ipynb", "02_b.ipynb", "03_summary.ipynb"]
    assert "01: the aml sources or requirements.txt changed" in out


def test_smoke_record_is_not_reused_by_a_full_build(make):
    path = make.notebooks / "01_a.ipynb"
    nb = nbformat.read(path, as_version=4)
    nb.metadata["aml_run"] = {"smoke": True, "date": "x", "seconds": 1}
    nbformat.write(nb, path)
    code_, out, _ = make()
    assert make.kernels[:1] == ["01_a.ipynb"] and "01: its last run was a small-budget (smoke) one" in out


def test_only_runs_the_named_notebooks_and_the_summary_then_promotes(make):
    make()
    code_, out, _ = make("--only", "02")
    assert code_ == 0 and make.kernels[3:] == ["02_b.ipynb", "03_summary.ipynb"]
    assert "executed: 02_b.ipynb, 03_summary.ipynb" in out and "kept (partial build): 01_a.ipynb" in out
    assert (make.root / "results" / "02.json").read_text() == '{"ran": 4}\n'
    code_, out, _ = make()                     # the partial build left a consistent record: nothing to do
    assert code_ == 0 and len(make.kernels) == 5 and "reused: 01_a.ipynb, 02_b.ipynb, 03_summary.ipynb" in out


def test_summary_whose_inputs_ran_again_since_is_executed(make):
    make()
    # what an --only 02 of the old build left: 02 ran again and was promoted, the summary 03 was not
    path, run = make.notebooks / "02_b.ipynb", make.root / "runs" / "by-hand"
    run.mkdir(parents=True)
    with report.kernel_environment(run, smoke=False):
        report.execute(path, path, timeout=10, run=run, environment=report.environment_key())
    for rel in ("results/02.json", "imgs/02.png"):
        shutil.copyfile(run / rel, make.root / rel)
    code_, out, _ = make()
    assert code_ == 0 and make.kernels[4:] == ["03_summary.ipynb"] and "02_b.ipynb reused" in out
    assert "03: reads the results of 02, which ran again since its run" in out


def test_only_refuses_to_keep_a_notebook_that_is_not_current(make):
    make()
    nb = nbformat.read(make.notebooks / "01_a.ipynb", as_version=4)
    nb.cells[1].outputs = []
    nbformat.write(nb, make.notebooks / "01_a.ipynb")
    code_, _, err = make("--only", "02")
    assert code_ == 1 and make.kernels[3:] == []
    assert "--only 02 would keep 01_a.ipynb, which is not current (outputs differ" in err


def test_no_execute_exports_committed_outputs_without_promoting(make):
    before = committed_record(make.root)
    code_, out, _ = make("--no-execute")
    assert code_ == 0 and make.kernels == [] and len(make.reports) == 1
    assert "committed outputs: 01_a.ipynb, 02_b.ipynb, 03_summary.ipynb" in out
    assert committed_record(make.root) == before
    assert (run_folders(make.root)[0] / "report" / "report.pdf").is_file()


def test_relative_data_dir_is_made_absolute_from_the_callers_folder(tmp_path):
    env = {"AML_DATA_DIR": "../shared/data"}
    assert report.resolve_data_dir(env, cwd=tmp_path / "repo") == str(tmp_path / "repo" / "../shared/data")
    assert env["AML_DATA_DIR"] == str(tmp_path / "repo" / "../shared/data")
    env = {"AML_DATA_DIR": "/abs/data"}
    assert report.resolve_data_dir(env, cwd=tmp_path) == "/abs/data"
    assert report.resolve_data_dir({}, cwd=tmp_path) is None


def test_kernels_see_the_absolute_data_dir_and_write_into_the_run_folder(tmp_path, monkeypatch, capsys, clean_env):
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    write_notebook(notebooks / "01_env.ipynb", code("import os\nprint(os.environ['AML_DATA_DIR'])"),
                   code("from aml.runs import results_dir, write_json\nwrite_json(results_dir() / 'q.json', {'a': 1})"))
    caller = tmp_path / "repo"
    caller.mkdir()
    monkeypatch.chdir(caller)
    monkeypatch.setenv("AML_DATA_DIR", "../shared/data")
    monkeypatch.setattr(report, "ROOT", tmp_path)
    monkeypatch.setattr(report, "NOTEBOOK_DIR", notebooks)
    monkeypatch.setattr(report.shutil, "which", lambda tool: "/usr/bin/" + tool)
    monkeypatch.setattr(report, "ensure_data", lambda: None)
    monkeypatch.setattr(report, "machine_info", lambda: dict(FAKE_MACHINE))
    monkeypatch.setattr(report, "export", lambda combined, out: out / "report.pdf")
    assert report.main(["--smoke"]) == 0, capsys.readouterr().err
    [run] = sorted((tmp_path / "runs").iterdir())
    executed = nbformat.read(run / "notebooks" / "01_env.ipynb", as_version=4)
    assert executed.cells[0].outputs[0]["text"].strip() == str(caller / "../shared/data")
    assert (run / "results" / "q.json").is_file() and not (tmp_path / "results").exists()
    assert executed.metadata["aml_run"]["files"].keys() == {"results/q.json"}


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
    assert r"\adjustimage{max size={0.85\linewidth}{0.24\paperheight}}" in body and "plot()" not in body
    # a figure floats (text fills the page where it does not fit), and a heading never sits at a page's foot
    assert r"\begin{figure}[htbp]" in body and r"\newcommand{\amlneedspace}" in preamble
    # with \raggedbottom, a negative penalty before a section or a list would end a page early
    assert all(rf"\{name}=0" in preamble for name in ("@secpenalty", "@beginparpenalty", "@endparpenalty"))
    assert body.index(r"\amlneedspace{0.18\textheight}") < body.index(r"\section{Q2: backprop}")


def test_report_latex_keeps_a_label_on_its_table_s_page(tmp_path):
    from nbconvert import LatexExporter
    table = Table([{"value": i} for i in range(5)])
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("show()")
    cell.outputs = [nbformat.v4.new_output("display_data", data={"text/markdown": "**The label**"}),
                    nbformat.v4.new_output("display_data", data={"text/latex": table._repr_latex_(),
                                                                  "text/markdown": table._repr_markdown_()})]
    nb.cells = [cell]
    path = tmp_path / "01_x.ipynb"
    nbformat.write(nb, path)
    tex, _ = report.latex_exporter(LatexExporter).from_notebook_node(report.combine([path]))
    body = tex.split(r"\begin{document}")[1]
    # 6 rows (header and 5) + 4 lines: asked for before the label, so the label moves with its table
    assert body.index(r"\amlneedspace{10\baselineskip}") < body.index("The label") < body.index(r"\begin{tabular}")
    assert body.count(r"\amlneedspace{10\baselineskip}") == 1


def test_summary_notebook_runs_whenever_an_earlier_one_runs(tmp_path):
    paths = []
    for name, meta in (("01_a.ipynb", {}), ("02_summary.ipynb", {"aml": {"reads_results": True}})):
        nb = nbformat.v4.new_notebook()
        nb.metadata.update(meta)
        nbformat.write(nb, tmp_path / name)
        paths.append(tmp_path / name)
    stale = {"01_a.ipynb": "code cells changed", "02_summary.ipynb": None}
    assert [a for a, _ in report.plan(paths, smoke=False, force=False, only=set(), stale=stale).values()] == \
        ["execute", "execute"]
    current = dict.fromkeys(stale)
    assert [a for a, _ in report.plan(paths, smoke=False, force=False, only=set(), stale=current).values()] == \
        ["reuse", "reuse"]
    assert [a for a, _ in report.plan(paths, smoke=False, force=False, only={"01"}, stale=current).values()] == \
        ["execute", "execute"]


def test_outputs_hash_survives_the_file_and_sees_counts_and_outputs():
    cell = code("x = 1")
    cell.execution_count, cell.outputs = 1, [nbformat.v4.new_output("stream", name="stdout", text="a\nb\n")]
    nb = nbformat.v4.new_notebook()
    nb.cells = [md("# Q"), cell]
    first = report.outputs_hash(nb)
    assert report.outputs_hash(nbformat.reads(nbformat.writes(nb), as_version=4)) == first
    nb.cells[0].source = "# Q, new prose"
    assert report.outputs_hash(nb) == first
    nb.cells[1].execution_count = 2
    assert report.outputs_hash(nb) != first


def test_data_fingerprint_sees_a_changed_byte(tmp_path):
    (tmp_path / "data_batch_1").write_bytes(b"x" * 3_000_000)
    first = report.data_fingerprint(tmp_path)
    with open(tmp_path / "data_batch_1", "r+b") as f:
        f.seek(1_500_000)
        f.write(b"y")
    assert report.data_fingerprint(tmp_path) != first
    assert report.data_fingerprint(tmp_path / "absent") == "missing" and report.data_fingerprint(None) == "missing"


def test_smoke_only_runs_the_named_notebooks_and_the_summary(make):
    before = committed_record(make.root)
    code_, out, _ = make("--smoke", "--only", "01")
    assert code_ == 0 and make.kernels == ["01_a.ipynb", "03_summary.ipynb"]
    assert "kept (partial build): 02_b.ipynb" in out and committed_record(make.root) == before
