import numpy as np
import pytest
import torch

from aml.data import SealedTest
from aml.mlp import (
    MLPConfig,
    MultiLayerPerceptron,
    TensorSplits,
    augment_batch,
    build_model,
    evaluate,
    fit,
    hidden_layers_for_depth,
    load_checkpoint,
    pick_device,
    save_checkpoint,
    to_tensor_images,
)


@pytest.mark.parametrize("depth", [2, 3, 4, 5])
def test_depth_counts_linear_layers_and_parameters(depth):
    hidden = hidden_layers_for_depth(depth, 50)
    model = MultiLayerPerceptron(3072, hidden, 10)
    assert model.depth == depth == sum(isinstance(m, torch.nn.Linear) for m in model.modules())
    expected = (3072 * 50 + 50) + (depth - 2) * (50 * 50 + 50) + (50 * 10 + 10)
    assert sum(p.numel() for p in model.parameters()) == expected


def test_batch_norm_drops_hidden_bias_and_counts():
    model = MultiLayerPerceptron(12, [8, 6], 3, batch_norm=True, dropout=0.5)
    # 12*8 + (8+8 BN) + 8*6 + (6+6) + 6*3 + 3
    assert sum(p.numel() for p in model.parameters()) == 96 + 16 + 48 + 12 + 18 + 3
    assert sum(isinstance(m, torch.nn.Dropout) for m in model.modules()) == 2


def test_forward_returns_logits_not_probabilities():
    torch.manual_seed(0)
    model = MultiLayerPerceptron(3072, [50], 10, init="kaiming")
    out = model(torch.randn(4, 3, 32, 32))
    assert out.shape == (4, 10)
    assert (out < 0).any() and not torch.allclose(out.sum(1), torch.ones(4))


def test_handout_init_statistics():
    model = build_model(MLPConfig(hidden_layers=(500, 500), init="handout"))
    for lin in model.linears:
        assert abs(lin.weight.std().item() - 1e-3) < 5e-5
        assert abs(lin.weight.mean().item()) < 5e-5
        assert torch.all(lin.bias == 0)


def test_kaiming_init_keeps_activation_scale():
    model = build_model(MLPConfig(hidden_layers=(512,) * 4, init="kaiming"))
    x = torch.randn(1000, 3072)
    h = x
    for m in model.layers[:-1]:
        h = m(h)
    # He init keeps E[h^2] about constant through ReLU layers; the handout's init shrinks it ~1e3x a layer
    assert 0.3 < h.pow(2).mean().item() / x.pow(2).mean().item() < 3


def test_configured_adam_epoch_lowers_the_loss_on_a_fixed_batch():
    # aml's optimiser and epoch, not torch's Adam alone: the handout's config (Adam, lr 1e-3, weight
    # decay 1e-3, StepLR) trained for 20 epochs on one batch of 32 must fit it better than at the start
    from aml.mlp import make_optimizer, train_one_epoch
    torch.manual_seed(0)
    model = MultiLayerPerceptron(3072, [50], 10, init="kaiming")
    x, y = torch.randn(32, 3, 32, 32), torch.randint(0, 10, (32,))
    before = torch.nn.functional.cross_entropy(model(x), y).item()
    opt, sched = make_optimizer(model, MLPConfig(), steps_per_epoch=1)
    assert isinstance(opt, torch.optim.Adam) and opt.param_groups[0]["weight_decay"] == 1e-3
    g = torch.Generator().manual_seed(0)
    losses = [train_one_epoch(model, x, y, opt, sched, batch_size=32, generator=g)[0].item() for _ in range(20)]
    assert losses[0] == pytest.approx(before, rel=1e-5)        # the first step's loss is the starting loss
    after = torch.nn.functional.cross_entropy(model(x), y).item()
    assert after < 0.5 * before and losses[-1] < losses[0]
    assert opt.param_groups[0]["lr"] == pytest.approx(1e-3 * 0.95 ** 20)    # StepLR: x0.95 per epoch


def test_layer_statistics_match_hooks_computed_by_hand():
    from aml.mlp import layer_statistics
    torch.manual_seed(0)
    model = MultiLayerPerceptron(3072, [8, 6], 3, init="kaiming")
    x, y = torch.randn(16, 3, 32, 32), torch.randint(0, 3, (16,))
    stats = layer_statistics(model, x, y, weight_decay=0.01)
    # the same numbers written out: each Linear's output, and dLoss/dW of the data loss
    h0 = model.linears[0](x.flatten(1))
    h1 = model.linears[1](torch.relu(h0))
    h2 = model.linears[2](torch.relu(h1))
    grads = torch.autograd.grad(torch.nn.functional.cross_entropy(h2, y), [m.weight for m in model.linears])
    np.testing.assert_allclose(stats["activation_std"], [h.std().item() for h in (h0, h1, h2)], rtol=1e-5)
    np.testing.assert_allclose(stats["grad_std"], [g.std().item() for g in grads], rtol=1e-5)
    np.testing.assert_allclose(stats["decay_std"], [0.01 * m.weight.std().item() for m in model.linears], rtol=1e-6)
    assert all(m.weight.grad is None for m in model.linears) and model.training   # gradients cleared, hooks gone
    assert not model.linears[0]._forward_hooks
    assert layer_statistics(model, x, y)["decay_std"] == [0.0, 0.0, 0.0]


