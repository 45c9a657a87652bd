"""Q3b: configurations of the NumPy net as frozen dataclasses, running one, random search, and
results tables.

A :class:`NetConfig` holds every hyper-parameter of one run (the handout's defaults unless set);
:func:`run_config` turns it into a trained network plus the input transform it was trained on;
:func:`random_search` draws configs; :func:`write_csv` stores a list of result rows.
"""
from __future__ import annotations

import csv
import dataclasses
import math
import time
from dataclasses import dataclass

import numpy as np

from ._checks import (check_choice, check_interval, check_nonneg_float, check_positive_float,
                      check_positive_int)
from .data import CIFAR10Split, hflip_images, random_hflip
from .features import PCA, FlipFromTable
from .solver import accuracy, train
from .two_layer_net import TwoLayerNet
from .utils import atomic_path


@dataclass(frozen=True)
class NetConfig:
    """One Q3b run. The defaults are the handout's (about 0.29 validation accuracy)."""
    hidden_size: int = 50
    learning_rate: float = 1e-4
    reg: float = 0.25
    num_iters: int = 1000
    num_epochs: int | None = None        # if set, overrides num_iters: num_epochs full passes
    batch_size: int = 200
    learning_rate_decay: float = 0.95
    momentum: float = 0.0
    nesterov: bool = False
    lr_schedule: str = "step"            # "step" (x decay per epoch) or "cosine"
    sampling: str = "replacement"        # handout's; "epoch" = shuffled passes without replacement
    std: float | None = 1e-4             # None: He initialisation, sqrt(2 / D)
    dropout: float = 0.0
    preprocess: str = "mean"             # "mean" (handout), "scale" (mean, then / global std), "pca"
    pca_components: int = 400
    flip: bool = False                   # random horizontal flips of training images
    keep_best: bool = False              # restore the parameters of the best validation epoch
    seed: int = 0
    dtype: str = "float32"

    def __post_init__(self):
        check_positive_int("hidden_size", self.hidden_size)
        check_positive_float("learning_rate", self.learning_rate)
        check_nonneg_float("reg", self.reg)
        check_positive_int("num_iters", self.num_iters)
        if self.num_epochs is not None:
            check_positive_int("num_epochs", self.num_epochs)
        check_positive_int("batch_size", self.batch_size)
        check_interval("learning_rate_decay", self.learning_rate_decay, 0.0, 1.0, closed_high=True)
        check_interval("momentum", self.momentum, 0.0, 1.0)
        check_choice("lr_schedule", self.lr_schedule, {"step", "cosine"})
        check_choice("sampling", self.sampling, {"replacement", "epoch"})
        if self.std is not None:
            check_positive_float("std", self.std)
        check_interval("dropout", self.dropout, 0.0, 1.0)
        check_choice("preprocess", self.preprocess, {"mean", "scale", "pca"})
        check_positive_int("pca_components", self.pca_components)
        check_choice("dtype", self.dtype, {"float32", "float64"})

    @classmethod
    def from_dict(cls, d: dict) -> "NetConfig":
        """Build from a dict, rejecting unknown fields by name."""
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(d) - set(names))
        if unknown:
            raise ValueError(f"Unknown NetConfig field(s) {unknown}; valid fields are {names}.")
        return cls(**d)

    def replace(self, **changes) -> "NetConfig":
        return NetConfig.from_dict(dataclasses.asdict(self) | changes)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def iterations(self, num_train: int) -> int:
        if self.num_epochs is None:
            return self.num_iters
        return self.num_epochs * max(num_train // self.batch_size, 1)


class Preprocessor:
    """The input transform of a config, fitted on the training split (already mean-centred)."""

    def __init__(self, config: NetConfig):
        self.config = config
        self.scale = 1.0
        self.pca: PCA | None = None

    def fit(self, X_train: np.ndarray) -> "Preprocessor":
        if self.config.preprocess in ("scale", "pca"):
            self.scale = float(X_train.std())
        if self.config.preprocess == "pca":
            self.pca = PCA(self.config.pca_components, whiten=True, eps=1.0).fit(X_train / self.scale)
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        Z = X / X.dtype.type(self.scale) if self.scale != 1.0 else X
        return self.pca.transform(Z) if self.pca is not None else Z

    def pixel_weights(self, W1: np.ndarray) -> np.ndarray:
        """First-layer weights (D', H) mapped back to pixel space (3072, H), for pictures."""
        return self.pca.inverse_weights(W1) if self.pca is not None else W1


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
                "best_epoch": self.stats["best_epoch"], "seconds": round(self.seconds, 1), **more}


