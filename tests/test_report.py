"""tools/report.py: what executes, what is reused, what promotes, on tiny notebooks (the real five run
under make test-notebooks / make test-report)."""
import json
import os
import subprocess
from pathlib import Path

import nbformat
import pytest

from tools import report

HEADER = b"utc,question,config_hash,seed,n_test,accuracy,commit,smoke\r\n"
ROW = b"2030-01-01T00:00:00Z,q3b,abcdef012345,0,10,0.5,c0ffee,False\r\n"


def notebook(path, *cells, **metadata):
    nb = nbformat.v4.new_notebook(metadata=metadata)
    nb.cells = [nbformat.v4.new_markdown_cell(s[3:]) if s.startswith("md:") else nbformat.v4.new_code_cell(s)
                for s in cells]
    nbformat.write(nb, path)
    return path


def edit(path, index, source):
    nb = nbformat.read(path, as_version=4)
    nb.cells[index].source = source
    nbformat.write(nb, path)


@pytest.fixture
def make(tmp_path, monkeypatch, capsys):
    """A checkout in ``tmp_path`` with three notebooks (03 reads the others' results), a committed record,
    data, and kernels replaced by a fake that writes outputs, a result, a figure and (02) a ledger row into
    ``AML_OUTPUT_DIR``, as the notebooks do. ``make(*args)`` -> (exit code, stdout, stderr)."""
    root = tmp_path / "repo"
    for folder in ("aml", "notebooks", "results", "imgs", "report", "data/cifar-10-batches-py"):
        (root / folder).mkdir(parents=True)
    (root / "aml" / "__init__.py").write_text("A = 1\n")
    (root / "requirements.txt").write_text("numpy\n")
    (root / "data" / "cifar-10-batches-py" / "data_batch_1").write_bytes(b"x" * 10)
    notebook(root / "notebooks" / "01_a.ipynb", "md:# Q2a", "x = 1")
    notebook(root / "notebooks" / "02_b.ipynb", "md:# Q3a", "y = 2")
    notebook(root / "notebooks" / "03_summary.ipynb", "md:# Summary", "z = 3", aml={"reads_results": True})
    (root / "results" / "old.json").write_text('{"kept": true}\n')
    (root / "results" / "test_ledger.csv").write_bytes(HEADER + ROW)
    (root / "report" / "report.pdf").write_bytes(b"committed pdf")
    for name in ("AML_SMOKE", "AML_OUTPUT_DIR", "AML_DATA_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PYTHONPATH", os.environ.get("PYTHONPATH", ""))
    monkeypatch.setattr(report, "ROOT", root)
    monkeypatch.setattr(report.shutil, "which", lambda tool: f"/usr/bin/{tool}")
    monkeypatch.setattr(report, "machine", lambda: "Test CPU, 2 cores, GPU: none")
    kernels, env, reports, fail = [], [], [], set()

    def fake_execute(src, dst, *, smoke):
        kernels.append(src.name[:2])
        env.append({k: os.environ.get(k) for k in ("AML_OUTPUT_DIR", "AML_SMOKE", "AML_DATA_DIR", "PYTHONPATH")})
        if src.name[:2] in fail:
            raise report.BuildError(f"{src.name} failed in cell [1]: ValueError: planted")
        nb = nbformat.read(src, as_version=4)
        for cell in (c for c in nb.cells if c.cell_type == "code"):
            cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=f"run {len(kernels)}")]
        nbformat.write(nb, dst)
        run = Path(os.environ["AML_OUTPUT_DIR"])
        (run / "imgs").mkdir(exist_ok=True)
        (run / "imgs" / f"{src.name[:2]}.png").write_bytes(b"png %d" % len(kernels))
        (run / "results" / f"{src.name[:2]}.json").write_text(json.dumps({"run": len(kernels)}))
        if src.name.startswith("02"):
            with open(run / "results" / "test_ledger.csv", "ab") as f:
                f.write(ROW.replace(b"0.5", b"0.6"))

    def fake_export(nb, pdf, cwd):
        reports.append(nb)
        pdf.parent.mkdir(parents=True, exist_ok=True)
        pdf.write_bytes(b"pdf %d" % len(reports))
        return pdf

    monkeypatch.setattr(report, "execute", fake_execute)
    monkeypatch.setattr(report, "export", fake_export)
    monkeypatch.setattr(report, "check_pdf", lambda pdf: None)

    def make(*args):
        kernels.clear()
        code = report.main(list(args))
        out = capsys.readouterr()
        return code, out.out, out.err

    make.root, make.kernels, make.env, make.reports, make.fail = root, kernels, env, reports, fail
    return make