def test_pick_device_falls_back_to_cpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert pick_device() == torch.device("cpu")
    assert pick_device("cpu") == torch.device("cpu")


def _tiny_splits(n=400, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 10, (n + 200,), generator=g)
    # class-dependent mean so a model can learn something
    X = torch.randn(n + 200, 3, 32, 32, generator=g) * 0.5 + (y.float() / 5 - 1).view(-1, 1, 1, 1)
    return TensorSplits(X[:n], y[:n], X[n:n + 100], y[n:n + 100], SealedTest(X[n + 100:], y[n + 100:].numpy()))


def test_seeded_fit_repeats_on_cpu_and_learns():
    data = _tiny_splits()
    cfg = MLPConfig(hidden_layers=(32, 32), num_epochs=4, batch_size=50, lr=1e-2, init="kaiming", batch_norm=True,
                    dropout=0.1, flip=True, crop_padding=2, schedule="onecycle", optimizer="adamw", seed=3)
    (m1, h1), (m2, h2) = fit(cfg, data), fit(cfg, data)
    np.testing.assert_array_equal(h1["loss_history"], h2["loss_history"])
    np.testing.assert_array_equal(h1["val_acc_history"], h2["val_acc_history"])
    assert len(h1["val_acc_history"]) == 4 and h1["val_acc_history"][-1] > 0.3  # chance is 0.1
    assert h1["loss_history"].shape == (4 * 8,) and np.isfinite(h1["loss_history"]).all()
    assert evaluate(m1, data.X_train, data.y_train) == evaluate(m2, data.X_train, data.y_train)


