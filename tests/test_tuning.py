import numpy as np
import pytest

from aml.data import CIFAR10Split
from aml.flips import hflip_images
from aml.runs import read_csv, write_csv
from aml.solver import SGDConfig
from aml.tables import markdown_table
from aml.tuning import NetConfig, run_config, run_many


def _tiny_split(n=300, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 10, n + 100)
    centres = 0.3 * rng.standard_normal((10, 3072))
    centres = (centres + hflip_images(centres)) / 2     # mirror-symmetric, so flips keep the classes
    X = (rng.standard_normal((n + 100, 3072)) + centres[y]).astype(np.float32)
    X -= X[:n].mean(axis=0)
    return CIFAR10Split(X[:n], y[:n], X[n:], y[n:], X[n:], y[n:], None)


def test_defaults_are_the_handouts():
    c = NetConfig()
    assert (c.hidden_size, c.sgd.learning_rate, c.sgd.reg, c.sgd.num_iters, c.sgd.batch_size,
            c.sgd.learning_rate_decay, c.std) == (50, 1e-4, 0.25, 1000, 200, 0.95, 1e-4)
    assert c.sgd.total_iterations(49000) == 1000
    assert c.replace(num_epochs=3).sgd.total_iterations(49000) == 3 * 245


def test_flat_dict_round_trip_and_replace_is_validated():
    c = NetConfig().replace(hidden_size=10, learning_rate=0.5, nesterov=True, momentum=0.9)
    assert c.sgd == SGDConfig(learning_rate=0.5, learning_rate_decay=0.95, reg=0.25, num_iters=1000,
                              nesterov=True, momentum=0.9)
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


@pytest.mark.parametrize("preprocess,flip", [("mean", False), ("scale", True), ("pca", True)])
def test_run_config_learns_a_separable_problem(preprocess, flip):
    cfg = NetConfig.from_dict(dict(hidden_size=32, num_epochs=8, batch_size=50, learning_rate=0.01, momentum=0.9,
                                   std=None, sampling="epoch", preprocess=preprocess, pca_components=50, flip=flip,
                                   reg=1e-4, keep_best=True, dropout=0.1, seed=0))
    data = _tiny_split()
    result = run_config(cfg, data)
    assert result.val_acc > 0.3  # chance is 0.1
    assert result.val_acc == result.stats["best_val_acc"]
    assert result.preprocessor.pixel_weights(result.model.params["W1"]).shape == (3072, 32)


def test_run_many_records_divergence_and_csv_round_trip(tmp_path):
    data = _tiny_split()
    ok = NetConfig.from_dict(dict(hidden_size=8, num_epochs=1, batch_size=50, sampling="epoch"))
    bad = ok.replace(learning_rate=1e9, std=1.0)
    rows, results = run_many([ok, bad], data)
    assert results[1] is None and rows[1]["note"] == "diverged" and rows[0]["note"] == ""
    assert np.isnan(rows[1]["val_acc"])
    write_csv(rows, tmp_path / "runs.csv")
    back = read_csv(tmp_path / "runs.csv")
    assert [r["note"] for r in back] == ["", "diverged"]
    assert markdown_table(rows, {"hidden_size": "H", "val_acc": "val|.2f"}).splitlines()[0] == "| H | val |"


def test_run_many_records_any_failure_and_keeps_the_finished_rows(monkeypatch):
    import aml.tuning
    data = _tiny_split()
    ok = NetConfig.from_dict(dict(hidden_size=8, num_epochs=1, batch_size=50, sampling="epoch"))
    real = aml.tuning.run_config

    def flaky(config, data, **kw):
        if config.hidden_size == 9:
            raise MemoryError("no room")
        return real(config, data, **kw)
    monkeypatch.setattr(aml.tuning, "run_config", flaky)
    rows, results = run_many([ok, ok.replace(hidden_size=9), ok], data)
    assert [r["note"] for r in rows] == ["", "failed: MemoryError: no room", ""]
    assert results[0] is not None and results[1] is None and results[2] is not None
