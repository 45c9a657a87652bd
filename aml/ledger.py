"""The test-set ledger, ``<results_dir>/test_ledger.csv``, the one door to the test images: each evaluation
appends one row (a line, under a file lock) before it returns; each read checks every field (:data:`FIELDS`).
A configuration is its canonical JSON's hash without the seed: a changed recipe shows as a second look."""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import subprocess
from collections import namedtuple
from pathlib import Path

import numpy as np
import pandas as pd
from filelock import FileLock

from ._checks import check_bool, check_seed, check_y
from .data import SealedTest
from .runs import checkout, results_dir, to_jsonable

FIELDS = {  # column: (the text it must match in full, what that means)
    "utc": (r"\d{4}-(0[1-9]|1[0-2])-[0-3]\dT[0-2]\d:[0-5]\d:[0-5]\dZ", "a UTC time YYYY-MM-DDTHH:MM:SSZ"),
    "question": (r"[^\r\n]*\S[^\r\n]*", "a non-empty line"),
    "config_hash": (r"[0-9a-f]{12}", "12 lower-case hex digits"),
    "seed": (r"\d+", "an int >= 0"),
    "n_test": (r"\d+", "an int >= 0"),
    "accuracy": (r"nan|0(\.\d+)?|1(\.0+)?", "a float in [0, 1], nan for an empty test set"),
    "commit": (r"[0-9a-f]{4,40}(\+dirty)?|unknown", "a short git hash, with +dirty, or 'unknown'"),
    "smoke": (r"True|False", "exactly True or False"),
}
COLUMNS, HEADER = tuple(FIELDS), ",".join(FIELDS)
TestEvaluation = namedtuple("TestEvaluation", "accuracy predictions row labels")   # predictions, labels: (N,)


def config_hash(config: dict) -> str:
    """12 hex digits of the SHA-256 of ``config`` as canonical JSON (sorted keys), without its seed."""
    if not isinstance(config, dict):
        raise TypeError(f"The 'config' parameter must be a dict. Got {type(config).__name__} instead.")
    canonical = {k: v for k, v in to_jsonable(config).items() if k != "seed"}
    return hashlib.sha256(json.dumps(canonical, sort_keys=True).encode()).hexdigest()[:12]


