import math

import numpy as np
import pytest

from aml import TwoLayerNet, optim, train
from aml.solver import SGD_CONSTRAINTS, SGDConfig, minibatches, sgd_step
from aml.training import DIVERGENCE_FACTOR, HISTORY_KEYS, BestEpoch, History, TrainingDiverged, check_divergence


def _toy_train(toy_net, toy_data, **kw):
    X, y = toy_data
    return train(toy_net, X, y, X, y, **({"learning_rate": 0.1, "reg": 5e-6, "num_iters": 100, "seed": 0} | kw))


def test_handout_toy_run_falls_below_002(toy_net, toy_data):
    X, y = toy_data
    np.random.seed(0)  # the handout's net.train(...) without a seed: the global generator decides
    stats = toy_net.train(X, y, X, y, learning_rate=0.1, reg=5e-6, num_iters=100)
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
        train(toy_net, X, y[:3], X, y, seed=0)
    with pytest.raises(ValueError, match="'X_val'.*4 features"):
        train(toy_net, X, y, X[:, :2], y, seed=0)
    with pytest.raises(TypeError, match="'y_val'.*integer"):
        train(toy_net, X, y, X, y.astype(float), seed=0)


def test_solver_needs_a_seed_and_the_handouts_method_draws_one_from_the_global_generator(toy_data):
    X, y = toy_data
    with pytest.raises(TypeError, match="'seed'.*Got None"):
        train(TwoLayerNet(4, 10, 3, seed=0), X, y, X, y, seed=None)
    with pytest.raises(TypeError, match="seed"):
        train(TwoLayerNet(4, 10, 3, seed=0), X, y, X, y)          # required: no silent global state
    runs = []
    for _ in range(2):
        np.random.seed(3)
        runs.append(TwoLayerNet(4, 10, 3, std=0.1, seed=0, dropout=0.2).train(X, y, X, y, num_iters=20))
    np.testing.assert_array_equal(runs[0]["loss_history"], runs[1]["loss_history"])
    # seed=None is one draw from the global generator, then an ordinary seeded run
    np.random.seed(3)
    seed = int(np.random.randint(0, 2**32, dtype=np.int64))
    after = np.random.random()
    np.random.seed(3)
    net = TwoLayerNet(4, 10, 3, std=0.1, seed=0, dropout=0.2)
    h = net.train(X, y, X, y, num_iters=20)
    assert np.random.random() == after
    seeded = train(TwoLayerNet(4, 10, 3, std=0.1, seed=0, dropout=0.2), X, y, X, y, num_iters=20, seed=seed)
    np.testing.assert_array_equal(h["loss_history"], seeded["loss_history"])


# ---------------------------------------------------------------------------------------------
# The solver's small parts, each against values worked by hand, and its loop driven by a stub model
# whose losses, gradients and predictions are scripted, so that every number it records is known.
# ---------------------------------------------------------------------------------------------


def test_sgd_config_defaults_are_the_handouts_cifar_call():
    # the handout's net.train(..., num_iters=1000, batch_size=200, learning_rate=1e-4,
    # learning_rate_decay=0.95, reg=0.25), plain SGD with replacement sampling and the step schedule
    c = SGDConfig()
    assert (c.learning_rate, c.learning_rate_decay, c.reg, c.num_iters, c.batch_size) == (1e-4, 0.95, 0.25, 1000, 200)
    assert (c.num_epochs, c.momentum, c.nesterov, c.sampling, c.lr_schedule, c.keep_best, c.num_train_acc) \
        == (None, 0.0, False, "replacement", "step", False, 1000)


def test_iterations_per_epoch_and_total():
    c = SGDConfig(batch_size=3)
    assert c.iterations_per_epoch(10) == 3          # 10 // 3
    assert c.iterations_per_epoch(2) == 1           # fewer rows than a batch: still one iteration
    assert c.total_iterations(10) == 1000           # num_iters when num_epochs is None
    assert SGDConfig(batch_size=3, num_epochs=4).total_iterations(10) == 12


def test_step_schedule_changes_exactly_at_epoch_boundaries():
    c = SGDConfig(learning_rate=0.1, learning_rate_decay=0.5, batch_size=2, num_iters=12)
    lrs = [c.learning_rate_at(t, 9) for t in range(12)]          # 9 rows // 2: 4 iterations per epoch
    assert lrs == [0.1] * 4 + [0.05] * 4 + [0.025] * 4


