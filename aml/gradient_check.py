"""Numerical gradients by centred differences, and the relative error used to compare them."""
from __future__ import annotations

from typing import Callable

import numpy as np

from ._checks import check_positive_float


def rel_error(x, y) -> float:
    """max |x - y| / max(1e-8, |x| + |y|), elementwise, as in CS231n."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if x.shape != y.shape:
        raise ValueError(f"rel_error needs arrays of one shape. Got {x.shape} and {y.shape} instead.")
    return float(np.max(np.abs(x - y) / np.maximum(1e-8, np.abs(x) + np.abs(y))))


def eval_numerical_gradient(f: Callable[[np.ndarray], float], x: np.ndarray, h: float = 1e-5) -> np.ndarray:
    """Centred-difference gradient of the scalar ``f`` at ``x``: (f(x + h e_i) - f(x - h e_i)) / 2h.

    ``x`` is perturbed in place, one entry at a time, and restored afterwards, so ``f`` may close
    over it (as with a network's parameter array). Use float64: in float32 the differences are
    dominated by rounding.
    """
    h = check_positive_float("h", h)
    if not isinstance(x, np.ndarray) or not np.issubdtype(x.dtype, np.floating):
        raise TypeError(f"The 'x' parameter must be a float numpy.ndarray. Got {type(x).__name__} instead.")
    grad = np.zeros_like(x, dtype=np.float64)
    it = np.nditer(x, flags=["multi_index"])
    for _ in it:
        i = it.multi_index
        old = x[i]
        x[i] = old + h
        f_plus = f(x)
        x[i] = old - h
        f_minus = f(x)
        x[i] = old
        grad[i] = (f_plus - f_minus) / (2 * h)
    return grad


def check_model_gradients(model, X, y, reg=0.0, h=1e-5, *, dropout_seed=None) -> dict[str, float]:
    """Relative error between ``model.loss``'s analytic gradients and centred differences, per param.

    With ``dropout_seed`` every loss evaluation draws the same dropout mask (a fresh generator
    seeded alike), so the dropout backward pass is checked too.
    """
    def loss_and_grads():
        rng = None if dropout_seed is None else np.random.default_rng(dropout_seed)
        return model.loss(X, y, reg=reg, rng=rng)

    _, grads = loss_and_grads()
    return {name: rel_error(eval_numerical_gradient(lambda _: loss_and_grads()[0], param, h=h), grads[name])
            for name, param in model.params.items()}
