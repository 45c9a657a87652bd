"""First-order update rules, one pure function each, in the manner of CS231n's ``optim.py``.

Every rule has the signature ``rule(w, dw, state, *, lr, ...) -> w``: ``w`` is a parameter array,
``dw`` its gradient (same shape), ``state`` a dict that the rule owns for this parameter (e.g. the
velocity), created empty by the caller. ``w`` and ``state``'s arrays are updated in place (a 12 MB
weight matrix is not copied on every step) and ``w`` is returned. ``dw`` is left unchanged.
"""
from __future__ import annotations

import numpy as np


def sgd(w: np.ndarray, dw: np.ndarray, state: dict, *, lr: float) -> np.ndarray:
    """Vanilla SGD: ``w <- w - lr * dw``."""
    w -= lr * dw
    return w


def sgd_momentum(w: np.ndarray, dw: np.ndarray, state: dict, *, lr: float, momentum: float) -> np.ndarray:
    """Classical (heavy-ball) momentum: ``v <- mu v - lr dw``; ``w <- w + v``."""
    v = state.setdefault("velocity", np.zeros_like(w))
    v *= momentum
    v -= lr * dw
    w += v
    return w


def nesterov_momentum(w: np.ndarray, dw: np.ndarray, state: dict, *, lr: float, momentum: float) -> np.ndarray:
    """Nesterov's accelerated gradient in the form of Sutskever et al. (2013), as CS231n writes it:
    ``v' <- mu v - lr dw``; ``w <- w - mu v + (1 + mu) v'``."""
    v = state.setdefault("velocity", np.zeros_like(w))
    w -= momentum * v
    v *= momentum
    v -= lr * dw
    w += (1 + momentum) * v
    return w
