import numpy as np
import pytest
import torch
from conftest import TOY_LOSS_REG_005, TOY_PROBS

from aml import TwoLayerNet, check_model_gradients, rel_error, softmax


def test_toy_forward_matches_handout(toy_net, toy_data):
    X, _ = toy_data
    assert np.abs(toy_net.loss(X) - TOY_PROBS).sum() < 1e-7


def test_toy_loss_matches_handout(toy_net, toy_data):
    loss, _ = toy_net.loss(*toy_data, reg=0.05)
    assert abs(loss - TOY_LOSS_REG_005) < 1e-12


def test_toy_gradients_match_finite_differences(toy_net, toy_data):
    errors = check_model_gradients(toy_net, *toy_data, reg=0.05)
    assert set(errors) == {"W1", "b1", "W2", "b2"}
    assert max(errors.values()) < 1e-8, errors


@pytest.mark.parametrize("N,D,H,C,reg", [(7, 5, 6, 4, 0.1), (3, 9, 4, 2, 0.7), (12, 3, 8, 5, 0.0)])
def test_random_gradients_match_finite_differences(N, D, H, C, reg):
    rng = np.random.default_rng(N * D)
    net = TwoLayerNet(D, H, C, std=0.5, seed=rng)
    X, y = rng.standard_normal((N, D)), rng.integers(0, C, N)
    errors = check_model_gradients(net, X, y, reg=reg)
    # entries near zero (a unit that is almost dead) make the relative error of centred
    # differences noisy, hence 1e-6 here and 1e-8 on the handout's model
    assert max(errors.values()) < 1e-6, errors


def test_dropout_gradients_match_finite_differences():
    rng = np.random.default_rng(3)
    net = TwoLayerNet(6, 20, 4, std=0.5, seed=rng, dropout=0.4)
    X, y = rng.standard_normal((9, 6)), rng.integers(0, 4, 9)
    errors = check_model_gradients(net, X, y, reg=0.2, dropout_seed=11)
    assert max(errors.values()) < 1e-7, errors
    # and the mask really was applied: the loss differs from the no-dropout loss
    assert net.loss(X, y, reg=0.2, rng=np.random.default_rng(11))[0] != net.loss(X, y, reg=0.2)[0]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_gradients_match_torch_autograd(seed):
    rng = np.random.default_rng(seed)
    N, D, H, C, reg = 11, 7, 13, 5, 0.3
    net = TwoLayerNet(D, H, C, std=0.4, seed=rng)
    X, y = rng.standard_normal((N, D)), rng.integers(0, C, N)
    loss, grads = net.loss(X, y, reg=reg)

    t = {k: torch.tensor(v, requires_grad=True) for k, v in net.params.items()}
    scores = torch.relu(torch.tensor(X) @ t["W1"] + t["b1"]) @ t["W2"] + t["b2"]
    t_loss = torch.nn.functional.cross_entropy(scores, torch.tensor(y)) \
        + reg * (t["W1"].square().sum() + t["W2"].square().sum())
    t_loss.backward()
    assert abs(loss - t_loss.item()) < 1e-12
    for k in net.params:
        assert rel_error(grads[k], t[k].grad.numpy()) < 1e-10, k


def test_hand_worked_example():
    # D = H = 1, C = 2, W1 = 1, W2 = [1, -1], x = 1, y = 0:
    # z2 = a2 = 1, z3 = [1, -1], psi_0 = 1 / (1 + e^-2), J = log(1 + e^-2).
    # With s = 1 / (1 + e^2): dJ/dz3 = [-s, s], dJ/dW2 = [[-s, s]], dJ/da2 = -s - s = -2s,
    # so dJ/dW1 = dJ/db1 = -2s. reg 0.5 adds 0.5 * (1 + 2) to J and 2 * 0.5 * W to dW.
    net = TwoLayerNet(1, 1, 2, seed=0)
    net.params.update(W1=np.array([[1.0]]), b1=np.zeros(1), W2=np.array([[1.0, -1.0]]), b2=np.zeros(2))
    X, y = np.array([[1.0]]), np.array([0])
    s = 1 / (1 + np.e ** 2)
    loss, grads = net.loss(X, y, reg=0.5)
    assert loss == pytest.approx(np.log(1 + np.e ** -2) + 1.5, abs=1e-15)
    np.testing.assert_allclose(grads["b2"], [-s, s], atol=1e-15)
    np.testing.assert_allclose(grads["W2"], [[1 - s, -1 + s]], atol=1e-15)
    np.testing.assert_allclose(grads["W1"], [[1 - 2 * s]], atol=1e-15)
    np.testing.assert_allclose(grads["b1"], [-2 * s], atol=1e-15)


