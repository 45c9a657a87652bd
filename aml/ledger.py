"""The test-set ledger: the one door through which test arrays reach a model.

Every evaluation on test appends a row to ``<results_dir>/test_ledger.csv`` (see
:func:`aml.runs.results_dir`). A configuration is identified by the hash of its canonical form (sorted
keys, seed excluded), so re-running a notebook appends a row with the same hash, and a changed recipe
evaluated on test shows as a second hash: a second look.

The ledger is evidence, so it is treated like a write-ahead log: a row is appended under an exclusive
lock with ``O_APPEND`` as one complete line and synced to disk; the file is never read, rewritten and
renamed. Every read (:func:`read_ledger`, and so :func:`summary`, :func:`looks`, :func:`first_look`)
validates every row and raises :class:`LedgerError` naming the file and the line that is wrong.

Columns: ``utc`` (``YYYY-MM-DDTHH:MM:SSZ``), ``question``, ``config_hash`` (12 hex digits), ``seed``
(int >= 0), ``n_test`` (int >= 0), ``accuracy`` (in [0, 1], rounded to 4 places; ``nan`` only when
``n_test`` is 0), ``commit`` (short hash, ``+dirty`` when the tree had changes, or ``unknown``),
``smoke`` (exactly ``True`` or ``False``).
"""
from __future__ import annotations

import csv
import datetime as _dt
import fcntl
import hashlib
import io
import json
import math
import os
import re
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ._checks import check_bool, check_seed
from .data import SealedTest
from .runs import REPO_ROOT, results_dir, to_jsonable

COLUMNS = ("utc", "question", "config_hash", "seed", "n_test", "accuracy", "commit", "smoke")
HEADER = ",".join(COLUMNS)
_EOL = "\r\n"                     # what csv writes by default, and what the committed ledger holds
_UTC_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


class LedgerError(ValueError):
    """A ledger file that is not a valid ledger; the message names the file, the line and what is wrong."""


def ledger_path() -> Path:
    """``<results_dir>/test_ledger.csv``."""
    return results_dir() / "test_ledger.csv"


def config_hash(config: dict) -> str:
    """12 hex digits of the SHA-256 of ``config`` as canonical JSON (sorted keys), without its seed."""
    canonical = {k: v for k, v in to_jsonable(config).items() if k != "seed"}
    return hashlib.sha256(json.dumps(canonical, sort_keys=True).encode()).hexdigest()[:12]


