"""Build the report: execute notebooks 01-05 in a run folder, export them as one PDF (and HTML) with the
code hidden, and, for the full build only, promote the run into the committed record.

    python -m tools.report                        # the main job (make report): full budget, promotes
    python -m tools.report --force                # the same, re-running every notebook (make report FORCE=1)
    python -m tools.report --only 03              # re-run 03 (and the summary that reads it); promotes
    python -m tools.report --smoke --out DIR --check   # CI (make test): small budget, never promotes

Runs write to a run folder; a release promotes. Every build works in a fresh, git-ignored
``runs/<UTC stamp>/`` of this checkout: the notebooks are copied to its ``notebooks/`` and executed
there, with ``AML_OUTPUT_DIR`` pointing the kernels' results, figures and test-ledger rows at it
(seeded with a copy of the committed ``results/``, so the summary and the ledger's count of test
looks read what they would in place). Only when every notebook ran, the PDF was exported and its
check (pdftotext) passed does a full build promote: the executed notebooks back into ``notebooks/``,
results and figures into ``results/`` and ``imgs/``, the run's new ledger rows appended to
``results/test_ledger.csv``, and report.pdf/.html/.ipynb into ``--out`` (default ``report/``). A
failed build leaves all of those as they were and names its run folder. Smoke builds (``--smoke``,
or ``AML_SMOKE`` true) and ``--no-execute`` exports never promote: their report goes to
``runs/<stamp>/report`` (or ``--out``, which must not be the committed ``report/``).

Like Jupyter Book with jupyter-cache, a full build executes only what changed. Each run records in
the notebook's metadata (``aml_run``) its cache key: its code cells, the ``aml`` sources and
``requirements.txt``, the versions of Python and the packages that computed the outputs, and the
identity of the CIFAR-10 files; the hash of the outputs it wrote into the notebook and of each
results file and figure it wrote; and, for a notebook that reads earlier results (metadata
``aml.reads_results``: the summary), the outputs hash of each run it read. A notebook is reused
only when all of that still holds, so clearing outputs or re-running cells in JupyterLab, a changed
package, the data or a re-run of a notebook it reads make it run again; the log says why, one line
per notebook (``03: outputs differ from the build's (cleared or re-run interactively)``). Editing
prose (markdown) only re-exports. ``--force`` re-runs every notebook. ``--only NN ...`` is a
partial build that promotes like a full one: it runs the named notebooks and every summary after
them, and refuses to start when a notebook it would keep is not current. The front page and the end
of the log say which notebooks were executed and which reused; a reused notebook is shown with the
date, machine and package versions of its own run.

Kernels run in the run folder's ``notebooks/`` with this checkout first on ``PYTHONPATH``, so a
relative ``AML_DATA_DIR`` is made absolute first (relative to the folder the command was started
in: the repository, for ``make report``). Checks that need no work (PDF tools, ``--out``,
``--only``, ``AML_SMOKE``) run before any notebook does; every failure is reported as one
``make report: ...`` message on stderr, with exit code 1.
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from aml import runs
from aml.runs import LEDGER, atomic_path, machine_info

#: The checkout this tool belongs to (not where an editable install of ``aml`` points)
ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = ROOT / "notebooks"
#: A run folder's output folders, promoted into the checkout's folders of the same name
OUTPUT_FOLDERS = ("results", "imgs")
#: Packages whose versions are part of a notebook's cache key and shown on the front page
VERSIONED = ("numpy", "torch", "torchvision", "optuna", "matplotlib", "pandas", "ipykernel")
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


class PromotionError(ReportError):
    """Writing the committed record failed after it had begun."""


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
    return sorted((ROOT / "aml").rglob("*.py")) + [ROOT / "requirements.txt"]


def _add(digest, tag: str, data: bytes) -> None:
    digest.update(f"{tag}:{len(data)}:".encode() + data)


def code_hash(nb) -> str:
    """SHA-256 (hex) of a notebook's code cells' sources, in order. Markdown and outputs do not count."""
    digest = hashlib.sha256()
    for cell in nb.cells:
        if cell.cell_type == "code":
            _add(digest, "cell", cell.source.encode())
    return digest.hexdigest()


def inputs_hash() -> str:
    """SHA-256 (hex) of the contents of :func:`shared_inputs` (the ``aml`` sources, ``requirements.txt``)."""
    digest = hashlib.sha256()
    for path in shared_inputs():
        name = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path.name
        _add(digest, str(name), path.read_bytes() if path.is_file() else b"<missing>")
    return digest.hexdigest()


def outputs_hash(nb) -> str:
    """SHA-256 (hex) of a notebook's outputs: each code cell's execution count and outputs, in order.

    Recorded when the build writes the notebook; clearing outputs or re-running a cell by hand (its
    execution count changes even where its output does not) changes it.
    """
    import nbformat

    nb = nbformat.reads(nbformat.writes(nb), as_version=4)   # the form the file holds, whatever made it
    digest = hashlib.sha256()
    for cell in nb.cells:
        if cell.cell_type == "code":
            _add(digest, "outputs", json.dumps([cell.get("execution_count"), cell.outputs], sort_keys=True).encode())
    return digest.hexdigest()


def file_hash(path: Path) -> str:
    """SHA-256 (hex) of a file's bytes, read in 1 MiB blocks ("missing" if there is no such file)."""
    if not path.is_file():
        return "missing"
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def package_versions() -> dict[str, str]:
    """Python's version and those of the packages whose code makes the notebooks' outputs (the
    kernels run in this interpreter's environment)."""
    from importlib.metadata import PackageNotFoundError, version

    found = {"python": platform.python_version()}
    for pkg in VERSIONED:
        try:
            found[pkg] = version(pkg)
        except PackageNotFoundError:
            found[pkg] = "none"
    return found