@pytest.mark.parametrize("total", [10, 7])
def test_cosine_schedule_exact_values(total):
    c = SGDConfig(learning_rate=0.2, lr_schedule="cosine", learning_rate_decay=0.5, batch_size=2, num_iters=total)
    lr = lambda t: c.learning_rate_at(t, 4)  # noqa: E731       (2 iterations per epoch)
    assert lr(0) == pytest.approx(0.2, abs=1e-15)                  # starts at the full rate
    assert lr(total / 2) == pytest.approx(0.1, abs=1e-15)          # half-way: half the rate
    # last iteration: 0.1 (1 + cos(pi (T-1)/T)) = 0.1 (1 - cos(pi / T)), close to 0 but positive
    assert lr(total - 1) == pytest.approx(0.1 * (1 - math.cos(math.pi / total)), rel=1e-12)
    assert lr(total) == pytest.approx(0.0, abs=1e-15)
    # no step decay hides in it: 4 iterations (2 epochs) in, the rate is the cosine's, not x0.25
    assert lr(4) == pytest.approx(0.1 * (1 + math.cos(math.pi * 4 / total)), rel=1e-12)


def test_minibatches_with_replacement_follow_the_generator():
    batches = minibatches(10, 6, "replacement", np.random.default_rng(4))
    draw = np.random.default_rng(4)
    for _ in range(3):
        np.testing.assert_array_equal(next(batches), draw.choice(10, 6, replace=True))


def test_minibatches_of_epoch_sampling_walk_one_permutation_per_epoch():
    batches = minibatches(10, 3, "epoch", np.random.default_rng(2))
    draw = np.random.default_rng(2)
    for _ in range(2):                        # 10 // 3 = 3 iterations per epoch; row 9 of each order unused
        order = draw.permutation(10)
        for k in range(3):
            np.testing.assert_array_equal(next(batches), order[3 * k:3 * k + 3])
    # a batch larger than the set: one iteration per epoch over the whole permutation
    batches = minibatches(4, 6, "epoch", np.random.default_rng(0))
    np.testing.assert_array_equal(next(batches), np.random.default_rng(0).permutation(4))


@pytest.mark.parametrize("momentum,nesterov,rule,expected", [
    (0.0, False, optim.sgd, [0.8]),                      # w - lr dw
    (0.0, True, optim.sgd, [0.8]),                       # Nesterov without momentum is plain SGD
    (0.5, False, optim.sgd_momentum, [0.8]),             # first step of momentum: v = -lr dw
    (0.5, True, optim.nesterov_momentum, [0.7]),         # Nesterov: w + (1 + mu) v' = 1 - 1.5 * 0.2
])
def test_update_rule_of_the_config(momentum, nesterov, rule, expected):
    assert SGDConfig(momentum=momentum, nesterov=nesterov).update_rule is rule
    w, _ = rule(np.array([1.0]), np.array([2.0]), {"learning_rate": 0.1, "momentum": momentum})
    np.testing.assert_allclose(w, expected, rtol=0, atol=1e-15)


class _Params:
    def __init__(self):
        self.params = {"a": np.array([1.0]), "b": np.array([1.0, 2.0])}


def test_sgd_step_updates_every_parameter_with_its_own_velocity_and_the_given_rate():
    model, configs = _Params(), {"a": {"momentum": 0.5}, "b": {"momentum": 0.5}}
    a_before = model.params["a"]
    sgd_step(model, {"a": np.array([2.0]), "b": np.array([-1.0, 0.0])}, configs, optim.sgd_momentum, 0.1)
    np.testing.assert_allclose(model.params["a"], [0.8], rtol=0, atol=1e-15)
    np.testing.assert_allclose(model.params["b"], [1.1, 2.0], rtol=0, atol=1e-15)
    np.testing.assert_array_equal(a_before, [1.0])                    # a new array, the old one untouched
    sgd_step(model, {"a": np.array([2.0]), "b": np.array([-1.0, 0.0])}, configs, optim.sgd_momentum, 0.2)
    # v = 0.5 * -0.2 - 0.4 = -0.5 for a; 0.5 * 0.1 + 0.2 = 0.25 for b
    np.testing.assert_allclose(configs["a"]["velocity"], [-0.5], rtol=0, atol=1e-15)
    np.testing.assert_allclose(configs["b"]["velocity"], [0.25, 0.0], rtol=0, atol=1e-15)
    np.testing.assert_allclose(model.params["a"], [0.3], rtol=0, atol=1e-15)
    assert configs["a"]["momentum"] == 0.5


def test_every_config_field_has_one_constraint():
    import dataclasses
    assert list(SGD_CONSTRAINTS) == [f.name for f in dataclasses.fields(SGDConfig)]