def current_commit() -> str:
    """The project's short commit, with ``+dirty`` when the tree has changes.

    "unknown" unless ``REPO_ROOT`` is itself the top level of a git work tree: a copy of the project
    without ``.git`` that lies inside another repository must not record that repository's commit.
    """
    root = Path(REPO_ROOT)

    def git(*args):
        return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=10)
    try:
        top = git("rev-parse", "--show-toplevel")
        if top.returncode != 0 or Path(top.stdout.strip()).resolve() != root.resolve():
            return "unknown"
        head = git("rev-parse", "--short", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    if head.returncode != 0:
        return "unknown"
    return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


# ----------------------------------------------------------------------------------------------------
# one row: its text form and its checks (the same on write and on read)

def _parse_utc(text):
    if re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", text):
        try:
            _dt.datetime.strptime(text, _UTC_FORMAT)
            return text
        except ValueError:
            pass
    raise ValueError(f"'utc' must be a UTC time YYYY-MM-DDTHH:MM:SSZ. Got {text!r} instead")


def _parse_question(text):
    if not text.strip():
        raise ValueError(f"'question' must be non-empty. Got {text!r} instead")
    return text


def _parse_hash(text):
    if not re.fullmatch(r"[0-9a-f]{12}", text):
        raise ValueError(f"'config_hash' must be 12 lower-case hex digits. Got {text!r} instead")
    return text


def _parse_count(name):
    def parse(text):
        if not re.fullmatch(r"\d+", text):
            raise ValueError(f"{name!r} must be an int >= 0. Got {text!r} instead")
        return int(text)
    return parse


def _parse_accuracy(text):
    try:
        value = float(text)
    except ValueError:
        value = None
    if value is None or not (math.isnan(value) or 0 <= value <= 1) or text.strip() != text:
        raise ValueError(f"'accuracy' must be a float in [0, 1] (nan for an empty test set). Got {text!r} instead")
    return value


def _parse_commit(text):
    if not re.fullmatch(r"[0-9a-f]{4,40}(\+dirty)?|unknown", text):
        raise ValueError(f"'commit' must be a short git hash (with '+dirty') or 'unknown'. Got {text!r} instead")
    return text


def _parse_smoke(text):
    if text not in ("True", "False"):
        raise ValueError(f"'smoke' must be exactly 'True' or 'False'. Got {text!r} instead"
                         + (" (a spreadsheet rewrites True/False so)" if text.lower() in ("true", "false") else ""))
    return text == "True"


_PARSERS = {"utc": _parse_utc, "question": _parse_question, "config_hash": _parse_hash,
            "seed": _parse_count("seed"), "n_test": _parse_count("n_test"), "accuracy": _parse_accuracy,
            "commit": _parse_commit, "smoke": _parse_smoke}


def _parse_fields(fields: list[str]) -> dict:
    """The typed row of a ledger line's fields; ``ValueError`` saying what is wrong."""
    if len(fields) != len(COLUMNS):
        raise ValueError(f"a row must have {len(COLUMNS)} fields ({HEADER}). Got {len(fields)} instead")
    row = {name: _PARSERS[name](text) for name, text in zip(COLUMNS, fields)}
    if (row["n_test"] == 0) != math.isnan(row["accuracy"]):
        raise ValueError(f"'accuracy' must be nan exactly when 'n_test' is 0. Got accuracy {fields[5]!r} with "
                         f"n_test {row['n_test']} instead")
    return row


def _text(value) -> str:
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, np.generic):
        value = value.item()
    return str(value)


def _line(row: dict) -> str:
    """One complete CSV line (with its line break) for ``row``, checked as :func:`read_ledger` checks it."""
    if not isinstance(row, dict) or set(row) != set(COLUMNS):
        got = sorted(row) if isinstance(row, dict) else type(row).__name__
        raise ValueError(f"The 'row' parameter must be a dict with exactly the keys {list(COLUMNS)}. Got {got} "
                         "instead.")
    fields = [_text(row[name]) for name in COLUMNS]
    for name, text in zip(COLUMNS, fields):
        if "\n" in text or "\r" in text:
            raise ValueError(f"The 'row' parameter's {name!r} must be one line. Got {text!r} instead.")
    try:
        _parse_fields(fields)
    except ValueError as e:
        raise ValueError(f"The 'row' parameter is not a valid ledger row: {e}.") from None
    buf = io.StringIO()
    csv.writer(buf, lineterminator=_EOL).writerow(fields)
    return buf.getvalue()


# ----------------------------------------------------------------------------------------------------
# the file

def _write_all(fd: int, data: bytes) -> None:
    while data:
        data = data[os.write(fd, data):]


def _check_appendable(fd: int, size: int, path: Path) -> None:
    """Refuse to append to a file that does not start with the header or whose last line is cut."""
    start = os.pread(fd, len(HEADER) + 2, 0)
    if not (start.startswith((HEADER + "\r\n").encode()) or start.startswith((HEADER + "\n").encode())):
        raise LedgerError(f"The test-set ledger {path}, line 1: the header must be exactly {HEADER!r}. Got "
                          f"{start.splitlines()[0][:200]!r} instead; nothing was appended.")
    if os.pread(fd, 1, size - 1) != b"\n":
        raise LedgerError(f"The test-set ledger {path}, last line: the row is cut off (the file does not end with "
                          "a line break; a write was interrupted). Nothing was appended: repair or remove that "
                          "line first.")


