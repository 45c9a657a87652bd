"""Build the report: execute notebooks 01-04, then export them as one PDF (and HTML) with the code hidden.

    python -m tools.report --out report            # the main job (make report): full budget, in place
    python -m tools.report --out report --force    # the same, re-running every notebook (make report FORCE=1)
    python -m tools.report --smoke --out DIR --check   # CI (make test): small budget, copies, PDF checked

Full mode executes ``notebooks/NN_*.ipynb`` in place (their outputs are the report's source) and
writes ``report.pdf``, ``report.html`` and ``report.ipynb`` into ``--out``. Like Jupyter Book with
jupyter-cache, it executes only what changed: each run records in the notebook's metadata
(``aml_run``: seconds, date, smoke, machine, inputs_hash) a hash of its code cells (sources, in
order), of the ``aml`` package's sources and of ``requirements.txt``. A notebook whose last run was
a full one with the hash of its current inputs is reused as it is, so editing prose (markdown) only
re-exports. ``--force`` re-runs every notebook; ``--only NN ...`` re-runs the named ones and keeps
the others' outputs as they are. The end of the log and the report's front page say which
notebooks were executed and which were reused, with the date of their run.

Smoke mode always executes copies, with ``AML_SMOKE=1``, and writes figures and results under
``--out`` too, so the committed notebooks, figures and results stay untouched. ``--no-execute``
exports the notebooks' committed outputs as they are.

Kernels run in ``notebooks/``, so a relative ``AML_DATA_DIR`` is made absolute first (relative to
the folder the command was started in: the repository, for ``make report``). Checks that need no
work (PDF tools, ``--out``, ``--only``) run before any notebook does; every failure is reported as
one ``make report: ...`` message on stderr, with exit code 1.
"""
from __future__ import annotations

import argparse
import copy
import hashlib
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from aml.runs import REPO_ROOT, atomic_path, machine_info

NOTEBOOK_DIR = REPO_ROOT / "notebooks"
PACKAGE_DIR = REPO_ROOT / "aml"
TEX_PACKAGES = "texlive-xetex texlive-fonts-recommended texlive-plain-generic pandoc"
QUESTIONS = ("Q2a", "Q2b", "Q2c", "Q3a", "Q3b", "Q4a", "Q4b", "Q4c")
TITLE = "AML Assignment 2: neural networks from first principles"
AUTHORS = [{"name": "AML Assignment 2 team"}]
ANSI_ESCAPE = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]")
THIS_NOTEBOOK = re.compile(r"\b([Tt])his notebook\b")


def strip_ansi(text: str) -> str:
    """``text`` without terminal colour codes (IPython tracebacks are full of them)."""
    return ANSI_ESCAPE.sub("", text)


class ReportError(RuntimeError):
    """A step of the build failed; the message says which and why (without colour codes)."""

    def __init__(self, message: str):
        super().__init__(strip_ansi(message))


def check_tools(*, pdftotext: bool = False) -> None:
    """Fail fast, before any long work, if the PDF tool chain (and, for ``--check``, pdftotext) is missing."""
    missing = [tool for tool in ("xelatex", "pandoc") if shutil.which(tool) is None]
    if missing:
        verb = "are" if len(missing) > 1 else "is"
        raise ReportError(f"PDF export needs {' and '.join(missing)}, which {verb} not installed. On Debian or "
                          f"Ubuntu: sudo apt-get install {TEX_PACKAGES}")
    if pdftotext and shutil.which("pdftotext") is None:
        raise ReportError("--check needs pdftotext, which is not installed. On Debian or Ubuntu: "
                          "sudo apt-get install poppler-utils")