def data_fingerprint(folder: Path | None) -> str:
    """SHA-256 (hex) of the CIFAR-10 batch files: names, sizes and whole contents ("missing" without
    the folder). About 0.2 s for the 180 MB (1 s cold), so the whole files are hashed."""
    if folder is None or not Path(folder).is_dir():
        return "missing"
    digest = hashlib.sha256()
    for path in sorted(p for p in Path(folder).iterdir() if p.is_file()):
        _add(digest, f"{path.name}:{path.stat().st_size}", file_hash(path).encode())
    return digest.hexdigest()


def ensure_data() -> Path:
    """Make sure CIFAR-10 is in place (downloading it if missing); return the batch folder."""
    from aml.data import ensure_cifar10

    return ensure_cifar10()


def data_identity() -> str:
    """The :func:`data_fingerprint` of the data the kernels will read (fetched first if missing)."""
    return data_fingerprint(ensure_data())


def environment_key() -> dict:
    """The parts of a cache key shared by every notebook of a build: ``inputs`` (:func:`inputs_hash`),
    ``versions`` (:func:`package_versions`) and ``data`` (:func:`data_identity`)."""
    return {"inputs": inputs_hash(), "versions": package_versions(), "data": data_identity()}


def machine_summary(info: dict) -> str:
    return f"{info['cpu']}, {info['cpu_count']} cores; GPU: {info['gpu'] or 'none'}"


def cell_location(nb, index: int | None) -> str:
    if index is None:
        return "a cell"
    return f"cell {index}:\n{nb.cells[index].source[:400]}"


