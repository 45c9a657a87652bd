"""Q3b: one run of the NumPy net as a frozen config, and running configs into results rows.

A :class:`NetConfig` holds the network and input settings and an :class:`aml.solver.SGDConfig` for
the solver; :func:`run_config` turns it into a trained network plus the input transform it was
trained on; :func:`run_many` runs a list of configs into a results table.
"""
from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass

import numpy as np

from ._checks import check_bool, check_choice, check_interval, check_positive_float, check_positive_int, check_seed
from .data import CIFAR10Split
from .features import Preprocessor
from .flips import FlipFromTable, hflip_images, random_hflip
from .solver import SGDConfig, accuracy, train
from .two_layer_net import TwoLayerNet

#: The handout's CIFAR-10 call: ``net.train(..., num_iters=1000, batch_size=200, learning_rate=1e-4,
#: learning_rate_decay=0.95, reg=0.25)`` (about 0.29 validation accuracy).
HANDOUT_SGD = SGDConfig(learning_rate=1e-4, learning_rate_decay=0.95, reg=0.25, num_iters=1000, batch_size=200)
SGD_FIELDS = tuple(f.name for f in dataclasses.fields(SGDConfig))


@dataclass(frozen=True)
class NetConfig:
    """One Q3b run. The defaults are the handout's.

    Attributes
    ----------
    hidden_size : int > 0
    std : float > 0 or None
        Initial weights ``std * N(0, 1)``; None: He initialisation, ``sqrt(2 / D)``.
    dropout : float in [0, 1)
    preprocess : {"mean", "scale", "pca"}
        ``"mean"``: the handout's mean-centred pixels; ``"scale"``: then divided by their global std;
        ``"pca"``: scaled, then whitened PCA to ``pca_components``.
    pca_components : int > 0
    flip : bool
        Random horizontal flips of training images.
    seed : int in [0, 2**32)
        Initial weights come from ``seed``, the solver's randomness from ``seed + 1``.
    dtype : {"float32", "float64"}
    sgd : SGDConfig
        The solver's hyper-parameters.
    """
    hidden_size: int = 50
    std: float | None = 1e-4
    dropout: float = 0.0
    preprocess: str = "mean"
    pca_components: int = 400
    flip: bool = False
    seed: int = 0
    dtype: str = "float32"
    sgd: SGDConfig = HANDOUT_SGD

    def __post_init__(self):
        check_positive_int("hidden_size", self.hidden_size)
        if self.std is not None:
            check_positive_float("std", self.std)
        check_interval("dropout", self.dropout, 0.0, 1.0)
        check_choice("preprocess", self.preprocess, {"mean", "scale", "pca"})
        check_positive_int("pca_components", self.pca_components)
        check_bool("flip", self.flip)
        check_seed("seed", self.seed)
        check_choice("dtype", self.dtype, {"float32", "float64"})
        if not isinstance(self.sgd, SGDConfig):
            raise TypeError(f"The 'sgd' parameter must be an SGDConfig. Got {type(self.sgd).__name__} instead.")

    @classmethod
    def from_dict(cls, d: dict) -> "NetConfig":
        """Build from a flat dict (as :meth:`to_dict` writes it: net fields and SGDConfig fields side by
        side), rejecting unknown fields by name."""
        return cls().replace(**d)

    def replace(self, **changes) -> "NetConfig":
        """A copy with net fields and/or SGDConfig fields (given flat) changed, validated again."""
        net_names = {f.name for f in dataclasses.fields(self)} - {"sgd"}
        unknown = sorted(set(changes) - net_names - set(SGD_FIELDS) - {"sgd"})
        if unknown:
            raise ValueError(f"Unknown NetConfig field(s) {unknown}; valid fields are "
                             f"{sorted(net_names)} and the SGDConfig fields {list(SGD_FIELDS)}.")
        sgd = changes.pop("sgd", self.sgd)
        sgd = dataclasses.replace(sgd, **{k: changes.pop(k) for k in SGD_FIELDS if k in changes})
        return dataclasses.replace(self, sgd=sgd, **changes)

    def to_dict(self) -> dict:
        """Flat: the net fields, then the SGDConfig fields."""
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "sgd"}
        return d | dataclasses.asdict(self.sgd)