def test_check_divergence_thresholds_and_messages():
    assert DIVERGENCE_FACTOR == 100.0
    assert check_divergence(2.0, 2.0, 0) is None
    assert check_divergence(200.0, 2.0, 5) is None                 # exactly 100x: not yet
    assert check_divergence(200.5, 2.0, 5) == (
        "the training loss grew to 200 at iteration 5, more than 100 times its first value 2", 5)
    assert check_divergence(float("nan"), 2.0, 7) == ("the training loss became nan at iteration 7", 7)
    assert check_divergence(float("inf"), 2.0, 8) == ("the training loss became inf at iteration 8", 8)
    assert check_divergence(-float("inf"), 2.0, 8) is not None
    # an epoch's losses at once (the PyTorch half): the first bad one is named, counted from ``it``
    assert check_divergence([1.0, 150.0, np.nan], 1.0, 10) == (
        "the training loss grew to 150 at iteration 11, more than 100 times its first value 1", 11)
    assert check_divergence([1.0, 1.0], 1.0, 10) is None
    assert check_divergence([1.0, 1.0], 1.0, 10, params_finite=False) == (
        "a parameter became non-finite by iteration 11", 11)
    assert check_divergence(1.0, 1.0, 3, params_finite=False) == ("a parameter became non-finite by iteration 3", 3)


class _Model:
    """A stub following the solver's model contract, with everything scripted.

    ``params["w"]`` starts at 0 and every gradient is ``grad`` (1 by default), so with plain SGD,
    ``w`` is minus the sum of the learning rates used so far. Training losses (calls with an ``rng``)
    come from ``losses`` in order; the validation loss is ``val_loss``. ``predict`` gets the rows'
    labels from column 0 and is right on the first ``correct(w)`` of every n rows it is given.
    """

    def __init__(self, losses=None, grad=1.0, correct=lambda w: 1.0, val_loss=0.25):
        self.params = {"w": np.zeros(1), "u": np.zeros(2)}
        self.losses, self.grad, self.correct, self.val_loss = list(losses or []), grad, correct, val_loss
        self.calls, self.predicted = [], []

    def loss(self, X, y, reg, rng=None):
        self.calls.append((X.copy(), y.copy(), reg, rng))
        if rng is None:
            return self.val_loss + X.shape[0], None
        loss = self.losses.pop(0) if self.losses else 1.0
        return loss, {"w": np.full(1, self.grad), "u": np.full(2, 2 * self.grad)}

    def predict(self, X):
        self.predicted.append(X.copy())
        n = X.shape[0]
        right = round(self.correct(float(self.params["w"][0])) * n)
        return np.where(np.arange(n) < right, X[:, 0].astype(int), -1)


def _labelled(n, seed=0):
    """Rows (n, 2) whose column 0 is the label (n,), column 1 a distinct row id."""
    y = np.random.default_rng(seed).integers(0, 3, n)
    return np.stack([y, np.arange(n)], axis=1).astype(float), y


def test_loop_applies_each_scheduled_rate_to_every_parameter():
    X, y = _labelled(8)
    model = _Model()
    # 8 rows, batch 4: 2 iterations per epoch; over 5 iterations the step schedule gives
    # lr 1, 1 | 0.5, 0.5 | 0.25
    h = train(model, X, y, X, y, learning_rate=1.0, learning_rate_decay=0.5, num_iters=5, batch_size=4, seed=0,
              reg=0.125)
    lrs = [1.0, 1.0, 0.5, 0.5, 0.25]
    np.testing.assert_allclose(model.params["w"], [-sum(lrs)], rtol=0, atol=1e-15)
    np.testing.assert_allclose(model.params["u"], [-2 * sum(lrs)] * 2, rtol=0, atol=1e-15)
    # epochs end after iterations 2, 4 and the partial last one (half an epoch)
    np.testing.assert_array_equal(h["epoch_history"], [1.0, 2.0, 2.5])
    np.testing.assert_array_equal(h["lr_history"], [1.0, 0.5, 0.25])
    assert h["iterations_per_epoch"] == 2
    np.testing.assert_array_equal(h["loss_history"], np.ones(5))
    # training calls get the minibatch, the reg and a Generator; validation calls get the whole
    # validation set, the reg and no rng (no dropout)
    train_calls = [c for c in model.calls if c[3] is not None]
    val_calls = [c for c in model.calls if c[3] is None]
    assert len(train_calls) == 5 and len(val_calls) == 3
    for Xb, yb, reg, rng in train_calls:
        assert Xb.shape == (4, 2) and reg == 0.125 and isinstance(rng, np.random.Generator)
        np.testing.assert_array_equal(yb, Xb[:, 0])          # the labels of the same rows
    for Xv, yv, reg, _ in val_calls:
        np.testing.assert_array_equal(Xv, X)
        np.testing.assert_array_equal(yv, y)
        assert reg == 0.125
    np.testing.assert_array_equal(h["val_loss_history"], [8.25] * 3)
    assert isinstance(h["train_seconds"], float) and h["train_seconds"] >= 0


