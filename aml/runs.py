"""A run: where its files go (never the committed record), how they are written, its budget, seed, machine."""
import contextlib
import datetime as dt
import json
import os
import platform
import random
import shutil
from pathlib import Path

import numpy as np

from ._checks import check_seed


def smoke(environ=None) -> bool:
    """``$AML_SMOKE`` as a boolean (unset: False); an unknown word raises ValueError (a typo is no full run)."""
    value = (os.environ if environ is None else environ).get("AML_SMOKE", "")
    if value.strip().lower() not in ("1", "true", "yes", "on", "0", "false", "no", "off", ""):
        raise ValueError(f"AML_SMOKE must be one of 1, true, yes, on or 0, false, no, off or empty. "
                         f"Got {value!r} instead.")
    return value.strip().lower() in ("1", "true", "yes", "on")


def checkout(start: str | os.PathLike | None = None) -> Path:
    """The nearest folder at or above ``start`` (default: cwd) with ``aml/__init__.py`` and ``notebooks/``."""
    here = Path(start if start is not None else os.getcwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "aml" / "__init__.py").is_file() and (folder / "notebooks").is_dir():
            return folder
    return Path(__file__).resolve().parents[1]


def seed_run_folder(path: str | os.PathLike, *, source: str | os.PathLike | None = None) -> Path:
    """Copy the files of ``<source>/results`` (default: the checkout's) into ``<path>/results``, once."""
    path, committed = Path(path), Path(source or checkout()) / "results"
    if not (path / "results").exists():
        staging = path / f".seeding-{os.getpid()}-{os.urandom(4).hex()}"
        staging.mkdir(parents=True)
        for file in (f for f in committed.glob("[!.]*") if f.is_file()):   # not sub-folders (checkpoints)
            shutil.copy2(file, staging)
        with contextlib.suppress(OSError):      # another process seeded it first: keep theirs
            staging.rename(path / "results")
        shutil.rmtree(staging, ignore_errors=True)
    return path


def output_root() -> Path:
    """``$AML_OUTPUT_DIR``, else ``<checkout>/runs/interactive`` (``runs/smoke`` if :func:`smoke`), seeded."""
    given = os.environ.get("AML_OUTPUT_DIR")
    return Path(given) if given else seed_run_folder(checkout() / "runs" / ("smoke" if smoke() else "interactive"))


def results_dir() -> Path:
    return output_root() / "results"           # results files and the test ledger


def imgs_dir() -> Path:
    return output_root() / "imgs"              # figures


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike):
    """Yield a temporary path beside ``path``, renamed onto it (``os.replace``) only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{os.urandom(4).hex()}.tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def json_default(obj):
    """``json.dumps``' ``default``: NumPy values as numbers and lists, paths as strings; else TypeError."""
    if isinstance(obj, (np.generic, np.ndarray, os.PathLike)):
        return os.fspath(obj) if isinstance(obj, os.PathLike) else obj.tolist()
    raise TypeError(f"a {type(obj).__name__} is a value JSON cannot hold")


def to_jsonable(obj, where: str = "obj"):
    """``obj`` as strict JSON holds it (:func:`json_default`); a NaN or infinity raises ValueError naming ``where``."""
    try:
        return json.loads(json.dumps(obj, default=json_default, allow_nan=False))
    except ValueError as e:
        raise ValueError(f"{where}: {e}; strict JSON has no NaN or infinity, store None instead") from None


def write_json(path: str | os.PathLike, obj) -> Path:
    """Write ``obj`` as indented, sorted, strict JSON (:func:`to_jsonable`), atomically."""
    text = json.dumps(to_jsonable(obj, str(path)), indent=2, sort_keys=True) + "\n"
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def write_csv(rows, path: str | os.PathLike) -> Path:
    """Write ``rows`` (dicts or a DataFrame; columns: the union of the keys) as CSV, atomically."""
    import pandas as pd  # here, so that ``import aml`` stays light
    if len(rows) == 0:
        raise ValueError("The 'rows' parameter must hold at least one row. Got none instead.")
    with atomic_path(path) as tmp:
        pd.DataFrame(rows).to_csv(tmp, index=False)
    return Path(path)


def machine_info() -> dict:
    """Date, CPU model, core count, Python, NumPy and torch versions, torch threads and GPU (or None)."""
    import torch
    cpus = Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").is_file() else []
    cpu = next((line.split(":", 1)[1].strip() for line in cpus if line.startswith("model name")), platform.machine())
    return {"date": dt.datetime.now().strftime("%Y-%m-%d %H:%M"), "cpu": cpu, "cpu_count": os.cpu_count(),
            "python": platform.python_version(), "numpy": np.__version__, "torch": torch.__version__,
            "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}


def set_seed(seed: int) -> None:
    """Seed Python, NumPy's global generator and torch in one call; ``seed`` is checked first."""
    import torch
    seed = check_seed("seed", seed)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