def record(root):
    return {str(p.relative_to(root)): p.read_bytes() for d in ("notebooks", "results", "imgs", "report")
            for p in sorted((root / d).rglob("*")) if p.is_file()}


def front(make):        # the build line, shown as the report's date under its title
    return make.reports[-1].metadata["date"]


def test_a_full_build_executes_in_a_run_folder_then_promotes_everything(make):
    code, out, err = make()
    root = make.root
    assert (code, err, make.kernels) == (0, "", ["01", "02", "03"])
    run = Path(make.env[0]["AML_OUTPUT_DIR"])
    assert run.parent == root / "runs" and run.name[:16].endswith("Z") and (run / "results" / "old.json").is_file()
    assert make.env[0]["AML_SMOKE"] == "0" and make.env[0]["PYTHONPATH"].startswith(str(root))
    assert json.loads((root / "results" / "02.json").read_text()) == {"run": 2}
    assert (root / "imgs" / "03.png").read_bytes() == b"png 3"
    assert (root / "report" / "report.pdf").read_bytes() == b"pdf 1"
    assert (root / "results" / "test_ledger.csv").read_bytes() == HEADER + ROW + ROW.replace(b"0.5", b"0.6")
    run_record = nbformat.read(root / "notebooks" / "01_a.ipynb", as_version=4).metadata["aml_run"]
    assert run_record["smoke"] is False and run_record["machine"] == "Test CPU, 2 cores, GPU: none"
    assert "1 new ledger row" in out and "executed: 01_a.ipynb, 02_b.ipynb, 03_summary.ipynb" in out
    assert "; computed on Test CPU, 2 cores, GPU: none." in front(make) and "executed" not in front(make)


def test_an_unchanged_build_reuses_every_notebook_and_prose_edits_only_re_export(make):
    make()
    before = record(make.root)
    assert make()[0] == 0 and make.kernels == []
    assert "; computed on Test CPU, 2 cores, GPU: none." in front(make) and "reused" not in front(make)
    edit(make.root / "notebooks" / "02_b.ipynb", 0, "# Q3a, reworded")
    assert make()[0] == 0 and make.kernels == []
    assert "# Q3a, reworded" in [c.source for c in make.reports[-1].cells]
    assert record(make.root)["results/test_ledger.csv"] == before["results/test_ledger.csv"]


def test_a_code_edit_re_runs_that_notebook_and_the_summary_after_it(make):
    make()
    edit(make.root / "notebooks" / "01_a.ipynb", 1, "x = 10")
    assert make()[0] == 0 and make.kernels == ["01", "03"]
    edit(make.root / "notebooks" / "03_summary.ipynb", 1, "z = 30")
    assert make()[0] == 0 and make.kernels == ["03"]


@pytest.mark.parametrize("change", ["aml/__init__.py", "requirements.txt", "data/cifar-10-batches-py/data_batch_1",
                                    "--force"])
def test_a_changed_input_or_force_re_runs_every_notebook(make, change):
    make()
    if change != "--force":
        with open(make.root / change, "a") as f:
            f.write("\n")
    assert make(*[change] if change == "--force" else [])[0] == 0 and make.kernels == ["01", "02", "03"]


def test_outputs_changed_by_hand_are_not_reused(make):
    make()
    nb = nbformat.read(make.root / "notebooks" / "02_b.ipynb", as_version=4)
    nb.cells[1].outputs = []
    nbformat.write(nb, make.root / "notebooks" / "02_b.ipynb")
    assert make()[0] == 0 and make.kernels == ["02", "03"]