@dataclass
class RunResult:
    config: NetConfig
    model: TwoLayerNet
    preprocessor: Preprocessor
    stats: dict
    val_acc: float
    train_acc: float
    seconds: float

    def row(self, **more) -> dict:
        """A flat results-table row: the config's fields plus the measured figures."""
        return {**self.config.to_dict(), "val_acc": round(self.val_acc, 4), "train_acc": round(self.train_acc, 4),
                "best_epoch": self.stats["best_epoch"], "epochs": round(float(self.stats["epoch_history"][-1]), 2),
                "seconds": round(self.seconds, 1), **more}


def prepare_inputs(config: NetConfig, data: CIFAR10Split):
    """Fit the config's input transform on the training split; return it, the transformed training
    and validation inputs, and the flip augmentation (or None)."""
    dtype = np.dtype(config.dtype)
    pre = Preprocessor(config).fit(data.X_train)
    X_train = pre.transform(data.X_train).astype(dtype, copy=False)
    X_val = pre.transform(data.X_val).astype(dtype, copy=False)
    augment = None
    if config.flip:
        augment = (FlipFromTable(pre.transform(hflip_images(data.X_train)).astype(dtype, copy=False))
                   if pre.pca is not None else random_hflip)
    return pre, X_train, X_val, augment


def run_config(config: NetConfig, data: CIFAR10Split, *, verbose: bool = False, on_epoch=None) -> RunResult:
    """Fit the preprocessing, build the network and train it with :func:`aml.train`.

    ``on_epoch(epoch, history)`` is passed to the solver (the search reports to Optuna with it).
    """
    start = time.perf_counter()
    pre, X_train, X_val, augment = prepare_inputs(config, data)
    D = X_train.shape[1]
    std = config.std if config.std is not None else math.sqrt(2.0 / D)
    model = TwoLayerNet(D, config.hidden_size, len(data.class_names), std=std, dtype=np.dtype(config.dtype),
                        seed=config.seed, dropout=config.dropout)
    stats = train(model, X_train, data.y_train, X_val, data.y_val, config.sgd, augment=augment,
                  seed=config.seed + 1, on_epoch=on_epoch, verbose=verbose)
    val_acc = accuracy(model, X_val, data.y_val)
    return RunResult(config, model, pre, stats, val_acc, float(stats["train_acc_history"][-1]),
                     time.perf_counter() - start)


def run_many(configs: list[NetConfig], data: CIFAR10Split, *, labels: list[str] | None = None,
             desc: str = "runs") -> tuple[list[dict], list[RunResult | None]]:
    """Run each config (tqdm progress); return its table rows and results.

    A run that fails (diverges, or raises any other error) gets a row with ``val_acc`` NaN and a
    ``note`` saying why, and the others go on: one bad config never loses the finished rows.
    ``KeyboardInterrupt`` still stops everything.
    """
    from tqdm.auto import tqdm

    rows, results = [], []
    for i, config in enumerate(tqdm(configs, desc=desc, unit="run")):
        label = {"run": labels[i]} if labels else {"run": i}
        try:
            result = run_config(config, data)
        except Exception as e:  # noqa: BLE001 - recorded in the row, see the docstring
            note = "diverged" if isinstance(e, FloatingPointError) else f"failed: {type(e).__name__}: {e}"
            rows.append({**label, **config.to_dict(), "val_acc": float("nan"), "train_acc": float("nan"),
                         "best_epoch": 0, "epochs": 0.0, "seconds": float("nan"), "note": note})
            results.append(None)
            continue
        rows.append({**label, **result.row(note="")})
        results.append(result)
    return rows, results
