"""Hyper-parameter search with Optuna, one function for both halves (Q3b and Q4).

A study is made once with a seeded TPE sampler (random for its first trials), a successive-halving
pruner whose resource is the epoch, and a storage. Each trial trains a configuration on a training
subset (the screening budget), reports after every epoch the accuracy on the split the training loop
monitors (its ``val_acc_history``: the selection split when the data has one, else validation), and
is stopped at a rung (1, 3, 9 epochs) unless it is in the best third of the trials that reached it;
the survivors train to the full screening budget. A trial's value is its best epoch's accuracy on
that split. The study is the record: :func:`trials_table` becomes the results CSV, and the final
configuration is the best complete trial.

Storage
-------
A file path (Optuna's journal file, safe for several processes on one machine) or an RDB URL such as
``postgresql://user@host/db``, which workers on many machines share::

    python -m aml.search --question q3b --storage results/optuna/q3b.journal --study q3b --n-trials 20
    python -m aml.search --question q4 --depth 3 --storage postgresql://aml@db-host/aml --study q4-depth3 --n-trials 10

What a worker can rely on:

- **The study's fixed arguments are checked.** The question, depth, budget (its name, smoke or not, its
  epochs) and the data sizes are stored as study user attributes when the study is created; a worker
  whose arguments differ is refused (:class:`StudyMismatch`), naming the attribute, the stored and the
  given value.
- **Workers die; studies survive.** RDB storages run Optuna's heartbeat (every
  :data:`HEARTBEAT_INTERVAL_S` s): a RUNNING trial without a heartbeat for :data:`GRACE_PERIOD_S` s is
  marked FAIL by the next worker and retried once (:data:`MAX_RETRY`) with the same parameters. A
  journal file has no heartbeat, so :func:`fail_stale_trials` applies a rule at every worker start: a
  RUNNING trial that started more than :data:`STALE_AFTER_S` s ago, whose worker (host and process id,
  recorded in its ``worker`` user attribute) ran on this host and is no longer running, is marked FAIL
  and retried the same way. Trials of workers on other hosts are left alone (this host cannot tell
  whether they are alive).
- **A cut journal is repaired.** A journal whose last line has no newline (a writer killed
  mid-write: Optuna never applied that line) has the partial line removed, under the journal's lock,
  and the repair is said on stderr, naming the file and the line; any other line that is not valid
  JSON makes the journal refused, naming the file and the line.
- **Storage errors are one line.** An unreachable host (connections time out after
  :data:`CONNECT_TIMEOUT_S` s), an unknown URL scheme, a directory or a read-only file given as a
  journal: :class:`StorageError` with ``cannot open storage <URL>: <reason>. <what to do>`` (passwords
  hidden); the command line prints it after ``aml.search:`` and exits with status 2.

Notebooks never use the workers' folder ``results/optuna/``: :func:`notebook_storage` gives them a
fresh journal in their run folder or a temporary one.
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime as _dt
import json
import math
import os
import socket
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

from ._checks import check_choice, check_nonneg_int, check_positive_int, check_seed
from .objective import one_line as _one_line
from .objective import run_trial

QUESTIONS = ("q3b", "q4")
CREATE_ATTEMPTS = 5          # workers that start together race to create a new database's tables (only that is retried)
CONNECT_TIMEOUT_S = 10       # a database host that accepts but never answers fails after this, not never
HEARTBEAT_INTERVAL_S = 60    # RDB storages: a running trial records a heartbeat this often
GRACE_PERIOD_S = 180         # ... and is failed (and retried) by the next worker after this long without one
MAX_RETRY = 1                # a trial failed for a lost worker is retried this many times with its parameters
STALE_AFTER_S = 120          # journal files: a RUNNING trial of a dead local worker older than this is failed
MIN_IMPORTANCE_TRIALS = 20   # importances from fewer trials than this are not shown
REPO_ROOT = Path(__file__).resolve().parents[1]
WORKER_DIR = REPO_ROOT / "results" / "optuna"   # the README gives this folder to workers; notebooks never touch it
RDB_BACKENDS = ("postgresql", "mysql", "sqlite")


class StorageError(RuntimeError):
    """A study storage that cannot be opened or used. The message is one line:
    ``cannot open storage <URL>: <reason>. <what to do>`` (the URL with its password hidden)."""

    def __init__(self, url: str, reason: str, todo: str):
        self.url, self.reason, self.todo = url, _one_line(reason).rstrip("."), todo
        super().__init__(f"cannot open storage {url}: {self.reason}. {todo}")


class StudyMismatch(ValueError):
    """A worker's fixed arguments differ from those stored with the study it joins."""


