"""``make report [FORCE=1]``: run in ``runs/<stamp>/`` the notebooks whose key changed, export and check report.pdf,
promote; ``--smoke --out DIR --check`` (make test) never promotes. The rules: MAINTAINING.md, section 1."""
import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat
import pandas as pd

from aml import runs

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = Path(__file__).parent / "templates" / "aml_report.tex.j2"
TITLE = "AML Assignment 2: neural networks from first principles"
TOOLS = {"xelatex": "texlive-xetex texlive-fonts-recommended texlive-plain-generic", "pandoc": "pandoc",
         "pdftotext": "poppler-utils"}  # the programs the PDF needs -> their Debian/Ubuntu packages
PROMOTED = (("results", "*.json"), ("results", "*.csv"), ("imgs", "*.png"))


class BuildError(RuntimeError):
    """A step of the build failed; :func:`main` prints it as one ``make report: ...`` line."""


def data_dir() -> Path:
    """``$AML_DATA_DIR`` (default ``data``) as an absolute path; a relative value is read against the checkout."""
    return ROOT / Path(os.environ.get("AML_DATA_DIR") or "data").expanduser()


def shared_key() -> dict:
    """Every notebook's inputs but its code: ``aml/**.py`` and requirements.txt (SHA-256), the data's file sizes."""
    files = sorted((ROOT / "aml").rglob("*.py")) + [ROOT / "requirements.txt"]
    data = data_dir() / "cifar-10-batches-py"
    return {"code": [[str(p.relative_to(ROOT)), hashlib.sha256(p.read_bytes()).hexdigest()] for p in files],
            "data": [[p.name, p.stat().st_size] for p in sorted(data.glob("*")) if p.is_file()]}


def digest(*parts) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def cache_key(nb, shared: dict) -> str:
    """SHA-256 of the notebook's code cells and :func:`shared_key` (markdown does not count)."""
    return digest([c.source for c in nb.cells if c.cell_type == "code"], shared)


def outputs_hash(nb) -> str:
    """SHA-256 of the code cells' outputs: a notebook re-run or cleared by hand no longer matches its record."""
    return digest([[c.get("execution_count"), c.outputs] for c in nb.cells if c.cell_type == "code"])


def plan(paths: list[Path], *, smoke: bool, force: bool) -> dict[str, bool]:
    """Notebook name -> execute it? Yes for smoke/force, for a record that is not a full run of today's key with
    its own outputs, and for a summary (metadata ``aml.reads_results``) after an executed notebook."""
    shared, todo = shared_key(), {}
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        record = nb.metadata.get("aml_run", {})
        current = (record.get("smoke") is False and record.get("key") == cache_key(nb, shared)
                   and record.get("outputs") == outputs_hash(nb))
        reads = nb.metadata.get("aml", {}).get("reads_results") and any(todo.values())
        todo[path.name] = smoke or force or not current or bool(reads)
    return todo


def execute(src: Path, dst: Path, *, smoke: bool) -> None:
    """Run ``src`` with papermill in ``dst``'s folder, into ``dst``. No parameters are injected: the parameters
    cell reads ``AML_SMOKE`` (an injected cell would be promoted and override nbval's small budget)."""
    import papermill
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    try:
        papermill.execute_notebook(src, dst, cwd=dst.parent, kernel_name="python3", progress_bar=False,
                                   execution_timeout=900 if smoke else None)
    except papermill.PapermillExecutionError as e:
        raise BuildError(f"{src.name} failed in cell [{e.exec_count}]: {e.ename}: {e.evalue} "
                         f"(the traceback is in {dst})") from None
    except (CellTimeoutError, DeadKernelError) as e:
        raise BuildError(f"{src.name} stopped: {type(e).__name__}: {e}") from None


def machine() -> str:
    info = runs.machine_info()
    return f"{info['cpu']}, {info['cpu_count']} cores, GPU: {info['gpu'] or 'none'}"


