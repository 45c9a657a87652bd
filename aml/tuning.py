"""Q3b: one run of the NumPy net as a frozen config. :class:`NetConfig` is an :class:`aml.solver.SGDConfig` (the
solver's fields and defaults, the handout's CIFAR-10 call) plus the network and input settings; :func:`run_config`
trains it; :func:`training_subset` cuts the training split for the short runs of the one-change table."""
from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from functools import partial

import numpy as np

from . import _checks as checks
from .flips import flip_averaged_predict, random_hflip
from .solver import SGDConfig, accuracy, train
from .training import History
from .two_layer_net import TwoLayerNet

NET_CONSTRAINTS = {
    "hidden_size": checks.check_positive_int,
    "std": checks.optional(checks.check_positive_float),
    "dropout": partial(checks.check_interval, low=0.0, high=1.0),
    "preprocess": partial(checks.check_choice, choices=("mean", "scale")),
    "flip": checks.check_bool,
    "seed": checks.check_seed,
    "dtype": partial(checks.check_choice, choices=("float32", "float64")),
}


@dataclass(frozen=True, kw_only=True)
class NetConfig(SGDConfig):
    """One Q3b run, flat: ``NetConfig(hidden_size=100, learning_rate=1e-3)``; the defaults are the
    handout's CIFAR-10 call (about 0.29 validation accuracy).

    Attributes (besides the solver's)
    ----------
    hidden_size : int > 0
    std : float > 0 or None
        Initial weights ``std * N(0, 1)``; None: He initialisation, ``sqrt(2 / D)``.
    dropout : float in [0, 1)
    preprocess : {"mean", "scale"}
        The handout's mean-centred pixels, or those divided by their global standard deviation.
    flip : bool
        Random horizontal flips of the training images.
    seed : int
        Initial weights come from ``seed``, the solver's randomness from ``seed + 1``.
    dtype : {"float32", "float64"}
    """
    hidden_size: int = 50
    std: float | None = 1e-4
    dropout: float = 0.0
    preprocess: str = "mean"
    flip: bool = False
    seed: int = 0
    dtype: str = "float32"

    def __post_init__(self):
        super().__post_init__()
        checks.check_fields(self, NET_CONSTRAINTS)

    @classmethod
    def from_dict(cls, d: dict) -> NetConfig:
        """Build from a flat dict (as :meth:`to_dict` writes it), rejecting unknown fields by name."""
        return cls().replace(**d)

    def replace(self, **changes) -> NetConfig:
        """A copy with some fields changed, validated again; unknown fields are named."""
        unknown = sorted(set(changes) - {f.name for f in dataclasses.fields(self)})
        if unknown:
            raise ValueError(f"Unknown NetConfig field(s) {unknown}; valid fields are "
                             f"{[f.name for f in dataclasses.fields(self)]}.")
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass
class RunResult:
    """One trained config. ``val_acc``: accuracy on the handout's validation images; ``sel_acc``: on
    the selection split, or None when the data have none (then the validation images were monitored);
    ``train_acc``: the last epoch's, on the solver's training subset; ``scale``: the inputs' divisor."""
    config: NetConfig
    model: TwoLayerNet
    scale: float
    stats: History
    val_acc: float
    sel_acc: float | None
    train_acc: float
    seconds: float
    initial_W1: np.ndarray | None = None    # W1 before training: what training changed is W1 minus (a part of) it

    def transform(self, X: np.ndarray) -> np.ndarray:
        """Images as the split holds them (N, D) -> the network's inputs (N, D)."""
        return (X / X.dtype.type(self.scale)).astype(self.config.dtype, copy=False)

    def row(self, **more) -> dict:
        """A flat results-table row: the config's fields plus the measured figures (``sel_acc`` NaN
        when there is no selection split)."""
        sel = round(self.sel_acc, 4) if self.sel_acc is not None else float("nan")
        return {**self.config.to_dict(), "val_acc": round(self.val_acc, 4), "sel_acc": sel,
                "train_acc": round(self.train_acc, 4), "best_epoch": self.stats["best_epoch"],
                "seconds": round(self.seconds, 1), **more}

    def predictor(self, model: TwoLayerNet | None = None, *, flips: bool = False):
        """``predict(X) -> labels (N,)`` for images X (N, D) as the split holds them; with ``flips``,
        the arg-max of the summed scores of each image and of its mirror image (test-time flips).
        ``model`` defaults to the trained one (pass a reloaded copy)."""
        model = self.model if model is None else model
        if flips:
            return lambda X: flip_averaged_predict(model, X, transform=self.transform)
        return lambda X: model.predict(self.transform(X))

    def flip_accuracies(self, data) -> dict:
        """``sel_acc_flips`` (None without a selection split) and ``val_acc_flips``: accuracy with test-time flips."""
        flipped = self.predictor(flips=True)
        sel = selection_split(data)
        return {"sel_acc_flips": accuracy(self.model, *sel, predict=flipped) if sel is not None else None,
                "val_acc_flips": accuracy(self.model, data.X_val, data.y_val, predict=flipped)}


def selection_split(data):
    """``(X_sel, y_sel)`` of ``data`` when it has a non-empty selection split, else None."""
    X_sel = getattr(data, "X_sel", None)
    return None if X_sel is None or len(X_sel) == 0 else (X_sel, data.y_sel)


def run_config(config: NetConfig, data, *, verbose: bool = False, on_epoch=None) -> RunResult:
    """Scale the inputs, build the network and train it with :func:`aml.train`.

    ``data``: a :class:`aml.data.CIFAR10Split` (``X_train, y_train, X_val, y_val``, ``class_names`` and,
    optionally, a selection split ``X_sel, y_sel``). The solver monitors (per-epoch history, best epoch,
    ``keep_best``, what ``on_epoch(epoch, history)`` sees) the selection split when it is non-empty,
    else the validation images; ``val_acc`` is always on the validation images.
    """
    start = time.perf_counter()
    scale = float(data.X_train.std()) if config.preprocess == "scale" else 1.0
    result = RunResult(config, None, scale, None, 0.0, None, 0.0, 0.0)
    X_train, X_val = result.transform(data.X_train), result.transform(data.X_val)
    selection = selection_split(data)
    X_mon, y_mon = (result.transform(selection[0]), selection[1]) if selection is not None else (X_val, data.y_val)
    D = X_train.shape[1]
    std = config.std if config.std is not None else math.sqrt(2.0 / D)
    model = TwoLayerNet(D, config.hidden_size, len(data.class_names), std=std, dtype=np.dtype(config.dtype),
                        seed=config.seed, dropout=config.dropout)
    result.initial_W1 = model.params["W1"].copy()
    stats = train(model, X_train, data.y_train, X_mon, y_mon, config, augment=random_hflip if config.flip else None,
                  seed=config.seed + 1, on_epoch=on_epoch, verbose=verbose)
    result.model, result.stats = model, stats
    result.val_acc = accuracy(model, X_val, data.y_val)
    if selection is not None:
        result.sel_acc = accuracy(model, X_mon, y_mon)
        stats["heldout_val_acc"] = result.val_acc
    result.train_acc, result.seconds = float(stats["train_acc_history"][-1]), time.perf_counter() - start
    return result


def training_subset(data, num_train: int):
    """``data`` with only its first ``num_train`` training images (selection and validation unchanged):
    the short runs of the one-change table. The training split is already in random order."""
    n = min(checks.check_positive_int("num_train", num_train), data.X_train.shape[0])
    return dataclasses.replace(data, X_train=data.X_train[:n], y_train=data.y_train[:n])