@dataclass(frozen=True)
class Budget:
    """How much a search may spend: trials, epochs per trial (the pruner's resource), and the number
    of training images each trial sees (a subset screens cheaply), and ``final_epochs``: the epochs
    of the runs that retrain the best complete trial's configuration on the whole training set with
    several seeds. Q4 has a second stage, ``promote_epochs`` (0: none): the depth study's seeds run
    ``final_epochs`` each, and only the chosen depth is then trained for ``promote_epochs``."""
    n_trials: int
    max_epochs: int
    min_epochs: int
    num_train: int
    final_epochs: int
    promote_epochs: int = 0

    def __post_init__(self):
        for name in ("n_trials", "max_epochs", "min_epochs", "num_train", "final_epochs"):
            check_positive_int(name, getattr(self, name))
        check_nonneg_int("promote_epochs", self.promote_epochs)
        if self.min_epochs > self.max_epochs:
            raise ValueError(f"The 'min_epochs' parameter must be at most max_epochs={self.max_epochs}. "
                             f"Got {self.min_epochs} instead.")


#: Budgets per question and machine: "cpu" is sized for this project's 2-core CPU (notebook 03
#: within 20 minutes and 04 within 25, searches, seeds and the test included), "gpu" for one CUDA
#: GPU (Q4 only), "smoke" for CI.
BUDGETS = {
    ("q3b", "cpu"): Budget(n_trials=32, max_epochs=9, min_epochs=1, num_train=20000, final_epochs=18),
    ("q3b", "smoke"): Budget(n_trials=4, max_epochs=2, min_epochs=1, num_train=500, final_epochs=1),
    ("q4", "cpu"): Budget(n_trials=12, max_epochs=9, min_epochs=1, num_train=10000, final_epochs=5,
                          promote_epochs=12),
    ("q4", "gpu"): Budget(n_trials=24, max_epochs=15, min_epochs=2, num_train=49000, final_epochs=30,
                          promote_epochs=60),
    ("q4", "smoke"): Budget(n_trials=3, max_epochs=2, min_epochs=1, num_train=500, final_epochs=1,
                            promote_epochs=2),
}


def budget(question: str, smoke: bool, *, gpu: bool = False) -> Budget:
    """The budget of ``question``: smoke (CI), else the GPU one when ``gpu`` (Q4), else the CPU one."""
    check_choice("question", question, QUESTIONS)
    kind = "smoke" if smoke else ("gpu" if gpu and question == "q4" else "cpu")
    return BUDGETS[(question, kind)]


def suggest_q3b(trial, *, smoke: bool = False) -> dict:
    """The Q3b search space: the NumPy net's knobs that matter (flat NetConfig fields).

    The input scaling is not searched: inputs are always the mean-subtracted pixels divided by their
    global standard deviation (``preprocess="scale"``, fixed in :func:`q3b_config`), because the
    initial weights are tied to the input scale. He initialisation, ``sqrt(2 / D)``, assumes inputs
    of unit scale; on the handout's unscaled pixels (standard deviation about 60) it gives first
    scores about 60 times too large, minibatch losses of 56-195 at the first step, and every such
    trial diverged: a quarter of the space was broken by construction. (The handout's own remedy,
    ``std=1e-4`` on unscaled pixels, needs learning rates near 1e-4, outside the range searched here;
    :func:`q3b_config` still applies it to old params with ``preprocess="mean"``.) With unit-scale
    inputs every point of the space starts at a softmax loss near ln(10) ~ 2.3 (plus the L2 penalty
    ``reg * sum(W**2)``, about ``reg * (2 H + 2 C)`` at He initialisation); a trial that diverges later
    all the same is stopped by the divergence guard and recorded as FAIL with its ``fail_reason``.

    The learning rate is searched as the *step size* ``learning_rate / (1 - momentum)`` (10^-3 to
    10^-1, log scale), the size of a step once momentum has built up: momentum 0.9 multiplies the
    learning rate's step tenfold, and a first full run that drew the learning rate alone over the same
    range lost 4 of 24 trials to divergence, all with momentum 0.9 and step sizes of 0.4 to 0.9.

    Parameters
    ----------
    trial : optuna.trial.Trial
    smoke : bool
        CI's tiny widths (20, 40) instead of (500, 1000). (2,000 hidden units would double the
        promoted run, which the CPU budget of notebook 03 does not afford.)

    Returns
    -------
    dict
        Flat NetConfig fields; ``learning_rate_decay`` only for the step schedule, ``nesterov`` True
        only with momentum.
    """
    momentum = trial.suggest_categorical("momentum", [0.0, 0.9])
    step_size = trial.suggest_float("step_size", 1e-3, 1e-1, log=True)
    p = {
        "hidden_size": trial.suggest_categorical("hidden_size", [20, 40] if smoke else [500, 1000]),
        "learning_rate": learning_rate_of(step_size, momentum),
        "reg": trial.suggest_float("reg", 1e-5, 1e-1, log=True),
        "lr_schedule": trial.suggest_categorical("lr_schedule", ["step", "cosine"]),
        "momentum": momentum,
        "nesterov": trial.suggest_categorical("nesterov", [False, True]) if momentum > 0 else False,
        "batch_size": trial.suggest_categorical("batch_size", [100, 200, 400]),
        "dropout": trial.suggest_float("dropout", 0.0, 0.5, step=0.1),
        "flip": trial.suggest_categorical("flip", [False, True]),
    }
    if p["lr_schedule"] == "step":
        p["learning_rate_decay"] = trial.suggest_float("learning_rate_decay", 0.8, 1.0)
    return p