def test_float32_stays_float32():
    rng = np.random.default_rng(0)
    net = TwoLayerNet(8, 6, 3, std=0.1, seed=0, dtype=np.float32, dropout=0.2)
    X = rng.standard_normal((5, 8)).astype(np.float32)
    y = rng.integers(0, 3, 5)
    loss, grads = net.loss(X, y, reg=0.1, rng=rng)
    assert all(g.dtype == np.float32 for g in grads.values())
    assert net.loss(X).dtype == np.float32
    assert all(p.dtype == np.float32 for p in net.params.values())


def test_loss_is_stable_for_huge_scores():
    net = TwoLayerNet(2, 3, 2, seed=0)
    net.params["W2"][:] = 1e4
    net.params["W2"][:, 1] = -1e4
    loss, grads = net.loss(np.array([[100.0, 100.0]]), np.array([1]))
    assert np.isfinite(loss) and all(np.isfinite(g).all() for g in grads.values())
    assert np.isfinite(softmax(np.array([[1e4, -1e4, 0.0]]))).all()


def test_predict_and_seeded_init():
    a, b = TwoLayerNet(5, 4, 3, seed=7), TwoLayerNet(5, 4, 3, seed=7)
    assert all(np.array_equal(a.params[k], b.params[k]) for k in a.params)
    assert np.all(a.params["b1"] == 0) and np.all(a.params["b2"] == 0)
    X = np.random.default_rng(0).standard_normal((6, 5))
    pred = a.predict(X)
    assert pred.shape == (6,) and np.issubdtype(pred.dtype, np.integer)
    np.testing.assert_array_equal(pred, a.loss(X).argmax(axis=1))


def test_save_load_round_trip(tmp_path):
    net = TwoLayerNet(5, 4, 3, seed=1, dtype=np.float32, dropout=0.25)
    net.save(tmp_path / "net.npz")
    back = TwoLayerNet.load(tmp_path / "net.npz")
    assert back.dropout == 0.25 and back.dtype == np.float32
    assert all(np.array_equal(net.params[k], back.params[k]) for k in net.params)
    assert [p.name for p in tmp_path.iterdir()] == ["net.npz"]  # no temp file left behind


@pytest.mark.parametrize("kwargs,exc,words", [
    (dict(input_size=0), ValueError, "'input_size'"),
    (dict(hidden_size=-3), ValueError, "'hidden_size'"),
    (dict(output_size=2.5), TypeError, "'output_size'"),
    (dict(std=0.0), ValueError, "'std'"),
    (dict(std=-1e-4), ValueError, "'std'"),
    (dict(dropout=1.0), ValueError, "'dropout'"),
    (dict(dropout=-0.1), ValueError, "'dropout'"),
    (dict(dtype=np.int32), TypeError, "'dtype'"),
])
def test_constructor_rejects_bad_input(kwargs, exc, words):
    args = dict(input_size=4, hidden_size=5, output_size=3) | kwargs
    with pytest.raises(exc, match=words):
        TwoLayerNet(**args)


@pytest.mark.parametrize("X,y,reg,exc,words", [
    (np.ones(4), None, 0.0, ValueError, "'X'.*2-D"),
    (np.ones((2, 5)), None, 0.0, ValueError, "'X'.*4 features"),
    (np.array([[np.nan, 0, 0, 0]]), None, 0.0, ValueError, "'X'.*finite"),
    (np.array([[np.inf, 0, 0, 0]]), np.array([0]), 0.0, ValueError, "'X'.*finite"),
    ([[0.0, 0, 0, 0]], None, 0.0, TypeError, "'X'"),
    (np.ones((2, 4)), np.array([0.0, 1.0]), 0.0, TypeError, "'y'.*integer"),
    (np.ones((2, 4)), np.array([0]), 0.0, ValueError, "'y'.*shape"),
    (np.ones((2, 4)), np.array([0, 3]), 0.0, ValueError, r"'y'.*\[0, 3\)"),
    (np.ones((2, 4)), np.array([-1, 0]), 0.0, ValueError, "'y'"),
    (np.ones((2, 4)), np.array([0, 1]), -0.1, ValueError, "'reg'"),
])
def test_loss_rejects_bad_input(toy_net, X, y, reg, exc, words):
    with pytest.raises(exc, match=words):
        toy_net.loss(X, y, reg=reg)


def test_softmax_shifts_each_row_by_its_own_maximum():
    # rows 2000 apart: one global shift would underflow the second row to 0 / 0
    scores = np.array([[1000.0, 999.0], [-1000.0, -1001.0]])
    p = softmax(scores)
    e = 1 / (1 + np.exp(-1.0))
    np.testing.assert_allclose(p, [[e, 1 - e], [e, 1 - e]], rtol=1e-14)