def run_cells(nb, name: str, *, timeout: int | None, cwd: Path) -> None:
    """Execute the code cells of ``nb`` in place, in a fresh kernel whose working folder is ``cwd``.

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
                            resources={"metadata": {"path": str(cwd)}})
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


@contextlib.contextmanager
def kernel_environment(run: Path, *, smoke: bool):
    """Point the kernels started inside the block at the run folder ``run`` (``AML_OUTPUT_DIR``), the
    budget (``AML_SMOKE``) and this checkout's ``aml`` (first on ``PYTHONPATH``, whatever checkout an
    editable install points at); the variables are restored afterwards."""
    names = ("AML_OUTPUT_DIR", "AML_SMOKE", "PYTHONPATH")
    saved = {name: os.environ.get(name) for name in names}
    os.environ["AML_OUTPUT_DIR"] = str(run)
    os.environ["AML_SMOKE"] = "1" if smoke else "0"
    os.environ["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + ([saved["PYTHONPATH"]] if saved["PYTHONPATH"] else []))
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _output_files(run: Path) -> dict[str, tuple]:
    """The files directly in ``run/results`` and ``run/imgs`` (the ledger aside: it only grows), with
    what changes when one is written."""
    found = {}
    for sub in OUTPUT_FOLDERS:
        folder = run / sub
        for path in sorted(folder.iterdir()) if folder.is_dir() else []:
            if path.is_file() and path.name != LEDGER and not path.name.startswith("."):
                st = path.stat()
                found[f"{sub}/{path.name}"] = (st.st_mtime_ns, st.st_ino, st.st_size)
    return found


def execute(path: Path, dest: Path, *, timeout: int | None, run: Path | None = None, smoke: bool = False,
            environment: dict | None = None, upstream: dict[str, str] | None = None) -> None:
    """Run a notebook top to bottom in the folder of ``dest``; write it with its outputs to ``dest`` atomically.

    The run's record goes into ``metadata["aml_run"]``: ``seconds``, ``date``, ``smoke``, ``machine``;
    ``key`` (``code``: :func:`code_hash` of the notebook as it was run, and the build's
    :func:`environment_key`: ``inputs``, ``versions``, ``data``); ``outputs_hash`` (:func:`outputs_hash`
    of what this run wrote into the notebook); ``files`` (path -> SHA-256 of each results file and
    figure it wrote under ``run``); and, for a notebook that :func:`reads_earlier_results`,
    ``upstream`` (earlier notebook -> the outputs hash of the run it read).
    """
    import nbformat

    nb = nbformat.read(path, as_version=4)
    code = code_hash(nb)
    before = _output_files(run) if run is not None else {}
    start = time.perf_counter()
    run_cells(nb, path.name, timeout=timeout, cwd=Path(dest).parent)
    key = {"code": code, **(environment if environment is not None else environment_key())}
    after = _output_files(run) if run is not None else {}
    # the run time travels with the outputs, so the report can state it for any mix of runs
    record = {"seconds": round(time.perf_counter() - start, 1),
              "date": time.strftime("%Y-%m-%d %H:%M"),
              "smoke": smoke,
              "machine": machine_summary(machine_info()),
              "key": key,
              "outputs_hash": outputs_hash(nb),
              "files": {rel: file_hash(run / rel) for rel, stat in after.items() if before.get(rel) != stat}}
    if upstream is not None:
        record["upstream"] = upstream
    nb.metadata["aml_run"] = record
    with atomic_path(dest) as tmp:
        nbformat.write(nb, tmp)


def last_run(path: Path) -> dict:
    """The ``aml_run`` record of a notebook's last execution (empty if it has none)."""
    import nbformat

    return dict(nbformat.read(path, as_version=4).metadata.get("aml_run", {}))


def reads_earlier_results(path: Path) -> bool:
    """Whether the notebook summarises the results files of the notebooks before it (metadata
    ``aml.reads_results``): it runs whenever one of those runs, and its record names the runs it read."""
    import nbformat

    return bool(nbformat.read(path, as_version=4).metadata.get("aml", {}).get("reads_results"))


def upstream_of(path: Path, paths: list[Path]) -> dict[str, str] | None:
    """For a notebook that :func:`reads_earlier_results`: each earlier notebook of ``paths`` -> the
    outputs hash of its current run (the results it would read). None for any other notebook."""
    import nbformat

    if not reads_earlier_results(path):
        return None
    earlier = [p for p in paths if p.name < path.name]
    return {p.name: nbformat.read(p, as_version=4).metadata.get("aml_run", {}).get("outputs_hash", "none")
            for p in earlier}