def check_writable_dir(path: Path, what: str) -> None:
    """Fail fast unless ``path`` is a folder this user can write into (creating it if missing).

    Parameters
    ----------
    path : Path
        The folder.
    what : str
        How the user knows it (``"--out"``), for the message.
    """
    if path.exists() and not path.is_dir():
        raise ReportError(f"{what} must be a folder. Got {path}, which is a file.")
    blocker = next((p for p in path.parents if p.exists() and not p.is_dir()), None)
    if blocker is not None:
        raise ReportError(f"{what} must be a folder. Got {path}, which would lie under the file {blocker}.")
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as e:
        raise ReportError(f"{what} must be a folder this user can write. Got {path}, which cannot be "
                          f"written ({e.strerror or e}).") from None


def check_args(args: argparse.Namespace) -> None:
    """Reject option combinations that contradict each other."""
    if args.no_execute and (args.only or args.force):
        given = "--only" if args.only else "--force"
        raise ReportError(f"--no-execute executes nothing, so it cannot be combined with {given}.")


def check_only(only: list[str] | None, paths: list[Path]) -> set[str]:
    """The notebook numbers named by ``--only``, each checked to be the two-digit number of a notebook."""
    valid = [p.name[:2] for p in paths]
    unknown = [value for value in only or [] if value not in valid]
    if unknown:
        raise ReportError(f"--only takes two-digit notebook numbers, one of {', '.join(valid)} "
                          f"(the notebooks in {NOTEBOOK_DIR}). Got {', '.join(map(repr, unknown))} instead.")
    return set(only or [])


def resolve_data_dir(environ=os.environ, cwd: Path | None = None) -> str | None:
    """Make ``AML_DATA_DIR`` in ``environ`` absolute, read relative to ``cwd`` (default: the current folder).

    Kernels run in ``notebooks/`` and inherit the environment, so a path typed relative to where the
    command was started must be made absolute before any kernel starts.

    Parameters
    ----------
    environ : mutable mapping
        The environment to read and update (``os.environ``).
    cwd : Path, optional
        The folder a relative value is read from.

    Returns
    -------
    str or None
        The new value, or None where the variable is unset or empty.
    """
    value = environ.get("AML_DATA_DIR")
    if not value:
        return None
    path = Path(value).expanduser()
    environ["AML_DATA_DIR"] = str(path if path.is_absolute() else Path(cwd or os.getcwd()) / path)
    return environ["AML_DATA_DIR"]


def notebooks() -> list[Path]:
    found = sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))
    if not found:
        raise ReportError(f"No notebooks found in {NOTEBOOK_DIR}.")
    return found


def shared_inputs() -> list[Path]:
    """The files every notebook's outputs depend on besides its own code: ``aml/**/*.py`` and
    ``requirements.txt``."""
    return sorted(PACKAGE_DIR.rglob("*.py")) + [REPO_ROOT / "requirements.txt"]


def _add(digest, tag: str, data: bytes) -> None:
    digest.update(f"{tag}:{len(data)}:".encode() + data)


def inputs_hash(nb) -> str:
    """SHA-256 (hex) of what a notebook's outputs depend on: its code cells' sources, in order, and the
    contents of :func:`shared_inputs`. Markdown and outputs do not count."""
    digest = hashlib.sha256()
    for cell in nb.cells:
        if cell.cell_type == "code":
            _add(digest, "cell", cell.source.encode())
    for path in shared_inputs():
        name = path.relative_to(REPO_ROOT) if path.is_relative_to(REPO_ROOT) else path.name
        _add(digest, str(name), path.read_bytes() if path.is_file() else b"<missing>")
    return digest.hexdigest()


def machine_summary(info: dict) -> str:
    return f"{info['cpu']}, {info['cpu_count']} cores; GPU: {info['gpu'] or 'none'}"


def cell_location(nb, index: int | None) -> str:
    if index is None:
        return "a cell"
    return f"cell {index}:\n{nb.cells[index].source[:400]}"