def current_commit(root=None) -> str:
    """Short commit (``+dirty``: with changes) of ``root`` (default: the checkout) if it is a git top level."""
    root = Path(root or checkout()).resolve()
    try:
        top, head, dirty = (subprocess.run(["git", *a.split()], cwd=root, capture_output=True, text=True, timeout=10)
                            .stdout.strip() for a in ("rev-parse --show-toplevel", "rev-parse --short HEAD",
                                                      "status --porcelain --untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return head + "+dirty" * bool(dirty) if top == str(root) and head else "unknown"


def _checked(text: pd.DataFrame, where) -> pd.DataFrame:
    """``text`` (every field a str) typed; ValueError ``where(i)``: what is wrong, for the first bad row i."""
    for name, (pattern, meaning) in FIELDS.items():
        if (bad := ~text[name].str.fullmatch(pattern).to_numpy(bool)).any():
            raise ValueError(f"{where(bad.argmax())}: '{name}' must be {meaning}. Got {text[name][bad].iloc[0]!r}.")
    rows = text.astype({"seed": "int64", "n_test": "int64", "accuracy": "float64"})
    rows["smoke"] = text["smoke"] == "True"
    return rows


def read_ledger(path=None) -> pd.DataFrame:
    """Every row, checked and typed (seed, n_test int64; accuracy float64; smoke bool; the rest str); none
    for a missing file. ValueError naming the file and the line of a bad header, row or field."""
    path = Path(path or results_dir() / "test_ledger.csv")
    if not path.exists() or path.stat().st_size == 0:
        return _checked(pd.DataFrame(columns=COLUMNS, dtype=str), str)
    try:
        text = pd.read_csv(path, dtype=str, keep_default_na=False, skip_blank_lines=False, encoding="utf-8")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise ValueError(f"The test-set ledger {path}: {type(e).__name__}: {e}".strip()) from None
    if tuple(text.columns) != COLUMNS or not isinstance(text.index, pd.RangeIndex):   # index: a row of 9 fields
        raise ValueError(f"The test-set ledger {path}, line 1: the header must be {HEADER!r} and line 2 have "
                         f"{len(COLUMNS)} fields. Got {','.join(text.columns)!r} instead.")
    return _checked(text.fillna(""), lambda i: f"The test-set ledger {path}, line {i + 2}")


def evaluate_on_test(question: str, config: dict, seed: int, predict_fn, sealed_test: SealedTest, *,
                     smoke: bool = False, path=None) -> TestEvaluation:
    """Predict the sealed test images X (N, ...) with ``predict_fn(X) -> labels (N,)``, score them, and
    append the row (``config`` hashed, ``seed``, ``smoke``: a small-budget CI run) to the ledger at ``path``
    (default ``<results_dir>/test_ledger.csv``) as one line, under a file lock, before returning."""
    if not isinstance(sealed_test, SealedTest):
        raise TypeError(f"The 'sealed_test' parameter must be a SealedTest. Got {type(sealed_test).__name__} instead.")
    seed, smoke = check_seed("seed", seed), check_bool("smoke", smoke)
    path = Path(path or results_dir() / "test_ledger.csv")
    X, y = sealed_test._open()
    predictions = check_y(np.asarray(predict_fn(X)), num_samples=len(y), name="predictions")
    accuracy = float((predictions == y).mean()) if len(y) else float("nan")
    row = {"utc": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"), "question": question,
           "config_hash": config_hash(config), "seed": seed, "n_test": len(y), "accuracy": round(accuracy, 4),
           "commit": current_commit(), "smoke": smoke}
    text = pd.DataFrame([{k: str(v) for k, v in row.items()}])
    _checked(text, lambda i: "The ledger row")                      # e.g. an empty question
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(f"{path}.lock"), open(path, "a+b", buffering=0) as f:   # "a": writes go to the end
        f.seek(0)
        if (old := f.read()) and not old.endswith(b"\n"):
            raise ValueError(f"The test-set ledger {path}, last line: it is cut off. Nothing was appended.")
        read_ledger(path)                                           # every row valid before one is added
        f.write((f"{HEADER}\r\n" * (not old) + text.to_csv(header=False, index=False, lineterminator="\r\n")).encode())
        os.fsync(f.fileno())
    return TestEvaluation(accuracy, predictions, row, y.copy())


def looks(question: str, config_hash: str, path=None, *, include_smoke: bool = False) -> dict:
    """``question``'s evaluations, configurations, first look (accuracy, utc date); ``config_hash``'s
    evaluations (this_config), distinct accuracies, configurations before its first. Smoke rows if asked."""
    rows = read_ledger(path)
    mine = rows[(rows["question"] == question) & (include_smoke | ~rows["smoke"])].reset_index(drop=True)
    same = mine[mine["config_hash"] == config_hash]
    first = same.index[0] if len(same) else len(mine)
    return {"evaluations": len(mine), "configurations": mine["config_hash"].nunique(), "this_config": len(same),
            "accuracies": sorted(set(same["accuracy"].tolist())),
            "configurations_before": mine["config_hash"][:first].nunique(),
            "first_accuracy": float(mine["accuracy"][0]) if len(mine) else None,
            "first_utc": mine["utc"][0][:10] if len(mine) else None}


def describe_looks(label: str, looked: dict) -> str:
    """One sentence from :func:`looks`: how many configurations of ``label`` were tested before this one, and
    whether this one's repeated evaluations (each full run retrains and re-tests it) agreed."""
    n, times, accs = looked["configurations_before"], looked["this_config"], looked.get("accuracies", [])
    same = (f", each full run retraining and re-testing it: every time {accs[0]:.3f}" if times > 1 and len(accs) == 1
            else f", scoring {min(accs):.3f} to {max(accs):.3f}" if times > 1 and accs else "")
    return (f"Before this configuration, {n} other configuration{'s' * (n != 1)} of {label} had been evaluated on "
            f"the test set; this one was evaluated {'once' if times == 1 else f'{times} times'}{same}.")
