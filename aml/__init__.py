"""AML Assignment 2: neural networks from first principles.

NumPy half: :class:`TwoLayerNet`, :func:`train` (SGD), gradient checking, CIFAR-10 loading.
PyTorch half: :mod:`aml.mlp` (imported on demand, so the NumPy half needs no torch import).
"""
from .data import CIFAR10Split, load_cifar10
from .flips import random_hflip
from .gradient_check import check_model_gradients, eval_numerical_gradient, rel_error
from .runs import machine_info, set_seed
from .solver import accuracy, train
from .two_layer_net import TwoLayerNet, softmax

__all__ = ["CIFAR10Split", "TwoLayerNet", "accuracy", "check_model_gradients", "eval_numerical_gradient",
           "load_cifar10", "machine_info", "random_hflip", "rel_error", "set_seed", "softmax", "train"]