def run_cells(nb, name: str, *, timeout: int | None) -> None:
    """Execute the code cells of ``nb`` in place, in a fresh kernel whose working folder is NOTEBOOK_DIR.

    The kernel inherits this process's environment. A failing cell, a cell past ``timeout`` seconds
    and a dead kernel each raise a ReportError naming the notebook ``name`` and the cell.
    """
    from nbclient import NotebookClient
    from nbclient.exceptions import (
        CellExecutionError,
        CellTimeoutError,
        DeadKernelError,
    )

    running = {"index": None}

    def note_cell(cell, cell_index, **_):
        running["index"] = cell_index

    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", on_cell_execute=note_cell,
                            resources={"metadata": {"path": str(NOTEBOOK_DIR)}})
    try:
        client.execute()
    except CellExecutionError as e:
        where = cell_location(nb, running["index"])
        raise ReportError(f"Notebook {name} failed in {where}\n\n{str(e)[-1500:]}") from None
    except CellTimeoutError:
        where = cell_location(nb, running["index"])
        raise ReportError(f"Notebook {name} timed out (after {timeout} s) in {where}") from None
    except DeadKernelError as e:
        where = cell_location(nb, running["index"])
        raise ReportError(f"Notebook {name}: its kernel died (out of memory?) in {where}\n\n{e}") from None


def execute(path: Path, dest: Path, *, timeout: int | None) -> None:
    """Run a notebook top to bottom in its own folder; write it with its outputs to ``dest`` atomically.

    The run's record goes into ``metadata["aml_run"]``: seconds, date, smoke, machine and the
    :func:`inputs_hash` of the notebook as it was run.
    """
    import nbformat

    nb = nbformat.read(path, as_version=4)
    inputs = inputs_hash(nb)
    start = time.perf_counter()
    run_cells(nb, path.name, timeout=timeout)
    # the run time travels with the outputs, so the report can state it for any mix of runs
    nb.metadata["aml_run"] = {"seconds": round(time.perf_counter() - start, 1),
                              "date": time.strftime("%Y-%m-%d %H:%M"),
                              "smoke": os.environ.get("AML_SMOKE") == "1",
                              "machine": machine_summary(machine_info()),
                              "inputs_hash": inputs}
    with atomic_path(dest) as tmp:
        nbformat.write(nb, tmp)


def last_run(path: Path) -> dict:
    """The ``aml_run`` record of a notebook's last execution (empty if it has none)."""
    import nbformat

    return dict(nbformat.read(path, as_version=4).metadata.get("aml_run", {}))


def is_current(path: Path) -> bool:
    """Whether the notebook's last run was a full one on the code, ``aml`` and requirements it has now."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    run = nb.metadata.get("aml_run", {})
    return run.get("smoke") is False and run.get("inputs_hash") == inputs_hash(nb)


def plan(paths: list[Path], *, smoke: bool, force: bool, only: set[str]) -> dict[Path, str]:
    """What to do with each notebook: ``"execute"``, ``"reuse"`` (full mode, inputs unchanged since its
    last full run, and, for a notebook that :func:`reads_earlier_results`, no earlier notebook executed)
    or ``"keep"`` (not named by ``--only``)."""
    actions = {}
    for path in paths:
        if only:
            actions[path] = "execute" if path.name[:2] in only else "keep"
        elif smoke or force or not is_current(path) or (reads_earlier_results(path) and "execute" in actions.values()):
            actions[path] = "execute"
        else:
            actions[path] = "reuse"
    return actions


def reads_earlier_results(path: Path) -> bool:
    """Whether the notebook summarises the results files of the notebooks before it (metadata
    ``aml.reads_results``): it is executed whenever one of those is."""
    import nbformat

    return bool(nbformat.read(path, as_version=4).metadata.get("aml", {}).get("reads_results"))


def ensure_data() -> None:
    """Make sure CIFAR-10 is in place (downloading it if missing) before any notebook needs it."""
    from aml.data import ensure_cifar10

    ensure_cifar10()


def prepare_execution(out: Path, *, smoke: bool) -> None:
    """What executing needs: a writable notebooks folder (full mode), the data, and smoke's environment."""
    if not smoke:
        check_writable_dir(NOTEBOOK_DIR, "The notebooks folder (executed in place)")
    ensure_data()
    if smoke:
        os.environ["AML_SMOKE"] = "1"
        os.environ["AML_OUTPUT_DIR"] = str(out)


