"""A run: where its files go, how they are written (atomically, strict JSON), its budget, its seed, and
the machine it ran on.

Runs write to a run folder; a release promotes. Whatever runs a notebook (JupyterLab, nbval,
papermill, a search worker, the report build) writes its results, figures and test-ledger rows under
:func:`output_root`: ``$AML_OUTPUT_DIR`` if set (the build's ``runs/<UTC stamp>/``, CI's temporary
folder), else the git-ignored ``runs/interactive/`` (``runs/smoke/`` in small-budget mode) of the
checkout the code runs in, seeded with a copy of the committed ``results/``. Only the full
``make report`` (``tools/report.py``) promotes a run folder into the committed ``results/``,
``imgs/``, ledger and ``report/``.
"""
from __future__ import annotations

import contextlib
import csv
import datetime as _dt
import json
import math
import os
import platform
import random
import shutil
import tempfile
from pathlib import Path

import numpy as np

from ._checks import check_seed

#: Values of ``AML_SMOKE``, compared after trimming whitespace and lower-casing; unset means False.
SMOKE_TRUE = ("1", "true", "yes", "on")
SMOKE_FALSE = ("0", "false", "no", "off", "")
#: The git-ignored folder of a checkout that holds its runs: ``runs/<UTC stamp>/`` for builds,
#: ``runs/interactive/`` (``runs/smoke/`` in small-budget mode) for notebooks run by hand, nbval, papermill.
RUNS = "runs"
#: What :func:`seed_run_folder` writes into a run folder: where it was seeded from and how many rows
#: the ledger held then (the rows after those are the run's own).
RUN_RECORD = "run.json"
LEDGER = "test_ledger.csv"


def smoke(environ=None) -> bool:
    """Whether this is a small-budget run: ``$AML_SMOKE`` read as a boolean, the one parser of it.

    Accepts ``1``/``true``/``yes``/``on`` and ``0``/``false``/``no``/``off``/empty, in any case and with
    surrounding whitespace; unset is False. Anything else raises ``ValueError`` (a typo must not
    silently start the 45-minute full budget).
    """
    value = (os.environ if environ is None else environ).get("AML_SMOKE")
    if value is None:
        return False
    word = value.strip().lower()
    if word in SMOKE_TRUE:
        return True
    if word in SMOKE_FALSE:
        return False
    raise ValueError(f"AML_SMOKE must be one of {', '.join(SMOKE_TRUE)} (small budget) or "
                     f"{', '.join(SMOKE_FALSE[:-1])} or empty (full budget), in any case. Got {value!r} instead.")


def is_checkout(path: Path) -> bool:
    """Whether ``path`` is the root of a checkout of this project (holds ``aml/__init__.py`` and ``notebooks/``)."""
    return (path / "aml" / "__init__.py").is_file() and (path / "notebooks").is_dir()


def checkout(start: str | os.PathLike | None = None) -> Path:
    """The checkout the code runs in: the nearest folder at or above ``start`` (default: the current
    working folder) that :func:`is_checkout`; else the folder above this package.

    Found from where the code runs, not from where an editable install points, so a copied checkout
    (run from its own ``notebooks/``) never writes into the original's folders.
    """
    try:
        here = Path(start if start is not None else os.getcwd()).resolve()
    except OSError:  # the working folder was deleted
        here = None
    for folder in ([here, *here.parents] if here is not None else []):
        if is_checkout(folder):
            return folder
    return Path(__file__).resolve().parents[1]


#: The checkout found by :func:`checkout` when ``aml`` was imported (for paths that are not outputs:
#: the default data folder, ``git``'s working tree). Outputs go through :func:`output_root`.
REPO_ROOT = checkout()


def runs_dir(root: str | os.PathLike | None = None) -> Path:
    """The git-ignored folder of run folders, ``<checkout>/runs``."""
    return Path(root or checkout()) / RUNS


def _ledger_rows(path: Path) -> int:
    return len(read_csv(path)) if path.is_file() else 0


def seed_run_folder(folder: str | os.PathLike, *, source: str | os.PathLike | None = None) -> Path:
    """Give a run folder a copy of the committed results, once, so notebooks that read earlier
    results (the summary, the ledger's count of test looks) work in it.

    Copies the files directly in ``<source>/results`` (default: the checkout's; git-ignored
    sub-folders such as checkpoints are left out) into ``<folder>/results`` and writes
    ``<folder>/run.json`` (``seeded_from``, ``ledger_rows``: the ledger's rows at seeding). Does
    nothing if ``<folder>/results`` exists. Safe against a second process seeding at the same time.

    Returns
    -------
    Path
        ``folder``.
    """
    folder = Path(folder)
    target = folder / "results"
    if target.exists():
        return folder
    committed = Path(source or checkout()) / "results"
    folder.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=folder, prefix=".results.seeding-"))
    try:
        if committed.is_dir():
            for path in sorted(committed.iterdir()):
                if path.is_file() and not path.name.startswith("."):
                    shutil.copy2(path, staging / path.name)
        record = {"seeded_from": str(committed), "ledger_rows": _ledger_rows(staging / LEDGER),
                  "created_utc": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}
        try:
            staging.rename(target)
        except OSError:  # another process seeded it first: keep theirs
            return folder
        write_json(folder / RUN_RECORD, record)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return folder


