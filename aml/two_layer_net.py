"""A two-layer fully connected ReLU network with a softmax cross-entropy loss, in NumPy.

Shapes: N samples, D input features, H hidden units, C classes. The code works on row batches
(``X @ W1``); the report's column form ``z2 = W1 a1 + b1`` is the transpose of the same thing.

    z2 = X @ W1 + b1            # (N, H)
    a2 = ReLU(z2)               # (N, H)   (inverted dropout on a2 when training with dropout)
    z3 = a2 @ W2 + b2           # (N, C)   scores
    psi = softmax(z3)           # (N, C)   row-wise

    J  = -(1/N) sum_i log psi[i, y_i]                  (mean cross-entropy, Eq. 5)
    J~ = J + reg * (||W1||_F^2 + ||W2||_F^2)           (Eq. 6: no factor 1/2, so dJ~/dW = dJ/dW + 2 reg W)

Biases are not regularised.
"""
from __future__ import annotations

import zipfile
import zlib
from pathlib import Path

import numpy as np

from ._checks import check_interval, check_nonneg_float, check_positive_float, check_positive_int, check_X, check_y

PARAM_NAMES = ("W1", "b1", "W2", "b2")


def softmax(scores: np.ndarray) -> np.ndarray:
    """Row-wise softmax of (N, C) scores, shifted by the row maximum so exp never overflows."""
    shifted = scores - scores.max(axis=1, keepdims=True)
    np.exp(shifted, out=shifted)
    shifted /= shifted.sum(axis=1, keepdims=True)
    return shifted


