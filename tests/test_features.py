import numpy as np
import pytest

from aml.features import PCA, ZCA


def test_pca_recovers_dominant_direction_and_whitens():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((2000, 5)) * np.array([10.0, 3.0, 1.0, 0.5, 0.1])
    pca = PCA(2, whiten=True).fit(X)
    np.testing.assert_allclose(np.abs(pca.components_[:, 0]), [1, 0, 0, 0, 0], atol=0.02)
    Z = pca.transform(X)
    assert Z.shape == (2000, 2)
    np.testing.assert_allclose(Z.std(axis=0), 1.0, rtol=0.05)


def test_pca_rejects_bad_input():
    with pytest.raises(ValueError, match="'num_components'"):
        PCA(0)
    with pytest.raises(ValueError, match=r"'num_components'.*min\(N, D\) = 3"):
        PCA(4).fit(np.ones((10, 3)))
    with pytest.raises(RuntimeError, match="PCA used before fit"):
        PCA(2).transform(np.ones((2, 3)))



# --- ZCA: the whitening the MLP's zca_splits applies ---------------------------------------------------------

def _correlated(n=4000, seed=0):
    """Rows (N, 48): a random mixing of independent values, plus an offset."""
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((n, 48)) @ (rng.standard_normal((48, 48)) / 7) + 3.0).astype(np.float32)


def _cov(X):
    A = X.astype(np.float64) - X.mean(0)
    return A.T @ A / (len(A) - 1)


def test_zca_with_tiny_eps_whitens_and_is_symmetric():
    X = _correlated()
    zca = ZCA(eps=1e-8).fit(X)
    np.testing.assert_allclose(_cov(zca.transform(X)), np.eye(48), atol=1e-3)
    P = zca.projection()
    np.testing.assert_allclose(P, P.T, atol=1e-10)
    assert zca.transform(X[:3]).shape == (3, 48) and zca.transform(X[:3]).dtype == np.float32


def test_zca_eps_shrinks_each_direction_by_lambda_over_lambda_plus_eps():
    X = _correlated()
    lam, U = np.linalg.eigh(_cov(X))
    out = ZCA(eps=0.5).fit(X).transform(X)
    np.testing.assert_allclose(np.diag(U.T @ _cov(out) @ U), lam / (lam + 0.5), atol=1e-4, rtol=1e-3)
    np.testing.assert_allclose(out.mean(0), 0, atol=1e-4)


def test_zca_keeps_all_directions_with_fewer_rows_than_features():
    X = _correlated(n=20)
    assert ZCA(eps=0.1).fit(X).projection().shape == (48, 48)
    with pytest.raises(RuntimeError, match="ZCA used before fit"):
        ZCA(eps=0.1).transform(X)
