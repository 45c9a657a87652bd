"""Input transforms for the NumPy net: global scaling and PCA (optionally whitened), and the
:class:`Preprocessor` that applies the one a config asks for.

Shapes: N samples, D input features, K kept components.
"""
from __future__ import annotations

import numpy as np

from ._checks import check_nonneg_float, check_positive_int, check_X


class PCA:
    """Project centred data onto its top ``num_components`` principal directions.

    With ``whiten=True`` each component is divided by sqrt(variance + eps), so all of them have
    (about) unit variance; ``eps`` keeps the tiny, noisy components from being blown up.

    Attributes (after :meth:`fit`): ``mean_`` (D,), ``components_`` (D, K), ``variances_`` (K,).
    """

    def __init__(self, num_components: int, *, whiten: bool = False, eps: float = 0.0):
        self.num_components = check_positive_int("num_components", num_components)
        self.whiten = bool(whiten)
        self.eps = check_nonneg_float("eps", eps)

    def fit(self, X: np.ndarray, *, max_samples: int | None = 20000, seed=0) -> "PCA":
        """Estimate the directions from (at most ``max_samples`` random) rows of X (N, D)."""
        X = check_X(X)
        if X.shape[0] < 2:
            raise ValueError(f"The 'X' parameter must have at least 2 rows to estimate a covariance. "
                             f"Got {X.shape[0]} instead.")
        limit = min(X.shape[0] if max_samples is None else min(X.shape[0], max_samples), X.shape[1])
        if self.num_components > limit:
            raise ValueError(f"The 'num_components' parameter must be at most min(N, D) = {limit} (N rows used, "
                             f"D features). Got {self.num_components} instead.")
        if max_samples is not None and X.shape[0] > max_samples:
            X = X[np.sort(np.random.default_rng(seed).choice(X.shape[0], max_samples, replace=False))]
        X = X.astype(np.float64)
        self.mean_ = X.mean(axis=0)
        Xc = X - self.mean_
        n = max(X.shape[0] - 1, 1)
        if X.shape[0] < X.shape[1]:                                    # few samples: SVD of the data
            _, s, Vt = np.linalg.svd(Xc, full_matrices=False)
            variances, vectors = s ** 2 / n, Vt.T                      # descending
        else:                                                          # eigen-decomposition of (D, D) covariance
            variances, vectors = np.linalg.eigh(Xc.T @ Xc / n)         # ascending
            variances, vectors = variances[::-1], vectors[:, ::-1]
        k = self.num_components
        self.variances_ = np.maximum(variances[:k], 0.0)
        # numerically zero, as numpy.linalg.matrix_rank judges it: below max variance * max(N, D) * machine eps
        rank_tol = (variances.max() if variances.size else 0.0) * max(X.shape) * np.finfo(np.float64).eps
        if self.whiten and self.eps == 0 and not (self.variances_ > rank_tol).all():
            raise ValueError(f"Whitening with eps=0 divides by zero: {int((self.variances_ <= rank_tol).sum())} of the "
                             f"{k} kept components have zero variance (rank-deficient data). Use eps > 0 or "
                             "fewer components.")
        self.components_ = vectors[:, :k]                              # (D, K)
        return self

    def _projection(self, dtype) -> np.ndarray:
        P = self.components_
        if self.whiten:
            P = P / np.sqrt(self.variances_ + self.eps)
        return P.astype(dtype)

    def transform(self, X: np.ndarray) -> np.ndarray:
        """(N, D) -> (N, K), in X's dtype."""
        if not hasattr(self, "components_"):
            raise RuntimeError("PCA.transform called before fit.")
        X = check_X(X, num_features=self.components_.shape[0])
        return (X - self.mean_.astype(X.dtype)) @ self._projection(X.dtype)

    def inverse_weights(self, W: np.ndarray) -> np.ndarray:
        """Map first-layer weights (K, H) that act on PCA features back to pixel space (D, H).

        For z = transform(x) @ W = (x - mean) @ (P @ W), the pixel-space weights are P @ W.
        """
        return self._projection(np.float64) @ W


class Preprocessor:
    """The input transform of a config, fitted on the training split (already mean-centred)."""

    def __init__(self, config):
        self.config = config
        self.scale = 1.0
        self.pca: PCA | None = None

    def fit(self, X_train: np.ndarray) -> "Preprocessor":
        if self.config.preprocess in ("scale", "pca"):
            self.scale = float(X_train.std())
        if self.config.preprocess == "pca":
            self.pca = PCA(self.config.pca_components, whiten=True, eps=1.0).fit(X_train / self.scale)
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        Z = X / X.dtype.type(self.scale) if self.scale != 1.0 else X
        return self.pca.transform(Z) if self.pca is not None else Z

    def pixel_weights(self, W1: np.ndarray) -> np.ndarray:
        """First-layer weights (D', H) mapped back to pixel space (3072, H), for pictures."""
        return self.pca.inverse_weights(W1) if self.pca is not None else W1
