"""Issue 10's cases outside the data loader: silent wrong answers, crashes on legal input, unsafe
files. Each test names the case it covers; each fails on the code before the fix."""
import json
import os
import pickle
import random

import numpy as np
import pytest
import torch

from aml import TwoLayerNet, eval_numerical_gradient, set_seed, train
from aml.data import SealedTest
from aml.features import PCA
from aml.mlp import (
    MLPConfig,
    TensorSplits,
    fit,
    load_checkpoint,
    to_tensor_images,
)
from aml.runs import write_json
from aml.training import TrainingDiverged
from aml.tuning import NetConfig, run_config


def _blobs(n=200, d=6, c=3, seed=0):
    rng = np.random.default_rng(seed)
    centres = 3 * rng.standard_normal((c, d))
    y = rng.integers(0, c, n)
    return centres[y] + rng.standard_normal((n, d)), y


# --- divergence without NaN ------------------------------------------------------------------------------------

def test_exploding_run_stops_and_keeps_the_last_finite_parameters():
    X, y = _blobs()
    net = TwoLayerNet(6, 20, 3, std=0.1, seed=0)
    before = {k: v.copy() for k, v in net.params.items()}
    with pytest.raises(TrainingDiverged, match="smaller learning rate") as info:
        train(net, X, y, X, y, learning_rate=1e30, num_iters=3, batch_size=50, seed=0)
    assert info.value.restored == "last finite"
    for k in before:                                   # diverged in the first epoch: the initial parameters
        np.testing.assert_array_equal(net.params[k], before[k])
    assert np.isfinite(net.loss(X)).all()


def test_exploding_run_with_keep_best_restores_the_best_epoch():
    X, y = _blobs()
    net = TwoLayerNet(6, 20, 3, std=0.1, seed=0)
    stats = train(net, X, y, X, y, learning_rate=0.05, num_iters=8, batch_size=50, seed=0, keep_best=True)
    best = {k: v.copy() for k, v in net.params.items()}
    with pytest.raises(TrainingDiverged) as info:
        train(net, X, y, X, y, learning_rate=1e307, num_iters=8, batch_size=50, seed=0, keep_best=True)
    assert info.value.restored in ("best", "last finite")
    assert all(np.isfinite(v).all() for v in net.params.values())
    assert stats["best_val_acc"] > 0.5 and np.isfinite(net.loss(X)).all()
    if info.value.restored == "last finite":
        for k in best:
            np.testing.assert_array_equal(net.params[k], best[k])


def test_growing_loss_is_divergence_even_when_finite(monkeypatch):
    import aml.training
    X, y = _blobs()
    net = TwoLayerNet(6, 20, 3, std=0.1, seed=0)
    monkeypatch.setattr(aml.training, "DIVERGENCE_FACTOR", 1.0001)   # any growth counts
    with pytest.raises(TrainingDiverged, match="times its first value"):
        train(net, X, y, X, y, learning_rate=5.0, num_iters=40, batch_size=10, seed=0)


def test_mlp_explosion_stops_with_finite_parameters():
    g = torch.Generator().manual_seed(0)
    X, y = torch.randn(300, 3, 32, 32, generator=g), torch.randint(0, 10, (300,), generator=g)
    data = TensorSplits(X[:200], y[:200], X[200:], y[200:], SealedTest(X[:0], y[:0].numpy()))
    cfg = MLPConfig(hidden_layers=(16,), num_epochs=3, batch_size=50, lr=1e38, init="kaiming", optimizer="sgd")
    with pytest.raises(TrainingDiverged, match="smaller learning rate"):
        fit(cfg, data)


# --- numerical gradient restores its input -----------------------------------------------------------------------

@pytest.mark.parametrize("exc", [RuntimeError, KeyboardInterrupt])
def test_eval_numerical_gradient_restores_x_when_f_raises(exc):
    x = np.array([1.0, 2.0, 3.0])
    calls = []

    def f(z):
        calls.append(z.copy())
        if len(calls) == 2:
            raise exc("stop")
        return float(z.sum())
    with pytest.raises(exc):
        eval_numerical_gradient(f, x)
    np.testing.assert_array_equal(x, [1.0, 2.0, 3.0])


# --- strict JSON ---------------------------------------------------------------------------------------------

def test_write_json_refuses_nan_and_converts_numpy(tmp_path):
    path = tmp_path / "r.json"
    write_json(path, {"acc": np.float32(0.5), "seeds": np.arange(3), "n": np.int64(7), "ok": np.bool_(True)})
    assert json.loads(path.read_text()) == {"acc": 0.5, "seeds": [0, 1, 2], "n": 7, "ok": True}
    for bad in (float("nan"), np.float64("inf"), [1.0, float("-inf")]):
        with pytest.raises(ValueError, match="NaN or infinity"):
            write_json(tmp_path / "bad.json", {"value": bad})
    assert not (tmp_path / "bad.json").exists()
    with pytest.raises(TypeError, match="JSON cannot hold"):
        write_json(tmp_path / "bad.json", {"value": object()})