def test_load_without_dropout_entry_means_no_dropout(tmp_path):
    net = TwoLayerNet(3, 2, 2, seed=0)
    np.savez(tmp_path / "old.npz", **net.params)
    back = TwoLayerNet.load(tmp_path / "old.npz")
    assert back.dropout == 0.0 and back.sizes == (3, 2, 2)
    assert all(np.array_equal(net.params[k], back.params[k]) for k in net.params)


def _save(path, **params):
    np.savez(path, **params)
    return path


@pytest.mark.parametrize("change,words", [
    (dict(b2=None), r"cannot be read as a TwoLayerNet .npz file \(KeyError: 'b2 is not a file"),
    (dict(b1=np.zeros(2, dtype=np.float32)), "one float dtype"),
    (dict(W1=np.ones((3, 2), dtype=np.int64), b1=np.zeros(2, dtype=np.int64), W2=np.ones((2, 2), dtype=np.int64),
          b2=np.zeros(2, dtype=np.int64)), "one float dtype"),
    (dict(W1=np.ones(3)), r"W1 \(D, H\).*Got shapes \{'W1': \(3,\)"),
    (dict(W2=np.ones(2)), r"W1 \(D, H\)"),
    (dict(W2=np.ones((3, 2))), r"W1 \(D, H\)"),
    (dict(b1=np.zeros(3)), r"W1 \(D, H\)"),
    (dict(b2=np.zeros(3)), r"W1 \(D, H\)"),
    (dict(W2=np.full((2, 2), np.nan)), r"finite.*\['W2'\]"),
    (dict(b1=np.array([0.0, np.inf])), r"finite.*\['b1'\]"),
])
def test_load_rejects_inconsistent_checkpoints(tmp_path, change, words):
    params = dict(W1=np.ones((3, 2)), b1=np.zeros(2), W2=np.ones((2, 2)), b2=np.zeros(2)) | change
    path = _save(tmp_path / "bad.npz", **{k: v for k, v in params.items() if v is not None})
    with pytest.raises(ValueError, match=words) as e:
        TwoLayerNet.load(path)
    assert str(path) in str(e.value)                    # the message names the file


def test_load_leaves_the_global_generator_alone(tmp_path):
    TwoLayerNet(3, 2, 2, seed=0).save(tmp_path / "net.npz")
    np.random.seed(5)
    TwoLayerNet.load(tmp_path / "net.npz")
    after = np.random.random()
    np.random.seed(5)
    assert after == np.random.random()


@pytest.mark.parametrize("damage", ["empty", "truncated", "text", "directory", "nan dropout", "pickled", "2 dropouts"])
def test_load_refuses_unreadable_files_naming_them(tmp_path, damage):
    good = tmp_path / "good.npz"
    TwoLayerNet(3, 2, 2, seed=0, dropout=0.5).save(good)
    path = tmp_path / "bad.npz"
    if damage == "empty":
        path.write_bytes(b"")
    elif damage == "truncated":
        path.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    elif damage == "text":
        path.write_text("W1,b1\n1,2\n")
    elif damage == "directory":
        path.mkdir()
    else:
        dropout = {"nan dropout": np.nan, "pickled": np.array([{}], dtype=object), "2 dropouts": np.zeros(2)}[damage]
        np.savez(path, W1=np.ones((3, 2)), b1=np.zeros(2), W2=np.ones((2, 2)), b2=np.zeros(2), dropout=dropout)
    with pytest.raises(ValueError) as e:
        TwoLayerNet.load(path)
    assert str(path) in str(e.value)