def test_a_failed_notebook_promotes_nothing_and_names_the_run_folder(make):
    before = record(make.root)
    make.fail.add("02")
    code, out, err = make()
    run = make.env[0]["AML_OUTPUT_DIR"]
    assert code == 1 and err == f"make report: 02_b.ipynb failed in cell [1]: ValueError: planted (run folder: {run})\n"
    assert record(make.root) == before


def test_a_failed_pdf_check_promotes_nothing(make, monkeypatch):
    before = record(make.root)

    def no_text(pdf):
        raise report.BuildError(f"{pdf} holds no text")

    monkeypatch.setattr(report, "check_pdf", no_text)
    code, _, err = make()
    assert code == 1 and "holds no text" in err and record(make.root) == before


@pytest.mark.parametrize("where", ["notebook", "ledger"])
def test_a_committed_file_changed_during_the_build_is_not_overwritten(make, monkeypatch, where):
    real = report.run_notebooks

    def meddle(*args, **kwargs):
        copies = real(*args, **kwargs)
        target = make.root / ("notebooks/01_a.ipynb" if where == "notebook" else "results/test_ledger.csv")
        target.write_bytes(target.read_bytes() + b"\n")
        return copies

    monkeypatch.setattr(report, "run_notebooks", meddle)
    before = record(make.root)
    code, _, err = make()
    assert code == 1 and ("changed while the build ran" if where == "notebook" else "append-only") in err
    assert {k: v for k, v in record(make.root).items() if k not in ("notebooks/01_a.ipynb", "results/test_ledger.csv")
            } == {k: v for k, v in before.items() if k not in ("notebooks/01_a.ipynb", "results/test_ledger.csv")}


def test_a_smoke_build_runs_everything_small_and_never_promotes(make, tmp_path):
    make()
    before = record(make.root)
    code, _, _ = make("--smoke", "--out", str(tmp_path / "ci"), "--check")
    assert code == 0 and make.kernels == ["01", "02", "03"] and make.env[-1]["AML_SMOKE"] == "1"
    assert Path(make.env[-1]["AML_OUTPUT_DIR"]).name.split("-")[1] == "smoke"
    assert (tmp_path / "ci" / "report.pdf").is_file() and record(make.root) == before
    assert "Small-budget (smoke) build" in make.reports[-1].cells[0].source      # the first line of a smoke build


@pytest.mark.parametrize("args, env, message", [
    (["--smoke", "--out", "{root}/report"], {}, "a smoke build never writes the committed report/"),
    ([], {"AML_SMOKE": "maybe"}, "AML_SMOKE must be one of"),
])
def test_refusals_come_before_any_run_folder(make, monkeypatch, args, env, message):
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    code, _, err = make(*[a.format(root=make.root) for a in args])
    assert code == 1 and err.startswith("make report: ") and message in err and err.count("\n") == 1
    assert not (make.root / "runs").exists()


def test_missing_pdf_tools_are_named_with_their_packages(make, monkeypatch):
    monkeypatch.setattr(report.shutil, "which", lambda tool: None if tool == "xelatex" else f"/usr/bin/{tool}")
    code, _, err = make()
    assert code == 1 and "xelatex: sudo apt-get install texlive-xetex" in err and not (make.root / "runs").exists()


def test_a_relative_data_dir_is_read_against_the_checkout_not_the_working_folder(make, monkeypatch, tmp_path):
    monkeypatch.setenv("AML_DATA_DIR", "data")
    monkeypatch.chdir(tmp_path)
    assert make()[0] == 0 and make.env[0]["AML_DATA_DIR"] == str(make.root / "data")
    (make.root / "data" / "cifar-10-batches-py" / "data_batch_2").write_bytes(b"y")
    assert make()[0] == 0 and make.kernels == ["01", "02", "03"]      # the data's identity is in the key