def append_row(row: dict, path: str | os.PathLike | None = None) -> None:
    """Append one row to the ledger: checked, as one complete line, under an exclusive lock.

    The file is opened with ``O_APPEND`` and locked with ``fcntl.flock(LOCK_EX)``; the header is
    written only when the file is empty; the line is flushed to disk (``fsync``) before the lock is
    released. Existing lines are never rewritten, so processes appending at the same time each add
    exactly their rows.

    Parameters
    ----------
    row : dict
        A value for each of :data:`COLUMNS`, valid as :func:`read_ledger` checks it.
    path : str or os.PathLike, optional
        Defaults to :func:`ledger_path`. Its folder is created if needed.

    Raises
    ------
    ValueError
        ``row`` is not a valid row.
    PermissionError
        The file is read-only (no write bit, even for root) or cannot be opened for writing.
    LedgerError
        The file does not start with the header, or its last line is cut off.
    """
    path = Path(path) if path is not None else ledger_path()
    line = _line(row)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() and not path.stat().st_mode & 0o222:
        raise PermissionError(f"The test-set ledger {path} is read-only (mode {path.stat().st_mode & 0o777:o}); "
                              "nothing was appended. Make it writable (chmod u+w) if this evaluation is to be "
                              "recorded there, or set AML_OUTPUT_DIR to another folder.")
    try:
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o666)   # read: the tail check
    except PermissionError as e:
        raise PermissionError(f"The test-set ledger {path} cannot be opened for appending ({e.strerror}); nothing "
                              "was appended. Make it writable, or set AML_OUTPUT_DIR to another folder.") from e
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        size = os.fstat(fd).st_size
        if size:
            _check_appendable(fd, size, path)
        _write_all(fd, ((HEADER + _EOL if size == 0 else "") + line).encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)        # closing releases the lock


def read_ledger(path: str | os.PathLike | None = None) -> list[dict]:
    """Every row of the ledger, each checked.

    Parameters
    ----------
    path : str or os.PathLike, optional
        Defaults to :func:`ledger_path`. A missing or empty file holds no rows.

    Returns
    -------
    rows : list of dict
        In file order, typed: ``utc``, ``question``, ``config_hash``, ``commit`` str; ``seed``,
        ``n_test`` int; ``accuracy`` float; ``smoke`` bool.

    Raises
    ------
    LedgerError
        Naming the file and the line: a header other than exactly :data:`COLUMNS` (or none), bytes
        that are not UTF-8, a field that does not parse or is out of range (``smoke`` written
        ``FALSE``/``false`` as a spreadsheet saves it included), a wrong number of fields, an empty
        line, or a last line cut off (no line break at the end).
    """
    path = Path(path) if path is not None else ledger_path()
    if not path.exists():
        return []
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        number = raw.count(b"\n", 0, e.start) + 1
        raise LedgerError(f"The test-set ledger {path}, line {number}: the file must be UTF-8. Got the byte "
                          f"0x{raw[e.start]:02x} instead.") from None
    if not text:
        return []
    lines = text.split("\n")
    if lines[-1]:
        raise LedgerError(f"The test-set ledger {path}, line {len(lines)}: the row is cut off (the file does not end "
                          "with a line break; a write was interrupted).")
    lines = [ln[:-1] if ln.endswith("\r") else ln for ln in lines[:-1]]
    if lines[0] != HEADER:
        raise LedgerError(f"The test-set ledger {path}, line 1: the header must be exactly {HEADER!r}. Got "
                          f"{lines[0][:200]!r} instead.")
    rows = []
    for number, line in enumerate(lines[1:], start=2):
        try:
            if not line:
                raise ValueError("the line is empty; every line after the header must be a row")
            try:
                fields = next(csv.reader([line], strict=True))
            except csv.Error as e:
                raise ValueError(f"the line is not valid CSV ({e})") from None
            rows.append(_parse_fields(fields))
        except ValueError as e:
            raise LedgerError(f"The test-set ledger {path}, line {number}: {e}.") from None
    return rows