def _changed_versions(old: dict, new: dict) -> str:
    return ", ".join(f"{k} {old.get(k, 'none')} -> {new.get(k, 'none')}"
                     for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k))


def why_stale(path: Path, environment: dict, paths: list[Path]) -> str | None:
    """Why the committed outputs of a notebook cannot be reused, or None when they can: its last run
    was a full build run, nothing has touched the outputs it wrote (in the notebook, ``results/``,
    ``imgs/``), and its code, the ``aml`` sources and ``requirements.txt``, the package versions, the
    data and (for a summary) the runs of the notebooks it reads are those of that run."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    run = nb.metadata.get("aml_run", {})
    key = run.get("key")
    if not run:
        return "never run by the build"
    if run.get("smoke") is not False:
        return "its last run was a small-budget (smoke) one"
    if not isinstance(key, dict) or "outputs_hash" not in run:
        return "its record predates the full cache key (no outputs hash, versions or data)"
    if outputs_hash(nb) != run["outputs_hash"]:
        return "outputs differ from the build's (cleared or re-run interactively)"
    if key.get("code") != code_hash(nb):
        return "code cells changed"
    if key.get("inputs") != environment["inputs"]:
        return "the aml sources or requirements.txt changed"
    if key.get("versions") != environment["versions"]:
        return f"package versions changed ({_changed_versions(key.get('versions') or {}, environment['versions'])})"
    if key.get("data") != environment["data"]:
        return "the CIFAR-10 files changed"
    for rel, digest in sorted(run.get("files", {}).items()):
        if file_hash(ROOT / rel) != digest:
            return f"{rel} differs from the one its run wrote"
    upstream = upstream_of(path, paths)
    if upstream is not None and run.get("upstream") != upstream:
        changed = [name[:2] for name, h in upstream.items() if (run.get("upstream") or {}).get(name) != h]
        return f"reads the results of {', '.join(changed)}, which ran again since its run"
    return None


def plan(paths: list[Path], *, smoke: bool, force: bool, only: set[str],
         stale: dict[str, str | None] | None = None) -> dict[Path, tuple[str, str]]:
    """What to do with each notebook, and why: ``("execute", reason)``, ``("reuse", ...)`` or
    ``("keep", ...)`` (``--only`` builds: not named, and current).

    Parameters
    ----------
    paths : list of Path
        The notebooks, in order.
    smoke, force : bool
        A small-budget build / ``--force``: every notebook runs (with ``--only``: those it names, and
        the summaries after them; a smoke build keeps the others as they are, current or not).
    only : set of str
        The numbers named by ``--only`` (empty: a full build).
    stale : dict, optional
        Notebook file name -> :func:`why_stale` (None: current). Needed unless ``smoke`` or ``force``.

    A notebook that :func:`reads_earlier_results` runs whenever an earlier notebook runs, ``--only``
    or not. An ``--only`` build refuses to keep a notebook that is not current: the report it
    promotes must not mix in outputs the build did not produce.
    """
    actions: dict[Path, tuple[str, str]] = {}
    for path in paths:
        ran = [p.name[:2] for p, (action, _) in actions.items() if action == "execute"]
        reason = None if smoke else (stale or {}).get(path.name)
        if path.name[:2] in only:
            actions[path] = ("execute", "named by --only")
        elif ran and reads_earlier_results(path):
            actions[path] = ("execute", f"reads the results of {', '.join(ran)}, which run in this build")
        elif smoke and not only:
            actions[path] = ("execute", "small-budget build: every notebook runs")
        elif force and not only:
            actions[path] = ("execute", "--force")
        elif only and reason:
            named = " ".join(sorted(only))
            raise ReportError(f"--only {named} would keep {path.name}, which is not current ({reason}). "
                              f"Run make report (or name {path.name[:2]} in --only too).")
        elif only:
            actions[path] = ("keep", "not named by --only")
        elif reason:
            actions[path] = ("execute", reason)
        else:
            actions[path] = ("reuse", "")
    return actions


def run_one(path: Path, action: str, label: str, *, run: Path, smoke: bool, environment: dict | None,
            paths: list[Path]) -> None:
    """Carry out ``action`` for ``path``, the run folder's copy of one notebook."""
    if action == "reuse":
        print(f"{label} {path.name} reused (unchanged since its run of {last_run(path)['date']}: code, outputs, "
              "aml, requirements, package versions, data)", flush=True)
        return
    if action == "keep":
        print(f"{label} {path.name} kept as it is (not named by --only)", flush=True)
        return
    start = time.perf_counter()
    print(f"{label} executing {path.name} ...", flush=True)
    execute(path, path, timeout=900 if smoke else None, run=run, smoke=smoke, environment=environment,
            upstream=upstream_of(path, paths))
    print(f"{label} {path.name} done in {time.perf_counter() - start:.0f} s", flush=True)


