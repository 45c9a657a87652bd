import numpy as np
import pytest

from aml.features import PCA


def test_pca_recovers_dominant_direction_and_whitens():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((2000, 5)) * np.array([10.0, 3.0, 1.0, 0.5, 0.1])
    pca = PCA(2, whiten=True).fit(X)
    np.testing.assert_allclose(np.abs(pca.components_[:, 0]), [1, 0, 0, 0, 0], atol=0.02)
    Z = pca.transform(X)
    assert Z.shape == (2000, 2)
    np.testing.assert_allclose(Z.std(axis=0), 1.0, rtol=0.05)
    # weights on PCA features map back to pixel space: transform(x) @ W == (x - mean) @ inverse_weights(W)
    W = rng.standard_normal((2, 3))
    np.testing.assert_allclose(Z @ W, (X - pca.mean_) @ pca.inverse_weights(W), atol=1e-8)


def test_pca_rejects_bad_input():
    with pytest.raises(ValueError, match="'num_components'"):
        PCA(0)
    with pytest.raises(ValueError, match=r"'num_components'.*min\(N, D\) = 3"):
        PCA(4).fit(np.ones((10, 3)))
    with pytest.raises(RuntimeError, match="before fit"):
        PCA(2).transform(np.ones((2, 3)))

