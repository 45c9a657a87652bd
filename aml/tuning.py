"""Q3b: one run of the NumPy net as a frozen config, and running configs into results rows.

A :class:`NetConfig` holds the network and input settings and, as flat fields of its own, every
solver hyper-parameter (it extends :class:`aml.solver.SGDConfig`, which validates those);
:func:`run_config` turns it into a trained network plus the input transform it was trained on;
:func:`run_many` runs a list of configs into a results table.
"""
from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass

import numpy as np

from ._checks import check_bool, check_choice, check_interval, check_positive_float, check_positive_int, check_seed
from .features import Preprocessor
from .flips import FlipFromTable, hflip_images, random_hflip
from .solver import SGDConfig, accuracy, train
from .training import History
from .two_layer_net import TwoLayerNet

SGD_FIELDS = tuple(f.name for f in dataclasses.fields(SGDConfig))


@dataclass(frozen=True, kw_only=True)
class NetConfig(SGDConfig):
    """One Q3b run, flat: ``NetConfig(hidden_size=100, learning_rate=1e-3)``. The defaults are the
    handout's CIFAR-10 call, ``net.train(..., num_iters=1000, batch_size=200, learning_rate=1e-4,
    learning_rate_decay=0.95, reg=0.25)`` (about 0.29 validation accuracy).

    The solver's fields (``learning_rate``, ``learning_rate_decay``, ``reg``, ``num_iters``,
    ``num_epochs``, ``batch_size``, ``momentum``, ``nesterov``, ``sampling``, ``lr_schedule``,
    ``keep_best``, ``num_train_acc``) are those of :class:`aml.solver.SGDConfig`, documented and
    validated there; the net's are below.

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
    """
    learning_rate: float = 1e-4
    reg: float = 0.25
    num_iters: int = 1000
    hidden_size: int = 50
    std: float | None = 1e-4
    dropout: float = 0.0
    preprocess: str = "mean"
    pca_components: int = 400
    flip: bool = False
    seed: int = 0
    dtype: str = "float32"

    def __post_init__(self):
        super().__post_init__()
        check_positive_int("hidden_size", self.hidden_size)
        if self.std is not None:
            check_positive_float("std", self.std)
        check_interval("dropout", self.dropout, 0.0, 1.0)
        check_choice("preprocess", self.preprocess, {"mean", "scale", "pca"})
        check_positive_int("pca_components", self.pca_components)
        check_bool("flip", self.flip)
        check_seed("seed", self.seed)
        check_choice("dtype", self.dtype, {"float32", "float64"})

    @property
    def sgd(self) -> SGDConfig:
        """The solver's part, as the :class:`aml.solver.SGDConfig` that :func:`aml.train` takes."""
        return SGDConfig(**{k: getattr(self, k) for k in SGD_FIELDS})

    @classmethod
    def from_dict(cls, d: dict) -> "NetConfig":
        """Build from a flat dict (as :meth:`to_dict` writes it), rejecting unknown fields by name."""
        return cls().replace(**d)

    def replace(self, **changes) -> "NetConfig":
        """A copy with some fields changed, validated again; unknown fields are named."""
        names = [f.name for f in dataclasses.fields(self)]
        unknown = sorted(set(changes) - set(names))
        if unknown:
            raise ValueError(f"Unknown NetConfig field(s) {unknown}; valid fields are {names}.")
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        """Flat: the net fields, then the solver's."""
        net = [f.name for f in dataclasses.fields(self) if f.name not in SGD_FIELDS]
        return {k: getattr(self, k) for k in (*net, *SGD_FIELDS)}


