"""aml.mlp's model, config, data, ZCA inputs and checkpoints (training: test_mlp_train.py)."""
import dataclasses

import numpy as np
import pytest
import torch

import aml.mlp.data as md
from aml.data import SealedTest
from aml.mlp import (
    MLPConfig,
    MultiLayerPerceptron,
    TensorSplits,
    build_model,
    evaluate,
    fit,
    hidden_layers_for_depth,
    layer_statistics,
    load_checkpoint,
    pick_device,
    save_checkpoint,
    to_tensor_images,
    zca_splits,
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


def test_layer_statistics_match_the_forward_pass_written_out():
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
    assert all(m.weight.grad is None for m in model.linears) and model.training   # gradients cleared
    assert layer_statistics(model, x, y)["decay_std"] == [0.0, 0.0, 0.0]


@pytest.mark.parametrize("device,cpuinfo,fast", [
    ("cuda", "", True), ("cpu", "flags : fpu avx2 avx512f", False), ("cpu", "flags : fpu avx512_bf16", True),
    ("cpu", "flags\t: amx_bf16 amx_tile", True), ("mps", "avx512_bf16", False), ("cpu", "avx512_bf16x", False)])
def test_fast_bfloat16_on_cuda_and_on_cpus_with_bfloat16_instructions(device, cpuinfo, fast):
    assert md.fast_bfloat16(device, cpuinfo) is fast


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


def test_handout_init_is_the_default_of_the_class_and_the_config():
    torch.manual_seed(0)
    assert abs(MultiLayerPerceptron(3072, [500], 10).linears[0].weight.std().item() - 1e-3) < 5e-5
    assert MLPConfig().init == "handout" and MLPConfig().schedule == "step" and MLPConfig().depth == 2


@pytest.mark.parametrize("kwargs,words", [
    (dict(hidden_layers=(0,)), "'hidden_layers\\[\\]'"),
    (dict(num_epochs=0), "'num_epochs'"),
    (dict(batch_size=0), "'batch_size'"),
    (dict(lr=-1.0), "'lr'"),
    (dict(weight_decay=-1.0), "'weight_decay'"),
    (dict(dropout=1.0), "'dropout'"),
    (dict(label_smoothing=1.0), "'label_smoothing'"),
    (dict(crop_padding=-1), "'crop_padding'"),
    (dict(optimizer="rmsprop"), "'optimizer'"),
    (dict(schedule="cosine"), "'schedule'"),
    (dict(init="xavier"), "'init'"),
    (dict(normalize="standard"), "'normalize'"),
])
def test_config_rejects_bad_values(kwargs, words):
    with pytest.raises(ValueError, match=words):
        MLPConfig(**kwargs)


@pytest.mark.parametrize("kwargs,words", [(dict(flip=1), "'flip'"), (dict(batch_norm="no"), "'batch_norm'"),
                                          (dict(seed=-1), "'seed'"), (dict(hidden_layers=50), "'hidden_layers'")])
def test_config_rejects_bad_types(kwargs, words):
    with pytest.raises((TypeError, ValueError), match=words):
        MLPConfig(**kwargs)


def test_config_round_trips_and_rejects_an_unknown_field():
    cfg = MLPConfig(hidden_layers=[8, 4], batch_norm=True, seed=3)
    assert cfg.hidden_layers == (8, 4) and cfg.depth == 3
    assert cfg.to_dict()["hidden_layers"] == [8, 4] and MLPConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(TypeError, match="'hiden_layers'"):
        MLPConfig.from_dict({"hiden_layers": [50]})
    with pytest.raises(TypeError, match="'hidden_layers'.*sequence"):
        MultiLayerPerceptron(3072, 50, 10)
    with pytest.raises(ValueError, match="'depth'.*at least 2"):
        hidden_layers_for_depth(1, 50)


def test_to_tensor_images_is_the_handouts_normalisation():
    imgs = np.zeros((2, 32, 32, 3), dtype=np.uint8)
    imgs[1], imgs[0, 0, 0] = 255, (51, 102, 204)
    t = to_tensor_images(imgs)
    assert t.shape == (2, 3, 32, 32) and t.dtype == torch.float32 and t.min() == -1 and t.max() == 1
    np.testing.assert_allclose(t[0, :, 0, 0].numpy(), [51 / 127.5 - 1, 102 / 127.5 - 1, 204 / 127.5 - 1], rtol=1e-6)
    np.testing.assert_allclose(to_tensor_images(imgs / 255.0).numpy(), t.numpy(), atol=1e-6)    # floats in [0, 1]
    with pytest.raises(ValueError, match="'images'.*floats in \\[0, 1\\]"):
        to_tensor_images(imgs * 1.0)
    with pytest.raises(ValueError, match="'images'.*\\(N, H, W, 3\\)"):
        to_tensor_images(imgs[..., 0])


def test_subset_keeps_the_first_images_and_names_a_wrong_size():
    data = _tiny_splits(n=10)
    assert torch.equal(data.subset(4).X_train, data.X_train[:4]) and data.subset(4).X_val is data.X_val
    for bad in (0, 11):
        with pytest.raises(ValueError, match="'num_train'"):
            data.subset(bad)


def test_load_tensor_splits_carves_the_selection_split_out_of_training(monkeypatch):
    import aml.data
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
        return ((X[:, 0, 0, 0] + 1) * 127.5).round().long().tolist()
    assert ids(data.X_sel) == [1, 4, 7] and data.y_sel.tolist() == [1, 4, 7] and data.y_sel.dtype == torch.int64
    assert ids(data.X_train) == [i for i in range(20) if i not in (1, 4, 7)]
    assert ids(data.X_val) == list(range(20, 30)) and data.normalize == "handout"
    assert ids(data.test._open()[0]) == list(range(5))
    plain = md.load_tensor_splits(device="cpu", num_training=20, num_validation=10)
    assert plain.X_sel.shape == (0, 3, 32, 32) and len(plain.X_train) == 20
    with pytest.raises(ValueError, match="'num_selection'.*num_training"):
        md.load_tensor_splits(device="cpu", num_training=20, num_validation=10, num_selection=20)


# --- ZCA inputs ------------------------------------------------------------------------------------------------

def _images(n, seed=0):
    """Correlated images (N, 3, 4, 4): a random mixing of independent pixels, plus an offset."""
    g = torch.Generator().manual_seed(seed)
    mix = torch.randn(48, 48, generator=g, dtype=torch.float64) / 7
    return (torch.randn(n, 48, generator=g, dtype=torch.float64) @ mix + 3.0).float().reshape(n, 3, 4, 4)


def _zca_data():
    X, y = _images(1200), torch.arange(1200) % 10
    return TensorSplits(X[:1000], y[:1000], X[1000:1100], y[1000:1100], SealedTest(X[1100:], y[1100:].numpy()),
                        X_sel=X[1100:], y_sel=y[1100:])


def test_zca_splits_whitens_the_training_images_and_their_mirrors():
    data = _zca_data()
    mirrored = torch.cat([data.X_train, data.X_train.flip(-1)]).flatten(1).double()
    lam, U = torch.linalg.eigh(torch.cov(mirrored.T))
    out = zca_splits(data, eps=0.1)
    assert out.normalize == "zca" and data.normalize == "handout" and out.X_train.shape == (1000, 3, 4, 4)
    whitened = torch.cat([out.X_train, out.X_train.flip(-1)]).flatten(1).double()
    # eps is relative to the mean variance: each direction ends with variance lambda / (lambda + 0.1 mean(lambda))
    torch.testing.assert_close(torch.diag(U.T @ torch.cov(whitened.T) @ U), lam / (lam + 0.1 * lam.mean()),
                               atol=1e-4, rtol=1e-3)
    assert abs(float(whitened.mean())) < 1e-4
    with pytest.raises(ValueError, match="'eps'.*Got 0"):
        zca_splits(data, eps=0)


def test_zca_splits_applies_the_training_fit_to_every_split_and_commutes_with_the_flip():
    data = _zca_data()
    out = zca_splits(data)
    flipped = zca_splits(dataclasses.replace(data, X_val=data.X_val.flip(-1)))
    torch.testing.assert_close(flipped.X_train, out.X_train)                    # fitted on X_train alone
    torch.testing.assert_close(flipped.X_val, out.X_val.flip(-1), atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(out.test._open()[0], out.X_sel)                  # the sealed test, whitened alike
    assert (out.test._open()[1] == data.test._open()[1]).all()
    assert zca_splits(dataclasses.replace(data, X_sel=None, y_sel=None)).X_sel is None
    with pytest.raises(ValueError, match="normalised as 'zca'"):
        fit(MLPConfig(hidden_layers=(8,), num_epochs=1), out)
    _, history = fit(MLPConfig(hidden_layers=(8,), num_epochs=1, normalize="zca", batch_size=50), out)
    assert len(history["val_acc_history"]) == 1


# --- checkpoints -----------------------------------------------------------------------------------------------

def test_checkpoint_round_trip(tmp_path):
    cfg = MLPConfig(hidden_layers=(16,), init="kaiming", batch_norm=True)
    model = build_model(cfg, 12, 3)
    path = save_checkpoint(tmp_path / "best.pt", model, cfg)
    back, back_cfg = load_checkpoint(path, device="cpu")
    assert back_cfg == cfg and back.linears[0].in_features == 12 and back.linears[-1].out_features == 3
    for (k, v), (k2, v2) in zip(model.state_dict().items(), back.state_dict().items()):
        assert k == k2 and torch.equal(v, v2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.pt"]


@pytest.mark.parametrize("config_hidden,saved_hidden,words", [
    ((16,), (16, 16), 'Unexpected key.*"layers.5.weight"'),      # an extra layer
    ((16, 16), (16,), 'Missing key.*"layers.5.weight"'),         # a layer missing
    ((16,), (32,), r"size mismatch for layers.1.weight.*\[32, 12\].*\[16, 12\]"),
])
def test_load_checkpoint_refuses_layers_that_do_not_fit_the_config(tmp_path, config_hidden, saved_hidden, words):
    path = save_checkpoint(tmp_path / "odd.pt", MultiLayerPerceptron(12, saved_hidden, 3),
                           MLPConfig(hidden_layers=config_hidden))
    with pytest.raises(ValueError, match=f"checkpoint {path} does not fit the model of its config.*{words}"):
        load_checkpoint(path)


def _saved(tmp_path):
    cfg = MLPConfig(hidden_layers=(8,), init="kaiming", batch_norm=True)
    model = build_model(cfg, 12, 3)
    return model, cfg, save_checkpoint(tmp_path / "good.pt", model, cfg)


class _Payload:
    """Unpickling this would create a file: code that an untrusted checkpoint must never run."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return open, (str(self.marker), "w")


@pytest.mark.parametrize("damage,words", [
    ("nan weight", r"finite tensors.*\['layers.1.weight'\]"),
    ("inf bias", r"finite tensors.*\['layers.4.bias'\]"),
    ("negative running_var", r"variances >= 0.*\['layers.2.running_var'\]"),
    ("empty", "cannot be read"),
    ("truncated", "cannot be read"),
    ("no config", "cannot be read.*KeyError"),
    ("impossible config", "cannot be read.*'lr'"),
    ("code", "cannot be read.*Weights only load failed\\)"),
])
def test_load_checkpoint_refuses_damaged_files_naming_them(tmp_path, damage, words):
    _, _, good = _saved(tmp_path)
    path = tmp_path / "bad.pt"
    raw = good.read_bytes()
    blob = torch.load(good, weights_only=True)
    if damage in ("empty", "truncated"):
        path.write_bytes(b"" if damage == "empty" else raw[:len(raw) // 2])
    elif damage == "code":
        torch.save({**blob, "state_dict": _Payload(tmp_path / "ran")}, path)
    elif damage in ("no config", "impossible config"):
        torch.save({**blob, "config": {**blob["config"], "lr": -1.0}} if damage[0] == "i" else
                   {k: v for k, v in blob.items() if k != "config"}, path)
    else:
        key, value = {"nan weight": ("layers.1.weight", float("nan")), "inf bias": ("layers.4.bias", float("inf")),
                      "negative running_var": ("layers.2.running_var", -0.5)}[damage]
        blob["state_dict"][key].view(-1)[0] = value
        torch.save(blob, path)
    with pytest.raises(ValueError, match=words) as e:
        load_checkpoint(path)
    assert f"checkpoint {path} " in str(e.value) and "\n" not in str(e.value)
    assert not (tmp_path / "ran").exists()


def test_save_checkpoint_onto_a_directory_names_the_target(tmp_path):
    model, cfg, _ = _saved(tmp_path)
    target = tmp_path / "best.pt"
    target.mkdir()
    with pytest.raises(IsADirectoryError, match=f"directory.*'{target}'"):
        save_checkpoint(target, model, cfg)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.pt", "good.pt"]      # no temp file left
