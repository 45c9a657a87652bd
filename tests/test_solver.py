import numpy as np
import pytest

from aml import TwoLayerNet, random_hflip, train


def _toy_train(toy_net, toy_data, **kw):
    X, y = toy_data
    return train(toy_net, X, y, X, y, **({"learning_rate": 0.1, "reg": 5e-6, "num_iters": 100} | kw))


def test_handout_toy_run_falls_below_002(toy_net, toy_data):
    np.random.seed(0)  # the handout's solver draws minibatches from the global generator
    stats = _toy_train(toy_net, toy_data)
    losses = stats["loss_history"]
    assert losses.shape == (100,)
    assert losses[-1] < 0.02
    assert losses[-1] < losses[0] / 10


def test_seeded_runs_repeat_exactly(toy_data):
    runs = [_toy_train(TwoLayerNet(4, 10, 3, std=0.1, seed=0, dropout=0.1), toy_data, seed=5,
                       momentum=0.9, augment=lambda X, idx, rng: X + 0.01 * rng.standard_normal(X.shape))
            for _ in range(2)]
    for key in ("loss_history", "train_acc_history", "val_acc_history"):
        np.testing.assert_array_equal(runs[0][key], runs[1][key])


def _blobs(n=300, d=6, c=3, seed=0):
    rng = np.random.default_rng(seed)
    centres = 3 * rng.standard_normal((c, d))
    y = rng.integers(0, c, n)
    return (centres[y] + rng.standard_normal((n, d))), y


@pytest.mark.parametrize("opts", [dict(), dict(momentum=0.9), dict(momentum=0.9, nesterov=True),
                                  dict(sampling="epoch", lr_schedule="cosine")])
def test_optimisers_learn_separable_blobs(opts):
    X, y = _blobs()
    net = TwoLayerNet(6, 20, 3, std=0.1, seed=0)
    stats = train(net, X, y, X, y, learning_rate=0.05, num_iters=300, batch_size=50, seed=0, **opts)
    assert stats["val_acc_history"][-1] > 0.9
    assert len(stats["val_acc_history"]) == 300 // (300 // 50)
    assert stats["loss_history"][-20:].mean() < stats["loss_history"][:20].mean()


def test_epoch_sampling_visits_every_sample_once_per_epoch():
    X, y = _blobs(n=40)
    seen = []

    def spy(X_batch, idx, rng):
        seen.append(idx.copy())
        return X_batch

    train(TwoLayerNet(6, 5, 3, seed=0), X, y, X, y, num_iters=8, batch_size=10, sampling="epoch",
          augment=spy, seed=1)
    for epoch in (seen[:4], seen[4:]):
        np.testing.assert_array_equal(np.sort(np.concatenate(epoch)), np.arange(40))


def test_keep_best_restores_best_epoch():
    X, y = _blobs()
    Xv, yv = _blobs(seed=1)
    net = TwoLayerNet(6, 20, 3, std=0.1, seed=0)
    stats = train(net, X, y, Xv, yv, learning_rate=0.05, num_iters=60, batch_size=50, keep_best=True, seed=0)
    from aml import accuracy
    assert accuracy(net, Xv, yv) == pytest.approx(stats["best_val_acc"])
    assert stats["val_acc_history"][stats["best_epoch"] - 1] == stats["best_val_acc"]


def test_step_schedule_decays_per_epoch(toy_net, toy_data):
    stats = _toy_train(toy_net, toy_data, num_iters=3, learning_rate_decay=0.5, seed=0)
    np.testing.assert_allclose(stats["lr_history"], [0.1, 0.05, 0.025])


def test_divergence_raises_with_advice():
    X, y = _blobs()
    net = TwoLayerNet(6, 20, 3, std=1.0, seed=0)
    with pytest.raises(FloatingPointError, match="smaller learning rate"):
        train(net, X * 1e3, y, X, y, learning_rate=1e6, num_iters=50, batch_size=50, seed=0)


def test_random_hflip_mirrors_images():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((64, 3072))
    out = random_hflip(X, np.arange(64), np.random.default_rng(1))
    img, new = X.reshape(64, 32, 32, 3), out.reshape(64, 32, 32, 3)
    flipped = np.array([np.array_equal(new[i], img[i, :, ::-1]) for i in range(64)])
    kept = np.array([np.array_equal(new[i], img[i]) for i in range(64)])
    assert np.all(flipped | kept) and 10 < flipped.sum() < 54


@pytest.mark.parametrize("kwargs,exc,words", [
    (dict(learning_rate=0), ValueError, "'learning_rate'"),
    (dict(learning_rate=-1e-3), ValueError, "'learning_rate'"),
    (dict(batch_size=0), ValueError, "'batch_size'"),
    (dict(num_iters=0), ValueError, "'num_iters'"),
    (dict(num_iters=10.5), TypeError, "'num_iters'"),
    (dict(reg=-1.0), ValueError, "'reg'"),
    (dict(momentum=1.0), ValueError, "'momentum'"),
    (dict(learning_rate_decay=0.0), ValueError, "'learning_rate_decay'"),
    (dict(learning_rate_decay=1.5), ValueError, "'learning_rate_decay'"),
    (dict(sampling="bootstrap"), ValueError, "'sampling'"),
    (dict(lr_schedule="linear"), ValueError, "'lr_schedule'"),
])
def test_train_rejects_bad_hyper_parameters(toy_net, toy_data, kwargs, exc, words):
    with pytest.raises(exc, match=words):
        _toy_train(toy_net, toy_data, **kwargs)


def test_train_rejects_bad_data(toy_net, toy_data):
    X, y = toy_data
    with pytest.raises(ValueError, match="'y'.*shape"):
        train(toy_net, X, y[:3], X, y)
    with pytest.raises(ValueError, match="'X_val'.*4 features"):
        train(toy_net, X, y, X[:, :2], y)
    with pytest.raises(TypeError, match="'y_val'.*integer"):
        train(toy_net, X, y, X, y.astype(float))


def test_seed_none_follows_the_global_generator(toy_data):
    runs = []
    for _ in range(2):
        np.random.seed(3)
        net = TwoLayerNet(4, 10, 3, std=0.1, seed=0, dropout=0.2)
        runs.append(_toy_train(net, toy_data)["loss_history"])
    np.testing.assert_array_equal(runs[0], runs[1])
