"""Gradient checking: centred differences, a ``torch.autograd`` oracle, and the relative error between them."""
from __future__ import annotations

from collections.abc import Callable

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

    ``x`` is perturbed in place, one entry at a time, and restored (even if ``f`` raises), so ``f``
    may close over it, as over a network's parameter array. Use float64: in float32 the differences
    are dominated by rounding. Returns a float64 array shaped like ``x``.
    """
    h = check_positive_float("h", h)
    if not isinstance(x, np.ndarray) or not np.issubdtype(x.dtype, np.floating):
        raise TypeError(f"The 'x' parameter must be a float numpy.ndarray. Got {type(x).__name__} instead.")
    grad = np.zeros_like(x, dtype=np.float64)
    for i in np.ndindex(x.shape):
        old = x[i].copy()
        try:
            x[i] = old + h
            f_plus = f(x)
            x[i] = old - h
            f_minus = f(x)
        finally:
            x[i] = old
        grad[i] = (f_plus - f_minus) / (2 * h)
    return grad


def numerical_gradients(model, X, y, reg=0.0, h=1e-5, *, dropout_seed=None) -> dict[str, np.ndarray]:
    """Centred differences of ``model.loss`` w.r.t. every parameter (a dict shaped like ``params``).

    With ``dropout_seed`` every loss evaluation draws the same dropout mask (a fresh generator seeded
    alike), so a dropout backward pass can be checked too.
    """
    def loss(_):
        rng = None if dropout_seed is None else np.random.default_rng(dropout_seed)
        return model.loss(X, y, reg=reg, rng=rng)[0]

    return {name: eval_numerical_gradient(loss, param, h=h) for name, param in model.params.items()}


def check_model_gradients(model, X, y, reg=0.0, h=1e-5, *, dropout_seed=None) -> dict[str, float]:
    """Relative error between ``model.loss``'s analytic gradients and centred differences, per parameter."""
    rng = None if dropout_seed is None else np.random.default_rng(dropout_seed)
    _, grads = model.loss(X, y, reg=reg, rng=rng)
    numeric = numerical_gradients(model, X, y, reg, h, dropout_seed=dropout_seed)
    return {name: rel_error(numeric[name], grads[name]) for name in model.params}


def torch_gradients(params: dict, X, y, reg=0.0) -> dict[str, np.ndarray]:
    """The two-layer net's J~ built in torch (float64) and differentiated by autograd: the gradients
    w.r.t. ``W1``, ``b1``, ``W2``, ``b2``, and of J (without the L2 term) w.r.t. the scores ``z3`` (N, C).
    An oracle independent of any hand-written backward pass."""
    import torch

    t = {k: torch.tensor(np.asarray(v, dtype=np.float64), requires_grad=True) for k, v in params.items()}
    z3 = torch.relu(torch.tensor(np.asarray(X, dtype=np.float64)) @ t["W1"] + t["b1"]) @ t["W2"] + t["b2"]
    z3.retain_grad()
    data_loss = torch.nn.functional.cross_entropy(z3, torch.as_tensor(y))
    (data_loss + reg * (t["W1"].square().sum() + t["W2"].square().sum())).backward()
    return {"z3": z3.grad.numpy(), **{k: v.grad.numpy() for k, v in t.items()}}


def formula_errors(name: str, formula: np.ndarray, *, exact: dict | None = None, numeric: dict | None = None,
                   tol: float = 1e-8, numeric_tol: float = 1e-6) -> list[dict]:
    """Assert a hand-derived gradient ``formula`` against references and return one row per reference
    (``quantity``, ``reference``, ``error``: the relative error, ``bound``).

    ``exact`` references (another analytic backward pass, ``torch.autograd``) must agree to below
    ``tol``; ``numeric`` ones (finite differences) to below ``numeric_tol``, since centred differences
    carry ~1e-10 absolute error, a large relative error on entries near zero. ``AssertionError``
    names the references that disagree.
    """
    rows = [{"quantity": name, "reference": ref, "error": rel_error(formula, value), "bound": bound}
            for refs, bound in ((exact or {}, tol), (numeric or {}, numeric_tol)) for ref, value in refs.items()]
    bad = {r["reference"]: r["error"] for r in rows if not r["error"] < r["bound"]}
    if bad:
        raise AssertionError(f"{name}: the formula disagrees with {sorted(bad)} (relative errors {bad}).")
    return rows