def print_summary(status: dict[str, str]) -> None:
    """Which notebooks this build executed, reused or kept, one line each."""
    for word in dict.fromkeys(status.values()):
        print(f"{word}: {', '.join(name for name, w in status.items() if w == word)}", flush=True)


def run_notebooks(paths: list[Path], run: Path, *, smoke: bool, force: bool,
                  only: set[str]) -> tuple[list[Path], dict[str, str]]:
    """Copy the notebooks into ``run/notebooks`` and execute there the ones that need it (see :func:`plan`).

    Returns
    -------
    sources : list of Path
        The run folder's copies, with their outputs: the notebooks the report is built from.
    status : dict
        Notebook name -> ``"executed"``, ``"reused"`` or ``"kept (partial build)"``, for the log and
        the front page.
    """
    environment = None
    stale = None
    if not smoke:
        environment = environment_key()   # fetches the data if missing
        if only or not force:
            stale = {p.name: why_stale(p, environment, paths) for p in paths}
    actions = plan(paths, smoke=smoke, force=force, only=only, stale=stale)
    for path, (action, reason) in actions.items():
        if action == "execute":
            print(f"{path.name[:2]}: {reason}", flush=True)
    if smoke and "execute" in (a for a, _ in actions.values()):
        ensure_data()
    copies = run / "notebooks"
    copies.mkdir(parents=True, exist_ok=True)
    sources = []
    for path in paths:
        shutil.copy2(path, copies / path.name)
        sources.append(copies / path.name)
    start = time.perf_counter()
    with kernel_environment(run, smoke=smoke):
        for i, (source, (action, _)) in enumerate(zip(sources, actions.values()), 1):
            run_one(source, action, f"[{i}/{len(paths)}]", run=run, smoke=smoke, environment=environment,
                    paths=sources)
    print(f"notebooks done in {(time.perf_counter() - start) / 60:.1f} min", flush=True)
    words = {"execute": "executed", "reuse": "reused", "keep": "kept (partial build)"}
    return sources, {p.name: words[a] for p, (a, _) in actions.items()}


def _install(source: Path, target: Path) -> bool:
    """Copy ``source`` onto ``target`` atomically, unless they already hold the same bytes."""
    if target.is_file() and file_hash(target) == file_hash(source):
        return False
    with atomic_path(target) as tmp:
        shutil.copyfile(source, tmp)
    return True


def append_ledger_rows(rows: list[dict], path: Path) -> None:
    """Append a run's ledger rows to the committed ledger, through :func:`aml.ledger.append_row`."""
    from aml import ledger

    for row in rows:
        ledger.append_row(row, path)