def suggest_q4(trial, *, smoke: bool = False, gpu: bool = False) -> dict:
    """The Q4 search space at a fixed depth (flat MLPConfig fields; the depth is the study's). Widths
    are what the machine affords: up to 512 on the CPU budget, up to 3072 on a GPU. Flips are always
    on (see :func:`q4_config`); the crop's padding is searched."""
    widths = [32, 64] if smoke else ([1024, 2048, 3072] if gpu else [256, 512])
    return {
        "width": trial.suggest_categorical("width", widths),
        "lr": trial.suggest_float("lr", 3e-4, 1e-2, log=True),
        "weight_decay": trial.suggest_float("weight_decay", 1e-3, 2e-1, log=True),
        "dropout": trial.suggest_float("dropout", 0.0, 0.5, step=0.1),
        "batch_size": trial.suggest_categorical("batch_size", [128, 256, 512]),
        "crop_padding": trial.suggest_categorical("crop_padding", [2, 4]),
    }


def learning_rate_of(step_size: float, momentum: float) -> float:
    """The learning rate whose step, once momentum ``momentum`` has built up, is ``step_size``:
    ``step_size * (1 - momentum)`` (the search's parametrisation, see :func:`suggest_q3b`)."""
    return float(step_size) * (1.0 - float(momentum))


def q3b_config(params: dict, *, epochs: int, seed: int = 0, screened_epochs: int | None = None):
    """The NetConfig of a Q3b trial's ``params``; the fixed parts are the search's budget, not tuning:
    scaled inputs with He initialisation, shuffled epochs, ``epochs`` epochs, keep the best epoch.

    The initial weights follow the input scale (see :func:`suggest_q3b`): He initialisation
    (``std=None``) for scaled inputs, the handout's ``std=1e-4`` for ``preprocess="mean"`` (params of
    studies made before the scaling was fixed); a ``std`` in ``params`` wins.

    ``params`` may hold flat NetConfig fields or a trial's params, whose ``step_size`` becomes the
    learning rate (:func:`learning_rate_of`).

    ``screened_epochs``: the epochs the trial was screened for. A promoted run of ``epochs`` epochs
    then stretches a step schedule to its length, ``decay ** (screened_epochs / epochs)`` per epoch,
    so that it ends at the learning rate the trial ended at (a cosine schedule stretches by itself)."""
    from .tuning import NetConfig
    params = dict(params)
    if "step_size" in params:                                      # a trial's params: the searched step size
        params["learning_rate"] = learning_rate_of(params.pop("step_size"), params.get("momentum", 0.0))
    if screened_epochs is not None and params.get("lr_schedule", "step") == "step" and "learning_rate_decay" in params:
        screened_epochs = check_positive_int("screened_epochs", screened_epochs)
        params["learning_rate_decay"] = params["learning_rate_decay"] ** (screened_epochs / epochs)
    preprocess = params.get("preprocess", "scale")
    std = NetConfig().std if preprocess == "mean" else None       # the handout's 1e-4 for unscaled pixels, else He
    return NetConfig.from_dict({"std": std, "preprocess": preprocess, "sampling": "epoch", "num_epochs": epochs,
                                "keep_best": True, "seed": seed, **params})


def q4_config(params: dict, *, depth: int, epochs: int, seed: int = 0, normalize: str = "handout"):
    """The MLPConfig of a Q4 trial's ``params`` at ``depth``: He init, BatchNorm, AdamW, one-cycle and
    random flips (a GPU sweep at the CPU's sizes, benchmarks/gpu_runs/, showed flips and crops worth
    1-5 points from 10 epochs on: fixed, not searched). ``normalize``: the inputs' normalisation, the
    data's (``"zca"`` on the GPU budget)."""
    from .mlp import MLPConfig, hidden_layers_for_depth
    p = {"flip": True, **params}
    width = p.pop("width")
    return MLPConfig(hidden_layers=hidden_layers_for_depth(depth, width), num_epochs=epochs, init="kaiming",
                     batch_norm=True, optimizer="adamw", schedule="onecycle", seed=seed, normalize=normalize, **p)


def _is_url(storage) -> bool:
    return "://" in str(storage)


def shown_url(storage) -> str:
    """``storage`` as error messages show it: an RDB URL with its password hidden, a journal's path,
    or an open storage's URL or file."""
    if isinstance(storage, (str, Path)):
        if not _is_url(storage):
            return str(storage)
        try:
            import sqlalchemy
            return sqlalchemy.engine.make_url(str(storage)).render_as_string(hide_password=True)
        except Exception:  # noqa: BLE001 - an unparsable URL is shown up to its host part, without credentials
            scheme, _, rest = str(storage).partition("://")
            return f"{scheme}://{rest.rpartition('@')[2]}"
    url = getattr(storage, "_aml_url", None) or getattr(storage, "url", None)
    if url is not None:
        return shown_url(str(url))
    path = getattr(getattr(storage, "_backend", None), "_file_path", None)
    return str(path) if path is not None else type(storage).__name__


