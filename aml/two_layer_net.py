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

import numpy as np

from ._checks import check_interval, check_nonneg_float, check_positive_float, check_positive_int, check_X, check_y

PARAM_NAMES = ("W1", "b1", "W2", "b2")


def log_softmax(scores: np.ndarray) -> np.ndarray:
    """Row-wise log psi (N, C) of scores (N, C), shifted by each row's maximum so exp never overflows."""
    shifted = scores - scores.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def softmax(scores: np.ndarray) -> np.ndarray:
    """Row-wise softmax psi (N, C) of scores (N, C)."""
    return np.exp(log_softmax(scores))


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
        ``None`` draws the weights from NumPy's *global* generator (``np.random.randn``, W1 then W2), as
        the handout does: ``np.random.seed(0); TwoLayerNet(4, 10, 3, std=1e-1)`` is its toy model.
    dropout : float in [0, 1)
        Probability of dropping a hidden unit when ``loss`` is given an ``rng`` (training). Inverted
        dropout: kept units are scaled by 1/(1-p), so prediction needs no rescaling.

    Attributes
    ----------
    params : dict
        ``W1`` (D, H), ``b1`` (H,), ``W2`` (H, C), ``b2`` (C,).
    reg_loss : float
        The L2 term of the last ``loss(X, y, reg)`` call (the solver records it).
    """

    def __init__(self, input_size, hidden_size, output_size, std=1e-4, *, dtype=np.float64, seed=None, dropout=0.0):
        D, H, C = (check_positive_int(n, v) for n, v in
                   (("input_size", input_size), ("hidden_size", hidden_size), ("output_size", output_size)))
        std = check_positive_float("std", std)
        self.dropout = check_interval("dropout", dropout, 0.0, 1.0)
        self.reg_loss = float("nan")
        dtype = np.dtype(dtype)
        if not np.issubdtype(dtype, np.floating):
            raise TypeError(f"The 'dtype' parameter must be a float dtype. Got {dtype} instead.")
        if seed is None:
            W1, W2 = np.random.randn(D, H), np.random.randn(H, C)
        else:
            rng = np.random.default_rng(seed)
            W1, W2 = rng.standard_normal((D, H)), rng.standard_normal((H, C))
        self.params = {"W1": (std * W1).astype(dtype), "b1": np.zeros(H, dtype=dtype),
                       "W2": (std * W2).astype(dtype), "b2": np.zeros(C, dtype=dtype)}

    @property
    def dtype(self) -> np.dtype:
        return self.params["W1"].dtype

    @property
    def sizes(self) -> tuple[int, int, int]:
        """(D, H, C)."""
        return (*self.params["W1"].shape, self.params["W2"].shape[1])

    def _forward(self, X, rng=None):
        """a2 (N, H) (after dropout, with ``rng``), the mask (N, H) or None, and z3 (N, C) of checked X."""
        p = self.params
        a2 = np.maximum(X @ p["W1"] + p["b1"], 0)
        mask = None
        if rng is not None and self.dropout > 0:
            keep = 1.0 - self.dropout
            mask = ((rng.random(a2.shape, dtype=np.float32) < keep) / self.dtype.type(keep)).astype(self.dtype)
            a2 *= mask
        return a2, mask, a2 @ p["W2"] + p["b2"]

    def scores(self, X: np.ndarray) -> np.ndarray:
        """Class scores z3 (N, C) for inputs X (N, D), without dropout."""
        return self._forward(check_X(X, num_features=self.sizes[0]).astype(self.dtype, copy=False))[2]

    def loss(self, X, y=None, reg=0.0, *, rng=None):
        """Softmax probabilities, or the regularised loss J~ and its gradients.

        Parameters
        ----------
        X : ndarray (N, D)
        y : ndarray (N,) of int in [0, C), or None
        reg : float >= 0
            lambda of J~ = J + reg * (||W1||^2 + ||W2||^2).
        rng : numpy.random.Generator or None
            Source of dropout masks: dropout is applied only when given and ``self.dropout > 0``.

        Returns
        -------
        probs : ndarray (N, C), if y is None.
        (loss, grads) : float and dict of arrays shaped like ``params``, otherwise.
        """
        reg = check_nonneg_float("reg", reg)
        if y is None:
            return softmax(self.scores(X))
        X = check_X(X, num_features=self.sizes[0]).astype(self.dtype, copy=False)
        N, (W1, W2) = X.shape[0], (self.params["W1"], self.params["W2"])
        y = check_y(y, num_samples=N, num_classes=self.sizes[2])
        a2, mask, z3 = self._forward(X, rng)
        log_psi = log_softmax(z3)                           # (N, C)
        rows = np.arange(N)
        self.reg_loss = reg * (float(np.sum(W1 * W1)) + float(np.sum(W2 * W2)))
        loss = -float(np.mean(log_psi[rows, y])) + self.reg_loss

        dz3 = np.exp(log_psi)                               # psi (N, C)
        dz3[rows, y] -= 1
        dz3 /= N                                            # dJ/dz3 = (psi - Delta) / N
        da2 = dz3 @ W2.T                                    # (N, H)
        if mask is not None:
            da2 *= mask
        da2 *= a2 > 0                                       # Heaviside(z2): a2 = 0 exactly where z2 <= 0
        grads = {"W1": X.T @ da2 + (2 * reg) * W1, "b1": da2.sum(axis=0),
                 "W2": a2.T @ dz3 + (2 * reg) * W2, "b2": dz3.sum(axis=0)}
        return loss, grads

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Most likely class (N,) int64 for each row of X (N, D)."""
        return np.argmax(self.scores(X), axis=1)

    def train(self, X, y, X_val, y_val, *, seed=None, **kwargs):
        """The handout's ``net.train(X, y, X_val, y_val, learning_rate=..., reg=..., num_iters=...,
        verbose=...)``: :func:`aml.train` with the same keywords, returning its History.

        ``seed=None`` (the handout's way) takes the run's seed from one draw of NumPy's *global*
        generator, so ``np.random.seed(0); net.train(...)`` repeats.
        """
        from .solver import train
        if seed is None:
            seed = int(np.random.randint(0, 2**32, dtype=np.int64))
        return train(self, X, y, X_val, y_val, seed=seed, **kwargs)

    def save(self, path) -> None:
        """Write the parameters to an ``.npz`` file atomically (temp file, then rename)."""
        from .runs import atomic_path
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            np.savez(f, dropout=np.array(self.dropout), **self.params)

    @classmethod
    def load(cls, path) -> TwoLayerNet:
        """Rebuild a network from a file written by :meth:`save`.

        The file is read with ``allow_pickle=False`` (an untrusted file cannot run code); its arrays must
        be finite, of one float dtype and shaped W1 (D, H), b1 (H,), W2 (H, C), b2 (C,). Otherwise
        ``ValueError`` names the file and the problem (an empty, truncated or non-``.npz`` file included).
        """
        try:
            with np.load(path, allow_pickle=False) as data:
                params = {k: data[k] for k in PARAM_NAMES}
                dropout = float(data["dropout"]) if "dropout" in data.files else 0.0
        except (OSError, EOFError, ValueError, TypeError, KeyError, zipfile.BadZipFile, zlib.error) as e:
            raise ValueError(f"The checkpoint {path} cannot be read as a TwoLayerNet .npz file "
                             f"({type(e).__name__}: {e}).") from None
        W1, b1, W2, b2 = params.values()
        if len({v.dtype for v in params.values()}) != 1 or not np.issubdtype(W1.dtype, np.floating):
            raise ValueError(f"The checkpoint {path} must hold parameters of one float dtype. "
                             f"Got {({k: str(v.dtype) for k, v in params.items()})} instead.")
        if W1.ndim != 2 or W2.ndim != 2 or b1.shape != W1.shape[1:] or W2.shape[0] != W1.shape[1] \
                or b2.shape != W2.shape[1:]:
            raise ValueError(f"The checkpoint {path} must hold W1 (D, H), b1 (H,), W2 (H, C), b2 (C,). "
                             f"Got shapes {({k: v.shape for k, v in params.items()})} instead.")
        bad = [k for k, v in params.items() if not np.isfinite(v).all()]
        if bad:
            raise ValueError(f"The checkpoint {path} must hold finite parameters. Got NaN or inf in {bad} instead.")
        try:
            net = cls(*W1.shape, W2.shape[1], dtype=W1.dtype, seed=0, dropout=dropout)
        except ValueError as e:
            raise ValueError(f"The checkpoint {path} holds an impossible network: {e}") from None
        net.params = params
        return net