def run_one(path: Path, dest: Path, action: str, label: str, *, smoke: bool) -> Path:
    """Carry out ``action`` for one notebook; return the notebook the report takes it from."""
    if action == "reuse":
        print(f"{label} {path.name} reused (code and aml unchanged since its run of {last_run(path)['date']})",
              flush=True)
        return path
    if action == "keep":
        print(f"{label} {path.name} kept as it is (not named by --only)", flush=True)
        return path
    start = time.perf_counter()
    print(f"{label} executing {path.name} ...", flush=True)
    execute(path, dest, timeout=900 if smoke else None)
    print(f"{label} {path.name} done in {time.perf_counter() - start:.0f} s", flush=True)
    return dest


def print_summary(status: dict[str, str]) -> None:
    """Which notebooks this build executed, reused or kept, one line each."""
    for word in dict.fromkeys(status.values()):
        print(f"{word}: {', '.join(name for name, w in status.items() if w == word)}", flush=True)


def run_notebooks(paths: list[Path], out: Path, *, smoke: bool, force: bool,
                  only: set[str]) -> tuple[list[Path], dict[str, str]]:
    """Execute the notebooks that need it (see :func:`plan`).

    Returns
    -------
    sources : list of Path
        The notebooks the report is built from (the executed copies, in smoke mode).
    status : dict
        Notebook name -> ``"executed"``, ``"reused"`` or ``"kept (partial build)"``, for the log and
        the front page.
    """
    actions = plan(paths, smoke=smoke, force=force, only=only)
    if "execute" in actions.values():
        prepare_execution(out, smoke=smoke)
    start = time.perf_counter()
    sources = []
    for i, (path, action) in enumerate(actions.items(), 1):
        dest = out / "notebooks" / path.name if smoke else path
        sources.append(run_one(path, dest, action, f"[{i}/{len(paths)}]", smoke=smoke))
    print(f"notebooks done in {(time.perf_counter() - start) / 60:.1f} min", flush=True)
    words = {"execute": "executed", "reuse": "reused", "keep": "kept (partial build)"}
    return sources, {p.name: words[a] for p, a in actions.items()}


def _keep_output(output) -> bool:
    # progress bars (stderr text, widgets) and warnings are for the live notebook, not the report
    if output.get("output_type") == "stream" and output.get("name") == "stderr":
        return False
    data = output.get("data", {})
    return "application/vnd.jupyter.widget-view+json" not in data


def total_seconds(runs: list[dict]) -> float | None:
    """Sum of the recorded run times (None if any notebook lacks one)."""
    times = [run.get("seconds") for run in runs]
    return None if any(t is None for t in times) else float(sum(times))


def software_versions() -> str:
    from importlib.metadata import PackageNotFoundError, version

    found = [f"Python {platform.python_version()}"]
    for pkg in ("numpy", "torch", "torchvision", "optuna", "matplotlib", "nbconvert"):
        try:
            found.append(f"{pkg} {version(pkg)}")
        except PackageNotFoundError:
            pass
    return ", ".join(found)


def runs_table(runs: dict[str, dict], status: dict[str, str]) -> list[str]:
    """Markdown table: per notebook, its run time, when it ran, its budget and what this build did."""
    lines = ["| Notebook | Run time | Run on | Budget | In this build |", "|---|---:|---|---|---|"]
    for name, run in runs.items():
        minutes = f"{run['seconds'] / 60:.1f} min" if "seconds" in run else "not recorded"
        budget = {True: "small (smoke)", False: "full"}.get(run.get("smoke"), "not recorded")
        lines.append(f"| {Path(name).stem} | {minutes} | {run.get('date', 'not recorded')} | {budget} "
                     f"| {status.get(name, 'not executed')} |")
    total = total_seconds(list(runs.values()))
    lines.append(f"| **Total** | **{total / 60:.1f} min** | | | |" if total is not None
                 else "| **Total** | not measured | | | |")
    return lines