def make_storage(storage, *, connect_timeout: float = CONNECT_TIMEOUT_S, heartbeat_interval: int = HEARTBEAT_INTERVAL_S,
                 grace_period: int = GRACE_PERIOD_S, max_retry: int = MAX_RETRY):
    """Open a study storage for workers.

    Parameters
    ----------
    storage : str, os.PathLike or optuna.storages.BaseStorage
        An RDB URL (contains ``://``: ``postgresql://``, ``mysql://``, ``sqlite:///``), a journal file
        path (its folder is created), or an open storage (returned as is).
    connect_timeout : float > 0
        Seconds a PostgreSQL/MySQL connection may take before it fails.
    heartbeat_interval, grace_period : int > 0
        RDB storages: a running trial records a heartbeat every ``heartbeat_interval`` s; one silent
        for ``grace_period`` s is marked FAIL by the next worker and retried ``max_retry`` times
        (Optuna's ``RetryFailedTrialCallback``).
    max_retry : int >= 0

    Returns
    -------
    optuna.storages.RDBStorage or optuna.storages.JournalStorage

    Raises
    ------
    StorageError
        One line, ``cannot open storage <URL>: <reason>. <what to do>``. A journal whose last line was
        cut is repaired instead (said on stderr).
    """
    import optuna

    if isinstance(storage, optuna.storages.BaseStorage):
        return storage
    if not isinstance(storage, (str, os.PathLike)):
        raise TypeError(f"The 'storage' parameter must be a URL, a path or an Optuna storage. "
                        f"Got {type(storage).__name__} instead.")
    if _is_url(storage):
        return _open_rdb(str(storage), connect_timeout=connect_timeout, heartbeat_interval=heartbeat_interval,
                         grace_period=grace_period, max_retry=max_retry)
    return _open_journal(Path(storage))


def _retry_callback(max_retry: int):
    import optuna
    cls = getattr(optuna.storages, "RetryHeartbeatStaleTrialCallback", None) or optuna.storages.RetryFailedTrialCallback
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)   # stable in use since Optuna 2.8
        return cls(max_retry=check_nonneg_int("max_retry", max_retry))


def _open_rdb(url: str, *, connect_timeout, heartbeat_interval, grace_period, max_retry):
    import importlib.util

    import optuna
    import sqlalchemy

    shown = shown_url(url)
    try:
        parsed = sqlalchemy.engine.make_url(url)
    except sqlalchemy.exc.ArgumentError:
        raise StorageError(shown, "not a database URL", "Write it as postgresql://USER:PASSWORD@HOST/DB, or give a "
                           "journal file path") from None
    backend = parsed.get_backend_name()
    if backend not in RDB_BACKENDS:
        raise StorageError(shown, f"unknown scheme {parsed.drivername!r}",
                           "Use postgresql://USER:PASSWORD@HOST/DB, mysql://..., sqlite:///PATH, "
                           "or a journal file path")
    if (parsed.drivername == "postgresql" and importlib.util.find_spec("psycopg2") is None
            and importlib.util.find_spec("psycopg") is not None):
        parsed = parsed.set(drivername="postgresql+psycopg")      # SQLAlchemy < 2.1 would look for psycopg2
    connect_args = {} if backend == "sqlite" else {"connect_timeout": int(math.ceil(connect_timeout))}
    if heartbeat_interval is not None:
        check_positive_int("heartbeat_interval", heartbeat_interval)
        check_positive_int("grace_period", grace_period)
    callback_name = ("heartbeat_stale_trial_callback" if hasattr(optuna.storages, "RetryHeartbeatStaleTrialCallback")
                     else "failed_trial_callback")
    kwargs = {"engine_kwargs": {"connect_args": connect_args, "pool_pre_ping": True},
              "heartbeat_interval": heartbeat_interval, "grace_period": grace_period,
              callback_name: _retry_callback(max_retry) if heartbeat_interval is not None else None}
    for attempt in range(CREATE_ATTEMPTS):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)   # heartbeat_interval
                opened = optuna.storages.RDBStorage(parsed.render_as_string(hide_password=False), **kwargs)
            opened._aml_url = url                                   # error messages show the URL as given
            return opened
        except ModuleNotFoundError as e:
            raise StorageError(shown, f"its database driver {e.name!r} is not installed",
                               "Install it (pip install 'psycopg[binary]' for PostgreSQL)") from None
        except Exception as e:  # noqa: BLE001 - every failure becomes one StorageError line
            if _is_schema_race(e) and attempt < CREATE_ATTEMPTS - 1:
                time.sleep(0.5 * (attempt + 1))
                continue
            raise StorageError(shown, _db_reason(e), "Check that the database server is running and reachable "
                               "from this machine (host, port, firewall, user, password), then start the worker "
                               "again") from None


def _is_schema_race(e: Exception) -> bool:
    """Two workers creating a new database's tables at once: one sees the other's half-made schema."""
    import sqlalchemy
    text = str(e).lower()
    return (isinstance(e, (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.ProgrammingError))
            and ("already exists" in text or "duplicate" in text))


