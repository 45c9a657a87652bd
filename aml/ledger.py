"""The test-set ledger: the one door through which test arrays reach a model.

Every evaluation on test appends a row to ``results/test_ledger.csv`` (under ``$AML_OUTPUT_DIR`` in
smoke runs, so CI never writes to the committed ledger). A configuration is identified by the hash
of its canonical form (sorted keys, seed excluded), so re-running a notebook appends a row with the
same hash, and a changed recipe evaluated on test shows as a second hash: a second look.
"""
from __future__ import annotations

import csv
import datetime as _dt
import hashlib
import json
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ._checks import check_labels
from .runs import REPO_ROOT, atomic_path, read_csv, results_dir, to_jsonable

COLUMNS = ("utc", "question", "config_hash", "seed", "n_test", "accuracy", "commit", "smoke")


def ledger_path() -> Path:
    return results_dir() / "test_ledger.csv"


def config_hash(config: dict) -> str:
    """12 hex digits of the SHA-256 of ``config`` as canonical JSON (sorted keys), without its seed."""
    canonical = {k: v for k, v in to_jsonable(config).items() if k != "seed"}
    return hashlib.sha256(json.dumps(canonical, sort_keys=True).encode()).hexdigest()[:12]


def current_commit() -> str:
    """The repository's short commit, with ``+dirty`` when the tree has changes ("unknown" outside git)."""
    def git(*args):
        return subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10)
    try:
        head = git("rev-parse", "--short", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    if head.returncode != 0:
        return "unknown"
    return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


@dataclass(frozen=True)
class TestEvaluation:
    """What one ledgered evaluation returns: the accuracy, the predictions (N,) and the ledger row."""
    accuracy: float
    predictions: np.ndarray
    row: dict


def evaluate_on_test(question: str, config: dict, seed: int, predict: Callable, X_test, y_test, *,
                     smoke: bool) -> TestEvaluation:
    """Predict the test set with ``predict(X_test) -> labels (N,)``, score it, and append the ledger row.

    ``config`` is the canonical configuration of the model (a flat dict); ``seed`` the seed of the
    tested model. The row is appended before anything is returned, so no test result exists that
    the ledger does not hold.
    """
    predictions = np.asarray(predict(X_test))
    y = check_labels(np.asarray(y_test), num_samples=len(predictions), name="y_test")
    accuracy = float((predictions == y).mean()) if len(y) else float("nan")
    row = {"utc": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"), "question": question,
           "config_hash": config_hash(config), "seed": int(seed), "n_test": len(y),
           "accuracy": round(accuracy, 4), "commit": current_commit(), "smoke": bool(smoke)}
    append_row(row)
    return TestEvaluation(accuracy, predictions, row)


def append_row(row: dict, path: Path | None = None) -> None:
    """Append one row to the ledger (written whole to a temp file, then renamed)."""
    path = Path(path or ledger_path())
    rows = read_csv(path) if path.exists() else []
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows([*rows, row])


def summary(path: Path | None = None, *, include_smoke: bool = False) -> list[dict]:
    """Per question: test evaluations, distinct configurations evaluated, and the first and last date.
    Smoke (CI) rows are left out unless ``include_smoke``."""
    path = Path(path or ledger_path())
    rows = read_csv(path) if path.exists() else []
    rows = [r for r in rows if include_smoke or r["smoke"] == "False"]
    out = []
    for question in sorted({r["question"] for r in rows}):
        mine = [r for r in rows if r["question"] == question]
        out.append({"question": question, "evaluations": len(mine),
                    "configurations": len({r["config_hash"] for r in mine}),
                    "first": mine[0]["utc"][:10], "last": mine[-1]["utc"][:10]})
    return out


def looks(question: str, config_hash: str, path: Path | None = None, *, include_smoke: bool = False) -> dict:
    """How often the test set has been looked at for ``question``: its ``evaluations`` and distinct
    ``configurations``, and for one configuration its evaluations (``this_config``) and the distinct
    accuracies they gave (``accuracies``, sorted). Smoke (CI) rows are left out unless ``include_smoke``."""
    path = Path(path or ledger_path())
    rows = read_csv(path) if path.exists() else []
    mine = [r for r in rows if r["question"] == question and (include_smoke or r["smoke"] == "False")]
    same = [r for r in mine if r["config_hash"] == config_hash]
    return {"evaluations": len(mine), "configurations": len({r["config_hash"] for r in mine}),
            "this_config": len(same), "accuracies": sorted({float(r["accuracy"]) for r in same})}


def describe_looks(label: str, looked: dict) -> str:
    """One sentence for the report from :func:`looks`: how often the test set was evaluated for the
    question ``label`` and for this configuration, and whether this is a first look."""
    def n(count, noun):
        return f"{count} {noun}{'' if count == 1 else 's'}"

    text = (f"The ledger now holds {n(looked['evaluations'], 'test evaluation')} for {label}, of "
            f"{n(looked['configurations'], 'configuration')}; "
            f"this one was evaluated {n(looked['this_config'], 'time')}")
    if looked["this_config"] > 1 and len(looked["accuracies"]) == 1:
        text += ", always with the same result (re-runs of the same code)"
    if looked["configurations"] > 1:
        return text + (". So this is not a first look at the test set: earlier recipes were tested too (the "
                       "summary lists every row).")
    return text + "."
