"""ZCA whitening (aml.mlp.whiten) on small images built so that the answers are known."""
import dataclasses

import pytest
import torch

from aml.data import SealedTest
from aml.mlp import MLPConfig, TensorSplits, fit
from aml.mlp.whiten import fit_zca, zca_splits


def _images(n=4000, seed=0):
    """Correlated images (N, 3, 4, 4): a random mixing of independent pixels, plus an offset."""
    g = torch.Generator().manual_seed(seed)
    mix = torch.randn(48, 48, generator=g, dtype=torch.float64) / 7
    x = torch.randn(n, 48, generator=g, dtype=torch.float64) @ mix + 3.0
    return x.float().reshape(n, 3, 4, 4)


def _covariance(X):
    A = X.reshape(len(X), -1).double()
    A = A - A.mean(0)
    return A.T @ A / len(A)


def test_tiny_eps_whitens_the_training_images_and_their_mirrors():
    X = _images()
    zca = fit_zca(X, eps=1e-8)
    both = torch.cat([zca(X), zca(X.flip(-1))])
    torch.testing.assert_close(_covariance(both), torch.eye(48, dtype=torch.float64), atol=1e-3, rtol=0)
    assert abs(float(both.mean())) < 1e-4


def test_eps_shrinks_each_direction_by_lambda_over_lambda_plus_eps():
    X = _images()
    mirrored = torch.cat([X, X.flip(-1)])
    lam, U = torch.linalg.eigh(_covariance(mirrored))
    eps = 0.1 * float(lam.mean())
    out = fit_zca(X, eps=0.1)(mirrored)
    projected = torch.diag(U.T @ _covariance(out) @ U)
    torch.testing.assert_close(projected, lam / (lam + eps), atol=1e-4, rtol=1e-3)


def test_whitening_is_symmetric_and_commutes_with_the_flip():
    X = _images(500)
    zca = fit_zca(X, eps=0.1)
    torch.testing.assert_close(zca.W, zca.W.T)
    torch.testing.assert_close(zca(X.flip(-1)), zca(X).flip(-1), atol=1e-4, rtol=1e-4)
    assert zca(X[:3]).shape == (3, 3, 4, 4) and zca(X[:3]).dtype == torch.float32
    assert zca(X[:0]).shape == (0, 3, 4, 4)                 # an empty split (no test images) stays empty


def test_bad_arguments_are_named():
    X = _images(50)
    with pytest.raises(ValueError, match="'eps'.*Got 0"):
        fit_zca(X, eps=0)
    with pytest.raises(ValueError, match="'X'.*Got shape"):
        fit_zca(X.reshape(50, 48))
    with pytest.raises(ValueError, match="'X'.*Got 1"):
        fit_zca(X[:1])
    with pytest.raises(ValueError, match="'X'.*shape"):
        fit_zca(X)(torch.zeros(2, 3, 5, 5))


def test_zca_splits_whitens_every_split_with_the_training_fit():
    X, y = _images(700), torch.arange(700) % 10
    data = TensorSplits(X[:500], y[:500], X[500:600], y[500:600], SealedTest(X[600:], y[600:].numpy()),
                        X_sel=X[650:], y_sel=y[650:])
    out = zca_splits(data, eps=0.1)
    zca = fit_zca(data.X_train, eps=0.1)
    assert out.normalize == "zca" and data.normalize == "handout"
    assert zca_splits(dataclasses.replace(data, X_sel=None, y_sel=None)).X_sel is None
    for name in ("X_train", "X_sel", "X_val"):
        torch.testing.assert_close(getattr(out, name), zca(getattr(data, name)))
    torch.testing.assert_close(out.test._open()[0], zca(data.test._open()[0]))     # sealed, whitened alike
    assert (out.test._open()[1] == data.test._open()[1]).all()
    with pytest.raises(ValueError, match="normalised as 'zca'"):
        fit(MLPConfig(hidden_layers=(8,), num_epochs=1), out)
    _, history = fit(MLPConfig(hidden_layers=(8,), num_epochs=1, normalize="zca", batch_size=50),
                     dataclasses.replace(out, X_train=out.X_train.reshape(500, 3, 4, 4)))
    assert len(history["val_acc_history"]) == 1