def test_loop_uses_the_configured_update_rule():
    X, y = _labelled(8)
    model = _Model()
    train(model, X, y, X, y, learning_rate=0.5, num_iters=2, batch_size=8, momentum=0.5, nesterov=True, seed=0,
          learning_rate_decay=1.0)
    # Nesterov, dw = 1, lr 0.5, mu 0.5: step 1 w = -1.5 * 0.5 = -0.75 (v' = -0.5);
    # step 2: v' = -0.25 - 0.5 = -0.75, w = -0.75 + 0.25 - 1.125 = -1.625
    np.testing.assert_allclose(model.params["w"], [-1.625], rtol=0, atol=1e-15)


def test_accuracies_are_recorded_per_epoch_on_a_fixed_subset_without_repeats():
    X, y = _labelled(30)
    Xv, yv = _labelled(10, seed=1)
    # accuracy after epoch e (w = -e with lr 1, one iteration per epoch) is 0.1 e
    model = _Model(correct=lambda w: -w / 10)
    h = train(model, X, y, Xv, yv, learning_rate=1.0, learning_rate_decay=1.0, num_iters=3, batch_size=30,
              num_train_acc=20, seed=0)
    np.testing.assert_allclose(h["val_acc_history"], [0.1, 0.2, 0.3], rtol=0, atol=1e-15)
    np.testing.assert_allclose(h["train_acc_history"], [0.1, 0.2, 0.3], rtol=0, atol=1e-15)
    # predict saw, per epoch, the train subset then the validation set
    subsets = model.predicted[0::2]
    assert all(np.array_equal(s, subsets[0]) for s in subsets)             # the same subset every epoch
    ids = subsets[0][:, 1]
    assert len(ids) == 20 and len(np.unique(ids)) == 20                    # drawn without replacement
    assert np.all(np.diff(ids) > 0)                                        # in row order
    np.testing.assert_array_equal(model.predicted[1], Xv)
    assert h["best_val_acc"] == pytest.approx(0.3) and h["best_epoch"] == 3


def test_train_accuracy_subset_is_all_rows_when_asked_for_more():
    X, y = _labelled(12)
    model = _Model()
    train(model, X, y, X, y, num_iters=1, batch_size=12, num_train_acc=1000, seed=3)
    np.testing.assert_array_equal(model.predicted[0], X)


def test_accuracy_in_chunks_equals_accuracy_at_once():
    X, y = _labelled(10)
    model = _Model(correct=lambda w: 0.7)
    # the stub is right on the first 70% of *each call's* rows, so chunking would change its
    # answer; an independent predict is the fair oracle: right on rows with an even id
    predict = lambda Xb: np.where(Xb[:, 1] % 2 == 0, Xb[:, 0], -1)  # noqa: E731
    from aml import accuracy
    for batch_size in (1, 3, 4, 10, 5000):
        assert accuracy(model, X, y, batch_size, predict=predict) == 0.5
    assert accuracy(model, X, y) == 0.7                                  # one chunk by default
    calls = len(model.predicted)
    assert accuracy(model, X, y, 3) == pytest.approx(
        (round(0.7 * 3) * 3 + round(0.7 * 1)) / 10)                    # chunks of 3, 3, 3, 1
    assert [len(p) for p in model.predicted[calls:]] == [3, 3, 3, 1]
    with pytest.raises(ValueError, match="'X'.*at least one row"):
        accuracy(model, X[:0], y[:0])
    assert accuracy(model, X[:1], y[:1]) == 1.0                          # one row: 1 of 1, not of 2


def test_accuracy_rejects_bad_arguments():
    from aml import accuracy
    X, y = _labelled(4)
    with pytest.raises(ValueError, match="'batch_size'"):
        accuracy(_Model(), X, y, 0)
    for bad in (y[:, None], y[:1]):                 # labels that would broadcast against predictions
        with pytest.raises(ValueError, match="'y'.*shape"):
            accuracy(_Model(), X, bad)