def front_page(runs: dict[str, dict], status: dict[str, str], smoke: bool) -> str:
    """The report's first block: no heading (the title is the document's), the facts as a list and
    the notebooks' runs as a table.

    Parameters
    ----------
    runs : dict
        Notebook file name -> its ``aml_run`` record (possibly empty).
    status : dict
        Notebook file name -> what this build did with it (``"executed"``, ``"reused"``, ...).
    smoke : bool
        Whether this is a small-budget build.
    """
    info = machine_info()
    machines = sorted({run["machine"] for run in runs.values() if run.get("machine")}) or [machine_summary(info)]
    lines = [
        ("Answers to Q2a–Q2c, Q3a–Q3b and Q4a–Q4c, generated by executing the notebooks of this repository "
         "top to bottom; every number and figure below comes from those runs (code cells are hidden). "
         "A notebook marked *reused* was not run again for this build: its code, the `aml` package and "
         "`requirements.txt` are unchanged since the run dated in the table."),
        "",
        f"- **Built on:** {info['date']}",
        f"- **Machine:** {'; '.join(machines)}",
        ("- **Seeds:** `SEED = 0` in every notebook; studies over seeds add 1 and 2 (Q3b and Q4c retrains) or "
         "1 (Q3b ablation, Q4c controls); the handout's toy figures use `np.random.seed(0)` and `(1)`, as the "
         "handout does"),
        f"- **Software:** {software_versions()}",
    ]
    if smoke:
        lines.append("- **Small-budget (smoke) build for CI: the accuracies are not the real results.**")
    return "\n".join(lines + [""] + runs_table(runs, status))


def as_section(text: str) -> str:
    """Notebook prose as report prose: "this notebook" becomes "this section"."""
    return THIS_NOTEBOOK.sub(r"\1his section", text)


def report_cell(cell):
    """The cell as the report shows it, or None to leave it out (parameters cells, code cells without
    a kept output)."""
    if "parameters" in cell.get("metadata", {}).get("tags", []):
        return None
    cell = copy.deepcopy(cell)
    if cell.cell_type == "markdown":
        cell.source = as_section(cell.source)
    if cell.cell_type == "code":
        cell.outputs = [o for o in cell.outputs if _keep_output(o)]
        if not cell.outputs:
            return None
    return cell


def combine(paths: list[Path], *, smoke: bool = False, status: dict[str, str] | None = None):
    """One notebook: a front page, then every cell of every notebook (parameters cells dropped).

    Parameters
    ----------
    paths : list of Path
        The notebooks, in order, with their outputs.
    smoke : bool
        Whether this is a small-budget build (the front page says so).
    status : dict, optional
        Notebook file name -> what this build did with it, for the front page.
    """
    import nbformat

    sources = [(path, nbformat.read(path, as_version=4)) for path in paths]
    report = nbformat.v4.new_notebook()
    report.metadata = copy.deepcopy(sources[0][1].metadata)
    report.metadata.pop("aml_run", None)
    report.metadata["title"] = TITLE
    report.metadata["authors"] = AUTHORS
    runs = {path.name: dict(nb.metadata.get("aml_run", {})) for path, nb in sources}
    report.cells.append(nbformat.v4.new_markdown_cell(front_page(runs, status or {}, smoke)))
    for _, nb in sources:
        report.cells.extend(c for c in map(report_cell, nb.cells) if c is not None)
    return report


EXPORT_OPTIONS = {"exclude_input": True, "exclude_input_prompt": True, "exclude_output_prompt": True}
#: nbconvert's LaTeX template: unnumbered sections (the headings name the questions), figures as floats
#: capped at 45% of the page height, no heading at a page's foot (no half-empty pages)
LATEX_TEMPLATE = Path(__file__).parent / "templates" / "aml_report.tex.j2"


