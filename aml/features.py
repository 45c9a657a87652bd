"""Input transforms fitted on training rows X (N, D): PCA (K kept components, optionally whitened), ZCA
whitening (all D, rotated back to pixel space) for the MLP's inputs (:func:`aml.mlp.zca_splits`)."""
from __future__ import annotations

import numpy as np

from ._checks import check_nonneg_float, check_positive_int, check_X


class PCA:
    """Project centred rows onto their top ``num_components`` principal directions (all D if None).

    With ``whiten=True`` each component is divided by sqrt(variance + eps), so all have (about) unit
    variance; ``eps`` keeps the tiny, noisy components from being blown up. Attributes (after
    :meth:`fit`): ``mean_`` (D,), ``components_`` (D, K), ``variances_`` (K,)."""

    def __init__(self, num_components: int | None, *, whiten: bool = False, eps: float = 0.0):
        self.num_components = None if num_components is None else check_positive_int("num_components", num_components)
        self.whiten, self.eps = bool(whiten), check_nonneg_float("eps", eps)

    def fit(self, X: np.ndarray, *, max_samples: int | None = 20000, seed=0) -> "PCA":
        """Estimate the directions from (at most ``max_samples`` random) rows of X (N, D), in float64."""
        X = check_X(X)
        if max_samples is not None and len(X) > max_samples:
            X = X[np.sort(np.random.default_rng(seed).choice(len(X), max_samples, replace=False))]
        K = self.num_components or X.shape[1]                        # None: all D directions, whatever N
        if len(X) < 2 or K > min(X.shape) and self.num_components:
            raise ValueError(f"The 'num_components' parameter must be at most min(N, D) = {min(X.shape)} for X of at "
                             f"least 2 rows (N rows used, D features). Got {K} for X of shape {X.shape} instead.")
        self.mean_ = X.mean(axis=0, dtype=np.float64)
        Xc = X - self.mean_                                                     # (N, D) float64
        variances, vectors = np.linalg.eigh(Xc.T @ Xc / (len(X) - 1))          # ascending
        self.variances_, self.components_ = np.maximum(variances[::-1][:K], 0.0), vectors[:, ::-1][:, :K]
        zero = self.variances_ <= variances.max() * max(X.shape) * np.finfo(np.float64).eps   # as matrix_rank judges
        if self.whiten and self.eps == 0 and zero.any():
            raise ValueError(f"Whitening with eps=0 divides by zero: {int(zero.sum())} of the {K} kept components "
                             "have zero variance (rank-deficient data). Use eps > 0 or fewer components.")
        return self

    def projection(self, dtype=np.float64) -> np.ndarray:
        """P (D, K) with ``transform(X) = (X - mean_) @ P``."""
        if not hasattr(self, "components_"):
            raise RuntimeError(f"{type(self).__name__} used before fit.")
        P = self.components_ / np.sqrt(self.variances_ + self.eps) if self.whiten else self.components_
        return P.astype(dtype)

    def transform(self, X: np.ndarray) -> np.ndarray:
        """(N, D) -> (N, K), in X's dtype."""
        P = self.projection()
        X = check_X(X, num_features=P.shape[0])
        return (X - self.mean_.astype(X.dtype)) @ P.astype(X.dtype)


class ZCA(PCA):
    """Whitening of all D directions rotated back, ``P = U diag(1 / sqrt(lambda + eps)) U^T`` (D, D): whitened
    images still look like images, and fitted on images and their mirrors it commutes with the flip."""

    def __init__(self, *, eps: float):
        super().__init__(None, whiten=True, eps=eps)

    def projection(self, dtype=np.float64) -> np.ndarray:
        return (super().projection() @ self.components_.T).astype(dtype)
