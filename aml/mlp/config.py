"""``MLPConfig``: every hyper-parameter of one Q4 training run, declared, defaulted and validated once."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from .. import _checks as c
from .model import check_mlp_args

HANDOUT_LR_DECAY = 0.95      # the handout's schedule: the learning rate x 0.95 after every epoch
CHOICES = {"optimizer": ("adam", "adamw", "sgd"), "schedule": ("step", "onecycle"), "normalize": ("handout", "zca")}


@dataclass(frozen=True)
class MLPConfig:
    """One Q4 run; the defaults: the handout's (hidden [50], 10 epochs, batch 200, Adam lr 1e-3 x 0.95/epoch, wd 1e-3).

    Attributes
    ----------
    hidden_layers, batch_norm, dropout, init
        The model (see :class:`MultiLayerPerceptron`).
    num_epochs, batch_size : int > 0; lr : float > 0
    optimizer : {"adam", "adamw", "sgd"}; weight_decay : float >= 0
        Added to the gradient (``"adam"``, ``"sgd"``: plain SGD) or decoupled (``"adamw"``).
    schedule : {"step", "onecycle"}
        x 0.95 after every epoch (the handout's), or ``OneCycleLR`` peaking at ``lr`` after 25% of the steps.
    flip : bool, crop_padding : int >= 0
        Random horizontal flips and random crops of the zero-padded image, per training batch.
    label_smoothing : float in [0, 1); normalize : {"handout", "zca"}
        The inputs it expects: [-1, 1] (``load_tensor_splits``), or whitened by ``zca_splits``.
    bfloat16 : bool
        Train in bfloat16 (``torch.autocast``) on the CPU too, as always on a GPU (:func:`fast_bfloat16`: where it pays)
    seed : int in [0, 2**32)
        Seeds the initial weights, the dropout masks, the batches and the augmentation.
    """
    hidden_layers: tuple = (50,)
    num_epochs: int = 10
    batch_size: int = 200
    lr: float = 1e-3
    weight_decay: float = 1e-3
    optimizer: str = "adam"
    schedule: str = "step"
    init: str = "handout"
    batch_norm: bool = False
    dropout: float = 0.0
    flip: bool = False
    crop_padding: int = 0
    label_smoothing: float = 0.0
    normalize: str = "handout"
    bfloat16: bool = False
    seed: int = 0

    def __post_init__(self):
        object.__setattr__(self, "hidden_layers", check_mlp_args(self.hidden_layers, self.dropout, self.init))
        for name in ("num_epochs", "batch_size"):
            c.check_positive_int(name, getattr(self, name))
        c.check_positive_float("lr", self.lr)
        c.check_nonneg_float("weight_decay", self.weight_decay)
        for name, choices in CHOICES.items():
            c.check_choice(name, getattr(self, name), choices)
        for name in ("batch_norm", "flip", "bfloat16"):
            c.check_bool(name, getattr(self, name))
        c.check_interval("label_smoothing", self.label_smoothing, 0.0, 1.0)
        c.check_nonneg_int("crop_padding", self.crop_padding)
        c.check_seed("seed", self.seed)

    @property
    def depth(self) -> int:
        """The number of Linear layers."""
        return len(self.hidden_layers) + 1

    @classmethod
    def from_dict(cls, d: dict) -> "MLPConfig":
        """The inverse of :meth:`to_dict`; an unknown field is a ``TypeError`` naming it."""
        return cls(**d)

    def to_dict(self) -> dict:
        """Plain JSON values (``hidden_layers`` a list)."""
        return {**dataclasses.asdict(self), "hidden_layers": list(self.hidden_layers)}