def new_run_folder(root: str | os.PathLike | None = None, *, label: str = "") -> Path:
    """A fresh, seeded run folder ``<checkout>/runs/<UTC stamp>[-label]/`` (``-2``, ``-3`` ... if taken)."""
    base = runs_dir(root)
    base.mkdir(parents=True, exist_ok=True)
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ") + (f"-{label}" if label else "")
    for n in range(1, 1000):
        folder = base / (stamp if n == 1 else f"{stamp}-{n}")
        try:
            folder.mkdir()
        except FileExistsError:
            continue
        return seed_run_folder(folder, source=root)
    raise FileExistsError(f"No free run folder name under {base} for {stamp}.")


def new_ledger_rows(folder: str | os.PathLike) -> list[dict]:
    """The ledger rows a run appended in ``folder`` (those after the ``ledger_rows`` it was seeded with)."""
    folder = Path(folder)
    seeded = json.loads((folder / RUN_RECORD).read_text())["ledger_rows"] if (folder / RUN_RECORD).is_file() else 0
    path = folder / "results" / LEDGER
    return read_csv(path)[seeded:] if path.is_file() else []


def output_root() -> Path:
    """Where figures (``imgs/``) and results (``results/``) go: ``$AML_OUTPUT_DIR`` if set (the report
    build points it at its run folder, CI at a temporary one), else the git-ignored run folder of the
    checkout the code runs in, ``runs/interactive/`` (``runs/smoke/`` when :func:`smoke`), created and
    seeded with the committed results on first use. Never the committed ``results/`` or ``imgs/``:
    only the full ``make report`` writes those (it promotes its run folder)."""
    given = os.environ.get("AML_OUTPUT_DIR")
    if given:
        return Path(given)
    return seed_run_folder(runs_dir() / ("smoke" if smoke() else "interactive"))


def imgs_dir() -> Path:
    """``<output_root>/imgs``: where :mod:`aml.plots` saves figures."""
    return output_root() / "imgs"


def results_dir() -> Path:
    """``<output_root>/results``: where notebooks write and read results files and the test ledger."""
    return output_root() / "results"


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike):
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds.

    A crash half-way leaves the old file (if any) untouched and no partial file behind.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the file the usual permissions
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def to_jsonable(obj, where: str = "obj"):
    """``obj`` with NumPy scalars and arrays turned into Python numbers and lists, tuples into lists
    and paths into strings. Raises ``ValueError`` naming the place of a NaN or infinity, and
    ``TypeError`` for anything JSON cannot hold (strict JSON has neither)."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v, f"{where}[{k!r}]") for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v, f"{where}[{i}]") for i, v in enumerate(obj)]
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist(), where)
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        raise ValueError(f"{where} is {obj}; strict JSON has no NaN or infinity. Store None or a string instead.")
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    raise TypeError(f"{where} is a {type(obj).__name__}, which JSON cannot hold.")


def write_json(path: str | os.PathLike, obj) -> Path:
    """Write ``obj`` as indented, strict JSON (no NaN/Infinity; NumPy types converted), atomically."""
    text = json.dumps(to_jsonable(obj), indent=2, sort_keys=True, allow_nan=False) + "\n"
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def write_csv(rows: list[dict], path) -> Path:
    """Write result rows (dicts; the columns are the union of their keys, in first-seen order) as
    CSV, atomically."""
    if not rows:
        raise ValueError("The 'rows' parameter must hold at least one row. Got an empty list instead.")
    fields = list(dict.fromkeys(k for row in rows for k in row))
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    return Path(path)


def read_csv(path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def machine_info() -> dict:
    """CPU model, core count, GPU (if torch sees one), Python and package versions, date."""
    info = {
        "date": _dt.datetime.now().strftime("%Y-%m-%d %H:%M"),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "gpu": None,
    }
    try:
        import torch
        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
        if torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name(0)
    except ImportError:
        pass
    return info


def set_seed(seed: int) -> None:
    """Seed Python, NumPy's global generator and torch (if installed) in one call, for notebooks.

    The seed (an int in [0, 2**32)) is validated before any generator is touched, so a bad seed
    leaves them all as they were.
    """
    seed = check_seed("seed", seed)
    random.seed(seed)
    np.random.seed(seed)
    try:
        import torch
    except ImportError:  # torch is optional for the NumPy half of the project
        return
    torch.manual_seed(seed)
