from dataclasses import dataclass, field

import numpy as np
import pytest

from aml.data import CLASS_NAMES
from aml.flips import hflip_images
from aml.solver import SGDConfig
from aml.tuning import NetConfig, run_config, training_subset


@dataclass(frozen=True)
class _Split:
    """What run_config reads of a split (no test arrays: it never needs them)."""
    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    X_sel: np.ndarray | None = None
    y_sel: np.ndarray | None = None
    class_names: tuple = field(default=CLASS_NAMES)


def _tiny_split(n=300, seed=0, num_sel=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 10, n + 100 + num_sel)
    centres = 0.3 * rng.standard_normal((10, 3072))
    centres = (centres + hflip_images(centres)) / 2     # mirror-symmetric, so flips keep the classes
    X = (rng.standard_normal((len(y), 3072)) + centres[y]).astype(np.float32)
    X -= X[:n].mean(axis=0)
    sel = slice(n + 100, n + 100 + num_sel)
    return _Split(X[:n], y[:n], X[n:n + 100], y[n:n + 100], X[sel], y[sel])


def test_defaults_are_the_handouts():
    c = NetConfig()
    assert (c.hidden_size, c.learning_rate, c.reg, c.num_iters, c.batch_size, c.learning_rate_decay, c.std) \
        == (50, 1e-4, 0.25, 1000, 200, 0.95, 1e-4)
    assert isinstance(c, SGDConfig)                  # the solver's defaults have one home: SGDConfig's
    fields = ("learning_rate", "reg", "num_iters", "batch_size", "learning_rate_decay")
    assert {f: getattr(c, f) for f in fields} == {f: getattr(SGDConfig(), f) for f in fields}
    assert c.total_iterations(49000) == 1000
    assert c.replace(num_epochs=3).total_iterations(49000) == 3 * 245


def test_config_is_flat_as_a_student_types_it():
    c = NetConfig(learning_rate=1e-3, hidden_size=100, momentum=0.9)
    assert (c.learning_rate, c.hidden_size, c.momentum, c.reg) == (1e-3, 100, 0.9, 0.25)
    assert isinstance(c, SGDConfig) and c.learning_rate == 1e-3 and c.momentum == 0.9
    with pytest.raises(ValueError, match="'learning_rate'.*Got -1"):
        NetConfig(learning_rate=-1)                   # validated where SGDConfig validates it
    with pytest.raises(TypeError):
        NetConfig(1e-3)                                # keyword-only: no field taken by position
    with pytest.raises(TypeError):
        NetConfig(sgd=SGDConfig())                     # the nested form is gone


def test_flat_dict_round_trip_and_replace_is_validated():
    c = NetConfig().replace(hidden_size=10, learning_rate=0.5, nesterov=True, momentum=0.9)
    assert (c.hidden_size, c.learning_rate, c.nesterov, c.momentum, c.reg) == (10, 0.5, True, 0.9, 0.25)
    assert NetConfig.from_dict(c.to_dict()) == c
    with pytest.raises(ValueError, match="'learning_rate_decay'"):
        c.replace(learning_rate_decay=0.0)


@pytest.mark.parametrize("kwargs,exc,words", [
    (dict(hidden_size=0), ValueError, "'hidden_size'"),
    (dict(reg=-1.0), ValueError, "'reg'"),
    (dict(dropout=1.0), ValueError, "'dropout'"),
    (dict(dropout=-0.2), ValueError, "'dropout'"),
    (dict(learning_rate=0.0), ValueError, "'learning_rate'"),
    (dict(preprocess="zca"), ValueError, "'preprocess'"),
    (dict(num_epochs=0), ValueError, "'num_epochs'"),
    (dict(batch_size=2.0), TypeError, "'batch_size'"),
    (dict(learning_rate_decay=0.0), ValueError, "'learning_rate_decay'"),
    (dict(seed=1.5), TypeError, "'seed'"),
    (dict(seed=-1), ValueError, "'seed'"),
    (dict(nesterov="no"), TypeError, "'nesterov'"),
    (dict(flip=2), TypeError, "'flip'"),
])
def test_config_rejects_impossible_values(kwargs, exc, words):
    with pytest.raises(exc, match=words):
        NetConfig.from_dict(kwargs)


def test_unknown_field_is_named():
    with pytest.raises(ValueError, match=r"Unknown NetConfig field\(s\) \['hiden_size'\]"):
        NetConfig.from_dict({"hiden_size": 10})
    with pytest.raises(ValueError, match="hiden_size"):
        NetConfig().replace(hiden_size=10)