def _db_reason(e: Exception) -> str:
    text = _one_line(getattr(e, "orig", None) or e)
    if "timeout" in text.lower() or "timed out" in text.lower():
        text = f"{text} (no answer within {CONNECT_TIMEOUT_S} s)"
    return text


def _open_journal(path: Path):
    import optuna
    from optuna.storages.journal import JournalFileBackend, JournalFileSymlinkLock

    shown = str(path)
    if path.is_dir():
        raise StorageError(shown, "it is a directory, not a journal file",
                           f"Give a file path, e.g. {path / 'study.journal'}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise StorageError(shown, f"cannot create its folder ({e.strerror})",
                           "Give a path in a writable folder") from None
    if path.exists() and (not path.stat().st_mode & 0o222 or not os.access(path, os.W_OK)):
        raise StorageError(shown, "the journal is read-only",
                           f"Make it writable (chmod u+w {path}) to add trials, or give another path")
    if not os.access(path.parent, os.W_OK):
        raise StorageError(shown, "its folder is not writable (the journal and its lock file live there)",
                           "Give a path in a writable folder")
    lock = JournalFileSymlinkLock(str(path))
    try:
        backend = JournalFileBackend(str(path), lock_obj=lock)
        _check_journal(path, lock)
        return optuna.storages.JournalStorage(backend)
    except StorageError:
        raise
    except OSError as e:
        raise StorageError(shown, e.strerror or str(e), "Check the path and its permissions") from None


def _check_journal(path: Path, lock) -> None:
    """Under the journal's lock: remove a partial last line (said on stderr); refuse any other line
    that is not a JSON object, naming the file and the line."""
    from optuna.storages.journal._file import get_lock_file

    with get_lock_file(lock):
        data = path.read_bytes()
        keep = data.rfind(b"\n") + 1
        if keep < len(data):
            line = data.count(b"\n") + 1
            with open(path, "r+b") as f:
                f.truncate(keep)
                f.flush()
                os.fsync(f.fileno())
            print(f"aml.search: repaired journal {path}: removed its unfinished last line {line} "
                  f"({len(data) - keep} bytes, written by a worker stopped mid-write; Optuna never applied it)",
                  file=sys.stderr)
    for number, line in enumerate(data[:keep].splitlines(), start=1):
        try:
            ok = isinstance(json.loads(line), dict)
        except ValueError:
            ok = False
        if not ok:
            raise StorageError(str(path), f"line {number} is not a journal entry (a JSON object)",
                               "The file was changed by something other than Optuna; restore it from a copy, or "
                               "start a new journal")


def notebook_storage(name: str, run_dir: str | os.PathLike | None = None):
    """A fresh journal storage for a notebook's study, never in the workers' folder ``results/optuna/``.

    The journal is ``run_dir/optuna/<name>.journal``, emptied first (re-running the notebook repeats,
    rather than extends, its search), or, without ``run_dir``, in a new temporary folder.

    Parameters
    ----------
    name : str
        The journal's name (a file name, no folders), e.g. ``"q3b"``.
    run_dir : str or os.PathLike, optional
        The run folder of the notebook's run (git-ignored); None: a new temporary folder.

    Returns
    -------
    optuna.storages.JournalStorage

    Raises
    ------
    ValueError
        When ``name`` is not a plain file name, or the journal would lie under ``results/optuna/``.
    """
    if not isinstance(name, str) or not name or Path(name).name != name or name in (".", ".."):
        raise ValueError(f"The 'name' parameter must be a plain file name such as 'q3b'. Got {name!r} instead.")
    folder = (Path(tempfile.mkdtemp(prefix=f"aml-optuna-{name}-")) if run_dir is None
              else Path(run_dir) / "optuna")
    path = folder / f"{name}.journal"
    if path.resolve().is_relative_to(WORKER_DIR.resolve()):
        raise ValueError(f"The 'run_dir' parameter must not put the notebook's journal under {WORKER_DIR} (the "
                         f"workers' folder). Got {run_dir!s} instead.")
    path.unlink(missing_ok=True)
    return make_storage(path)


def create_study(study_name: str, storage, *, budget: Budget, seed: int = 0, attrs: dict | None = None):
    """Create the study, or load it when it exists (so that several workers can join it).

    Parameters
    ----------
    study_name : str
    storage : str, os.PathLike or optuna.storages.BaseStorage
        See :func:`make_storage`.
    budget : Budget
        Sizes the sampler's random start and the pruner's rungs.
    seed : int
        The sampler's seed.
    attrs : dict, optional
        The study's fixed arguments (see :func:`study_attrs`): stored as study user attributes when
        absent, else compared with the stored ones.

    Raises
    ------
    StorageError
        The storage cannot be opened or used.
    StudyMismatch
        An attribute in ``attrs`` differs from the stored one.
    """
    import optuna

    storage = make_storage(storage)
    try:
        study = optuna.create_study(study_name=study_name, storage=storage, sampler=_sampler(budget, seed),
                                    pruner=_pruner(budget), direction="maximize", load_if_exists=True)
        if attrs:
            _check_attrs(study, attrs, shown_url(storage))
    except _storage_errors() as e:
        raise StorageError(shown_url(storage), _db_reason(e), "Check that the storage is reachable and writable, "
                           "then start the worker again") from None
    return study


