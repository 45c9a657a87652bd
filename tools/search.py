"""A search worker: join (or create) its question's Optuna study and run trials of :mod:`aml.search`.

    python -m tools.search --question q3b --storage results/optuna/q3b.journal --n-trials 10
    python -m tools.search --question q4 --depth 3 --storage postgresql://aml:PW@db-host/aml --n-trials 10

A path is a journal file (workers on one machine); a URL an RDB storage with Optuna's heartbeat (workers
on several machines). See MAINTAINING.md, section 2.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import sys
import time
import warnings

import optuna
import sqlalchemy
from filelock import FileLock

from aml import search

CONNECT_TIMEOUT_S = 10       # a database host that never answers fails after this, not never
HEARTBEAT_INTERVAL_S = 60    # RDB storages: a running trial records a heartbeat this often ...
GRACE_PERIOD_S = 180         # ... and one silent this long is failed by the next worker, then re-queued
MAX_RETRY = 1                # ... this many times, with its parameters
CREATE_ATTEMPTS = 5          # PostgreSQL: workers on several machines race to create the tables
#: (epochs, the pruner's first rung, training images) of a trial, per question and budget.
BUDGETS = {("q3b", "cpu"): (9, 1, 20000), ("q4", "cpu"): (9, 1, 10000), ("q4", "gpu"): (15, 2, 49000),
           ("q3b", "smoke"): (2, 1, 500), ("q4", "smoke"): (2, 1, 500)}
DB_ERRORS = (sqlalchemy.exc.SQLAlchemyError, optuna.exceptions.StorageInternalError, ImportError)


class StorageError(RuntimeError):
    """One line: ``cannot use storage <spec, password hidden>: <reason>``."""

    def __init__(self, spec: str, reason):
        lines = str(getattr(reason, "orig", None) or reason).strip().splitlines() or [type(reason).__name__]
        super().__init__(f"cannot use storage {shown(spec)}: {lines[0]}")


def shown(spec: str) -> str:
    """``spec`` with its password hidden."""
    with contextlib.suppress(sqlalchemy.exc.ArgumentError, ValueError):
        return sqlalchemy.engine.make_url(spec).render_as_string(hide_password=True) if "://" in spec else spec
    return spec.partition("://")[0] + "://" + spec.rpartition("@")[2]          # unparsable: no credentials


def database_url(spec: str):
    """The SQLAlchemy URL of ``spec``: PostgreSQL or an SQLite file; StorageError for anything else."""
    try:
        url = sqlalchemy.engine.make_url(spec)
    except (sqlalchemy.exc.ArgumentError, ValueError):
        raise StorageError(spec, "not a database URL such as postgresql://USER:PASSWORD@HOST[:PORT]/DB") from None
    if url.get_backend_name() not in ("postgresql", "sqlite"):
        raise StorageError(spec, f"unknown scheme {url.drivername!r}; use postgresql://, sqlite:///PATH or a path")
    if url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:"):
        raise StorageError(spec, "an in-memory database keeps nothing; give sqlite:///PATH or a journal path")
    return url.set(drivername="postgresql+psycopg") if url.drivername == "postgresql" else url


def open_storage(spec: str):
    """A journal file (a path) or an RDB storage with heartbeat and retry (a URL); StorageError if not."""
    if "://" not in spec:
        return _journal(spec)
    url = database_url(spec)
    engine = {"connect_args": {"connect_timeout": CONNECT_TIMEOUT_S}} if url.get_backend_name() != "sqlite" else {}
    for attempt in range(CREATE_ATTEMPTS):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)     # heartbeat_interval
                return optuna.storages.RDBStorage(
                    url.render_as_string(hide_password=False), engine_kwargs=engine,
                    heartbeat_interval=HEARTBEAT_INTERVAL_S, grace_period=GRACE_PERIOD_S,
                    heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(MAX_RETRY))
        except DB_ERRORS as e:
            race = isinstance(e, (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.ProgrammingError)) and any(
                text in str(e) for text in ("already exists", "duplicate key"))   # another worker makes the tables
            if not race or attempt + 1 == CREATE_ATTEMPTS:
                raise StorageError(spec, e) from None
            time.sleep(0.2 * (attempt + 1))


def _journal(path: str):
    try:
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        lock = optuna.storages.journal.JournalFileSymlinkLock(path)
        backend = optuna.storages.journal.JournalFileBackend(path, lock_obj=lock)
        lock.acquire()
        try:                    # Optuna would append after a line cut by a killed writer, breaking the file
            with open(path, "rb") as f:
                data = f.read()
            if data and not data.endswith(b"\n"):
                os.truncate(path, data.rfind(b"\n") + 1)
                print(f"tools.search: removed the unfinished last line of {path}", file=sys.stderr)
        finally:
            lock.release()
        return optuna.storages.JournalStorage(backend)
    except OSError as e:
        raise StorageError(path, e) from None


def join_study(spec: str, attrs: dict, *, seed: int, min_epochs: int):
    """Open ``spec``, create or load the study of ``attrs`` (under a lock file beside a journal or SQLite file;
    PostgreSQL: CREATE_ATTEMPTS); ValueError: a fixed attr that differs, or a seed that already ran in it."""
    url = database_url(spec) if "://" in spec else None
    file = None if url and url.get_backend_name() == "postgresql" else (url.database if url else spec)
    name = attrs["question"] + (f"-depth{attrs['depth']}" if attrs["depth"] else "") + (
        "-smoke" if attrs["budget"] == "smoke" else "")
    sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=8, constant_liar=True)
    pruner = optuna.pruners.SuccessiveHalvingPruner(min_resource=min_epochs, reduction_factor=3)
    with FileLock(file + ".join.lock") if file else contextlib.nullcontext():
        study = optuna.create_study(study_name=name, storage=open_storage(spec), sampler=sampler, pruner=pruner,
                                    direction="maximize", load_if_exists=True)
        for key, value in attrs.items():
            if study.user_attrs.get(key, value) != value:
                raise ValueError(f"study {name!r} in {shown(spec)} has {key}={study.user_attrs[key]!r}, "
                                 f"this worker {key}={value!r}")
            study.set_user_attr(key, value)
    if any(t.user_attrs.get("sampler_seed") == seed for t in study.trials):
        raise ValueError(f"seed {seed} already ran in study {name!r}; give each worker its own --seed")
    return study


def load_data(question: str, num_train: int):
    """CIFAR-10 with a 2,000-image selection split (the split trials report), cut to ``num_train``."""
    if question == "q3b":
        from aml.data import load_cifar10
        from aml.tuning import training_subset
        return training_subset(load_cifar10(num_selection=2000, num_test=0), num_train)
    from aml.mlp import load_tensor_splits
    return load_tensor_splits(num_selection=2000).subset(num_train)


def parse_args(argv=None) -> argparse.Namespace:
    """The command line (see the module docstring)."""
    p = argparse.ArgumentParser(prog="python -m tools.search", description=__doc__.splitlines()[0])
    p.add_argument("--question", required=True, choices=("q3b", "q4"))
    p.add_argument("--depth", type=int, help="q4 only, required there: the depth (weight layers, >= 2) it tunes")
    p.add_argument("--storage", required=True, help="a journal file path, or postgresql://... or sqlite:///PATH")
    p.add_argument("--n-trials", type=int, required=True, help="trials THIS worker runs (not the study's total)")
    p.add_argument("--seed", type=int, help="the sampler's seed, one per worker (default: a fresh random one)")
    p.add_argument("--smoke", action="store_true", help="CI's tiny budget, in a study of its own")
    args = p.parse_args(argv)
    if (args.question == "q4") != (args.depth is not None) or (args.depth or 2) < 2 or args.n_trials < 1:
        p.error(f"--n-trials must be >= 1 and --depth >= 2 given for q4 only; got {args.n_trials}, {args.depth}")
    return args


def main(argv=None) -> int:
    """Run one worker: 0 when done, 1 for a study of other arguments or missing data, 2 for a storage error."""
    args = parse_args(argv)
    gpu = args.question == "q4" and not args.smoke and __import__("torch").cuda.is_available()
    budget = "smoke" if args.smoke else ("gpu" if gpu else "cpu")
    epochs, min_epochs, num_train = BUDGETS[(args.question, budget)]
    seed = secrets.randbits(32) if args.seed is None else args.seed
    attrs = {"question": args.question, "depth": args.depth, "budget": budget, "epochs": epochs,
             "num_train": num_train, "space_version": search.SPACE_VERSION}
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    def objective(trial):
        trial.set_user_attr("sampler_seed", seed)
        return search.objective(trial, args.question, data, epochs=epochs, depth=args.depth, smoke=args.smoke, gpu=gpu)
    try:
        study = join_study(args.storage, attrs, seed=seed, min_epochs=min_epochs)
        print(f"study {study.study_name} in {shown(args.storage)}: sampler seed {seed}", flush=True)
        data = load_data(args.question, num_train)
        study.optimize(objective, n_trials=args.n_trials, catch=(FloatingPointError,))
    except (*DB_ERRORS, StorageError, ValueError, FileNotFoundError) as e:
        error = StorageError(args.storage, e) if isinstance(e, DB_ERRORS) else e
        print(f"tools.search: {error}", file=sys.stderr)
        return 2 if isinstance(error, StorageError) else 1
    print(f"study {study.study_name}: {len(study.trials)} trials in all, {args.n_trials} of them by this worker")
    return 0


if __name__ == "__main__":
    sys.exit(main())