class TwoLayerNet:
    """Input - fully connected - ReLU - fully connected - softmax.

    Parameters
    ----------
    input_size, hidden_size, output_size : int
        D, H and C.
    std : float
        Weights are ``std * standard normal``; biases start at zero.
    dtype : numpy float dtype
        dtype of every parameter, activation and gradient (float32 stays float32 end to end).
    seed : None, int or numpy.random.Generator
        Where the initial weights come from. ``None`` draws from NumPy's *global* generator
        (``np.random.randn``, W1 then W2): this is what the handout does, so
        ``np.random.seed(0); TwoLayerNet(4, 10, 3, std=1e-1)`` reproduces its toy model and its
        reference figures. Give an int or a Generator everywhere else, so that runs depend on no
        global state.
    dropout : float in [0, 1)
        Probability of dropping a hidden unit when ``loss`` is called with an ``rng`` (training).
        Inverted dropout: kept units are scaled by 1/(1-p), so prediction needs no rescaling.

    Attributes
    ----------
    params : dict
        ``W1`` (D, H), ``b1`` (H,), ``W2`` (H, C), ``b2`` (C,).
    """

    def __init__(self, input_size, hidden_size, output_size, std=1e-4, *, dtype=np.float64,
                 seed=None, dropout=0.0):
        D = check_positive_int("input_size", input_size)
        H = check_positive_int("hidden_size", hidden_size)
        C = check_positive_int("output_size", output_size)
        std = check_positive_float("std", std)
        self.dropout = check_interval("dropout", dropout, 0.0, 1.0)
        self.loss_terms = (float("nan"), float("nan"))     # (J, L2 term) of the last loss(X, y) call
        dtype = np.dtype(dtype)
        if not np.issubdtype(dtype, np.floating):
            raise TypeError(f"The 'dtype' parameter must be a float dtype. Got {dtype} instead.")
        if seed is None:
            W1, W2 = np.random.randn(D, H), np.random.randn(H, C)
        else:
            rng = np.random.default_rng(seed)
            W1, W2 = rng.standard_normal((D, H)), rng.standard_normal((H, C))
        self.params = {
            "W1": (std * W1).astype(dtype),
            "b1": np.zeros(H, dtype=dtype),
            "W2": (std * W2).astype(dtype),
            "b2": np.zeros(C, dtype=dtype),
        }

    @property
    def dtype(self) -> np.dtype:
        return self.params["W1"].dtype

    @property
    def sizes(self) -> tuple[int, int, int]:
        """(D, H, C)."""
        D, H = self.params["W1"].shape
        return D, H, self.params["W2"].shape[1]

    def scores(self, X: np.ndarray) -> np.ndarray:
        """Class scores z3 (N, C) for inputs X (N, D), without dropout."""
        X = check_X(X, num_features=self.sizes[0])
        p = self.params
        hidden = X.astype(self.dtype, copy=False) @ p["W1"]
        hidden += p["b1"]
        np.maximum(hidden, 0, out=hidden)
        scores = hidden @ p["W2"]
        scores += p["b2"]
        return scores

    def loss(self, X, y=None, reg=0.0, *, rng=None):
        """Softmax probabilities, or the regularised loss and its gradients.

        Parameters
        ----------
        X : ndarray (N, D)
        y : ndarray (N,) of int in [0, C), or None
        reg : float >= 0
            lambda of J~ = J + reg * (||W1||^2 + ||W2||^2).
        rng : numpy.random.Generator or None
            Source of dropout masks. Dropout is applied only when ``rng`` is given and
            ``self.dropout > 0`` (the solver passes one while training).

        Returns
        -------
        probs : ndarray (N, C), if y is None.
        (loss, grads) : float and dict of arrays shaped like ``params``, otherwise.
        """
        D, H, C = self.sizes
        X = check_X(X, num_features=D)
        reg = check_nonneg_float("reg", reg)
        if y is None:
            return softmax(self.scores(X))
        y = check_y(y, num_samples=X.shape[0], num_classes=C)

        p, N = self.params, X.shape[0]
        X = X.astype(self.dtype, copy=False)

        # forward
        a2 = X @ p["W1"]                                # (N, H)  z2, then a2 in place
        a2 += p["b1"]
        np.maximum(a2, 0, out=a2)
        mask = None
        if rng is not None and self.dropout > 0:
            keep = 1.0 - self.dropout
            mask = (rng.random(a2.shape, dtype=np.float32) < keep).astype(self.dtype)
            mask /= self.dtype.type(keep)               # (N, H) inverted-dropout mask
            a2 *= mask
        z3 = a2 @ p["W2"]                               # (N, C)
        z3 += p["b2"]
        z3 -= z3.max(axis=1, keepdims=True)             # shift for stability; psi is unchanged
        log_norm = np.log(np.exp(z3).sum(axis=1))       # (N,)
        rows = np.arange(N)
        data_loss = float(np.mean(log_norm - z3[rows, y]))
        W1, W2 = p["W1"], p["W2"]
        reg_loss = reg * (float(np.vdot(W1, W1)) + float(np.vdot(W2, W2)))
        loss = data_loss + reg_loss
        self.loss_terms = (data_loss, reg_loss)          # (J, L2 term) of this call, for the solver's history

        # backward: dJ/dz3 = (psi - Delta) / N
        dz3 = np.exp(z3 - log_norm[:, None])            # (N, C)  psi
        dz3[rows, y] -= 1
        dz3 /= N
        grads = {"W2": a2.T @ dz3, "b2": dz3.sum(axis=0)}
        da2 = dz3 @ W2.T                                # (N, H)
        if mask is not None:
            da2 *= mask
        da2 *= a2 > 0                                   # Heaviside(z2): a2 = 0 exactly where z2 <= 0
        grads["W1"] = X.T @ da2                         # (D, H)
        grads["b1"] = da2.sum(axis=0)
        if reg:
            grads["W1"] += (2 * reg) * W1
            grads["W2"] += (2 * reg) * W2
        return loss, {k: g.astype(self.dtype, copy=False) for k, g in grads.items()}

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Most likely class (N,) int64 for each row of X (N, D)."""
        return np.argmax(self.scores(X), axis=1)

    def train(self, X, y, X_val, y_val, *, seed=None, **kwargs):
        """The handout's ``net.train(X, y, X_val, y_val, learning_rate=..., reg=..., num_iters=...,
        verbose=...)``: :func:`aml.solver.train` (same keywords), returning its
        :class:`aml.training.History`.

        ``seed=None`` is the handout's behaviour: the run's seed is drawn from NumPy's *global*
        generator (one draw), so ``np.random.seed(0); net.train(...)`` repeats. (The handout drew
        every minibatch from the global generator; here they come from a Generator seeded by that
        draw, so the figures match the handout's in kind, not bit for bit.) Pass an int or a
        Generator everywhere else.
        """
        from .solver import train
        if seed is None:
            seed = int(np.random.randint(0, 2**32, dtype=np.int64))
        return train(self, X, y, X_val, y_val, seed=seed, **kwargs)

    def save(self, path) -> None:
        """Write the parameters to an ``.npz`` file atomically (temp file, then rename)."""
        from .runs import atomic_path
        _check_save_target(path)
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as f:
                np.savez(f, dropout=np.array(self.dropout), **self.params)

    @classmethod
    def load(cls, path) -> "TwoLayerNet":
        """Rebuild a network from a file written by :meth:`save`.

        The file is read with ``allow_pickle=False`` (an untrusted file cannot run code), and its
        arrays must be finite, of one float dtype, and of consistent shapes W1 (D, H), b1 (H,),
        W2 (H, C), b2 (C,); otherwise ``ValueError`` names the file and the problem (an empty,
        truncated or non-``.npz`` file included).
        """
        try:
            with np.load(path, allow_pickle=False) as data:
                missing = [k for k in PARAM_NAMES if k not in data.files]
                if missing:
                    raise ValueError(f"The 'path' file {path} is not a TwoLayerNet checkpoint: missing {missing}.")
                params = {k: data[k] for k in PARAM_NAMES}
                dropout = float(data["dropout"]) if "dropout" in data.files else 0.0
        except FileNotFoundError:
            raise
        except ValueError as e:
            if str(path) in str(e):
                raise
            raise ValueError(f"The checkpoint {path} cannot be read: {e}") from None
        except (OSError, EOFError, zipfile.BadZipFile, zlib.error, KeyError) as e:
            raise ValueError(f"The checkpoint {path} cannot be read as an .npz file (empty, truncated or "
                             f"another format: {type(e).__name__}: {e}).") from None
        _check_loaded_params(params, path)
        D, H = params["W1"].shape
        try:
            net = cls(D, H, params["W2"].shape[1], dtype=params["W1"].dtype, seed=0, dropout=dropout)
        except (TypeError, ValueError) as e:
            raise ValueError(f"The checkpoint {path} holds an impossible network: {e}") from None
        net.params = params
        return net


def _check_save_target(path) -> None:
    if Path(path).is_dir():
        raise IsADirectoryError(f"The 'path' parameter must name a file to write. Got the directory {path} instead.")


def _check_loaded_params(params: dict, path) -> None:
    dtypes = {k: v.dtype for k, v in params.items()}
    if len(set(dtypes.values())) != 1 or not np.issubdtype(params["W1"].dtype, np.floating):
        raise ValueError(f"The checkpoint {path} must hold parameters of one float dtype. Got {dtypes} instead.")
    W1, b1, W2, b2 = (params[k] for k in PARAM_NAMES)
    if W1.ndim != 2 or W2.ndim != 2 or W2.shape[0] != W1.shape[1] or b1.shape != (W1.shape[1],) \
            or b2.shape != (W2.shape[1],):
        shapes = {k: v.shape for k, v in params.items()}
        raise ValueError(f"The checkpoint {path} must hold W1 (D, H), b1 (H,), W2 (H, C), b2 (C,). "
                         f"Got shapes {shapes} instead.")
    bad = [k for k, v in params.items() if not np.isfinite(v).all()]
    if bad:
        raise ValueError(f"The checkpoint {path} must hold finite parameters. Got NaN or inf in {bad} instead.")