def promote(run: Path, sources: list[Path], status: dict[str, str], originals: dict[str, str], out: Path) -> None:
    """Make a finished build the committed record: the executed notebooks into ``notebooks/``, the
    run's results files and figures into ``results/`` and ``imgs/``, its new ledger rows appended to
    ``results/test_ledger.csv``, and ``report.pdf``/``.html``/``.ipynb`` into ``out``.

    Refuses (before writing anything) when a notebook it would replace changed while the build ran.
    """
    executed = [s for s in sources if status[s.name] == "executed"]
    for source in executed:
        if file_hash(NOTEBOOK_DIR / source.name) != originals[source.name]:
            raise ReportError(f"notebooks/{source.name} changed while the build ran; promoting would overwrite "
                              "that change.")
    rows = runs.new_ledger_rows(run)
    try:
        for sub in OUTPUT_FOLDERS:
            for path in sorted((run / sub).rglob("*")) if (run / sub).is_dir() else []:
                if path.is_file() and path.name != LEDGER and not path.name.startswith("."):
                    _install(path, ROOT / sub / path.relative_to(run / sub))
        if rows:
            append_ledger_rows(rows, ROOT / "results" / LEDGER)
        for source in executed:
            _install(source, NOTEBOOK_DIR / source.name)
        for name in ("report.ipynb", "report.html", "report.pdf"):
            _install(run / "report" / name, out / name)
    except OSError as e:
        raise PromotionError(f"Promotion stopped part-way ({e}); run make report again to finish it.") from None
    print(f"promoted {run.name}: {len(executed)} notebook(s), results, figures, {len(rows)} ledger row(s) and "
          f"the report into {out}", flush=True)


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


def format_versions(versions: dict) -> str:
    """``{"python": "3.12.3", "numpy": "2.1.0"}`` -> ``"Python 3.12.3, numpy 2.1.0"`` (packages absent: left out)."""
    order = {name: i for i, name in enumerate(VERSIONED)}
    names = [f"Python {versions['python']}"] if "python" in versions else []
    packages = sorted((k for k in versions if k != "python"), key=lambda k: (order.get(k, len(order)), k))
    return ", ".join(names + [f"{k} {versions[k]}" for k in packages if versions[k] != "none"])


def software_versions(runs: dict[str, dict]) -> str:
    """The software that computed the outputs, as recorded by each notebook's run (not what is
    installed now: a reused notebook ran with what was installed then); one group per distinct set."""
    groups: dict[str, list[str]] = {}
    for name, run in runs.items():
        versions = (run.get("key") or {}).get("versions")
        groups.setdefault(format_versions(versions) if versions else "not recorded", []).append(name[:2])
    if len(groups) == 1:
        return next(iter(groups))
    return "; ".join(f"{', '.join(names)}: {text}" for text, names in groups.items())


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
         "A notebook marked *reused* in Appendix E was not run again for this build: its outputs are those its "
         "run wrote, and its code, the `aml` package, `requirements.txt`, the package versions and the data are "
         "unchanged since that run, dated there."),
        "",
        f"- **Built on:** {info['date']}",
        f"- **Machine:** {'; '.join(machines)}",
        ("- **Seeds:** 0 for every single run; studies over seeds use seeds 0, 1 and 2 (0 and 1 for Q4c's tuned "
         "setting); the handout's toy figures use `np.random.seed(0)` and `(1)`, as the handout does"),
        f"- **Software:** {software_versions(runs)}",
    ]
    if smoke:
        lines.append("- **Small-budget (smoke) build for CI: the accuracies are not the real results.**")
    return "\n".join(lines)


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
    built = ["# Appendix E: how this report was built", "",
             "Each notebook's run: how long it took, when, on what budget, and whether this build executed it or "
             "reused the outputs of an earlier run.", ""]
    report.cells.append(nbformat.v4.new_markdown_cell("\n".join(built + runs_table(runs, status or {}))))
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
        resources = {"metadata": {"path": str(ROOT)}}
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
    parser = argparse.ArgumentParser(description="Execute the notebooks in a run folder (only those whose cache key "
                                     "changed since their last full run), export the report as PDF and, for a "
                                     "full build, promote the run into notebooks/, results/, imgs/ and report/.")
    parser.add_argument("--out", type=Path, default=None,
                        help="folder for report.pdf/.html/.ipynb (default: report/ for a full build, the run "
                             "folder's report/ otherwise; a smoke build refuses report/)")
    parser.add_argument("--smoke", action="store_true",
                        help="small budget (AML_SMOKE=1); always executes; never promotes")
    parser.add_argument("--force", action="store_true",
                        help="re-execute every notebook, even those whose cache key holds "
                             "(make report FORCE=1)")
    parser.add_argument("--no-execute", action="store_true",
                        help="export the notebooks' committed outputs as they are (never promotes)")
    parser.add_argument("--check", action="store_true",
                        help="check the PDF with pdftotext afterwards (always done before a promotion)")
    parser.add_argument("--only", nargs="+", metavar="NN", default=None,
                        help="execute these notebooks (by number, e.g. 03) whether changed or not, and every "
                             "summary after them; the others keep their outputs (they must be current)")
    return parser.parse_args(argv)


