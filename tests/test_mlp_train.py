"""aml.mlp.train: the optimiser and its schedules, one epoch against a hand-written SGD loop, the
evaluation helpers against direct computation, and fit's history and divergence guard (with the
epoch scripted, so the numbers are known)."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import aml.mlp.train as mt
from aml.mlp import (
    MLPConfig,
    MultiLayerPerceptron,
    TensorSplits,
    build_model,
    evaluate,
    evaluate_loss_and_accuracy,
    fit,
    make_optimizer,
    predict,
    train_one_epoch,
)
from aml.training import TrainingDiverged


def _model(hidden=(4,), seed=0, **kw):
    torch.manual_seed(seed)
    return MultiLayerPerceptron(3 * 32 * 32, list(hidden), 3, init="kaiming", **kw)


def _data(n, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, 32, 32, generator=g), torch.randint(0, 3, (n,), generator=g)


def _lrs(opt, sched, steps):
    out = []
    for _ in range(steps):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


@pytest.mark.parametrize("name,cls", [("adam", torch.optim.Adam), ("adamw", torch.optim.AdamW),
                                      ("sgd", torch.optim.SGD)])
def test_make_optimizer_builds_the_configured_optimiser(name, cls):
    cfg = MLPConfig(optimizer=name, lr=0.03, weight_decay=0.002, momentum=0.5 if name == "sgd" else 0.0,
                    nesterov=name == "sgd")
    model = _model()
    opt, _ = make_optimizer(model, cfg, steps_per_epoch=3)
    assert type(opt) is cls
    group = opt.param_groups[0]
    assert group["lr"] == 0.03 and group["weight_decay"] == 0.002
    assert [id(p) for p in group["params"]] == [id(p) for p in model.parameters()]
    if name == "sgd":
        assert group["momentum"] == 0.5 and group["nesterov"] is True
    else:
        assert group["fused"] is True                     # one kernel per step on CPU and CUDA


def test_step_schedule_decays_by_lr_decay_at_each_epoch_boundary():
    opt, sched = make_optimizer(_model(), MLPConfig(lr=0.1, lr_decay=0.5, num_epochs=3), steps_per_epoch=4)
    assert isinstance(sched, torch.optim.lr_scheduler.StepLR)
    np.testing.assert_allclose(_lrs(opt, sched, 12), [0.1] * 4 + [0.05] * 4 + [0.025] * 4, rtol=1e-12)


def test_cosine_schedule_anneals_to_zero_over_the_run():
    opt, sched = make_optimizer(_model(), MLPConfig(lr=0.1, schedule="cosine", num_epochs=2), steps_per_epoch=5)
    lrs = _lrs(opt, sched, 10) + [opt.param_groups[0]["lr"]]
    assert lrs[0] == pytest.approx(0.1) and lrs[5] == pytest.approx(0.05, rel=1e-9)
    assert lrs[9] == pytest.approx(0.05 * (1 + math.cos(math.pi * 9 / 10)), rel=1e-9)
    assert lrs[10] == pytest.approx(0.0, abs=1e-12)


def test_onecycle_peaks_at_lr_after_a_quarter_of_the_steps():
    opt, sched = make_optimizer(_model(), MLPConfig(lr=0.4, schedule="onecycle", num_epochs=4), steps_per_epoch=10)
    lrs = _lrs(opt, sched, 40)
    assert max(lrs) == pytest.approx(0.4, rel=1e-9)
    assert int(np.argmax(lrs)) == 9                         # 0.25 * 40 steps, counted from 0
    assert lrs[0] == pytest.approx(0.4 / 25, rel=1e-9)      # OneCycleLR starts at max_lr / div_factor
    assert lrs[-1] < 1e-4


def _manual_epoch(model, X, y, lr, batch_size, seed, label_smoothing=0.0):
    """The same epoch written out: same permutation, plain SGD by hand (w <- w - lr grad)."""
    perm = torch.randperm(X.shape[0], generator=torch.Generator().manual_seed(seed))
    losses, correct, seen = [], 0, 0
    for start in range(0, X.shape[0] - batch_size + 1, batch_size) if X.shape[0] >= batch_size else [0]:
        idx = perm[start:start + batch_size]
        logits = model(X[idx])
        loss = F.cross_entropy(logits, y[idx], label_smoothing=label_smoothing)
        model.zero_grad()
        loss.backward()
        with torch.no_grad():
            for p in model.parameters():
                p -= lr * p.grad
        losses.append(loss.item())
        correct += (logits.argmax(1) == y[idx]).sum().item()
        seen += len(idx)
    return losses, correct / seen


@pytest.mark.parametrize("n,batch_size,steps", [(10, 4, 2), (12, 4, 3), (3, 4, 1)])
def test_train_one_epoch_matches_a_hand_written_sgd_epoch(n, batch_size, steps):
    X, y = _data(n)
    cfg = MLPConfig(optimizer="sgd", lr=0.5, weight_decay=0.0, lr_decay=1.0)
    model, ref = _model(), _model()
    opt, sched = make_optimizer(model, cfg, steps_per_epoch=steps)
    losses, acc = train_one_epoch(model, X, y, opt, sched, batch_size=batch_size,
                                  generator=torch.Generator().manual_seed(7), label_smoothing=0.1)
    ref_losses, ref_acc = _manual_epoch(ref, X, y, 0.5, batch_size, 7, label_smoothing=0.1)
    assert losses.shape == (steps,)
    np.testing.assert_allclose(losses.numpy(), ref_losses, rtol=1e-5)
    assert float(acc) == pytest.approx(ref_acc)
    for p, q in zip(model.parameters(), ref.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)
    assert model.training


def test_train_one_epoch_steps_the_scheduler_every_minibatch():
    X, y = _data(12)
    model = _model()
    opt, sched = make_optimizer(model, MLPConfig(optimizer="sgd", lr=0.1, schedule="cosine", num_epochs=1), 3)
    train_one_epoch(model, X, y, opt, sched, batch_size=4, generator=torch.Generator().manual_seed(0))
    assert sched.last_epoch == 3 and opt.param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-12)


def test_train_one_epoch_augments_only_when_asked(monkeypatch):
    calls = []

    def spy(x, generator, *, flip, crop_padding):
        calls.append((x.shape[0], flip, crop_padding))
        return x

    monkeypatch.setattr(mt, "augment_batch", spy)
    X, y = _data(8)
    model = _model()
    opt, sched = make_optimizer(model, MLPConfig(), 2)
    train_one_epoch(model, X, y, opt, sched, batch_size=4, generator=torch.Generator())
    assert calls == []
    train_one_epoch(model, X, y, opt, sched, batch_size=4, generator=torch.Generator(), flip=True)
    train_one_epoch(model, X, y, opt, sched, batch_size=4, generator=torch.Generator(), crop_padding=2)
    assert calls == [(4, True, 0)] * 2 + [(4, False, 2)] * 2


def test_evaluation_helpers_match_direct_computation():
    X, y = _data(7)
    model = _model(dropout=0.5)
    model.train()
    with torch.no_grad():
        model.eval()
        logits = model(X)
    loss, acc = evaluate_loss_and_accuracy(model, X, y, batch_size=3)     # chunks of 3, 3, 1
    assert loss == pytest.approx(F.cross_entropy(logits, y).item(), rel=1e-5)
    assert acc == pytest.approx((logits.argmax(1) == y).float().mean().item())
    assert evaluate_loss_and_accuracy(model, X, y) == pytest.approx((loss, acc), rel=1e-5)
    assert evaluate(model, X, y, batch_size=2) == acc
    torch.testing.assert_close(predict(model, X, batch_size=3), logits.argmax(1))
    assert predict(model, X).dtype == torch.long and not model.training
    assert predict(model, X[:0]).shape == (0,) and predict(model, X[:0]).dtype == torch.long
    assert all(math.isnan(v) for v in evaluate_loss_and_accuracy(model, X[:0], y[:0]))
    with pytest.raises(ValueError, match=r"'y'.*\(7,\)"):
        evaluate_loss_and_accuracy(model, X, y[:6])
    with pytest.raises(ValueError, match=r"'y'"):
        evaluate_loss_and_accuracy(model, X, y.view(7, 1))
    with pytest.raises(ValueError, match="'batch_size'"):
        predict(model, X, batch_size=0)
    with pytest.raises(ValueError, match="'batch_size'"):
        evaluate_loss_and_accuracy(model, X, y, batch_size=0)


def test_default_evaluation_batch_is_2000(monkeypatch):
    X, y = _data(2001)
    model = _model()
    sizes = []
    model.register_forward_hook(lambda m, i, o: sizes.append(o.shape[0]))
    evaluate_loss_and_accuracy(model, X, y)
    predict(model, X)
    assert sizes == [2000, 1, 2000, 1]


def test_build_model_is_seeded_by_the_config():
    cfg = MLPConfig(hidden_layers=(6, 5), init="kaiming", seed=4, activation="tanh", batch_norm=True, dropout=0.2)
    a, b = build_model(cfg, 12, 3), build_model(cfg, 12, 3)
    assert a.depth == 3 and a.linears[0].in_features == 12 and a.linears[-1].out_features == 3
    assert [m.out_features for m in a.linears] == [6, 5, 3]
    assert sum(isinstance(m, torch.nn.Tanh) for m in a.modules()) == 2
    assert sum(isinstance(m, torch.nn.BatchNorm1d) for m in a.modules()) == 2
    assert sum(isinstance(m, torch.nn.Dropout) and m.p == 0.2 for m in a.modules()) == 2
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.equal(p, q)
    state = torch.random.get_rng_state()
    build_model(cfg, 12, 3)
    assert torch.equal(state, torch.random.get_rng_state())          # the global generator is untouched
    c = build_model(MLPConfig(hidden_layers=(6, 5), init="kaiming", seed=5), 12, 3)
    assert not torch.equal(a.linears[0].weight, c.linears[0].weight)
    d = build_model(MLPConfig())
    assert d.linears[0].in_features == 3072 and d.linears[-1].out_features == 10


def _splits(n=12, seed=0, classes=3):
    X, y = _data(n + 6, seed)
    return TensorSplits(X[:n], y[:n], X[n:n + 6], y[n:n + 6], X[:0], y[:0], class_names=tuple("abc"[:classes]))


def _scripted_epochs(monkeypatch, script):
    """Replace train_one_epoch: epoch k fills every parameter with k + 1 and returns script[k]."""
    seen = []

    def fake(model, X, y, opt, sched, **kw):
        k = len(seen)
        seen.append(kw)
        with torch.no_grad():
            for p in model.parameters():
                p.fill_(float(k + 1))
            if script[k] == "inf-param":
                next(model.parameters()).view(-1)[0] = float("inf")
        losses = [1.0, 1.0] if script[k] == "inf-param" else script[k]
        return torch.tensor(losses), torch.tensor(0.5)

    monkeypatch.setattr(mt, "train_one_epoch", fake)
    return seen


@pytest.mark.parametrize("script,epoch,reason", [
    ([[1.0, 1.0], [1.0, float("nan")]], 2, "the training loss became NaN or inf"),
    ([[1.0, 1.0], [1.0, float("inf")]], 2, "the training loss became NaN or inf"),
    ([[1.0, 1.0], [50.0, 150.0]], 2, "the training loss grew to 150, more than 100 times its first value 1"),
    ([[2.0, 1.0], [1.0, 1.0], "inf-param"], 3, "a parameter became non-finite"),
])
def test_fit_divergence_resets_to_the_last_good_epoch(monkeypatch, script, epoch, reason):
    _scripted_epochs(monkeypatch, script)
    cfg = MLPConfig(hidden_layers=(4,), num_epochs=len(script), batch_size=6, lr=0.01, init="kaiming")
    models = []
    monkeypatch.setattr(mt, "build_model", lambda *a: models.append(build_model(*a)) or models[-1])
    with pytest.raises(TrainingDiverged, match=reason) as e:
        fit(cfg, _splits())
    err = e.value
    assert err.restored == "last finite" and err.iteration == (epoch - 1) * 2
    assert f"Training diverged in epoch {epoch}: {reason} (lr=0.01)." in str(err)
    for p in models[0].parameters():                     # the parameters at the end of the epoch before
        assert torch.all(p == float(epoch - 1))
    assert len(err.history["val_acc_history"]) == epoch - 1 and "train_seconds" in err.history
    np.testing.assert_array_equal(err.history["loss_history"][:2], script[0])


def test_fit_does_not_stop_at_exactly_100_times_the_first_loss(monkeypatch):
    _scripted_epochs(monkeypatch, [[1.0, 1.0], [100.0, 1.0]])
    _, h = fit(MLPConfig(hidden_layers=(4,), num_epochs=2, batch_size=6, init="kaiming"), _splits())
    np.testing.assert_array_equal(h["loss_history"], [1.0, 1.0, 100.0, 1.0])


def test_fit_history_and_callbacks():
    data = _splits(n=20)
    cfg = MLPConfig(hidden_layers=(4,), num_epochs=2, batch_size=8, lr=0.05, lr_decay=0.5, init="kaiming", seed=2)
    seen = []
    model, h = fit(cfg, data, num_train_eval=20, on_epoch=lambda e, hist: seen.append((e, len(hist["lr_history"]))))
    steps = 20 // 8
    assert h["loss_history"].shape == (2 * steps,) and np.isfinite(h["loss_history"]).all()
    assert h["iterations_per_epoch"] == steps
    assert h["epoch_history"] == [1.0, 2.0]
    assert h["lr_history"] == pytest.approx([0.05, 0.025])              # the rate each epoch ran with
    assert seen == [(1, 1), (2, 2)]
    assert h["device"] == "cpu" and h["train_seconds"] > 0
    assert len(h["running_train_acc_history"]) == 2
    # the last epoch's accuracies are those of the returned model
    loss, acc = evaluate_loss_and_accuracy(model, data.X_val, data.y_val)
    assert h["val_acc_history"][-1] == acc and h["val_loss_history"][-1] == pytest.approx(loss)
    assert h["train_acc_history"][-1] == evaluate(model, data.X_train, data.y_train)
    assert h["best_val_acc"] == max(h["val_acc_history"])
    assert h["best_epoch"] == h["val_acc_history"].index(max(h["val_acc_history"])) + 1
    assert model.linears[-1].out_features == 3 and model.linears[0].in_features == 3072


def test_fit_train_accuracy_uses_a_seeded_subset(monkeypatch):
    data = _splits(n=20)
    cfg = MLPConfig(hidden_layers=(4,), num_epochs=1, batch_size=8, init="kaiming", seed=6)
    model, h = fit(cfg, data, num_train_eval=5)
    sub = torch.randperm(20, generator=torch.Generator().manual_seed(6))[:5]
    assert h["train_acc_history"][-1] == evaluate(model, data.X_train[sub], data.y_train[sub])


def test_fit_best_epoch_is_the_first_maximum(monkeypatch):
    # per epoch: the validation accuracy, then the train-subset accuracy (evaluate calls the same helper)
    accs = iter([0.2, 0.9, 0.6, 0.9, 0.6, 0.9, 0.1, 0.9])
    monkeypatch.setattr(mt, "evaluate_loss_and_accuracy", lambda *a, **k: (1.0, next(accs)))
    _scripted_epochs(monkeypatch, [[1.0, 1.0]] * 4)
    _, h = fit(MLPConfig(hidden_layers=(4,), num_epochs=4, batch_size=6, init="kaiming"), _splits())
    assert h["val_acc_history"] == [0.2, 0.6, 0.6, 0.1] and h["train_acc_history"] == [0.9] * 4
    assert h["best_val_acc"] == 0.6 and h["best_epoch"] == 2


@pytest.mark.parametrize("field", ["X_train", "X_val"])
def test_fit_rejects_non_finite_inputs(field):
    data = _splits()
    getattr(data, field)[0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match=f"'{field}'.*finite"):
        fit(MLPConfig(hidden_layers=(4,), num_epochs=1), data)


def test_fit_passes_the_configs_augmentation_and_smoothing(monkeypatch):
    seen = _scripted_epochs(monkeypatch, [[1.0, 1.0]])
    cfg = MLPConfig(hidden_layers=(4,), num_epochs=1, batch_size=6, flip=True, crop_padding=3, label_smoothing=0.2)
    fit(cfg, _splits())
    (kw,) = seen
    assert (kw["batch_size"], kw["flip"], kw["crop_padding"], kw["label_smoothing"]) == (6, True, 3, 0.2)
    assert isinstance(kw["generator"], torch.Generator)


def test_fit_verbose_runs_the_same_code_path():
    data = _splits()
    cfg = MLPConfig(hidden_layers=(4,), num_epochs=1, batch_size=6, init="kaiming")
    (_, h1), (_, h2) = fit(cfg, data, verbose=True), fit(cfg, data)
    np.testing.assert_array_equal(h1["loss_history"], h2["loss_history"])


def test_fit_divergence_message_and_timing(monkeypatch):
    _scripted_epochs(monkeypatch, [[1.0, 1.0], [1.0, float("nan")]])
    cfg = MLPConfig(hidden_layers=(4,), num_epochs=2, batch_size=6, lr=0.01, init="kaiming")
    with pytest.raises(TrainingDiverged) as e:
        fit(cfg, _splits())
    assert str(e.value) == ("Training diverged in epoch 2: the training loss became NaN or inf (lr=0.01). Try a "
                            "smaller learning rate. The model was reset to its parameters at the end of the last "
                            "good epoch.")
    assert 0 <= e.value.history["train_seconds"] < 60


def test_fit_divergence_in_the_first_epoch_restores_the_initial_model(monkeypatch):
    _scripted_epochs(monkeypatch, [[1.0, float("inf")]])
    cfg = MLPConfig(hidden_layers=(4,), num_epochs=1, batch_size=6, init="kaiming", seed=3)
    models = []
    monkeypatch.setattr(mt, "build_model", lambda *a: models.append(build_model(*a)) or models[-1])
    with pytest.raises(TrainingDiverged) as e:
        fit(cfg, _splits())
    assert e.value.iteration == 0
    for p, q in zip(models[0].parameters(), build_model(cfg, 3072, 3).parameters()):
        assert torch.equal(p, q)


def test_fit_divergence_is_relative_to_the_first_loss_of_the_run(monkeypatch):
    # first loss 2: 150 is under 100 x 2 (no stop), though over 100 x the second loss or 100 / 2
    _scripted_epochs(monkeypatch, [[2.0, 1.0], [150.0, 1.0]])
    _, h = fit(MLPConfig(hidden_layers=(4,), num_epochs=2, batch_size=6, init="kaiming"), _splits())
    np.testing.assert_array_equal(h["loss_history"], [2.0, 1.0, 150.0, 1.0])
    assert h["running_train_acc_history"] == [0.5, 0.5]


def test_fit_seeds_the_epoch_generator_after_drawing_the_train_subset(monkeypatch):
    seen = _scripted_epochs(monkeypatch, [[1.0, 1.0]])
    fit(MLPConfig(hidden_layers=(4,), num_epochs=1, batch_size=6, seed=9), _splits())
    expected = torch.Generator().manual_seed(9)
    torch.randperm(12, generator=expected)          # the train-accuracy subset is drawn first
    assert torch.equal(seen[0]["generator"].get_state(), expected.get_state())


def test_fit_on_fewer_images_than_a_batch_takes_one_step_per_epoch():
    data = _splits(n=1)
    _, h = fit(MLPConfig(hidden_layers=(4,), num_epochs=2, batch_size=6, init="kaiming"), data)
    assert h["loss_history"].shape == (2,) and h["iterations_per_epoch"] == 1


def test_fit_defaults_no_progress_bar_and_5000_train_images(monkeypatch):
    import tqdm.auto
    monkeypatch.setattr(tqdm.auto, "tqdm", lambda *a, **k: pytest.fail("a progress bar without verbose"))
    _scripted_epochs(monkeypatch, [[1.0, 1.0]])
    sizes = []
    monkeypatch.setattr(mt, "evaluate", lambda model, X, y: sizes.append(X.shape[0]) or 0.5)
    X, y = torch.zeros(5001, 3, 32, 32), torch.zeros(5001, dtype=torch.long)
    data = TensorSplits(X, y, X[:2], y[:2], X[:0], y[:0], class_names=("a", "b"))
    fit(MLPConfig(hidden_layers=(4,), num_epochs=1, batch_size=2500), data)
    assert sizes == [5000]
