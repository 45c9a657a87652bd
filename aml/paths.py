"""Where things live: the repository, and the output folders for figures and results."""
from __future__ import annotations

import os
from pathlib import Path

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
