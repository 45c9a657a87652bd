"""AML Assignment 2: neural networks from first principles.

The core chain: :class:`TwoLayerNet` (forward pass, loss, hand-derived gradients), :func:`train` (the SGD
solver, its update rules in :mod:`aml.optim`), gradient checking, CIFAR-10 loading. The PyTorch half is
:mod:`aml.mlp` (imported on demand, so the NumPy half needs no torch import).
"""
from .data import load_cifar10
from .gradient_check import check_model_gradients, eval_numerical_gradient, rel_error
from .runs import set_seed
from .solver import SGDConfig, accuracy, train
from .training import TrainingDiverged
from .two_layer_net import TwoLayerNet, softmax

__all__ = ["SGDConfig", "TrainingDiverged", "TwoLayerNet", "accuracy", "check_model_gradients",
           "eval_numerical_gradient", "load_cifar10", "rel_error", "set_seed", "softmax", "train"]