# ----------------------------------------------------------------------------------------------------
# evaluating, and counting the looks

@dataclass(frozen=True)
class TestEvaluation:
    """What one ledgered evaluation returns: the accuracy, the predictions (N,), the ledger row, and the
    test labels (N,) (released with the result, for confusion matrices and misclassified examples)."""
    accuracy: float
    predictions: np.ndarray
    row: dict
    labels: np.ndarray

    __test__ = False   # not a test class, for pytest where it is imported


def _check_predictions(predictions, num_test: int) -> np.ndarray:
    """Integer labels of shape exactly (num_test,): a (N, 1) column would broadcast against the labels
    and give a wrong accuracy without a word."""
    predictions = np.asarray(predictions)
    if predictions.dtype.kind not in "iu":
        raise TypeError("The 'predictions' (what predict returned) must be integer class labels. Got dtype "
                        f"{predictions.dtype} instead.")
    if predictions.shape != (num_test,):
        raise ValueError(f"The 'predictions' (what predict returned) must have shape ({num_test},), one label per "
                         f"test image. Got shape {predictions.shape} instead.")
    return predictions


def evaluate_on_test(question: str, config: dict, seed: int, predict: Callable, test: SealedTest, *,
                     smoke: bool) -> TestEvaluation:
    """Predict the sealed test split, score it, and append the ledger row before anything is returned.

    Parameters
    ----------
    question : str
        The question the evaluation answers, e.g. ``"q3b"``.
    config : dict
        The canonical configuration of the model (a flat dict); its hash identifies the recipe.
    seed : int in [0, 2**32)
        The seed of the tested model.
    predict : callable
        ``predict(X) -> labels (N,)`` for the sealed images X (N, ...), e.g. (N, D) arrays from
        :func:`aml.load_cifar10` or tensors from ``test.map(...)``.
    test : aml.data.SealedTest
        The test split (``split.test``). Plain arrays are refused: the ledger is the only door.
    smoke : bool
        Whether this is a small-budget (CI) run; smoke rows are left out of the counts by default.

    Returns
    -------
    TestEvaluation
        ``accuracy`` (nan for an empty split), ``predictions`` (N,), ``row`` (the ledger row), and
        ``labels`` (N,).
    """
    if not isinstance(question, str) or not question.strip():
        raise ValueError(f"The 'question' parameter must be a non-empty str. Got {question!r} instead.")
    if not isinstance(config, dict):
        raise TypeError(f"The 'config' parameter must be a dict. Got {type(config).__name__} instead.")
    seed = check_seed("seed", seed)
    smoke = check_bool("smoke", smoke)
    if not callable(predict):
        raise TypeError(f"The 'predict' parameter must be callable. Got {type(predict).__name__} instead.")
    if not isinstance(test, SealedTest):
        raise TypeError("The 'test' parameter must be an aml.data.SealedTest (the split's .test, or "
                        f"SealedTest(X, y) in a unit test). Got {type(test).__name__} instead.")
    X, y = test._open()
    predictions = _check_predictions(predict(X), len(y))
    accuracy = float((predictions == y).mean()) if len(y) else float("nan")
    row = {"utc": _dt.datetime.now(_dt.timezone.utc).strftime(_UTC_FORMAT), "question": question,
           "config_hash": config_hash(config), "seed": seed, "n_test": len(y),
           "accuracy": round(accuracy, 4), "commit": current_commit(), "smoke": smoke}
    append_row(row)
    return TestEvaluation(accuracy, predictions, row, y.copy())