def _storage_errors() -> tuple:
    import sqlalchemy
    return (sqlalchemy.exc.SQLAlchemyError,)


def study_attrs(question: str, data, b: Budget, *, smoke: bool, gpu: bool = False, depth: int | None = None) -> dict:
    """The fixed arguments of a study, as stored in its user attributes: ``question``, ``depth``
    (None for Q3b), ``budget`` ("smoke", "cpu" or "gpu"), ``smoke``, ``max_epochs``, ``min_epochs``,
    ``num_train`` (screening images), ``monitor`` ("sel" or "val": the split the training loop
    monitors) and ``num_monitor`` (its images). ``data`` is the screening data."""
    X_sel = getattr(data, "X_sel", None)
    monitored = X_sel if X_sel is not None and len(X_sel) > 0 else data.X_val
    return {"question": question, "depth": depth,
            "budget": "smoke" if smoke else ("gpu" if gpu and question == "q4" else "cpu"), "smoke": bool(smoke),
            "max_epochs": b.max_epochs, "min_epochs": b.min_epochs, "num_train": int(data.X_train.shape[0]),
            "monitor": "sel" if monitored is X_sel else "val", "num_monitor": int(monitored.shape[0])}


def _check_attrs(study, attrs: dict, shown: str) -> None:
    stored = study.user_attrs
    for key, value in attrs.items():
        if key not in stored:
            study.set_user_attr(key, value)
    stored = {**attrs, **stored}
    for key, value in attrs.items():
        if stored[key] != value:
            raise StudyMismatch(f"study {study.study_name!r} in {shown} was created with {key}={stored[key]!r}, this "
                                f"worker has {key}={value!r}; start it with the study's arguments, or use another "
                                "--study name")


def _sampler(budget: Budget, seed: int):
    import optuna
    return optuna.samplers.TPESampler(seed=check_seed("seed", seed), n_startup_trials=min(8, budget.n_trials))


def _pruner(budget: Budget):
    """Successive halving with epochs as the resource: rungs at ``min_epochs`` x 1, 3, 9, ...; at each
    rung a trial goes on only if it is in the best third of the trials that reached that rung."""
    import optuna
    return optuna.pruners.SuccessiveHalvingPruner(min_resource=budget.min_epochs, reduction_factor=3,
                                                  min_early_stopping_rate=0)


def _worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _process_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:       # alive, another user's
        return False
    return False


def fail_stale_trials(study, *, min_age_s: float | None = None, max_retry: int = MAX_RETRY) -> list[int]:
    """The journal's stale-trial rule (RDB storages use Optuna's heartbeat instead).

    A RUNNING trial is marked FAIL, with ``fail_reason`` "worker <host>:<pid> stopped", when it started
    more than ``min_age_s`` seconds ago (default :data:`STALE_AFTER_S`) and its ``worker`` user attribute
    names this host and a process that no longer exists; it is then retried ``max_retry`` times with the
    same parameters (a WAITING trial, as Optuna's ``RetryFailedTrialCallback`` makes). Trials of other
    hosts, or without a ``worker`` attribute, are left alone.

    Returns
    -------
    list of int
        The numbers of the trials marked FAIL.
    """
    import optuna
    from optuna.trial import TrialState

    min_age_s = STALE_AFTER_S if min_age_s is None else min_age_s
    host = socket.gethostname()
    now = _dt.datetime.now()
    failed = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        worker_host, _, pid = str(trial.user_attrs.get("worker", "")).rpartition(":")
        if worker_host != host or not pid.isdigit() or not _process_gone(int(pid)):
            continue
        if trial.datetime_start is None or (now - trial.datetime_start).total_seconds() < min_age_s:
            continue
        try:
            study._storage.set_trial_user_attr(trial._trial_id, "fail_reason",
                                               f"worker {trial.user_attrs['worker']} stopped (stale-trial rule)")
            study._storage.set_trial_state_values(trial._trial_id, state=TrialState.FAIL)
        except optuna.exceptions.UpdateFinishedTrialError:
            continue                                                # another worker got there first
        failed.append(trial.number)
        _retry_callback(max_retry)(study, study._storage.get_trial(trial._trial_id))
    return failed


def _train_q3b(config, data, *, on_epoch) -> dict:
    """Train a Q3b config on ``data``; the history (``val_acc_history`` is the monitored split's)."""
    from .tuning import run_config
    return run_config(config, data, on_epoch=on_epoch).stats


def _train_q4(config, data, *, on_epoch) -> dict:
    """Train a Q4 config on ``data``; the history (``val_acc_history`` is the monitored split's)."""
    from .mlp import fit
    return fit(config, data, on_epoch=on_epoch)[1]


