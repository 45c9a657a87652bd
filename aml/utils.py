"""Seeding, atomic file writes and a description of the machine a result came from."""
from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import platform
import random
import tempfile
from pathlib import Path

import numpy as np

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


def set_seed(seed: int) -> None:
    """Seed Python, NumPy's global generator and torch (if installed) in one call, for notebooks."""
    random.seed(seed)
    np.random.seed(seed)
    try:
        import torch
    except ImportError:  # torch is optional for the NumPy half of the project
        return
    torch.manual_seed(seed)


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


def write_json(path: str | os.PathLike, obj) -> Path:
    """Write ``obj`` as indented JSON, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")
    return Path(path)


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


def _format_rows(rows: list[dict], columns: dict[str, str] | None):
    """Headers and formatted cells. ``columns`` maps each key to show to its header; a header may
    end in ``|fmt`` (a format spec such as ``.3f`` or ``.1e``) to format that column's values."""
    if not rows:
        raise ValueError("The 'rows' parameter must hold at least one row. Got an empty list instead.")
    columns = columns or {k: k for k in rows[0]}
    heads, fmts = [], []
    for header in columns.values():
        name, _, fmt = header.partition("|")
        heads.append(name)
        fmts.append(fmt)
    body = []
    for row in rows:
        cells = []
        for key, fmt in zip(columns, fmts):
            value = row.get(key, "")
            try:
                cells.append(format(float(value) if fmt and not isinstance(value, bool) else value, fmt))
            except (TypeError, ValueError):
                cells.append(str(value))
        body.append(cells)
    return heads, body


def markdown_table(rows: list[dict], columns: dict[str, str] | None = None) -> str:
    """A Markdown table of ``rows`` (see :func:`_format_rows` for ``columns``)."""
    heads, body = _format_rows(rows, columns)
    lines = ["| " + " | ".join(heads) + " |", "|" + "|".join("---" for _ in heads) + "|"]
    lines += ["| " + " | ".join(cells) + " |" for cells in body]
    return "\n".join(lines)


def _latex_escape(text: str) -> str:
    for a, b in (("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"), ("_", r"\_"), ("#", r"\#"),
                 ("$", r"\$"), ("{", r"\{"), ("}", r"\}"), ("~", r"\textasciitilde{}"), ("^", r"\^{}")):
        text = text.replace(a, b)
    return text


class Table:
    """A results table that shows as Markdown in the notebook and as a booktabs tabular in the PDF
    (pandoc's conversion of wide Markdown tables wraps every cell)."""

    def __init__(self, rows: list[dict], columns: dict[str, str] | None = None):
        self.heads, self.body = _format_rows(rows, columns)
        self.markdown = markdown_table(rows, columns)

    def _repr_markdown_(self) -> str:
        return self.markdown

    def _repr_latex_(self) -> str:
        def numeric(j):
            return all(c.replace(".", "", 1).replace("-", "", 1).replace("+", "").replace("e", "", 1).isdigit()
                       for c in (row[j] for row in self.body) if c)
        spec = "".join("r" if numeric(j) else "l" for j in range(len(self.heads)))
        lines = [r"\begin{center}\small", rf"\begin{{tabular}}{{{spec}}}", r"\toprule",
                 " & ".join(_latex_escape(h) for h in self.heads) + r" \\", r"\midrule"]
        lines += [" & ".join(_latex_escape(c) for c in cells) + r" \\" for cells in self.body]
        lines += [r"\bottomrule", r"\end{tabular}", r"\end{center}"]
        return "\n".join(lines)