def run_config(config: NetConfig, data: CIFAR10Split, *, verbose: bool = False) -> RunResult:
    """Fit the preprocessing, build the network and train it with :func:`aml.train`."""
    start = time.perf_counter()
    dtype = np.dtype(config.dtype)
    pre = Preprocessor(config).fit(data.X_train)
    X_train = pre.transform(data.X_train).astype(dtype, copy=False)
    X_val = pre.transform(data.X_val).astype(dtype, copy=False)
    augment = None
    if config.flip:
        augment = (FlipFromTable(pre.transform(hflip_images(data.X_train)).astype(dtype, copy=False))
                   if pre.pca is not None else random_hflip)
    D = X_train.shape[1]
    std = config.std if config.std is not None else math.sqrt(2.0 / D)
    model = TwoLayerNet(D, config.hidden_size, len(data.class_names), std=std, dtype=dtype,
                        seed=config.seed, dropout=config.dropout)
    stats = train(model, X_train, data.y_train, X_val, data.y_val,
                  learning_rate=config.learning_rate, learning_rate_decay=config.learning_rate_decay,
                  reg=config.reg, num_iters=config.iterations(X_train.shape[0]), batch_size=config.batch_size,
                  momentum=config.momentum, nesterov=config.nesterov, sampling=config.sampling,
                  lr_schedule=config.lr_schedule, keep_best=config.keep_best, augment=augment,
                  seed=config.seed + 1, verbose=verbose)
    val_acc = accuracy(model, X_val, data.y_val)
    return RunResult(config, model, pre, stats, val_acc, float(stats["train_acc_history"][-1]),
                     time.perf_counter() - start)


def log_uniform(rng: np.random.Generator, low: float, high: float) -> float:
    return float(np.exp(rng.uniform(np.log(low), np.log(high))))


def random_search(base: NetConfig, num_configs: int, *, seed: int = 0, learning_rate=(1e-4, 1e-2),
                  reg=(1e-4, 1.0), **choices) -> list[NetConfig]:
    """``num_configs`` variations of ``base``: learning rate and reg drawn log-uniformly from their
    (low, high) ranges, every other field named in ``choices`` drawn uniformly from its list."""
    check_positive_int("num_configs", num_configs)
    names = {f.name for f in dataclasses.fields(NetConfig)}
    unknown = sorted(set(choices) - names)
    if unknown:
        raise ValueError(f"Unknown NetConfig field(s) {unknown} in the search space.")
    for name, rng_range in (("learning_rate", learning_rate), ("reg", reg)):
        if len(rng_range) != 2 or not 0 < rng_range[0] <= rng_range[1]:
            raise ValueError(f"The {name!r} range must be (low, high) with 0 < low <= high. Got {rng_range} instead.")
    rng = np.random.default_rng(seed)
    configs = []
    for _ in range(num_configs):
        changes = {"learning_rate": log_uniform(rng, *learning_rate), "reg": log_uniform(rng, *reg)}
        for name, options in choices.items():
            changes[name] = options[rng.integers(len(options))]
        configs.append(base.replace(**{k: v.item() if isinstance(v, np.generic) else v for k, v in changes.items()}))
    return configs


def write_csv(rows: list[dict], path) -> None:
    """Write result rows (dicts with the same keys) as CSV, atomically."""
    if not rows:
        raise ValueError("The 'rows' parameter must hold at least one row. Got an empty list instead.")
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def read_csv(path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def run_many(configs: list[NetConfig], data: CIFAR10Split, *, labels: list[str] | None = None,
             desc: str = "runs") -> tuple[list[dict], list[RunResult | None]]:
    """Run each config (tqdm progress); return its table rows and results. A run that diverges gets
    a row with ``val_acc`` 0 and ``note`` "diverged" instead of stopping the search."""
    from tqdm.auto import tqdm

    rows, results = [], []
    for i, config in enumerate(tqdm(configs, desc=desc, unit="run")):
        label = {"run": labels[i]} if labels else {"run": i}
        try:
            result = run_config(config, data)
        except FloatingPointError:
            rows.append({**label, **config.to_dict(), "val_acc": 0.0, "train_acc": 0.0, "best_epoch": 0,
                         "seconds": float("nan"), "note": "diverged"})
            results.append(None)
            continue
        rows.append({**label, **result.row(note="")})
        results.append(result)
    return rows, results


def flip_averaged_predict(model: TwoLayerNet, X: np.ndarray) -> np.ndarray:
    """Labels (N,) from the mean of the scores of each image and of its mirror image (test-time
    augmentation). X must hold HWC-flattened pixels (N, 3072), possibly centred and scaled."""
    return np.argmax(model.scores(X) + model.scores(hflip_images(X)), axis=1)


def flip_averaged_accuracy(model: TwoLayerNet, X: np.ndarray, y: np.ndarray, batch_size: int = 5000) -> float:
    """:func:`aml.solver.accuracy` with :func:`flip_averaged_predict`."""
    return accuracy(model, X, y, batch_size, predict=lambda Xb: flip_averaged_predict(model, Xb))