def q3b_objective(data, budget: Budget, *, smoke: bool = False):
    """Objective of a Q3b trial on ``budget.num_train`` images: suggest (:func:`suggest_q3b`), train for
    ``budget.max_epochs`` epochs reporting each epoch's monitored accuracy (pruned at the rungs), and
    return the best epoch's accuracy (:func:`trial_value`). A failure's reason is the trial's ``fail_reason``."""
    def build(trial):
        return q3b_config(suggest_q3b(trial, smoke=smoke), epochs=budget.max_epochs)

    return lambda trial: run_trial(trial, build, _train_q3b, data, worker=_worker_id())


def q4_objective(data, budget: Budget, *, depth: int, smoke: bool = False, gpu: bool = False):
    """Objective of a Q4 trial at ``depth``, as :func:`q3b_objective` with :func:`suggest_q4`."""
    def build(trial):
        return q4_config(suggest_q4(trial, smoke=smoke, gpu=gpu), depth=depth, epochs=budget.max_epochs,
                         normalize=data.normalize)

    return lambda trial: run_trial(trial, build, _train_q4, data, worker=_worker_id())


def optimize(study, objective, n_trials: int) -> None:
    """Run ``n_trials`` trials in this process. A trial that diverges (``TrainingDiverged``, a
    ``FloatingPointError``) is recorded as FAIL with its ``fail_reason`` and the search goes on; a
    pruned one as PRUNED; any other error stops the worker (its trial FAIL, with its reason). A storage
    error becomes :class:`StorageError`."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    n_trials = check_positive_int("n_trials", n_trials)
    try:
        study.optimize(objective, n_trials=n_trials, catch=(FloatingPointError,), gc_after_trial=False)
    except _storage_errors() as e:
        raise StorageError(shown_url(study._storage), _db_reason(e), "The worker lost its storage; check the "
                           "database server, then start the worker again (its trial is retried)") from None


def trials_table(study):
    """``study.trials_dataframe()`` with the columns a reader needs: number, state (pruned and failed
    included), value, params_*, epochs reached, seconds, and ``fail_reason`` (why a FAIL trial failed:
    the training error, or that its worker stopped; "" for the others)."""
    import pandas as pd

    df = study.trials_dataframe(attrs=("number", "state", "value", "params", "user_attrs"))
    if df.empty:
        return pd.DataFrame(columns=["number", "state", "value", "epochs", "seconds", "fail_reason"])
    df = df.rename(columns={"user_attrs_epochs": "epochs", "user_attrs_seconds": "seconds",
                            "user_attrs_fail_reason": "fail_reason"})
    for column in ("epochs", "seconds", "fail_reason"):
        if column not in df.columns:
            df[column] = None
    failed = df["state"] == "FAIL"
    reason = df["fail_reason"].where(df["fail_reason"].notna() & (df["fail_reason"] != ""),
                                     "worker stopped (no heartbeat within the grace period)")
    df["fail_reason"] = reason.where(failed, "")
    params = sorted(c for c in df.columns if c.startswith("params_"))
    return df[["number", "state", "value", *params, "epochs", "seconds", "fail_reason"]]


class Importances(dict):
    """Hyper-parameter importances (name -> fraction), with what they were computed from: ``basis``
    (a sentence for a caption), ``epoch`` (the rung whose reported values were used) and ``num_trials``."""

    def __init__(self, values: dict, *, basis: str, epoch: int, num_trials: int):
        super().__init__(values)
        self.basis, self.epoch, self.num_trials = basis, epoch, num_trials


def importances(study, *, min_trials: int = MIN_IMPORTANCE_TRIALS) -> Importances | None:
    """PED-ANOVA importances (Optuna's evaluator, no extra dependency) of the hyper-parameters, from
    the accuracy every trial reported at the first rung (epoch ``min_epochs``, stored with the study;
    1 if absent), pruned and failed trials included: successive halving leaves few complete trials,
    and importances from a handful of them are noise.

    Returns
    -------
    Importances or None
        None when fewer than ``min_trials`` trials reported at the first rung (or all reported one
        value): then nothing should be shown. Parameters asked only in some trials (conditional ones)
        are left out, as Optuna does.
    """
    import optuna

    epoch = int(study.user_attrs.get("min_epochs", 1))
    usable = [t for t in study.trials if t.state.is_finished() and epoch in t.intermediate_values
              and math.isfinite(t.intermediate_values[epoch])]
    distinct = {t.intermediate_values[epoch] for t in usable}
    if len(usable) < check_positive_int("min_trials", min_trials) or len(distinct) < 2:
        return None
    first_rung = optuna.create_study(direction="maximize")
    first_rung.add_trials([optuna.trial.create_trial(params=t.params, distributions=t.distributions,
                                                     value=t.intermediate_values[epoch]) for t in usable])
    values = optuna.importance.get_param_importances(first_rung,
                                                     evaluator=optuna.importance.PedAnovaImportanceEvaluator())
    pruned = sum(t.state == optuna.trial.TrialState.PRUNED for t in usable)
    split = "selection" if study.user_attrs.get("monitor") == "sel" else "validation"
    return Importances(values, epoch=epoch, num_trials=len(usable),
                       basis=f"{split} accuracy after epoch {epoch} (the first rung) of {len(usable)} trials, "
                             f"{pruned} of them pruned")


def best_complete_trial(study):
    """The best trial that ran to the end (state COMPLETE)."""
    import optuna

    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not done:
        raise RuntimeError(f"Study {study.study_name!r} has no complete trial; run more trials.")
    return max(done, key=lambda t: (t.value, -t.number))


def screening_data(question: str, data, num_train: int):
    """The first ``num_train`` training images of ``data`` (validation unchanged)."""
    if question == "q3b":
        n = min(num_train, data.X_train.shape[0])
        return dataclasses.replace(data, X_train=data.X_train[:n], y_train=data.y_train[:n])
    return data.subset(min(num_train, data.X_train.shape[0]))


def run_search(question: str, data, *, storage, study_name: str, smoke: bool = False, seed: int = 0,
               depth: int | None = None, n_trials: int | None = None, gpu: bool = False):
    """Create (or join) the study and run its trials on the screening subset of ``data``; return the study.

    Parameters
    ----------
    question : {"q3b", "q4"}
    data : CIFAR10Split (Q3b) or TensorSplits (Q4)
        The training loop monitors ``X_sel`` when the data has it, else ``X_val``.
    storage : str, os.PathLike or optuna.storages.BaseStorage
        See :func:`make_storage`; a notebook passes :func:`notebook_storage`.
    study_name : str
    smoke, gpu : bool
        Pick the budget (:func:`budget`).
    seed : int
        The sampler's seed.
    depth : int, optional
        Q4 only (required there): the depth the study tunes.
    n_trials : int, optional
        Trials this call runs (default: the budget's).

    Raises
    ------
    StorageError, StudyMismatch
        See :func:`create_study`.
    """
    check_choice("question", question, QUESTIONS)
    if question == "q4" and depth is None:
        raise ValueError("The 'depth' parameter is required for question 'q4'. Got None instead.")
    base = budget(question, smoke, gpu=gpu)
    b = base if n_trials is None else dataclasses.replace(base, n_trials=check_positive_int("n_trials", n_trials))
    subset = screening_data(question, data, b.num_train)
    attrs = study_attrs(question, subset, base, smoke=smoke, gpu=gpu, depth=depth if question == "q4" else None)
    study = create_study(study_name, storage, budget=base, seed=seed, attrs=attrs)
    if _is_journal(study._storage):
        fail_stale_trials(study)
    if question == "q3b":
        objective = q3b_objective(subset, b, smoke=smoke)
    else:
        objective = q4_objective(subset, b, depth=depth, smoke=smoke, gpu=gpu)
    optimize(study, objective, b.n_trials)
    return study


def _is_journal(storage) -> bool:
    import optuna
    return isinstance(storage, optuna.storages.JournalStorage)


def _load_data(question: str):
    if question == "q3b":
        from .data import load_cifar10
        return load_cifar10(num_test=0)
    from .mlp import load_tensor_splits
    return load_tensor_splits()


def main(argv=None) -> int:
    """The worker command: ``python -m aml.search --question Q --storage URL_OR_PATH --study NAME
    --n-trials N [--depth D] [--seed S] [--smoke]``. Exit status 0 on success, 1 for a wrong argument
    (or a study whose fixed arguments differ), 2 for a storage that cannot be opened or used; errors
    are one line on stderr."""
    import optuna

    parser = argparse.ArgumentParser(description="Join an Optuna study and run trials (a search worker).")
    parser.add_argument("--question", required=True, choices=QUESTIONS)
    parser.add_argument("--storage", required=True, help="journal file path, or an RDB URL (postgresql://...)")
    parser.add_argument("--study", required=True, help="study name; workers with the same name share it")
    parser.add_argument("--n-trials", type=int, required=True, help="trials this worker runs")
    parser.add_argument("--depth", type=int, default=None, help="q4 only: the depth this study tunes")
    parser.add_argument("--seed", type=int, default=0, help="the sampler's seed")
    parser.add_argument("--smoke", action="store_true", help="the small CI budget")
    args = parser.parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        check_positive_int("n_trials", args.n_trials)
        storage = make_storage(args.storage)          # before the data: a wrong storage fails in seconds
        data = _load_data(args.question)
        study = run_search(args.question, data, storage=storage, study_name=args.study, smoke=args.smoke,
                           seed=args.seed, depth=args.depth, n_trials=args.n_trials)
    except StorageError as e:
        print(f"aml.search: {e}", file=sys.stderr)
        return 2
    except (ValueError, TypeError, FileNotFoundError, RuntimeError) as e:
        print(f"aml.search: {_one_line(e)}", file=sys.stderr)
        return 1
    done = sum(t.state.name == "COMPLETE" for t in study.trials)
    print(f"study {args.study}: {len(study.trials)} trials in all, {done} complete")
    return 0


if __name__ == "__main__":
    sys.exit(main())