@pytest.mark.parametrize("preprocess,flip", [("mean", False), ("scale", True)])
def test_run_config_learns_a_separable_problem(preprocess, flip):
    cfg = NetConfig.from_dict(dict(hidden_size=32, num_epochs=8, batch_size=50, learning_rate=0.01, momentum=0.9,
                                   std=None, sampling="epoch", preprocess=preprocess, flip=flip,
                                   reg=1e-4, keep_best=True, dropout=0.1, seed=0))
    data = _tiny_split()
    result = run_config(cfg, data)
    assert result.val_acc > 0.3  # chance is 0.1
    assert result.val_acc == result.stats["best_val_acc"]          # no selection split: validation is monitored
    assert result.sel_acc is None and result.stats["heldout_val_acc"] is None
    assert result.model.params["W1"].shape == (3072, 32)



def test_run_config_monitors_the_selection_split_and_holds_out_validation(monkeypatch):
    import aml.tuning
    data = _tiny_split(num_sel=60)
    seen = {}
    real = aml.tuning.train

    def spy(model, X, y, X_val, y_val, config, **kw):
        seen["y_val"] = y_val
        return real(model, X, y, X_val, y_val, config, **kw)
    monkeypatch.setattr(aml.tuning, "train", spy)
    cfg = NetConfig.from_dict(dict(hidden_size=16, num_epochs=3, batch_size=50, learning_rate=0.01, std=None,
                                   sampling="epoch", keep_best=True, preprocess="scale"))
    epochs = []
    result = run_config(cfg, data, on_epoch=lambda e, h: epochs.append(h["val_acc_history"][-1]))
    np.testing.assert_array_equal(seen["y_val"], data.y_sel)       # the solver monitored the selection split
    h = result.stats
    assert result.sel_acc == h["best_val_acc"] == max(epochs)      # keep_best chose on the selection split
    assert result.val_acc == h["heldout_val_acc"]
    X_val = result.transform(data.X_val)
    from aml import accuracy
    assert result.val_acc == accuracy(result.model, X_val, data.y_val)
    row = result.row()
    assert row["sel_acc"] == round(result.sel_acc, 4) and row["val_acc"] == round(result.val_acc, 4)


def test_run_config_with_an_empty_selection_split_monitors_validation():
    data = _tiny_split(num_sel=0)
    assert data.X_sel.shape == (0, 3072)
    cfg = NetConfig.from_dict(dict(hidden_size=8, num_epochs=2, batch_size=50, sampling="epoch", keep_best=True))
    result = run_config(cfg, data)
    assert result.sel_acc is None and result.val_acc == result.stats["best_val_acc"]
    assert np.isnan(result.row()["sel_acc"])


def test_run_result_predictor_flips_through_the_run_s_transform():
    from aml.data import CIFAR10Split, SealedTest
    from aml.flips import hflip_images
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 3072)).astype(np.float32)
    y = rng.integers(0, 10, 60)
    data = CIFAR10Split(X[:40], y[:40], X[40:50], y[40:50], SealedTest(X[:0], y[:0]), X_sel=X[50:], y_sel=y[50:])
    result = run_config(NetConfig.from_dict(dict(hidden_size=5, num_iters=5, preprocess="scale", std=None)), data)
    plain, flipped = result.predictor(), result.predictor(flips=True)
    Z, Zf = result.transform(X), result.transform(hflip_images(X))
    assert (plain(X) == result.model.predict(Z)).all()
    assert (flipped(X) == np.argmax(result.model.scores(Z) + result.model.scores(Zf), axis=1)).all()
    acc = result.flip_accuracies(data)
    assert acc["sel_acc_flips"] == np.mean(flipped(X[50:]) == y[50:])
    assert acc["val_acc_flips"] == np.mean(flipped(X[40:50]) == y[40:50])



def test_training_subset_cuts_only_the_training_split():
    data = _tiny_split(n=300, num_sel=20)
    sub = training_subset(data, 50)
    assert sub.X_train.shape == (50, 3072) and np.array_equal(sub.y_train, data.y_train[:50])
    assert sub.X_val is data.X_val and sub.X_sel is data.X_sel
    assert training_subset(data, 10_000).X_train.shape[0] == 300
    with pytest.raises(ValueError, match="num_train"):
        training_subset(data, 0)


def test_run_result_keeps_w1_as_it_was_before_training():
    # the Q3b figure of what training added reads initial_W1: it must be the seeded start, not the trained W1
    from aml import TwoLayerNet
    data = _tiny_split()
    cfg = NetConfig.from_dict(dict(hidden_size=5, num_iters=20, learning_rate=1e-2, std=1e-2, seed=3))
    result = run_config(cfg, data)
    start = TwoLayerNet(3072, 5, 10, std=1e-2, dtype=np.float32, seed=3).params["W1"]
    np.testing.assert_array_equal(result.initial_W1, start)
    assert not np.array_equal(result.model.params["W1"], start)