def test_first_loss_is_the_reference_for_divergence():
    X, y = _labelled(8)
    # 1 -> 50 -> 150: 150 is under 100 x 50 but over 100 x the first loss
    model = _Model(losses=[1.0, 50.0, 150.0, 1.0])
    with pytest.raises(TrainingDiverged) as e:
        train(model, X, y, X, y, learning_rate=1.0, learning_rate_decay=1.0, num_iters=4, batch_size=4, seed=0)
    assert e.value.iteration == 2
    assert "grew to 150 at iteration 2, more than 100 times its first value 1" in str(e.value)
    assert "(learning rate 1)" in str(e.value) and "last finite" in str(e.value)


def test_divergence_resets_to_the_last_epoch_end_and_truncates_the_history():
    X, y = _labelled(8)
    model = _Model(losses=[1.0, 1.0, 1.0, float("nan"), 1.0])
    with pytest.raises(TrainingDiverged) as e:
        train(model, X, y, X, y, learning_rate=1.0, learning_rate_decay=1.0, num_iters=5, batch_size=4, seed=0)
    err = e.value
    assert isinstance(err, FloatingPointError)
    assert err.iteration == 3 and err.restored == "last finite"
    # steps 0..2 were taken (w = -3); the end of epoch 1 (w = -2) is the last finite state
    np.testing.assert_array_equal(model.params["w"], [-2.0])
    np.testing.assert_array_equal(model.params["u"], [-4.0, -4.0])
    np.testing.assert_array_equal(err.history["loss_history"][:3], [1.0, 1.0, 1.0])
    assert err.history["loss_history"].shape == (4,) and np.isnan(err.history["loss_history"][3])
    assert isinstance(err.history["val_acc_history"], np.ndarray) and err.history["val_acc_history"].shape == (1,)
    assert "the training loss became nan at iteration 3" in str(err)


def test_divergence_in_the_first_epoch_resets_to_the_initial_parameters():
    X, y = _labelled(8)
    model = _Model(losses=[1.0, float("inf")])
    with pytest.raises(TrainingDiverged) as e:
        train(model, X, y, X, y, learning_rate=1.0, num_iters=4, batch_size=2, seed=0, keep_best=True)
    assert e.value.restored == "last finite" and e.value.iteration == 1
    np.testing.assert_array_equal(model.params["w"], [0.0])


def test_divergence_with_keep_best_restores_the_best_epoch():
    X, y = _labelled(10)
    # one iteration per epoch; w = -e after epoch e; val accuracy 0.1, 0.5, 0.2: epoch 2 is best
    model = _Model(losses=[1.0, 1.0, 1.0, 1e9], correct=lambda w: {1: 0.1, 2: 0.5, 3: 0.2}.get(round(-w), 0.0))
    with pytest.raises(TrainingDiverged) as e:
        train(model, X, y, X, y, learning_rate=1.0, learning_rate_decay=1.0, num_iters=5, batch_size=10,
              seed=0, keep_best=True)
    assert e.value.restored == "best" and e.value.iteration == 3
    np.testing.assert_array_equal(model.params["w"], [-2.0])
    assert "reset to its best parameters" in str(e.value)


def test_keep_best_restores_the_best_epoch_at_the_end_and_only_when_asked():
    X, y = _labelled(10)
    acc = lambda w: {1: 0.1, 2: 0.5, 3: 0.5, 4: 0.2}[round(-w)]  # noqa: E731 (ties keep the first)
    kw = dict(learning_rate=1.0, learning_rate_decay=1.0, num_iters=4, batch_size=10, seed=0)
    model = _Model(correct=acc)
    h = train(model, X, y, X, y, keep_best=True, **kw)
    np.testing.assert_array_equal(model.params["w"], [-2.0])
    assert h["best_epoch"] == 2 and h["best_val_acc"] == 0.5
    model = _Model(correct=acc)
    train(model, X, y, X, y, keep_best=False, **kw)
    np.testing.assert_array_equal(model.params["w"], [-4.0])


def test_non_finite_parameter_at_an_epoch_end_stops_the_run():
    X, y = _labelled(8)
    model = _Model(grad=np.inf)
    with pytest.raises(TrainingDiverged, match="a parameter became non-finite by iteration 1") as e:
        train(model, X, y, X, y, learning_rate=1.0, num_iters=4, batch_size=4, seed=0)
    assert e.value.iteration == 1
    np.testing.assert_array_equal(model.params["w"], [0.0])      # the initial, finite parameters
    assert e.value.history["loss_history"].shape == (2,)