def test_save_onto_a_directory_names_the_target(tmp_path):
    target = tmp_path / "net.npz"
    target.mkdir()
    with pytest.raises(IsADirectoryError) as e:
        TwoLayerNet(3, 2, 2, seed=0).save(target)
    assert str(target) in str(e.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["net.npz"]          # no temp file left behind


def test_sizes_dtype_and_init_scale():
    net = TwoLayerNet(300, 200, 3, std=0.5, seed=0)
    assert net.sizes == (300, 200, 3) and net.dtype == np.float64
    assert net.params["W1"].shape == (300, 200) and net.params["W2"].shape == (200, 3)
    assert net.params["b1"].shape == (200,) and net.params["b2"].shape == (3,)
    assert abs(net.params["W1"].std() - 0.5) < 0.01
    assert TwoLayerNet(3, 2, 2).params["W1"].std() < 1e-3          # default std 1e-4
    np.random.seed(0)
    a = TwoLayerNet(3, 2, 2, std=1.0)
    np.random.seed(0)
    np.testing.assert_array_equal(a.params["W1"], np.random.randn(3, 2))
    np.testing.assert_array_equal(a.params["W2"], np.random.randn(2, 2))
    g = np.random.default_rng(4)
    b = TwoLayerNet(3, 2, 2, std=2.0, seed=4)
    np.testing.assert_array_equal(b.params["W1"], 2.0 * g.standard_normal((3, 2)))
    np.testing.assert_array_equal(b.params["W2"], 2.0 * g.standard_normal((2, 2)))
    assert TwoLayerNet(3, 2, 2, seed=0).dropout == 0.0


def test_scores_and_probabilities_by_hand():
    net = TwoLayerNet(2, 2, 2, seed=0)
    net.params.update(W1=np.array([[1.0, -1.0], [2.0, 0.5]]), b1=np.array([0.5, -3.0]),
                      W2=np.array([[1.0, 0.0], [0.0, 1.0]]), b2=np.array([0.25, -0.25]))
    X = np.array([[1.0, 1.0], [-1.0, 0.0]])
    # z2 = [[3.5, -3.5], [-0.5, -2]] -> relu [[3.5, 0], [0, 0]]; z3 = [[3.75, -0.25], [0.25, -0.25]]
    np.testing.assert_allclose(net.scores(X), [[3.75, -0.25], [0.25, -0.25]], rtol=0, atol=1e-15)
    np.testing.assert_array_equal(net.predict(X), [0, 0])
    p = net.loss(X)
    np.testing.assert_allclose(p[:, 0], [1 / (1 + np.exp(-4.0)), 1 / (1 + np.exp(-0.5))], rtol=1e-14)
    # integer inputs are cast to the model's dtype
    np.testing.assert_allclose(net.scores(X.astype(np.float32)), net.scores(X), rtol=1e-7)


def test_dropout_mask_by_hand():
    # with p = 0.5 every hidden unit is kept (x2) or dropped; the loss with the mask equals the loss
    # of a net whose W2 rows are scaled by the mask
    rng = np.random.default_rng(0)
    net = TwoLayerNet(3, 8, 2, std=1.0, seed=1, dropout=0.5)
    X, y = rng.standard_normal((1, 3)), np.array([1])
    loss, _ = net.loss(X, y, rng=np.random.default_rng(7))
    mask = (np.random.default_rng(7).random((1, 8), dtype=np.float32) < 0.5) / 0.5
    scaled = TwoLayerNet(3, 8, 2, seed=0)
    scaled.params = {**net.params, "W2": net.params["W2"] * mask.reshape(8, 1)}
    assert 0 < mask.sum() < 16
    assert loss == pytest.approx(scaled.loss(X, y)[0], rel=1e-12)
    # dropout=0 ignores the rng; predictions never use dropout
    plain = TwoLayerNet(3, 8, 2, std=1.0, seed=1)
    assert plain.loss(X, y, rng=np.random.default_rng(7))[0] == plain.loss(X, y)[0]
    np.testing.assert_array_equal(net.loss(X), plain.loss(X))


def test_reg_adds_twice_lambda_w_to_the_weight_gradients_only():
    rng = np.random.default_rng(1)
    net = TwoLayerNet(4, 5, 3, std=0.5, seed=2)
    X, y = rng.standard_normal((6, 4)), rng.integers(0, 3, 6)
    l0, g0 = net.loss(X, y)
    l1, g1 = net.loss(X, y, reg=0.3)
    W1, W2 = net.params["W1"], net.params["W2"]
    assert l1 - l0 == pytest.approx(0.3 * (np.sum(W1 ** 2) + np.sum(W2 ** 2)), rel=1e-12)
    np.testing.assert_allclose(g1["W1"] - g0["W1"], 0.6 * W1, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(g1["W2"] - g0["W2"], 0.6 * W2, rtol=1e-12, atol=1e-15)
    np.testing.assert_array_equal(g1["b1"], g0["b1"])
    np.testing.assert_array_equal(g1["b2"], g0["b2"])


def test_train_method_delegates_to_the_solver(toy_data):
    X, y = toy_data
    a, b = TwoLayerNet(4, 10, 3, std=0.1, seed=0), TwoLayerNet(4, 10, 3, std=0.1, seed=0)
    from aml import train
    h1 = a.train(X, y, X, y, learning_rate=0.1, num_iters=5, seed=1)
    h2 = train(b, X, y, X, y, learning_rate=0.1, num_iters=5, seed=1)
    np.testing.assert_array_equal(h1["loss_history"], h2["loss_history"])
    assert all(np.array_equal(a.params[k], b.params[k]) for k in a.params)