def test_checkpoint_round_trip_and_shape_mismatch(tmp_path):
    cfg = MLPConfig(hidden_layers=(16,), init="kaiming", batch_norm=True)
    model = build_model(cfg, 3072, 10)
    path = save_checkpoint(tmp_path / "best.pt", model, cfg, val_acc=0.5)
    back, back_cfg = load_checkpoint(path)
    assert back_cfg == cfg
    for (k, v), (k2, v2) in zip(model.state_dict().items(), back.state_dict().items()):
        assert k == k2 and torch.equal(v, v2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.pt"]
    with pytest.raises(ValueError, match=r"\(16, 3072\).*\(32, 3072\)"):
        load_checkpoint(path, MultiLayerPerceptron(3072, [32], 10, batch_norm=True))


def test_augment_batch_flips_and_crops():
    x = torch.arange(2 * 3 * 32 * 32, dtype=torch.float32).view(2, 3, 32, 32)
    g = torch.Generator().manual_seed(0)
    out = augment_batch(x, g, flip=True, crop_padding=0)
    for i in range(2):
        assert torch.equal(out[i], x[i]) or torch.equal(out[i], x[i].flip(2))
    # flips: over 64 images, both outcomes occur, and each image is either itself or its mirror
    xs = torch.randn(64, 3, 32, 32)
    out = augment_batch(xs, torch.Generator().manual_seed(1), flip=True)
    flipped = torch.tensor([torch.equal(out[i], xs[i].flip(2)) for i in range(64)])
    kept = torch.tensor([torch.equal(out[i], xs[i]) for i in range(64)])
    assert bool((flipped | kept).all()) and 10 < int(flipped.sum()) < 54


def test_augment_batch_crops_are_shifted_windows_of_the_padded_image():
    p, N = 4, 16
    x = torch.rand(N, 3, 32, 32) + 1.0                    # no zeros, so padding shows
    out = augment_batch(x, torch.Generator().manual_seed(3), flip=False, crop_padding=p)
    assert out.shape == x.shape
    padded = torch.nn.functional.pad(x, (p, p, p, p))
    # the offsets the generator draws: dy for every image, then dx
    g = torch.Generator().manual_seed(3)
    dy = torch.randint(0, 2 * p + 1, (N,), generator=g)
    dx = torch.randint(0, 2 * p + 1, (N,), generator=g)
    for i in range(N):
        window = padded[i, :, dy[i]:dy[i] + 32, dx[i]:dx[i] + 32]
        assert torch.equal(out[i], window), i
    shifted = (dy != p) | (dx != p)
    assert int(shifted.sum()) >= N // 2                     # crops really move the content
    assert any(not torch.equal(out[i], x[i]) for i in range(N))
    # the window can reach every offset 0..2p: both extremes occur over many images
    big = augment_batch(torch.ones(400, 1, 32, 32), torch.Generator().manual_seed(0), flip=False, crop_padding=p)
    zero_rows = (big == 0).all(dim=3).sum(dim=2).view(-1)   # rows of padding at top or bottom
    assert int(zero_rows.max()) == p


def test_to_tensor_images_ranges():
    imgs = np.zeros((2, 32, 32, 3), dtype=np.uint8)
    imgs[1] = 255
    t = to_tensor_images(imgs, "handout")
    assert t.shape == (2, 3, 32, 32) and t.min() == -1 and t.max() == 1


@pytest.mark.parametrize("kwargs,words", [
    (dict(hidden_layers=(0,)), "'hidden_layers\\[\\]'"),
    (dict(num_epochs=0), "'num_epochs'"),
    (dict(lr=-1.0), "'lr'"),
    (dict(dropout=1.0), "'dropout'"),
    (dict(optimizer="rmsprop"), "'optimizer'"),
    (dict(init="xavier"), "'init'"),
])
def test_config_rejects_bad_values(kwargs, words):
    with pytest.raises(ValueError, match=words):
        MLPConfig(**kwargs)


def test_config_rejects_unknown_field_and_int_hidden_layers():
    with pytest.raises(ValueError, match="Unknown MLPConfig field.*'hiden_layers'"):
        MLPConfig.from_dict({"hiden_layers": [50]})
    with pytest.raises(TypeError, match="'hidden_layers'.*sequence"):
        MultiLayerPerceptron(3072, 50, 10)


def test_fit_rejects_data_normalised_differently():
    with pytest.raises(ValueError, match="normalised as 'standard'.*'handout'"):
        fit(MLPConfig(normalize="standard", num_epochs=1), _tiny_splits())


def _saved(tmp_path):
    cfg = MLPConfig(hidden_layers=(8,), init="kaiming", batch_norm=True)
    model = build_model(cfg, 12, 3)
    return model, cfg, save_checkpoint(tmp_path / "good.pt", model, cfg)


@pytest.mark.parametrize("damage,words", [
    ("nan weight", "finite values. Got NaN or inf in 'layers.1.weight'"),
    ("inf bias", "finite values. Got NaN or inf in 'layers.4.bias'"),
    ("negative running_var", "running variances >= 0. Got -0.5 in 'layers.2.running_var'"),
    ("empty", "cannot be read safely"),
    ("truncated", "cannot be read safely"),
])
def test_load_checkpoint_refuses_damaged_files_naming_them(tmp_path, damage, words):
    _, _, good = _saved(tmp_path)
    path = tmp_path / "bad.pt"
    if damage in ("empty", "truncated"):
        raw = good.read_bytes()
        path.write_bytes(b"" if damage == "empty" else raw[:len(raw) // 2])
    else:
        blob = torch.load(good, weights_only=True)
        key, value = {"nan weight": ("layers.1.weight", float("nan")), "inf bias": ("layers.4.bias", float("inf")),
                      "negative running_var": ("layers.2.running_var", -0.5)}[damage]
        blob["state_dict"][key].view(-1)[0] = value
        torch.save(blob, path)
    with pytest.raises(ValueError, match=words) as e:
        load_checkpoint(path)
    assert str(path) in str(e.value)


def test_save_checkpoint_onto_a_directory_names_the_target(tmp_path):
    model, cfg, _ = _saved(tmp_path)
    target = tmp_path / "best.pt"
    target.mkdir()
    with pytest.raises(IsADirectoryError, match=f"directory {target}"):
        save_checkpoint(target, model, cfg)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.pt", "good.pt"]      # no temp file left


def test_load_tensor_splits_carves_the_selection_split_out_of_training(monkeypatch):
    import aml.data
    import aml.mlp.data as md
    X_all = np.zeros((40, 32, 32, 3), dtype=np.uint8)
    X_all[:, 0, 0, 0] = np.arange(40)                     # an id per image
    y_all = np.arange(40) % 10
    monkeypatch.setattr(md, "load_cifar10_images",
                        lambda root, download: (X_all, y_all, SealedTest(X_all[:5], y_all[:5])))
    calls = []

    def selection_indices(labels, num_selection, *, seed=0):
        calls.append((labels.copy(), num_selection, seed))
        return np.array([1, 4, 7])[:num_selection]
    monkeypatch.setattr(aml.data, "selection_indices", selection_indices, raising=False)
    data = md.load_tensor_splits(device="cpu", num_training=20, num_validation=10, num_selection=3)
    labels, n, seed = calls[0]
    np.testing.assert_array_equal(labels, y_all[:20])    # drawn from the training images, stratified by label
    assert (n, seed) == (3, 0)

    def ids(X):
        return ((X[:, 0, 0, 0] * 0.5 + 0.5) * 255).round().long().tolist()
    assert ids(data.X_sel) == [1, 4, 7] and data.y_sel.tolist() == [1, 4, 7] and data.has_selection
    assert ids(data.X_train) == [i for i in range(20) if i not in (1, 4, 7)]
    assert ids(data.X_val) == list(range(20, 30))
    plain = md.load_tensor_splits(device="cpu", num_training=20, num_validation=10)
    assert plain.X_sel.shape == (0, 3, 32, 32) and not plain.has_selection and len(plain.X_train) == 20
    with pytest.raises(ValueError, match="'num_selection'.*num_training"):
        md.load_tensor_splits(device="cpu", num_training=20, num_validation=10, num_selection=20)