def run_notebooks(paths: list[Path], run: Path, todo: dict[str, bool], *, smoke: bool) -> list[Path]:
    """Execute (stamping ``aml_run``) or copy each notebook into ``run/notebooks``, the kernels' outputs going
    to ``run`` (``AML_OUTPUT_DIR``); return the copies, the report's sources."""
    os.environ.update({"AML_OUTPUT_DIR": str(run), "AML_SMOKE": "1" if smoke else "0",
                       "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))})
    if os.environ.get("AML_DATA_DIR"):       # one folder for make report, nbval, a kernel in notebooks/
        os.environ["AML_DATA_DIR"] = str(data_dir())
    before, copies = shared_key(), []
    (run / "notebooks").mkdir()
    for i, src in enumerate(paths, 1):
        copies.append(run / "notebooks" / src.name)
        if not todo[src.name]:
            shutil.copy2(src, copies[-1])
            print(f"[{i}/{len(paths)}] {src.name} reused", flush=True)
            continue
        print(f"[{i}/{len(paths)}] executing {src.name} ...", flush=True)
        start = time.perf_counter()
        execute(src, copies[-1], smoke=smoke)
        after = shared_key()                 # the data may have been fetched by the notebook
        if after["code"] != before["code"]:
            raise BuildError("aml/ or requirements.txt changed while the build ran; run make report again")
        nb = nbformat.read(copies[-1], as_version=4)     # its record: what the next build compares
        nb.metadata["aml_run"] = {"key": cache_key(nb, after), "outputs": outputs_hash(nb), "smoke": smoke,
                                  "seconds": round(time.perf_counter() - start, 1), "machine": machine(),
                                  "date": time.strftime("%Y-%m-%d %H:%M")}
        with runs.atomic_path(copies[-1]) as tmp:
            nbformat.write(nb, tmp)
        print(f"[{i}/{len(paths)}] {src.name} done in {time.perf_counter() - start:.0f} s", flush=True)
    return copies


def shown(cell):
    """The cell as the report shows it; None for parameters cells and code left without output (stderr, widgets)."""
    if "parameters" in cell.get("metadata", {}).get("tags", []):
        return None
    if cell.cell_type == "code":
        cell.outputs = [o for o in cell.outputs if o.get("name") != "stderr"
                        and "application/vnd.jupyter.widget-view+json" not in o.get("data", {})]
        return cell if cell.outputs else None
    return cell


def combine(paths: list[Path], *, smoke: bool):
    """Every cell :func:`shown` keeps (``answer`` cells after the ``answer-here`` or first one); as its date
    line, today and the machines the notebooks' records name."""
    nbs = [nbformat.read(p, as_version=4) for p in paths]
    machines = sorted({nb.metadata.get("aml_run", {}).get("machine") or machine() for nb in nbs})
    built = f"{time.strftime('%Y-%m-%d')}; computed on {' and '.join(machines)}."    # which notebooks ran: the log
    report = nbformat.v4.new_notebook(metadata={"title": TITLE, "authors": [{"name": "AML Assignment 2 team"}],
                                                "date": built, "language_info": {"name": "python"}})
    warning = "**Small-budget (smoke) build for CI: the numbers are not the results.**"
    report.cells = [nbformat.v4.new_markdown_cell(warning)] if smoke else []
    for nb in nbs:
        cells = [c for c in map(shown, nb.cells) if c is not None]
        answers = [c for c in cells if "answer" in c.metadata.get("tags", [])]
        rest = [c for c in cells if c not in answers]
        at = next((i for i, c in enumerate(rest) if "answer-here" in c.metadata.get("tags", [])), 0) + 1
        report.cells += rest[:at] + answers + rest[at:]
    return report


def export(report, pdf: Path, cwd: Path) -> Path:
    """Write ``pdf`` with nbconvert's PDF exporter and :data:`TEMPLATE`, code hidden (atomically)."""
    from nbconvert import PDFExporter

    exporter = PDFExporter(template_file=str(TEMPLATE), exclude_input=True, exclude_input_prompt=True,
                           exclude_output_prompt=True)
    pdf.parent.mkdir(parents=True, exist_ok=True)
    try:
        body, _ = exporter.from_notebook_node(report, resources={"metadata": {"path": str(cwd)}})
    except Exception as e:  # noqa: BLE001 - nbconvert's LatexFailed (or pandoc's error) carries the log
        pdf.with_suffix(".log").write_text(str(e))
        raise BuildError(f"the PDF export failed ({type(e).__name__}); its log is {pdf.with_suffix('.log')}") from None
    with runs.atomic_path(pdf) as tmp:
        tmp.write_bytes(body)
    return pdf


def check_pdf(pdf: Path) -> None:
    """The PDF has text (pdftotext); print its page and word counts."""
    text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    if not text.strip():
        raise BuildError(f"{pdf} holds no text (pdftotext found none)")
    print(f"checked {pdf}: {text.count(chr(12))} pages, {len(text.split())} words", flush=True)


def rows(path: Path) -> int:  # noqa: D103
    return len(pd.read_csv(path)) if path.is_file() else 0


def install(src: Path, dst: Path) -> None:
    with runs.atomic_path(dst) as tmp:
        shutil.copyfile(src, tmp)


def promote(run: Path, executed: list[str], originals: dict[str, bytes], pdf: Path, out: Path) -> None:
    """Copy the run's notebooks, results, figures, ledger and PDF in, unless the record changed meanwhile."""
    changed = [n for n, data in originals.items() if (ROOT / "notebooks" / n).read_bytes() != data]
    committed, ledger = ROOT / "results" / "test_ledger.csv", run / "results" / "test_ledger.csv"
    if changed:
        raise BuildError(f"notebooks/{changed[0]} changed while the build ran; promoting would overwrite it")
    if ledger.is_file() and not ledger.read_bytes().startswith(committed.read_bytes() if committed.is_file() else b""):
        raise BuildError(f"{ledger} does not start with the rows of {committed}; the ledger is append-only")
    new_rows = rows(ledger) - rows(committed)
    files = [(p, ROOT / sub / p.name) for sub, pattern in PROMOTED for p in sorted((run / sub).glob(pattern))]
    files += [(run / "notebooks" / n, ROOT / "notebooks" / n) for n in executed] + [(pdf, out / "report.pdf")]
    try:
        for src, dst in files:               # the ledger among them: the committed rows, then the run's new rows
            install(src, dst)
    except OSError as e:
        raise BuildError(f"the promotion stopped part-way ({e}); run make report again to finish it") from None
    print(f"promoted {run.name}: {len(executed)} notebook(s), results, figures, {new_rows} new ledger row(s) "
          f"and {out / 'report.pdf'}", flush=True)


def build(args: argparse.Namespace) -> None:
    """Checks that need no work, then in a run folder: notebooks, PDF, its check, (full builds) the promotion."""
    smoke = args.smoke or runs.smoke()
    out = (args.out or ROOT / "report").resolve()
    if smoke and args.out and out == (ROOT / "report").resolve():
        raise BuildError(f"--out: a smoke build never writes the committed report/ ({out}); name another folder")
    missing = [t for t in TOOLS if shutil.which(t) is None and (t != "pdftotext" or args.check or not smoke)]
    if missing:
        raise BuildError(f"the PDF needs {', '.join(missing)}: sudo apt-get install "
                         + " ".join(TOOLS[t] for t in missing))
    paths = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    (ROOT / "runs").mkdir(exist_ok=True)
    name = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + ("-smoke" if smoke else "")
    run = runs.seed_run_folder(tempfile.mkdtemp(prefix=f"{name}-", dir=ROOT / "runs"), source=ROOT)
    print(f"run folder: {run}", flush=True)
    try:
        originals, todo = {p.name: p.read_bytes() for p in paths}, plan(paths, smoke=smoke, force=args.force)
        copies = run_notebooks(paths, run, todo, smoke=smoke)
        pdf = export(combine(copies, smoke=smoke), (out if smoke and args.out else run / "report") / "report.pdf",
                     run / "notebooks")
        if args.check or not smoke:
            check_pdf(pdf)
        if not smoke:
            promote(run, [n for n, e in todo.items() if e], originals, pdf, out)
    except (BuildError, OSError, subprocess.CalledProcessError) as e:
        raise BuildError(f"{e} (run folder: {run})") from None
    for word, flag in (("executed", True), ("reused", False)):
        print(f"{word}: {', '.join(n for n, e in todo.items() if e == flag) or 'none'}", flush=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--force", action="store_true", help="execute every notebook (make report FORCE=1)")
    parser.add_argument("--smoke", action="store_true", help="small budget (AML_SMOKE=1); never promotes")
    parser.add_argument("--out", type=Path, help="folder for report.pdf (default report/; smoke: the run folder)")
    parser.add_argument("--check", action="store_true", help="check the PDF with pdftotext (full builds always do)")
    try:
        build(parser.parse_args(argv))
    except (BuildError, ValueError, OSError) as e:
        print(f"make report: {' '.join(str(e).split())}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
