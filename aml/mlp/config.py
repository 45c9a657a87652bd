"""``MLPConfig``: every hyper-parameter of one Q4 training run, declared, defaulted and validated once."""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from .._checks import (
    check_bool,
    check_choice,
    check_interval,
    check_nonneg_int,
    check_positive_float,
    check_positive_int,
    check_seed,
)
from .model import ACTIVATIONS, DEFAULT_INIT, INITS, check_hidden_layers

OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULES = ("step", "cosine", "onecycle")
NORMALIZATIONS = ("handout", "standard", "zca")


@dataclass(frozen=True)
class MLPConfig:
    """One Q4 run. The defaults are the handout's (``hidden_layers=(50,)``, 10 epochs, batch 200,
    Adam with learning rate 1e-3 and weight decay 1e-3 added to the gradient, x0.95 per epoch).

    Attributes
    ----------
    hidden_layers : tuple of int
    num_epochs, batch_size : int > 0
    lr : float > 0
    weight_decay : float >= 0
        L2 added to the gradient (``"adam"``, ``"sgd"``) or decoupled (``"adamw"``).
    optimizer : {"adam", "adamw", "sgd"}
    momentum : float in [0, 1), nesterov : bool
        Used by ``"sgd"`` only (Nesterov needs momentum > 0); plain SGD by default.
    schedule : {"step", "cosine", "onecycle"}
        ``"step"``: lr x ``lr_decay`` after every epoch (the handout's, ``StepLR``); ``"cosine"``:
        ``CosineAnnealingLR`` to 0; ``"onecycle"``: ``OneCycleLR`` peaking at ``lr`` after 25% of the steps.
    lr_decay : float in (0, 1]
    init : {"handout", "kaiming", "torch"}, batch_norm : bool, dropout : float in [0, 1),
    activation : {"relu", "gelu", "tanh"}
        The model (see :class:`MultiLayerPerceptron`).
    normalize : {"handout", "standard", "zca"}
        The inputs it expects: ``"handout"`` [-1, 1], ``"standard"`` z-score per channel, ``"zca"``
        whitened by :func:`aml.mlp.whiten.zca_splits` (the GPU budget).
    flip : bool, crop_padding : int >= 0
        Random horizontal flips and random crops of the zero-padded image, per training batch.
    label_smoothing : float in [0, 1)
    seed : int in [0, 2**32)
    """
    hidden_layers: tuple = (50,)
    num_epochs: int = 10
    batch_size: int = 200
    lr: float = 1e-3
    weight_decay: float = 1e-3
    optimizer: str = "adam"
    momentum: float = 0.0
    nesterov: bool = False
    schedule: str = "step"
    lr_decay: float = 0.95
    init: str = DEFAULT_INIT
    batch_norm: bool = False
    dropout: float = 0.0
    activation: str = "relu"
    normalize: str = "handout"
    flip: bool = False
    crop_padding: int = 0
    label_smoothing: float = 0.0
    seed: int = 0

    def __post_init__(self):
        object.__setattr__(self, "hidden_layers", check_hidden_layers(self.hidden_layers))
        check_positive_int("num_epochs", self.num_epochs)
        check_positive_int("batch_size", self.batch_size)
        check_positive_float("lr", self.lr)
        check_interval("weight_decay", self.weight_decay, 0.0, math.inf)
        check_choice("optimizer", self.optimizer, OPTIMIZERS)
        check_interval("momentum", self.momentum, 0.0, 1.0)
        check_bool("nesterov", self.nesterov)
        if self.nesterov and not (self.optimizer == "sgd" and self.momentum > 0):
            raise ValueError("The 'nesterov' parameter needs optimizer='sgd' and momentum > 0. Got "
                             f"optimizer={self.optimizer!r}, momentum={self.momentum!r} instead.")
        check_choice("schedule", self.schedule, SCHEDULES)
        if check_interval("lr_decay", self.lr_decay, 0.0, 1.0, closed_high=True) == 0:
            raise ValueError("The 'lr_decay' parameter must be a float in (0, 1]. Got 0.0 instead.")
        check_choice("init", self.init, INITS)
        check_bool("batch_norm", self.batch_norm)
        check_interval("dropout", self.dropout, 0.0, 1.0)
        check_choice("activation", self.activation, ACTIVATIONS)
        check_choice("normalize", self.normalize, NORMALIZATIONS)
        check_bool("flip", self.flip)
        check_nonneg_int("crop_padding", self.crop_padding)
        check_interval("label_smoothing", self.label_smoothing, 0.0, 1.0)
        check_seed("seed", self.seed)

    @property
    def depth(self) -> int:
        return len(self.hidden_layers) + 1

    @classmethod
    def from_dict(cls, d: dict) -> "MLPConfig":
        """Build from a dict, rejecting unknown fields by name."""
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(d) - set(names))
        if unknown:
            raise ValueError(f"Unknown MLPConfig field(s) {unknown}; valid fields are {names}.")
        return cls(**d)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["hidden_layers"] = list(self.hidden_layers)
        return d