def test_on_epoch_sees_each_epoch_once_after_it_is_recorded():
    X, y = _labelled(8)
    seen = []
    train(_Model(), X, y, X, y, num_iters=5, batch_size=4, seed=0,
          on_epoch=lambda epoch, h: seen.append((epoch, len(h["val_acc_history"]), len(h["lr_history"]))))
    assert seen == [(1, 1, 1), (2, 2, 2), (3, 3, 3)]


def test_config_and_keyword_overrides():
    X, y = _labelled(8)
    model = _Model()
    h = train(model, X, y, X, y, SGDConfig(learning_rate=0.5, num_iters=3, batch_size=8, learning_rate_decay=1.0),
              num_iters=2, seed=0)
    assert h["loss_history"].shape == (2,)
    np.testing.assert_allclose(model.params["w"], [-1.0])
    with pytest.raises(TypeError, match=r"unexpected keyword argument 'lr'"):
        train(_Model(), X, y, X, y, lr=0.1, seed=0)


def test_seeded_run_leaves_the_global_generator_alone():
    X, y = _labelled(20)
    seen = []

    def spy(X_batch, idx, rng):
        seen.append(idx.copy())
        return X_batch

    train(_Model(), X, y, X, y, num_iters=3, batch_size=5, augment=spy, num_train_acc=4, seed=0)
    np.random.seed(7)
    before = np.random.random()
    np.random.seed(7)
    train(_Model(), X, y, X, y, num_iters=3, batch_size=5, augment=spy, num_train_acc=4, seed=0)
    assert np.random.random() == before     # a seeded run never touches the global generator
    np.testing.assert_array_equal(np.concatenate(seen[:3]), np.concatenate(seen[3:]))


def test_seeded_runs_draw_from_the_given_generator():
    X, y = _labelled(20)
    seen = []
    train(_Model(), X, y, X, y, num_iters=2, batch_size=5, seed=9, num_train_acc=20,
          augment=lambda Xb, idx, rng: seen.append(idx.copy()) or Xb)
    rng = np.random.default_rng(9)
    rng.choice(20, 20, replace=False)       # the train-accuracy subset is drawn first
    expected = [rng.choice(20, 5, replace=True) for _ in range(2)]
    assert all(np.array_equal(a, b) for a, b in zip(seen, expected))


def test_augmented_batch_is_what_the_model_sees():
    X, y = _labelled(8)
    model = _Model()
    train(model, X, y, X, y, num_iters=2, batch_size=4, seed=0, augment=lambda Xb, idx, rng: Xb + 100.0)
    for Xb, _, _, rng in model.calls:
        if rng is not None:
            assert np.all(Xb[:, 1] >= 100)


def test_verbose_progress_bar_counts_iterations(monkeypatch):
    import aml.solver as solver

    class Bar:
        def __init__(self, iterable, disable, **kw):
            self.iterable, self.disable, self.postfix = iterable, disable, []

        def __iter__(self):
            return iter(self.iterable)

        def set_postfix(self, **kw):
            self.postfix.append(kw)

    bars = []
    monkeypatch.setattr(solver, "tqdm", lambda it, **kw: bars.append(Bar(it, **kw)) or bars[-1])
    X, y = _labelled(8)
    train(_Model(losses=[2.0] * 5), X, y, X, y, num_iters=5, batch_size=4, seed=0, verbose=True)
    train(_Model(), X, y, X, y, num_iters=5, batch_size=4, seed=0)
    assert [(len(b.iterable), b.disable) for b in bars] == [(5, False), (5, True)]      # no bar unless verbose
    assert bars[0].postfix == [{"loss": "2.000", "val_acc": "1.000"}] * 3


@pytest.mark.parametrize("split", ["train", "val"])
def test_empty_training_or_validation_split_is_refused_by_name(split):
    X, y = _labelled(8)
    args = (X[:0], y[:0], X, y) if split == "train" else (X, y, X[:0], y[:0])
    name = "X" if split == "train" else "X_val"
    with pytest.raises(ValueError, match=f"^The '{name}' parameter must hold at least one row"):
        train(_Model(), *args, num_iters=2, batch_size=4, seed=0)


@pytest.mark.parametrize("kwargs,exc,words", [
    (dict(num_epochs=0), ValueError, "'num_epochs'"),
    (dict(nesterov=1), TypeError, "'nesterov'"),
    (dict(keep_best="no"), TypeError, "'keep_best'"),
    (dict(num_train_acc=0), ValueError, "'num_train_acc'"),
    (dict(momentum=-0.1), ValueError, "'momentum'"),
    (dict(seed=-1), ValueError, "'seed'"),
    (dict(seed=1.5), TypeError, "'seed'"),
    (dict(seed=np.random.RandomState(0)), TypeError, "'seed'"),
    (dict(config={"learning_rate": 0.1}), TypeError, "'config'"),
])
def test_train_rejects_more_bad_values(kwargs, exc, words):
    X, y = _labelled(8)
    with pytest.raises(exc, match=words):
        train(_Model(), X, y, X, y, **({"seed": 0} | kwargs))


