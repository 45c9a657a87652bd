"""Hyper-parameter search with Optuna, one function for both halves (Q3b and Q4).

A study is made once with a seeded TPE sampler (random for its first trials), a successive-halving
pruner whose resource is the epoch, and a storage. Each trial trains a configuration on a training
subset (the screening budget), reports validation accuracy after every epoch, and is stopped at a rung
(1, 3, 9 epochs) unless it is in the best third of the trials that reached it; the survivors train to the
full screening budget. The study is the
record: ``study.trials_dataframe()`` becomes the results CSV, and the final configuration is the
best complete trial.

Storage: a file path (Optuna's journal file, safe for several processes on one machine) or an RDB
URL such as ``postgresql://user@host/db``, which workers on many machines share::

    python -m aml.search --question q3b --storage results/optuna.journal --study q3b --n-trials 20
    python -m aml.search --question q4 --depth 3 --storage postgresql://aml@db-host/aml --study q4-depth3 --n-trials 10
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ._checks import check_choice, check_nonneg_int, check_positive_int, check_seed

QUESTIONS = ("q3b", "q4")
CREATE_ATTEMPTS = 5   # workers that start at the same moment race to create a new database's tables


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
    ("q3b", "cpu"): Budget(n_trials=24, max_epochs=9, min_epochs=1, num_train=20000, final_epochs=25),
    ("q3b", "smoke"): Budget(n_trials=4, max_epochs=2, min_epochs=1, num_train=500, final_epochs=1),
    ("q4", "cpu"): Budget(n_trials=16, max_epochs=9, min_epochs=1, num_train=10000, final_epochs=6,
                          promote_epochs=22),
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
    """The Q3b search space: the NumPy net's knobs that matter (flat NetConfig fields)."""
    momentum = trial.suggest_categorical("momentum", [0.0, 0.9])
    p = {
        "hidden_size": trial.suggest_categorical("hidden_size", [20, 40] if smoke else [500, 1000, 2000]),
        "learning_rate": trial.suggest_float("learning_rate", 1e-3, 1e-1, log=True),
        "reg": trial.suggest_float("reg", 1e-5, 1e-1, log=True),
        "lr_schedule": trial.suggest_categorical("lr_schedule", ["step", "cosine"]),
        "momentum": momentum,
        "nesterov": trial.suggest_categorical("nesterov", [False, True]) if momentum > 0 else False,
        "batch_size": trial.suggest_categorical("batch_size", [100, 200, 400]),
        "dropout": trial.suggest_float("dropout", 0.0, 0.5, step=0.1),
        "flip": trial.suggest_categorical("flip", [False, True]),
        "preprocess": trial.suggest_categorical("preprocess", ["mean", "scale"]),
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


def q3b_config(params: dict, *, epochs: int, seed: int = 0, screened_epochs: int | None = None):
    """The NetConfig of a Q3b trial's ``params``; the fixed parts are the search's budget, not tuning:
    He initialisation, shuffled epochs, ``epochs`` epochs, keep the best validation epoch.

    ``screened_epochs``: the epochs the trial was screened for. A promoted run of ``epochs`` epochs
    then stretches a step schedule to its length, ``decay ** (screened_epochs / epochs)`` per epoch,
    so that it ends at the learning rate the trial ended at (a cosine schedule stretches by itself)."""
    from .tuning import NetConfig
    params = dict(params)
    if screened_epochs is not None and params.get("lr_schedule", "step") == "step" and "learning_rate_decay" in params:
        screened_epochs = check_positive_int("screened_epochs", screened_epochs)
        params["learning_rate_decay"] = params["learning_rate_decay"] ** (screened_epochs / epochs)
    return NetConfig.from_dict({"std": None, "sampling": "epoch", "num_epochs": epochs, "keep_best": True,
                                "seed": seed, **params})


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


def make_storage(storage: str | Path):
    """An RDB URL (contains ``://``) is passed to Optuna as is; anything else is a journal file path."""
    import optuna
    from optuna.storages.journal import JournalFileBackend

    storage = str(storage)
    if "://" in storage:
        return storage
    Path(storage).parent.mkdir(parents=True, exist_ok=True)
    return optuna.storages.JournalStorage(JournalFileBackend(storage))


def create_study(study_name: str, storage, *, budget: Budget, seed: int = 0):
    """Create the study, or load it when it exists (so that several workers can join it)."""
    import optuna

    if isinstance(storage, (str, Path)):
        storage = make_storage(storage)
    for attempt in range(CREATE_ATTEMPTS):
        try:
            return optuna.create_study(study_name=study_name, storage=storage, sampler=_sampler(budget, seed),
                                       pruner=_pruner(budget), direction="maximize", load_if_exists=True)
        except Exception:  # noqa: BLE001 - workers starting together race to create the schema and study
            if attempt == CREATE_ATTEMPTS - 1:
                raise
            time.sleep(0.5 * (attempt + 1))


def _sampler(budget: Budget, seed: int):
    import optuna
    return optuna.samplers.TPESampler(seed=check_seed("seed", seed), n_startup_trials=min(8, budget.n_trials))


def _pruner(budget: Budget):
    """Successive halving with epochs as the resource: rungs at ``min_epochs`` x 1, 3, 9, ...; at each
    rung a trial goes on only if it is in the best third of the trials that reached that rung."""
    import optuna
    return optuna.pruners.SuccessiveHalvingPruner(min_resource=budget.min_epochs, reduction_factor=3,
                                                  min_early_stopping_rate=0)


def _reporter(trial) -> Callable[[int, dict], None]:
    import optuna

    def on_epoch(epoch: int, history: dict) -> None:
        trial.set_user_attr("epochs", epoch)
        trial.report(float(history["val_acc_history"][-1]), epoch)
        if trial.should_prune():
            raise optuna.TrialPruned(f"pruned after epoch {epoch}")
    return on_epoch


def q3b_objective(data, budget: Budget, *, smoke: bool = False):
    """Objective of a Q3b trial: validation accuracy of the best epoch, on ``budget.num_train`` images."""
    from .tuning import run_config

    def objective(trial) -> float:
        start = time.perf_counter()
        trial.set_user_attr("epochs", 0)
        try:
            config = q3b_config(suggest_q3b(trial, smoke=smoke), epochs=budget.max_epochs)
            result = run_config(config, data, on_epoch=_reporter(trial))
        finally:
            trial.set_user_attr("seconds", round(time.perf_counter() - start, 2))
        return float(result.stats["best_val_acc"])
    return objective


def q4_objective(data, budget: Budget, *, depth: int, smoke: bool = False, gpu: bool = False):
    """Objective of a Q4 trial at ``depth``: the best epoch's validation accuracy."""
    from .mlp import fit

    def objective(trial) -> float:
        start = time.perf_counter()
        trial.set_user_attr("epochs", 0)
        try:
            config = q4_config(suggest_q4(trial, smoke=smoke, gpu=gpu), depth=depth, epochs=budget.max_epochs,
                               normalize=data.normalize)
            _, history = fit(config, data, on_epoch=_reporter(trial))
        finally:
            trial.set_user_attr("seconds", round(time.perf_counter() - start, 2))
        return float(history["best_val_acc"])
    return objective


def optimize(study, objective, n_trials: int) -> None:
    """Run ``n_trials`` trials in this process. A trial that diverges is recorded as FAIL and the search
    goes on (``catch``); a pruned one as PRUNED."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study.optimize(objective, n_trials=check_positive_int("n_trials", n_trials), catch=(FloatingPointError,),
                   gc_after_trial=False)


def trials_table(study):
    """``study.trials_dataframe()`` with the columns a reader needs: number, state (pruned and failed
    included), value, params_*, epochs reached, seconds."""
    df = study.trials_dataframe(attrs=("number", "state", "value", "params", "user_attrs"))
    df = df.rename(columns={"user_attrs_epochs": "epochs", "user_attrs_seconds": "seconds"})
    params = sorted(c for c in df.columns if c.startswith("params_"))
    return df[["number", "state", "value", *params, "epochs", "seconds"]]


def fresh_storage(path: Path):
    """A journal file at ``path``, emptied first: a notebook's study starts afresh on every run, so
    re-running it repeats, rather than extends, the search (workers use :func:`make_storage`)."""
    path = Path(path)
    path.unlink(missing_ok=True)
    return make_storage(path)


def importances(study) -> dict[str, float]:
    """PED-ANOVA importances (Optuna's default evaluator, no extra dependency) of the hyper-parameters
    over the complete trials ({} if fewer than two, or all with one value)."""
    import optuna

    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if len(done) < 2 or len({t.value for t in done}) < 2:
        return {}
    return optuna.importance.get_param_importances(study, evaluator=optuna.importance.PedAnovaImportanceEvaluator())


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
    """Create (or join) the study and run its trials on the screening subset of ``data``; return the study."""
    b = budget(question, smoke, gpu=gpu)
    if n_trials is not None:
        b = dataclasses.replace(b, n_trials=n_trials)
    study = create_study(study_name, storage, budget=b, seed=seed)
    subset = screening_data(question, data, b.num_train)
    if question == "q3b":
        objective = q3b_objective(subset, b, smoke=smoke)
    else:
        if depth is None:
            raise ValueError("The 'depth' parameter is required for question 'q4'. Got None instead.")
        objective = q4_objective(subset, b, depth=depth, smoke=smoke, gpu=gpu)
    optimize(study, objective, b.n_trials)
    return study


def _load_data(question: str):
    if question == "q3b":
        from .data import load_cifar10
        return load_cifar10(num_test=0)
    from .mlp import load_tensor_splits
    return load_tensor_splits()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Join an Optuna study and run trials (a search worker).")
    parser.add_argument("--question", required=True, choices=QUESTIONS)
    parser.add_argument("--storage", required=True, help="journal file path, or an RDB URL (postgresql://...)")
    parser.add_argument("--study", required=True, help="study name; workers with the same name share it")
    parser.add_argument("--n-trials", type=int, required=True, help="trials this worker runs")
    parser.add_argument("--depth", type=int, default=None, help="q4 only: the depth this study tunes")
    parser.add_argument("--seed", type=int, default=0, help="the sampler's seed")
    parser.add_argument("--smoke", action="store_true", help="the small CI budget")
    args = parser.parse_args(argv)
    try:
        data = _load_data(args.question)
        study = run_search(args.question, data, storage=args.storage, study_name=args.study, smoke=args.smoke,
                           seed=args.seed, depth=args.depth, n_trials=args.n_trials)
    except (ValueError, TypeError, FileNotFoundError, RuntimeError) as e:
        print(f"aml.search: {e}", file=sys.stderr)
        return 1
    done = sum(t.state.name == "COMPLETE" for t in study.trials)
    print(f"study {args.study}: {len(study.trials)} trials in all, {done} complete")
    return 0


if __name__ == "__main__":
    sys.exit(main())
