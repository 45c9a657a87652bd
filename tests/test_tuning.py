import numpy as np
import pytest

from aml.data import CIFAR10Split, hflip_images
from aml.tuning import NetConfig, random_search, read_csv, run_config, run_many, write_csv
from aml.utils import markdown_table


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
    assert (c.hidden_size, c.learning_rate, c.reg, c.num_iters, c.batch_size, c.learning_rate_decay, c.std) == \
        (50, 1e-4, 0.25, 1000, 200, 0.95, 1e-4)
    assert c.iterations(49000) == 1000
    assert c.replace(num_epochs=3).iterations(49000) == 3 * 245


@pytest.mark.parametrize("kwargs,exc,words", [
    (dict(hidden_size=0), ValueError, "'hidden_size'"),
    (dict(reg=-1.0), ValueError, "'reg'"),
    (dict(dropout=1.0), ValueError, "'dropout'"),
    (dict(dropout=-0.2), ValueError, "'dropout'"),
    (dict(learning_rate=0.0), ValueError, "'learning_rate'"),
    (dict(preprocess="zca"), ValueError, "'preprocess'"),
    (dict(num_epochs=0), ValueError, "'num_epochs'"),
    (dict(batch_size=2.0), TypeError, "'batch_size'"),
])
def test_config_rejects_impossible_values(kwargs, exc, words):
    with pytest.raises(exc, match=words):
        NetConfig(**kwargs)


def test_unknown_field_is_named():
    with pytest.raises(ValueError, match=r"Unknown NetConfig field\(s\) \['hiden_size'\]"):
        NetConfig.from_dict({"hiden_size": 10})
    with pytest.raises(ValueError, match="hiden_size"):
        NetConfig().replace(hiden_size=10)
    with pytest.raises(ValueError, match="'colour'"):
        random_search(NetConfig(), 2, colour=["red"])


def test_random_search_is_seeded_and_in_range():
    a = random_search(NetConfig(), 20, seed=1, learning_rate=(1e-4, 1e-2), reg=(1e-3, 1.0), hidden_size=[10, 20])
    b = random_search(NetConfig(), 20, seed=1, learning_rate=(1e-4, 1e-2), reg=(1e-3, 1.0), hidden_size=[10, 20])
    assert a == b
    assert all(1e-4 <= c.learning_rate <= 1e-2 and 1e-3 <= c.reg <= 1.0 and c.hidden_size in (10, 20) for c in a)
    assert len({c.learning_rate for c in a}) == 20
    with pytest.raises(ValueError, match="'learning_rate' range"):
        random_search(NetConfig(), 2, learning_rate=(1e-2, 1e-4))


@pytest.mark.parametrize("preprocess,flip", [("mean", False), ("scale", True), ("pca", True)])
def test_run_config_learns_a_separable_problem(preprocess, flip):
    cfg = NetConfig(hidden_size=32, num_epochs=8, batch_size=50, learning_rate=0.01, momentum=0.9, std=None,
                    sampling="epoch", preprocess=preprocess, pca_components=50, flip=flip, reg=1e-4,
                    keep_best=True, dropout=0.1, seed=0)
    data = _tiny_split()
    result = run_config(cfg, data)
    assert result.val_acc > 0.3  # chance is 0.1
    assert result.val_acc == result.stats["best_val_acc"]
    assert result.preprocessor.pixel_weights(result.model.params["W1"]).shape == (3072, 32)


def test_run_many_records_divergence_and_csv_round_trip(tmp_path):
    data = _tiny_split()
    ok = NetConfig(hidden_size=8, num_epochs=1, batch_size=50, sampling="epoch")
    bad = ok.replace(learning_rate=1e9, std=1.0)
    rows, results = run_many([ok, bad], data)
    assert results[1] is None and rows[1]["note"] == "diverged" and rows[0]["note"] == ""
    write_csv(rows, tmp_path / "runs.csv")
    back = read_csv(tmp_path / "runs.csv")
    assert [r["note"] for r in back] == ["", "diverged"]
    assert markdown_table(rows, {"hidden_size": "H", "val_acc": "val|.2f"}).splitlines()[0] == "| H | val |"