def test_config_accepts_boundary_values():
    assert SGDConfig(learning_rate_decay=1.0, momentum=0.0, reg=0.0).learning_rate_decay == 1.0
    with pytest.raises(ValueError, match="'learning_rate_decay'.*Got 0.0"):
        SGDConfig(learning_rate_decay=0.0)
    with pytest.raises(ValueError, match="'momentum'"):
        SGDConfig(momentum=1.0)


# ---------------------------------------------------------------------------------------------
# aml.training: the History both loops return and the best-epoch bookkeeping both use.
# ---------------------------------------------------------------------------------------------


def test_history_holds_exactly_its_documented_keys():
    h = History(5, iterations_per_epoch=2)
    assert list(h) == list(HISTORY_KEYS)
    assert h["loss_history"].shape == (5,) and np.isnan(h["loss_history"]).all()
    assert h["heldout_val_acc"] is None and h["device"] == "cpu" and h["best_epoch"] == 0
    with pytest.raises(KeyError, match="'running_train_acc_history' is not a History key"):
        h["running_train_acc_history"] = []
    h.record_epoch(epoch=1, train_acc=0.5, val_acc=np.float32(0.25), val_loss=2, lr=0.1)
    h.record_epoch(epoch=2, train_acc=0.75, val_acc=0.5, val_loss=1, lr=0.05)
    for key in ("epoch_history", "train_acc_history", "val_acc_history", "val_loss_history", "lr_history"):
        assert isinstance(h[key], np.ndarray) and h[key].dtype == np.float64 and h[key].shape == (2,), key
    np.testing.assert_array_equal(h["val_acc_history"], [0.25, 0.5])
    best = BestEpoch()
    best.update(1, 0.25)
    best.update(2, 0.5)
    assert h.finish(best, seconds=3, num_iters=4) is h
    assert h["loss_history"].shape == (4,) and (h["best_epoch"], h["best_val_acc"]) == (2, 0.5)
    assert isinstance(h["train_seconds"], float)


def test_best_epoch_keeps_the_first_maximum_and_copies_only_new_bests():
    copies = []
    best = BestEpoch(lambda: copies.append(len(copies)) or f"params {len(copies)}")
    assert best.epoch == 0 and np.isnan(best.val_acc) and best.params is None
    assert [best.update(e, a) for e, a in enumerate([0.2, 0.6, 0.6, float("nan"), 0.1, 0.7], 1)] == \
        [True, True, False, False, False, True]
    assert (best.epoch, best.val_acc, best.params) == (6, 0.7, "params 3") and len(copies) == 3
    plain = BestEpoch()
    assert not plain.update(1, float("nan"))          # an empty monitored split: no best epoch
    assert plain.epoch == 0 and plain.params is None
    plain.update(2, 0.5)
    assert plain.params is None                       # no copy unless asked for one


def test_solver_history_types_at_every_epoch_and_at_the_end():
    X, y = _labelled(8)
    seen = []

    def spy(epoch, h):
        assert isinstance(h, History)
        seen.append({k: type(v) for k, v in h.items()})
    h = train(_Model(), X, y, X, y, num_iters=5, batch_size=4, seed=0, on_epoch=spy)
    assert isinstance(h, History) and list(h) == list(HISTORY_KEYS)
    assert all(s["val_acc_history"] is np.ndarray and s["lr_history"] is np.ndarray for s in seen)
    assert (type(h["best_val_acc"]), type(h["best_epoch"]), type(h["iterations_per_epoch"])) == (float, int, int)
    assert h["device"] == "cpu" and h["heldout_val_acc"] is None


def test_history_records_the_l2_term_of_every_minibatch_loss(toy_data):
    X, y = toy_data
    net = TwoLayerNet(X.shape[1], 10, 3, std=0.1, seed=0)
    h = train(net, X, y, X, y, learning_rate=0.1, reg=0.05, num_iters=20, seed=0)
    reg = h["reg_loss_history"]
    assert reg.shape == h["loss_history"].shape and np.isfinite(reg).all()
    assert np.all(reg > 0) and np.all(reg < h["loss_history"])      # a term of the loss, not the loss
    w = net.params
    final = 0.05 * (np.sum(w["W1"] ** 2) + np.sum(w["W2"] ** 2))
    assert reg[-1] == pytest.approx(final, rel=0.2)                # the last step moved W only a little