def smoke_mode(args: argparse.Namespace) -> bool:
    """``--smoke`` or ``AML_SMOKE`` true (read by :func:`aml.runs.smoke`; a value it does not know fails)."""
    try:
        return args.smoke or runs.smoke()
    except ValueError as e:
        raise ReportError(str(e)) from None


def check_out(out: Path | None, *, promoting: bool, why: str) -> Path | None:
    """The resolved ``--out``: default ``report/`` for a promoting build, else None (the run folder);
    a build that does not promote may not write into the committed ``report/``."""
    committed = (ROOT / "report").resolve()
    if out is None:
        return committed if promoting else None
    out = out.resolve()
    if not promoting and out == committed:
        raise ReportError(f"{why} never writes the committed report/ ({committed}); only the full make report "
                          "does. Leave out --out (the report goes into the run folder) or name another folder.")
    check_writable_dir(out, "--out")
    return out


def build(args: argparse.Namespace) -> None:
    """Checks first, then the notebooks in a run folder, then the export and the PDF check, then (a
    full build only) the promotion."""
    check_args(args)
    smoke = smoke_mode(args)
    promoting = not (smoke or args.no_execute)
    why = "A small-budget (smoke) build" if smoke else "--no-execute"
    check_tools(pdftotext=args.check or promoting)
    paths = notebooks()
    only = check_only(args.only, paths)
    out = check_out(args.out, promoting=promoting, why=why)
    if promoting:
        for folder in (NOTEBOOK_DIR, ROOT / "results", ROOT / "imgs"):
            check_writable_dir(folder, f"The folder {folder.name}/ (the build promotes into it)")
    run = runs.new_run_folder(ROOT, label="smoke" if smoke else "export" if args.no_execute else "")
    print(f"run folder: {run}", flush=True)
    try:
        originals = {p.name: file_hash(p) for p in paths}
        if args.no_execute:
            status = {p.name: "committed outputs" for p in paths}
        else:
            paths, status = run_notebooks(paths, run, smoke=smoke, force=args.force, only=only)
        total = total_seconds([last_run(p) for p in paths])
        if total is not None:
            print(f"total recorded run time of the notebooks: {total / 60:.1f} min", flush=True)
        pdf = export(combine(paths, smoke=smoke, status=status), run / "report" if promoting or out is None else out)
        print(f"wrote {pdf}")
        if args.check or promoting:
            check_pdf(pdf)
        if promoting:
            promote(run, paths, status, originals, out)
    except (ReportError, OSError) as e:
        kept = ("Nothing was promoted: notebooks/, results/, imgs/, the ledger and report/ are as they were. "
                if promoting and not isinstance(e, PromotionError) else "")
        raise ReportError(f"{strip_ansi(str(e))}\n{kept}The run folder {run} holds what this build did.") from None
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
