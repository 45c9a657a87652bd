"""``MultiLayerPerceptron`` (Q4a) and the meaning of depth.

Depth is the number of ``nn.Linear`` layers: depth 2 is ``hidden_layers=[50]``, the handout's
two-layer network; depth k has k - 1 hidden layers. Shapes: N samples, D inputs, C classes.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .._checks import check_choice, check_interval, check_positive_int

ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU, "tanh": nn.Tanh}
INITS = ("handout", "kaiming", "torch")
DEFAULT_INIT = "handout"     # the handout's weights_init: Q4's model class and MLPConfig both start here
HANDOUT_STD = 1e-3


class MultiLayerPerceptron(nn.Module):
    """Flatten - [Linear - (BatchNorm) - activation - (Dropout)] x (depth - 1) - Linear.

    Parameters
    ----------
    input_size : int
        D (3072 for CIFAR-10).
    hidden_layers : sequence of int
        Width of each hidden layer; ``[50]`` is the handout's two-layer net (depth 2).
    num_classes : int
        C. The forward pass returns logits (N, C): no softmax, ``CrossEntropyLoss`` applies it.
    activation : {"relu", "gelu", "tanh"}
    batch_norm : bool
        BatchNorm1d after each hidden Linear (whose bias is then dropped as redundant).
    dropout : float in [0, 1)
        Dropout after each hidden activation.
    init : {"handout", "kaiming", "torch"}
        ``"handout"`` (default): N(0, 1e-3^2) weights, zero biases (the handout's ``weights_init``);
        ``"kaiming"``: N(0, 2 / fan_in) weights (He et al. 2015), zero biases; ``"torch"``: PyTorch's default.
    """

    def __init__(self, input_size, hidden_layers, num_classes, *, activation="relu", batch_norm=False,
                 dropout=0.0, init=DEFAULT_INIT):
        super().__init__()
        input_size = check_positive_int("input_size", input_size)
        num_classes = check_positive_int("num_classes", num_classes)
        hidden_layers = check_hidden_layers(hidden_layers)
        check_choice("activation", activation, ACTIVATIONS)
        dropout = check_interval("dropout", dropout, 0.0, 1.0)
        self.init = check_choice("init", init, INITS)

        layers: list[nn.Module] = [nn.Flatten()]
        widths = [input_size, *hidden_layers]
        for fan_in, fan_out in zip(widths[:-1], widths[1:]):
            layers.append(nn.Linear(fan_in, fan_out, bias=not batch_norm))
            if batch_norm:
                layers.append(nn.BatchNorm1d(fan_out))
            layers.append(ACTIVATIONS[activation]())
            if dropout:
                layers.append(nn.Dropout(dropout))
        layers.append(nn.Linear(widths[-1], num_classes))
        self.layers = nn.Sequential(*layers)
        self.reset_parameters()

    @property
    def linears(self) -> list[nn.Linear]:
        return [m for m in self.layers if isinstance(m, nn.Linear)]

    @property
    def depth(self) -> int:
        """Number of Linear layers."""
        return len(self.linears)

    def reset_parameters(self) -> None:
        for m in self.linears:
            if self.init == "kaiming":
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            elif self.init == "handout":
                nn.init.normal_(m.weight, 0.0, HANDOUT_STD)
            else:
                m.reset_parameters()
            if m.bias is not None and self.init != "torch":
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Images (N, 3, 32, 32) or rows (N, D) -> logits (N, C)."""
        return self.layers(x)


def check_hidden_layers(hidden_layers) -> tuple[int, ...]:
    """A non-empty sequence of positive ints (not a bare int)."""
    message = "The 'hidden_layers' parameter must be a non-empty sequence of ints such as [50]. Got {!r} instead."
    if isinstance(hidden_layers, (int, np.integer, str)):
        raise TypeError(message.format(hidden_layers))
    try:
        widths = tuple(hidden_layers)
    except TypeError:
        raise TypeError(message.format(hidden_layers)) from None
    if not widths:
        raise ValueError(message.format(hidden_layers))
    return tuple(check_positive_int("hidden_layers[]", h) for h in widths)


def hidden_layers_for_depth(depth: int, width: int) -> tuple[int, ...]:
    """The ``hidden_layers`` of a net with ``depth`` Linear layers, each hidden layer ``width`` wide."""
    depth = check_positive_int("depth", depth)
    if depth < 2:
        raise ValueError(f"The 'depth' parameter must be at least 2 (one hidden layer). Got {depth} instead.")
    return (check_positive_int("width", width),) * (depth - 1)