def test_the_report_leaves_out_parameters_progress_and_silent_code(tmp_path):
    path = notebook(tmp_path / "01_x.ipynb", "md:# Q2a", "SMOKE = False", "train()", "import numpy")
    nb = nbformat.read(path, as_version=4)
    nb.cells[1].metadata["tags"] = ["parameters"]
    nb.cells[2].outputs = [nbformat.v4.new_output("stream", name="stderr", text="100%|###|"),
                           nbformat.v4.new_output("stream", name="stdout", text="val acc 0.6")]
    nbformat.write(nb, path)
    combined = report.combine([path], smoke=False)
    assert [c.source for c in combined.cells] == ["# Q2a", "train()"]
    assert [o.text for o in combined.cells[1].outputs] == ["val acc 0.6"]


def test_the_answer_opens_its_section_in_the_report(tmp_path):
    path = notebook(tmp_path / "01_x.ipynb", "md:# Q3", "md:## part a", "md:## part b", "md:evidence", "md:**answer**")
    nb = nbformat.read(path, as_version=4)
    nb.cells[4].metadata["tags"] = ["answer"]
    nbformat.write(nb, path)
    order = [c.source for c in report.combine([path], smoke=False).cells]
    assert order == ["# Q3", "**answer**", "## part a", "## part b", "evidence"]      # after the first cell
    nb.cells[2].metadata["tags"] = ["answer-here"]
    nbformat.write(nb, path)
    order = [c.source for c in report.combine([path], smoke=False).cells]
    assert order == ["# Q3", "## part a", "## part b", "**answer**", "evidence"]      # after its anchor


def test_papermill_runs_the_notebook_in_its_folder_and_a_failure_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("AML_SMOKE", "1")
    src = notebook(tmp_path / "01_x.ipynb", "import os\nprint(os.getcwd(), os.environ['AML_SMOKE'])",
                   "raise ValueError('planted')", kernelspec={"name": "python3", "display_name": "Python 3"})
    (tmp_path / "run").mkdir()
    with pytest.raises(report.BuildError) as info:
        report.execute(src, tmp_path / "run" / "01_x.ipynb", smoke=True)
    assert str(info.value).startswith("01_x.ipynb failed in cell [2]: ValueError: planted")
    ran = nbformat.read(tmp_path / "run" / "01_x.ipynb", as_version=4)
    assert [c for c in ran.cells if c.cell_type == "code"][0].outputs[0].text == f"{tmp_path / 'run'} 1\n"


def test_make_test_notebooks_hands_nbval_an_absolute_data_dir():
    repo = Path(report.__file__).resolve().parents[1]
    done = subprocess.run(["make", "-n", "-C", str(repo), "test-notebooks", "AML_DATA_DIR=data"], capture_output=True,
                          text=True, timeout=60)
    assert f'AML_DATA_DIR="{repo}/data"' in done.stdout


PNG = ("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==")


def test_figures_and_tables_get_the_captions_of_their_cell_in_output_order(tmp_path):
    from nbconvert import LatexExporter

    table = ("\\begin{center}\\small\n\\begin{tabular}{l}\n\\toprule\na \\\\\n\\bottomrule\n"
             "\\end{tabular}\n\\end{center}")
    path = notebook(tmp_path / "01_x.ipynb", "md:# Q", "fig()", "more()")
    nb = nbformat.read(path, as_version=4)
    nb.cells[1].outputs = [nbformat.v4.new_output("display_data", data={"image/png": PNG, "text/plain": "F"}),
                           nbformat.v4.new_output("execute_result", data={"text/latex": table, "text/plain": "T"},
                                                  execution_count=1),
                           nbformat.v4.new_output("display_data", data={"image/png": PNG, "text/plain": "F"})]
    nb.cells[1].metadata["captions"] = ["the *first* figure", "the table", "the second figure"]
    nb.cells[2].outputs = [nbformat.v4.new_output("display_data", data={"image/png": PNG, "text/plain": "F"})]
    latex, _ = LatexExporter(template_file=str(report.TEMPLATE), exclude_input=True).from_notebook_node(nb)
    first, tab, second = (latex.index(s) for s in ("\\caption{the \\emph{first} figure}",
                                                     "\\captionof{table}{the table}\\begin{adjustbox}",
                                                     "\\caption{the second figure}"))
    assert first < tab < second
    assert latex.count("\\caption{") == 2 and latex.count("\\begin{figure}") == 3   # the last cell has none