# ---------------------------------------------------------------------------------------------
# aml._checks: the boundaries of each check (the configs above and the other modules use them).
# ---------------------------------------------------------------------------------------------


def test_checks_accept_their_boundaries_and_return_plain_values():
    from aml import _checks as c
    assert c.check_positive_int("n", np.int64(1)) == 1 and type(c.check_positive_int("n", np.int64(1))) is int
    assert c.check_nonneg_int("n", 0) == 0
    assert c.check_positive_float("x", 1) == 1.0 and type(c.check_positive_float("x", 1)) is float
    assert c.check_nonneg_float("x", 0) == 0.0
    assert c.check_interval("p", 0.0, 0.0, 1.0) == 0.0
    assert c.check_interval("p", 1.0, 0.0, 1.0, closed_high=True) == 1.0
    assert c.check_seed("s", 2**32 - 1) == 2**32 - 1 and c.check_seed("s", 0) == 0
    assert c.check_seed("s", None, allow_none=True) is None
    g = np.random.default_rng(0)
    assert c.check_seed("s", g, allow_generator=True) is g
    assert c.optional(c.check_positive_int)("n", None) is None and c.optional(c.check_positive_int)("n", 2) == 2
    assert c.check_bool("b", np.bool_(True)) is True


@pytest.mark.parametrize("call,exc,message", [
    (lambda c: c.check_positive_int("n", 0), ValueError, "The 'n' parameter must be a positive int. Got 0 instead."),
    (lambda c: c.check_positive_int("n", True), TypeError,
     "The 'n' parameter must be a positive int. Got True instead."),
    (lambda c: c.check_nonneg_int("n", -1), ValueError, "The 'n' parameter must be an int >= 0. Got -1 instead."),
    (lambda c: c.check_nonneg_int("n", 1.0), TypeError, "The 'n' parameter must be an int >= 0. Got 1.0 instead."),
    (lambda c: c.check_positive_float("x", float("inf")), ValueError,
     "The 'x' parameter must be a finite float > 0. Got inf instead."),
    (lambda c: c.check_nonneg_float("x", float("nan")), ValueError,
     "The 'x' parameter must be a finite float >= 0. Got nan instead."),
    (lambda c: c.check_nonneg_float("x", "1"), TypeError,
     "The 'x' parameter must be a finite float >= 0. Got '1' instead."),
    (lambda c: c.check_interval("p", 1.0, 0.0, 1.0), ValueError,
     "The 'p' parameter must be a float in [0.0, 1.0). Got 1.0 instead."),
    (lambda c: c.check_interval("p", 0.0, 0.0, 1.0, closed_low=False), ValueError,
     "The 'p' parameter must be a float in (0.0, 1.0). Got 0.0 instead."),
    (lambda c: c.check_interval("p", 1.5, 0.0, 1.0, closed_high=True), ValueError,
     "The 'p' parameter must be a float in [0.0, 1.0]. Got 1.5 instead."),
    (lambda c: c.check_interval("p", -0.5, 0.0, 1.0), ValueError,
     "The 'p' parameter must be a float in [0.0, 1.0). Got -0.5 instead."),
    (lambda c: c.check_seed("s", 2**32), ValueError,
     "The 's' parameter must be an int in [0, 2**32). Got 4294967296 instead."),
    (lambda c: c.check_seed("s", -1, allow_none=True), ValueError,
     "The 's' parameter must be an int in [0, 2**32) or None. Got -1 instead."),
    (lambda c: c.check_seed("s", None), TypeError, "The 's' parameter must be an int in [0, 2**32). Got None instead."),
    (lambda c: c.check_seed("s", np.random.default_rng(0), allow_none=True), TypeError, "or None. Got Generator"),
    (lambda c: c.check_choice("k", "c", ("a", "b")), ValueError,
     "The 'k' parameter must be one of ['a', 'b']. Got 'c' instead."),
    (lambda c: c.check_bool("b", 1), TypeError, "The 'b' parameter must be a bool. Got 1 instead."),
    (lambda c: c.check_y(np.array([0, 2]), num_samples=2, num_classes=2), ValueError, "Got values in [0, 2] instead."),
    (lambda c: c.check_y(np.array([-1, 0]), num_samples=2, num_classes=2), ValueError,
     "Got values in [-1, 0] instead."),
])
def test_checks_refuse_with_one_line_naming_the_argument(call, exc, message):
    from aml import _checks as c
    with pytest.raises(exc) as e:
        call(c)
    assert message in str(e.value)
