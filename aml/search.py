"""Hyper-parameter search with Optuna: the Q3b and Q4 search spaces, the configs they build, the trial.

A trial suggests a configuration, trains it, reports each epoch's accuracy on the split the training
loop monitors (``val_acc_history``: the selection split when the data has one) and stops when Optuna's
pruner says so; its value is its best epoch's accuracy. Workers run searches: ``python -m tools.search``
(docs/maintaining/workers.md). The study is the record; :func:`trials_table` is its table.
"""
from __future__ import annotations

SPACE_VERSION = 2   # bump when a search space changes: workers then refuse to join the older studies


def suggest_q3b(trial, *, smoke: bool = False) -> dict:
    """The Q3b space: flat NetConfig fields of the NumPy net; ``smoke``: CI's widths (20, 40). The learning
    rate is searched as the step size ``learning_rate / (1 - momentum)`` (momentum 0.9 makes steps 10x)."""
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
    """The Q4 space at a fixed depth: flat MLPConfig fields (``width`` for every hidden layer)."""
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
    """The learning rate whose step, once momentum has built up, is ``step_size``."""
    return float(step_size) * (1.0 - float(momentum))


def q3b_config(params: dict, *, epochs: int, seed: int = 0, screened_epochs: int | None = None):
    """The NetConfig of Q3b ``params`` (flat fields, or a trial's params with ``step_size``).

    Fixed, not searched: inputs scaled to unit variance with He initialisation (``std=None``; the
    handout's ``std=1e-4`` for ``preprocess="mean"``), shuffled epochs, keep the best epoch.
    ``screened_epochs``: a promoted run of ``epochs`` stretches a step schedule,
    ``decay ** (screened_epochs / epochs)``, so that it ends at the learning rate the trial ended at.
    """
    from ._checks import check_positive_int
    from .tuning import NetConfig
    params = dict(params)
    if "step_size" in params:
        params["learning_rate"] = learning_rate_of(params.pop("step_size"), params.get("momentum", 0.0))
    if screened_epochs is not None and params.get("lr_schedule", "step") == "step" and "learning_rate_decay" in params:
        screened_epochs = check_positive_int("screened_epochs", screened_epochs)
        params["learning_rate_decay"] = params["learning_rate_decay"] ** (screened_epochs / epochs)
    preprocess = params.get("preprocess", "scale")
    std = NetConfig().std if preprocess == "mean" else None
    return NetConfig.from_dict({"std": std, "preprocess": preprocess, "sampling": "epoch", "num_epochs": epochs,
                                "keep_best": True, "seed": seed, **params})


def q4_config(params: dict, *, depth: int, epochs: int, seed: int = 0, normalize: str = "handout"):
    """The MLPConfig of Q4 ``params`` at ``depth`` (weight layers); fixed: He init, BatchNorm, AdamW,
    one-cycle, flips (benchmarks/gpu_runs/: worth 1-5 points)."""
    from .mlp import MLPConfig, hidden_layers_for_depth
    p = {"flip": True, **params}
    width = p.pop("width")
    return MLPConfig(hidden_layers=hidden_layers_for_depth(depth, width), num_epochs=epochs, init="kaiming",
                     batch_norm=True, optimizer="adamw", schedule="onecycle", seed=seed, normalize=normalize, **p)


def train_q3b(config, data, *, on_epoch) -> dict:
    """Train a Q3b config on a CIFAR10Split; its history (what ``on_epoch(epoch, history)`` saw)."""
    from .tuning import run_config
    return run_config(config, data, on_epoch=on_epoch).stats


def train_q4(config, data, *, on_epoch) -> dict:
    """Train a Q4 config on TensorSplits; its history."""
    from .mlp import fit
    return fit(config, data, on_epoch=on_epoch)[1]


def objective(trial, question: str, data, *, epochs: int, depth: int | None = None, smoke: bool = False,
              gpu: bool = False) -> float:
    """One trial of ``question`` ("q3b" or "q4" at ``depth``): suggest, train ``epochs`` epochs on
    ``data``, report each epoch's monitored accuracy, prune when told; the best epoch's accuracy."""
    import optuna

    def on_epoch(epoch: int, history: dict) -> None:
        trial.report(float(history["val_acc_history"][-1]), epoch)
        if trial.should_prune():
            raise optuna.TrialPruned(f"pruned after epoch {epoch}")

    if question == "q3b":
        history = train_q3b(q3b_config(suggest_q3b(trial, smoke=smoke), epochs=epochs), data, on_epoch=on_epoch)
    else:
        config = q4_config(suggest_q4(trial, smoke=smoke, gpu=gpu), depth=depth, epochs=epochs,
                           normalize=data.normalize)
        history = train_q4(config, data, on_epoch=on_epoch)
    return float(max(history["val_acc_history"]))


def trials_table(study):
    """``study.trials_dataframe()``: number, state, value, duration, params_*, the worker's seed."""
    return study.trials_dataframe(attrs=("number", "state", "value", "duration", "params", "user_attrs"))


def best_complete_trial(study):
    """The best trial that ran to the end (state COMPLETE); the earlier one on a tie."""
    import optuna

    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not done:
        raise RuntimeError(f"Study {study.study_name!r} has no complete trial; run more trials.")
    return max(done, key=lambda t: (t.value, -t.number))
