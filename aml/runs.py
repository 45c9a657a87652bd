"""A run: where its files go, how they are written (atomically, strict JSON), its seed, and the machine it ran on."""
from __future__ import annotations

import contextlib
import csv
import datetime as _dt
import json
import math
import os
import platform
import random
import tempfile
from pathlib import Path

import numpy as np

from ._checks import check_seed

REPO_ROOT = Path(__file__).resolve().parents[1]


def output_root() -> Path:
    """Where figures (``imgs/``) and results (``results/``) go: ``$AML_OUTPUT_DIR`` if set (CI's
    small-budget runs write to a temporary folder, so they never overwrite the full run's files),
    else the repository."""
    return Path(os.environ.get("AML_OUTPUT_DIR") or REPO_ROOT)


def imgs_dir() -> Path:
    return output_root() / "imgs"


def results_dir() -> Path:
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