# --- PCA edge cases ------------------------------------------------------------------------------------------

def test_pca_refuses_more_components_than_rows():
    X = np.random.default_rng(0).standard_normal((5, 20))
    with pytest.raises(ValueError, match="'num_components'.*min\\(N, D\\) = 5"):
        PCA(8).fit(X)


def test_pca_whitening_with_eps_zero_on_rank_deficient_data():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((50, 2)) @ rng.standard_normal((2, 6))     # rank 2 in 6 dimensions
    with pytest.raises(ValueError, match="eps=0"):
        PCA(4, whiten=True, eps=0.0).fit(X)
    assert np.isfinite(PCA(4, whiten=True, eps=1e-3).fit(X).transform(X)).all()


@pytest.mark.parametrize("rows", [0, 1])
def test_pca_refuses_too_few_rows(rows):
    with pytest.raises(ValueError, match="at least 2 rows"):
        PCA(1).fit(np.zeros((rows, 4)))


# --- MLP checkpoints ---------------------------------------------------------------------

class _Payload:
    def __reduce__(self):
        return (os.system, ("touch " + os.environ.get("AML_PAYLOAD_MARKER", "/tmp/aml-payload"),))


def test_checkpoint_with_code_is_refused_and_never_runs(tmp_path, monkeypatch):
    marker = tmp_path / "ran"
    monkeypatch.setenv("AML_PAYLOAD_MARKER", str(marker))
    with open(tmp_path / "evil.pt", "wb") as f:
        pickle.dump({"state_dict": {}, "config": {}, "x": _Payload()}, f)
    with pytest.raises(ValueError, match="cannot be read safely"):
        load_checkpoint(tmp_path / "evil.pt")
    assert not marker.exists()


def test_checkpoint_without_config_or_weights_is_named(tmp_path):
    torch.save({"state_dict": {"w": torch.zeros(2, 2)}}, tmp_path / "noconfig.pt")
    with pytest.raises(ValueError, match="cannot be read safely"):
        load_checkpoint(tmp_path / "noconfig.pt")
    torch.save({"state_dict": {}, "config": MLPConfig().to_dict()}, tmp_path / "empty.pt")
    with pytest.raises(ValueError, match="cannot be read safely"):
        load_checkpoint(tmp_path / "empty.pt")



# --- MLP data helpers ----------------------------------------------------------------------------------------

def test_subset_zero_or_too_many_is_a_clear_error():
    X, y = torch.randn(10, 3, 32, 32), torch.randint(0, 10, (10,))
    data = TensorSplits(X, y, X, y, SealedTest(X, y.numpy()))
    with pytest.raises(ValueError, match="'num_train'"):
        data.subset(0)
    with pytest.raises(ValueError, match="'num_train'.*at most 10"):
        data.subset(11)


def test_float_images_in_unit_range_are_not_divided_again():
    ones = np.ones((1, 32, 32, 3), dtype=np.float32)
    np.testing.assert_allclose(to_tensor_images(ones).numpy(), 1.0)     # (1 - 0.5) / 0.5
    np.testing.assert_allclose(to_tensor_images((ones * 255).astype(np.uint8)).numpy(), 1.0)
    with pytest.raises(ValueError, match="\\[0, 1\\]"):
        to_tensor_images(ones * 255)


# --- crashes on legal input ----------------------------------------------------------------------------------

def test_flips_with_batch_size_two_train():
    from aml.data import CIFAR10Split, SealedTest
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 3072)).astype(np.float32)
    y = rng.integers(0, 10, 40)
    data = CIFAR10Split(X, y, X[:10], y[:10], SealedTest(X[:0], y[:0]))
    result = run_config(NetConfig.from_dict(dict(flip=True, batch_size=2, num_iters=30, hidden_size=5)), data)
    assert np.isfinite(result.stats["loss_history"]).all()


def test_set_seed_validates_before_touching_any_generator():
    random.seed(123)
    state = random.getstate()
    np_state = np.random.get_state()[1].copy()
    for bad in (2**32, -1):
        with pytest.raises(ValueError, match="'seed'"):
            set_seed(bad)
    with pytest.raises(TypeError, match="'seed'"):
        set_seed(1.5)
    assert random.getstate() == state
    np.testing.assert_array_equal(np.random.get_state()[1], np_state)