def summary(path: str | os.PathLike | None = None, *, include_smoke: bool = False) -> list[dict]:
    """Per question: test evaluations, distinct configurations evaluated, and the first and last date.

    Smoke (CI) rows are left out unless ``include_smoke``. Raises :class:`LedgerError` for an invalid
    ledger (see :func:`read_ledger`).
    """
    rows = [r for r in read_ledger(path) if include_smoke or not r["smoke"]]
    out = []
    for question in sorted({r["question"] for r in rows}):
        mine = [r for r in rows if r["question"] == question]
        out.append({"question": question, "evaluations": len(mine),
                    "configurations": len({r["config_hash"] for r in mine}),
                    "first": mine[0]["utc"][:10], "last": mine[-1]["utc"][:10]})
    return out


def looks(question: str, config_hash: str, path: str | os.PathLike | None = None, *,
          include_smoke: bool = False) -> dict:
    """How often the test set has been looked at for ``question``.

    Returns
    -------
    dict
        ``evaluations`` and distinct ``configurations`` of the question; for the configuration
        ``config_hash``, its evaluations (``this_config``) and the distinct accuracies they gave
        (``accuracies``, sorted); ``configurations_before``: the distinct configurations evaluated
        before this one's first row; ``first_accuracy`` and ``first_utc``: the question's first look.
        Smoke (CI) rows are left out unless ``include_smoke``.
    """
    mine = [r for r in read_ledger(path) if r["question"] == question and (include_smoke or not r["smoke"])]
    same = [r for r in mine if r["config_hash"] == config_hash]
    first_same = next((i for i, r in enumerate(mine) if r["config_hash"] == config_hash), len(mine))
    return {"evaluations": len(mine), "configurations": len({r["config_hash"] for r in mine}),
            "this_config": len(same), "accuracies": sorted({r["accuracy"] for r in same}),
            "configurations_before": len({r["config_hash"] for r in mine[:first_same]}),
            "first_accuracy": mine[0]["accuracy"] if mine else None,
            "first_utc": mine[0]["utc"][:10] if mine else None}


def first_look(question: str, path: str | os.PathLike | None = None, *, include_smoke: bool = False) -> dict | None:
    """The first evaluation on test for ``question``: the honest figure, made before any later recipe
    could profit from what the test set said.

    Parameters
    ----------
    question : str
    path : str or os.PathLike, optional
        Defaults to :func:`ledger_path`.
    include_smoke : bool
        Count smoke (CI) rows too (by default the first non-smoke row is taken).

    Returns
    -------
    dict or None
        ``accuracy``, ``config_hash``, ``seed``, ``n_test``, ``utc`` and ``commit`` of the question's
        first row; None when the ledger holds no row for it.
    """
    for r in read_ledger(path):
        if r["question"] == question and (include_smoke or not r["smoke"]):
            return {k: r[k] for k in ("accuracy", "config_hash", "seed", "n_test", "utc", "commit")}
    return None


def describe_looks(label: str, looked: dict) -> str:
    """One sentence for the report from :func:`looks`: how many configurations of question ``label``
    were evaluated on the test set before this one, the first look's figure, and how often this
    configuration was evaluated."""
    def n(count, noun):
        return f"{count} {noun}{'' if count == 1 else 's'}"

    before = looked["configurations_before"]
    if before == 0 and looked["this_config"] == 1:
        return f"This is the first look at the test set for {label}: the ledger holds no other evaluation."
    text = (f"Before this configuration, {n(before, 'other configuration')} of {label} had been evaluated on the "
            f"test set; the first look ({looked['first_utc']}) gave {looked['first_accuracy']:.3f}. "
            f"The ledger holds {n(looked['evaluations'], 'evaluation')} of "
            f"{n(looked['configurations'], 'configuration')}; "
            f"this one was evaluated {n(looked['this_config'], 'time')}")
    if looked["this_config"] > 1 and len(looked["accuracies"]) == 1:
        text += ", always with the same result (re-runs of the same code)"
    return text + "."