@dataclass
class RunResult:
    """One trained config. ``val_acc``: accuracy on the handout's validation images; ``sel_acc``: on
    the selection split, or None when the data have none (then the validation images were monitored,
    see :mod:`aml.training`); ``train_acc``: the last epoch's, on the solver's training subset."""
    config: NetConfig
    model: TwoLayerNet
    preprocessor: Preprocessor
    stats: History
    val_acc: float
    sel_acc: float | None
    train_acc: float
    seconds: float

    def row(self, **more) -> dict:
        """A flat results-table row: the config's fields plus the measured figures (``sel_acc`` NaN
        when there is no selection split)."""
        sel = round(self.sel_acc, 4) if self.sel_acc is not None else float("nan")
        return {**self.config.to_dict(), "val_acc": round(self.val_acc, 4), "sel_acc": sel,
                "train_acc": round(self.train_acc, 4), "best_epoch": self.stats["best_epoch"],
                "epochs": round(float(self.stats["epoch_history"][-1]), 2), "seconds": round(self.seconds, 1), **more}


    def predictor(self, model: TwoLayerNet | None = None, *, flips: bool = False):
        """``predict(X) -> labels (N,)`` for images X (N, D) as the split holds them, through this run's
        input transform; with ``flips``, the arg-max of the summed scores of each image and of its
        mirror image (test-time flips). ``model`` defaults to the trained one (pass a reloaded copy)."""
        model = self.model if model is None else model
        dtype = np.dtype(self.config.dtype)

        def transform(X):
            return self.preprocessor.transform(X).astype(dtype, copy=False)

        def predict(X):
            if not flips:
                return model.predict(transform(X))
            return np.argmax(model.scores(transform(X)) + model.scores(transform(hflip_images(X))), axis=1)
        return predict

    def flip_accuracies(self, data) -> dict:
        """``sel_acc_flips`` and ``val_acc_flips``: accuracy with test-time flips on the selection split
        (None when there is none) and on the validation images."""
        flipped = self.predictor(flips=True)
        sel = selection_split(data)
        return {"sel_acc_flips": accuracy(self.model, *sel, predict=flipped) if sel is not None else None,
                "val_acc_flips": accuracy(self.model, data.X_val, data.y_val, predict=flipped)}


def selection_split(data):
    """``(X_sel, y_sel)`` of ``data`` when it has a non-empty selection split, else None."""
    X_sel = getattr(data, "X_sel", None)
    if X_sel is None or len(X_sel) == 0:
        return None
    return X_sel, data.y_sel


def prepare_inputs(config: NetConfig, data):
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


def run_config(config: NetConfig, data, *, verbose: bool = False, on_epoch=None) -> RunResult:
    """Fit the preprocessing, build the network and train it with :func:`aml.train`.

    ``data``: a :class:`aml.data.CIFAR10Split` (``X_train, y_train, X_val, y_val``, ``class_names``
    and, optionally, a selection split ``X_sel, y_sel``). The solver monitors (per-epoch "val"
    history, best epoch, ``keep_best``, what ``on_epoch(epoch, history)`` sees: the search reports
    it to Optuna) the selection split when it is non-empty, else the validation images. The result's
    ``val_acc`` is always on the validation images, and ``stats["heldout_val_acc"]`` equals it when
    they were held out of monitoring.
    """
    start = time.perf_counter()
    pre, X_train, X_val, augment = prepare_inputs(config, data)
    selection = selection_split(data)
    if selection is not None:
        X_mon = pre.transform(selection[0]).astype(np.dtype(config.dtype), copy=False)
        y_mon = selection[1]
    else:
        X_mon, y_mon = X_val, data.y_val
    D = X_train.shape[1]
    std = config.std if config.std is not None else math.sqrt(2.0 / D)
    model = TwoLayerNet(D, config.hidden_size, len(data.class_names), std=std, dtype=np.dtype(config.dtype),
                        seed=config.seed, dropout=config.dropout)
    stats = train(model, X_train, data.y_train, X_mon, y_mon, config.sgd, augment=augment,
                  seed=config.seed + 1, on_epoch=on_epoch, verbose=verbose)
    val_acc = accuracy(model, X_val, data.y_val)
    sel_acc = None
    if selection is not None:
        sel_acc = accuracy(model, X_mon, y_mon)
        stats["heldout_val_acc"] = val_acc
    return RunResult(config, model, pre, stats, val_acc, sel_acc, float(stats["train_acc_history"][-1]),
                     time.perf_counter() - start)


def run_many(configs: list[NetConfig], data, *, labels: list[str] | None = None,
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
            rows.append({**label, **config.to_dict(), "val_acc": float("nan"), "sel_acc": float("nan"),
                         "train_acc": float("nan"),
                         "best_epoch": 0, "epochs": 0.0, "seconds": float("nan"), "note": note})
            results.append(None)
            continue
        rows.append({**label, **result.row(note="")})
        results.append(result)
    return rows, results