def latex_exporter(cls):
    """An nbconvert LaTeX/PDF exporter (``cls``) with the report's template and options."""
    return cls(template_file=str(LATEX_TEMPLATE), **EXPORT_OPTIONS)


def export(report, out: Path) -> Path:
    """Write report.ipynb, report.html and report.pdf into ``out``, each atomically."""
    import nbformat
    from nbconvert import HTMLExporter, PDFExporter

    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(out / "report.ipynb") as tmp:
        nbformat.write(report, tmp)
    html, _ = HTMLExporter(**EXPORT_OPTIONS).from_notebook_node(report)
    with atomic_path(out / "report.html") as tmp:
        tmp.write_text(html)
    try:
        resources = {"metadata": {"path": str(REPO_ROOT)}}
        pdf, _ = latex_exporter(PDFExporter).from_notebook_node(report, resources=resources)
    except Exception as e:  # noqa: BLE001 - nbconvert raises LatexFailed (or pandoc's errors) with the log
        raise ReportError(f"PDF export failed: {str(e)[-3000:]}") from None
    with atomic_path(out / "report.pdf") as tmp:
        tmp.write_bytes(pdf)
    return out / "report.pdf"


def check_pdf(pdf: Path) -> None:
    """The PDF exists, has text, names every question and never says "this notebook"."""
    if not pdf.is_file() or pdf.stat().st_size == 0:
        raise ReportError(f"{pdf} was not written.")
    if shutil.which("pdftotext") is None:
        raise ReportError("Checking the PDF needs pdftotext: sudo apt-get install poppler-utils")
    text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    missing = [q for q in QUESTIONS if q not in text]
    if missing:
        raise ReportError(f"{pdf} does not name {missing}.")
    if "this notebook" in " ".join(text.split()).lower():
        raise ReportError(f"{pdf} says 'this notebook'; the report's prose should say 'this section'.")
    print(f"checked {pdf}: {len(text.split())} words, names {', '.join(QUESTIONS)}")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Execute the notebooks (only those whose code, aml or "
                                     "requirements changed since their last full run) and export the report as PDF.")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "report", help="folder for report.pdf/.html/.ipynb")
    parser.add_argument("--smoke", action="store_true",
                        help="small budget (AML_SMOKE=1); always executes, copies under --out")
    parser.add_argument("--force", action="store_true",
                        help="re-execute every notebook, even those unchanged since their last full run "
                             "(make report FORCE=1)")
    parser.add_argument("--no-execute", action="store_true", help="export the notebooks' committed outputs as they are")
    parser.add_argument("--check", action="store_true", help="check the PDF with pdftotext afterwards")
    parser.add_argument("--only", nargs="+", metavar="NN", default=None,
                        help="execute these notebooks (by number, e.g. 03) whether changed or not; "
                             "the others keep their outputs as they are")
    return parser.parse_args(argv)


def build(args: argparse.Namespace) -> None:
    """Checks first, then the notebooks, then the export (and the PDF check)."""
    out = args.out.resolve()
    check_args(args)
    check_tools(pdftotext=args.check)
    paths = notebooks()
    only = check_only(args.only, paths)
    check_writable_dir(out, "--out")
    if args.no_execute:
        status = {p.name: "committed outputs" for p in paths}
    else:
        paths, status = run_notebooks(paths, out, smoke=args.smoke, force=args.force, only=only)
    total = total_seconds([last_run(p) for p in paths])
    if total is not None:
        print(f"total recorded run time of the notebooks: {total / 60:.1f} min", flush=True)
    pdf = export(combine(paths, smoke=args.smoke, status=status), out)
    print(f"wrote {pdf}")
    if args.check:
        check_pdf(pdf)
    print_summary(status)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        resolve_data_dir()
        build(args)
    except (ReportError, OSError) as e:
        print(f"make report: {strip_ansi(str(e))}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
