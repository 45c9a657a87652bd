"""aml.mlp.train: the optimiser and its schedules, the augmentation, one epoch against a hand-written SGD
loop, the evaluation helpers against direct computation, fit's history and divergence guard (with the
epoch scripted, so the numbers are known), and the checks of every entry point."""
import dataclasses

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import aml.mlp.train as mt
from aml.data import SealedTest
from aml.mlp import (
    MLPConfig,
    MultiLayerPerceptron,
    TensorSplits,
    augment_batch,
    build_model,
    evaluate,
    fit,
    make_optimizer,
    predict,
    predict_flip_averaged,
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
    cfg = MLPConfig(optimizer=name, lr=0.03, weight_decay=0.002)
    model = _model()
    opt, _ = make_optimizer(model, cfg, steps_per_epoch=3)
    assert type(opt) is cls
    group = opt.param_groups[0]
    assert group["lr"] == 0.03 and group["weight_decay"] == 0.002
    assert [id(p) for p in group["params"]] == [id(p) for p in model.parameters()]
    if name == "sgd":
        assert group["momentum"] == 0 and group["nesterov"] is False          # plain SGD
    else:
        assert group["fused"] is True                     # one kernel per step on CPU and CUDA


@pytest.mark.parametrize("schedule,cls,args", [
    ("step", torch.optim.lr_scheduler.StepLR, {"step_size": 4, "gamma": 0.95}),
    ("onecycle", torch.optim.lr_scheduler.OneCycleLR, {"total_steps": 12}),
])
def test_make_optimizer_maps_the_schedule_to_per_step_arguments(schedule, cls, args):
    # aml's part only: which scheduler, and its lengths counted in minibatches (steps_per_epoch x
    # num_epochs), since train_one_epoch steps it once per minibatch; torch's curves are torch's
    opt, sched = make_optimizer(_model(), MLPConfig(lr=0.1, num_epochs=3, schedule=schedule), 4)
    assert type(sched) is cls and sched.optimizer is opt
    assert {k: getattr(sched, k) for k in args} == args
    if schedule == "onecycle":
        assert max(g["max_lr"] for g in opt.param_groups) == 0.1
        for _ in range(2):                    # the peak at a quarter of the 12 steps (torch counts from step 0)
            opt.step()
            sched.step()
        assert opt.param_groups[0]["lr"] == pytest.approx(0.1)


def _manual_epoch(model, X, y, lr, batch_size, seed, label_smoothing=0.0):
    """The same epoch written out: same permutation, plain SGD by hand (w <- w - lr grad)."""
    perm = torch.randperm(X.shape[0], generator=torch.Generator().manual_seed(seed))
    losses = []
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
    return losses


@pytest.mark.parametrize("n,batch_size,steps", [(10, 4, 2), (12, 4, 3), (3, 4, 1), (9, 5, 1), (5, 5, 1)])
def test_train_one_epoch_matches_a_hand_written_sgd_epoch(n, batch_size, steps):
    X, y = _data(n)
    cfg = MLPConfig(optimizer="sgd", lr=0.5, weight_decay=0.0)
    model, ref = _model(), _model()
    opt, sched = make_optimizer(model, cfg, steps_per_epoch=steps)
    losses = train_one_epoch(model, X, y, opt, sched, batch_size=batch_size,
                             generator=torch.Generator().manual_seed(7), label_smoothing=0.1)
    ref_losses = _manual_epoch(ref, X, y, 0.5, batch_size, 7, label_smoothing=0.1)
    assert losses.shape == (steps,)
    np.testing.assert_allclose(losses.numpy(), ref_losses, rtol=1e-5)
    for p, q in zip(model.parameters(), ref.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)
    assert model.training


def test_train_one_epoch_steps_the_scheduler_every_minibatch():
    X, y = _data(12)
    model = _model()
    opt, sched = make_optimizer(model, MLPConfig(optimizer="sgd", lr=0.1, schedule="onecycle", num_epochs=2), 3)
    train_one_epoch(model, X, y, opt, sched, batch_size=4, generator=torch.Generator().manual_seed(0))
    assert sched.last_epoch == 3 and opt.param_groups[0]["lr"] < 0.1     # past the peak at step 1.5
    opt, sched = make_optimizer(model, MLPConfig(optimizer="sgd", lr=0.1), 3)
    train_one_epoch(model, X, y, opt, sched, batch_size=4, generator=torch.Generator().manual_seed(0))
    assert opt.param_groups[0]["lr"] == pytest.approx(0.095)                   # x 0.95 after the epoch


def test_train_one_epoch_passes_the_augmentation_on_for_every_batch(monkeypatch):
    calls = []

    def spy(x, generator, *, flip, crop_padding):
        calls.append((x.shape[0], flip, crop_padding))
        return x

    monkeypatch.setattr(mt, "augment_batch", spy)
    X, y = _data(8)
    model = _model()
    opt, sched = make_optimizer(model, MLPConfig(), 2)
    train_one_epoch(model, X, y, opt, sched, batch_size=4, generator=torch.Generator())
    train_one_epoch(model, X, y, opt, sched, batch_size=4, generator=torch.Generator(), flip=True)
    train_one_epoch(model, X, y, opt, sched, batch_size=4, generator=torch.Generator(), crop_padding=2)
    assert calls == [(4, False, 0)] * 2 + [(4, True, 0)] * 2 + [(4, False, 2)] * 2


@pytest.mark.parametrize("bfloat16", [False, True])
def test_train_one_epoch_computes_in_bfloat16_on_the_cpu_only_when_asked(bfloat16):
    X, y = _data(8)
    model = _model()
    seen = []
    model.linears[0].register_forward_hook(lambda module, inputs, out: seen.append(out.dtype))
    opt, sched = make_optimizer(model, MLPConfig(), 2)
    losses = train_one_epoch(model, X, y, opt, sched, batch_size=4, generator=torch.Generator(), bfloat16=bfloat16)
    assert seen == [torch.bfloat16 if bfloat16 else torch.float32] * 2
    assert all(p.dtype == torch.float32 for p in model.parameters()) and torch.isfinite(losses).all()


def test_fit_passes_its_config_s_bfloat16_on(monkeypatch):
    calls = []
    real = mt.train_one_epoch

    def spy(*args, **kwargs):
        calls.append(kwargs["bfloat16"])
        return real(*args, **kwargs)

    monkeypatch.setattr(mt, "train_one_epoch", spy)
    X, y = _data(16)
    data = TensorSplits(X, y, X[:4], y[:4], SealedTest(X[:0], y[:0].numpy()))
    for flag in (False, True):
        fit(MLPConfig(hidden_layers=(4,), num_epochs=1, batch_size=8, bfloat16=flag), data, num_train_eval=4)
    assert calls == [False, True]
    with pytest.raises(TypeError, match="'bfloat16'"):
        MLPConfig(bfloat16=1)

def test_evaluation_helpers_match_direct_computation(monkeypatch):
    X, y = _data(7)
    model = _model(dropout=0.5)
    model.train()
    with torch.no_grad():
        model.eval()
        logits = model(X)
    monkeypatch.setattr(mt, "EVAL_BATCH_SIZE", 3)                          # chunks of 3, 3, 1
    loss, acc = mt._loss_and_accuracy(model, X, y)
    assert loss == pytest.approx(F.cross_entropy(logits, y).item(), rel=1e-5)
    assert acc == pytest.approx((logits.argmax(1) == y).float().mean().item())
    model.train()
    assert evaluate(model, X, y) == acc and not model.training
    model.train()
    torch.testing.assert_close(predict(model, X), logits.argmax(1))
    assert predict(model, X).dtype == torch.long and not model.training
    assert predict(model, X.flatten(1)).shape == (7,)                     # rows (N, D) as well as images


def test_default_evaluation_batch_is_2000():
    X, y = _data(2001)
    model = _model()
    sizes = []
    model.register_forward_hook(lambda m, i, o: sizes.append(o.shape[0]))
    evaluate(model, X, y)
    predict(model, X)
    predict_flip_averaged(model, X)
    assert sizes == [2000, 1, 2000, 1] + [2000] * 2 + [1] * 2


def test_build_model_is_seeded_by_the_config():
    cfg = MLPConfig(hidden_layers=(6, 5), init="kaiming", seed=4, batch_norm=True, dropout=0.2)
    a, b = build_model(cfg, 12, 3), build_model(cfg, 12, 3)
    assert a.depth == 3 and a.linears[0].in_features == 12 and a.linears[-1].out_features == 3
    assert [m.out_features for m in a.linears] == [6, 5, 3]
    assert sum(isinstance(m, torch.nn.ReLU) for m in a.modules()) == 2
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
    return TensorSplits(X[:n], y[:n], X[n:n + 6], y[n:n + 6], SealedTest(X[:0], y[:0].numpy()),
                        class_names=tuple("abc"[:classes]))


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
        return torch.tensor([1.0, 1.0] if script[k] == "inf-param" else script[k])

    monkeypatch.setattr(mt, "train_one_epoch", fake)
    return seen


@pytest.mark.parametrize("script,epoch,iteration,reason", [
    ([[1.0, 1.0], [1.0, float("nan")]], 2, 3, "the training loss became nan at iteration 3"),
    ([[1.0, 1.0], [float("inf"), 1.0]], 2, 2, "the training loss became inf at iteration 2"),
    ([[1.0, 1.0], [50.0, 150.0]], 2, 3, "the training loss grew to 150 at iteration 3, more than 100 times its "
                                        "first value 1"),
    ([[2.0, 1.0], [1.0, 1.0], "inf-param"], 3, 5, "a parameter became non-finite by iteration 5"),
])
def test_fit_divergence_resets_to_the_last_good_epoch(monkeypatch, script, epoch, iteration, reason):
    _scripted_epochs(monkeypatch, script)
    cfg = MLPConfig(hidden_layers=(4,), num_epochs=len(script), batch_size=6, lr=0.01, init="kaiming")
    models = []
    monkeypatch.setattr(mt, "build_model", lambda *a: models.append(build_model(*a)) or models[-1])
    with pytest.raises(TrainingDiverged, match=reason) as e:
        fit(cfg, _splits())
    err = e.value
    assert err.restored == "last finite" and err.iteration == iteration
    assert f"Training diverged: {reason} (learning rate 0.01)." in str(err)
    for p in models[0].parameters():                     # the parameters at the end of the epoch before
        assert torch.all(p == float(epoch - 1))
    assert len(err.history["val_acc_history"]) == epoch - 1 and err.history["loss_history"].shape == (2 * epoch,)
    np.testing.assert_array_equal(err.history["loss_history"][:2], script[0])


def test_fit_does_not_stop_at_exactly_100_times_the_first_loss(monkeypatch):
    _scripted_epochs(monkeypatch, [[1.0, 1.0], [100.0, 1.0]])
    _, h = fit(MLPConfig(hidden_layers=(4,), num_epochs=2, batch_size=6, init="kaiming"), _splits())
    np.testing.assert_array_equal(h["loss_history"], [1.0, 1.0, 100.0, 1.0])


def test_fit_history_and_callbacks():
    data = _splits(n=20)
    cfg = MLPConfig(hidden_layers=(4,), num_epochs=2, batch_size=8, lr=0.05, init="kaiming", seed=2)
    seen = []
    model, h = fit(cfg, data, num_train_eval=20, on_epoch=lambda e, hist: seen.append((e, len(hist["lr_history"]))))
    steps = 20 // 8
    assert h["loss_history"].shape == (2 * steps,) and np.isfinite(h["loss_history"]).all()
    assert h["iterations_per_epoch"] == steps
    np.testing.assert_array_equal(h["epoch_history"], [1.0, 2.0])
    np.testing.assert_allclose(h["lr_history"], [0.05, 0.05 * 0.95])        # the rate each epoch ran with
    assert seen == [(1, 1), (2, 2)]
    assert h["device"] == "cpu" and 0 < h["train_seconds"] < 60 and h["heldout_val_acc"] is None
    # the last epoch's accuracies are those of the returned model
    loss, acc = mt._loss_and_accuracy(model, data.X_val, data.y_val)
    assert h["val_acc_history"][-1] == acc and h["val_loss_history"][-1] == pytest.approx(loss)
    assert h["train_acc_history"][-1] == evaluate(model, data.X_train, data.y_train)
    assert h["best_val_acc"] == h["val_acc_history"].max()
    assert h["best_epoch"] == int(np.argmax(h["val_acc_history"])) + 1
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
    monkeypatch.setattr(mt, "_loss_and_accuracy", lambda *a, **k: (1.0, next(accs)))
    _scripted_epochs(monkeypatch, [[1.0, 1.0]] * 4)
    _, h = fit(MLPConfig(hidden_layers=(4,), num_epochs=4, batch_size=6, init="kaiming"), _splits())
    np.testing.assert_array_equal(h["val_acc_history"], [0.2, 0.6, 0.6, 0.1])
    np.testing.assert_array_equal(h["train_acc_history"], [0.9] * 4)
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
    assert str(e.value) == ("Training diverged: the training loss became nan at iteration 3 (learning rate 0.01). "
                            "Try a smaller learning rate. The model was reset to its last finite parameters.")
    assert 0 <= e.value.history["train_seconds"] < 60


def test_fit_divergence_in_the_first_epoch_restores_the_initial_model(monkeypatch):
    _scripted_epochs(monkeypatch, [[1.0, float("inf")]])
    cfg = MLPConfig(hidden_layers=(4,), num_epochs=1, batch_size=6, init="kaiming", seed=3)
    models = []
    monkeypatch.setattr(mt, "build_model", lambda *a: models.append(build_model(*a)) or models[-1])
    with pytest.raises(TrainingDiverged) as e:
        fit(cfg, _splits())
    assert e.value.iteration == 1
    for p, q in zip(models[0].parameters(), build_model(cfg, 3072, 3).parameters()):
        assert torch.equal(p, q)


def test_fit_divergence_is_relative_to_the_first_loss_of_the_run(monkeypatch):
    # first loss 2: 150 is under 100 x 2 (no stop), though over 100 x the second loss or 100 / 2
    _scripted_epochs(monkeypatch, [[2.0, 1.0], [150.0, 1.0]])
    _, h = fit(MLPConfig(hidden_layers=(4,), num_epochs=2, batch_size=6, init="kaiming"), _splits())
    np.testing.assert_array_equal(h["loss_history"], [2.0, 1.0, 150.0, 1.0])


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
    bars, sizes = [], []
    real_tqdm = mt.tqdm
    monkeypatch.setattr(mt, "tqdm", lambda *a, **k: bars.append(k["disable"]) or real_tqdm(*a, **k))
    _scripted_epochs(monkeypatch, [[1.0, 1.0]] * 2)
    monkeypatch.setattr(mt, "_loss_and_accuracy", lambda model, X, y: sizes.append(X.shape[0]) or (1.0, 0.5))
    X, y = torch.zeros(5001, 3, 32, 32), torch.zeros(5001, dtype=torch.long)
    data = TensorSplits(X, y, X[:2], y[:2], SealedTest(X[:0], y[:0].numpy()), class_names=("a", "b"))
    fit(MLPConfig(hidden_layers=(4,), num_epochs=1, batch_size=2500), data)
    assert sizes == [2, 5000] and bars == [True]
    fit(MLPConfig(hidden_layers=(4,), num_epochs=1, batch_size=2500), data, verbose=True, num_train_eval=7)
    assert sizes[-1] == 7 and bars[-1] is False


# --- one history for both halves ---------------------------------------------------------------------------------

def test_both_halves_return_one_history_vocabulary():
    from aml import TwoLayerNet, train
    from aml.training import HISTORY_KEYS, History
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((12, 3072)), rng.integers(0, 3, 12)
    h_np = train(TwoLayerNet(3072, 4, 3, seed=0), X, y, X[:6], y[:6], num_iters=4, batch_size=6, seed=0)
    _, h_torch = fit(MLPConfig(hidden_layers=(4,), num_epochs=2, batch_size=6, init="kaiming"), _splits())
    assert type(h_np) is type(h_torch) is History
    assert list(h_np) == list(h_torch) == list(HISTORY_KEYS)
    for key in HISTORY_KEYS:
        assert type(h_np[key]) is type(h_torch[key]), key
        if isinstance(h_np[key], np.ndarray):
            assert h_np[key].dtype == h_torch[key].dtype == np.float64, key
    assert h_np["epoch_history"].shape == h_torch["epoch_history"].shape == (2,)


# --- train mode in every epoch ---------------------------------------------------------------------------------

def test_fit_trains_in_training_mode_in_every_epoch_after_evaluating(monkeypatch):
    # each epoch ends with an evaluation in eval() mode; the next epoch must switch back, or BatchNorm
    # freezes its running statistics and normalises with them, and dropout stops dropping
    steps_seen, dropped, bn_states = [], [], []

    def build(*args):
        model = build_model(*args)
        bn = next(m for m in model.modules() if isinstance(m, torch.nn.BatchNorm1d))
        drop = next(m for m in model.modules() if isinstance(m, torch.nn.Dropout))

        def on_forward(module, inputs, output):
            if torch.is_grad_enabled():                  # a training step (evaluation runs under no_grad)
                steps_seen.append((bn.training, drop.training))
                if module is drop:
                    x = inputs[0]
                    kept = output != 0
                    dropped.append(int(((x != 0) & ~kept).sum()))
                    torch.testing.assert_close(output[kept], 2 * x[kept])   # inverted dropout, p = 0.5
        bn.register_forward_hook(on_forward)
        drop.register_forward_hook(on_forward)
        build.bn = bn
        return model

    monkeypatch.setattr(mt, "build_model", build)
    cfg = MLPConfig(hidden_layers=(16,), num_epochs=3, batch_size=6, batch_norm=True, dropout=0.5, init="kaiming")
    fit(cfg, _splits(n=24), on_epoch=lambda e, h: bn_states.append(
        (build.bn.running_mean.clone(), int(build.bn.num_batches_tracked))))
    assert len(steps_seen) == 2 * 3 * 4                   # two hooks, 3 epochs of 24 // 6 steps
    assert all(bn_mode and drop_mode for bn_mode, drop_mode in steps_seen)
    assert all(n > 0 for n in dropped)
    assert [n for _, n in bn_states] == [4, 8, 12]          # BatchNorm's statistics moved in every epoch
    assert not torch.equal(bn_states[0][0], bn_states[1][0]) and not torch.equal(bn_states[1][0], bn_states[2][0])


# --- the selection split ---------------------------------------------------------------------------------------

def test_fit_monitors_the_selection_split_and_reads_validation_once_at_the_end(monkeypatch):
    X, y = _data(9, seed=5)
    data = dataclasses.replace(_splits(n=12), X_sel=X, y_sel=y)
    sizes = []
    real = mt._loss_and_accuracy
    monkeypatch.setattr(mt, "_loss_and_accuracy",
                        lambda m, Xe, ye, *a: sizes.append(len(Xe)) or real(m, Xe, ye))
    model, h = fit(MLPConfig(hidden_layers=(4,), num_epochs=2, batch_size=6, init="kaiming"), data)
    assert sizes == [9, 12, 9, 12, 6]        # per epoch: selection, train subset; validation (6) only at the end
    loss, acc = real(model, data.X_sel, data.y_sel)
    assert h["val_acc_history"][-1] == acc and h["val_loss_history"][-1] == pytest.approx(loss)
    assert h["best_val_acc"] == h["val_acc_history"].max()
    assert h["heldout_val_acc"] == evaluate(model, data.X_val, data.y_val)


def test_fit_with_an_empty_selection_split_monitors_validation():
    data = _splits()
    data = dataclasses.replace(data, X_sel=data.X_val[:0], y_sel=data.y_val[:0])
    model, h = fit(MLPConfig(hidden_layers=(4,), num_epochs=1, batch_size=6, init="kaiming"), data)
    assert h["heldout_val_acc"] is None and h["val_acc_history"][-1] == evaluate(model, data.X_val, data.y_val)


# --- inputs checked before any torch work ------------------------------------------------------------------------

@pytest.mark.parametrize("change,exc,words", [
    (lambda d: dict(y_train=torch.full_like(d.y_train, 10), class_names=tuple("abcdefghij")), ValueError,
     r"'y_train' must hold labels in \[0, 10\).*Got values in \[10, 10\]"),
    (lambda d: dict(y_val=d.y_val.float()), TypeError, r"'y_val' must be an int64 .*Got torch.float32"),
    (lambda d: dict(X_train=d.X_train.double()), TypeError, r"'X_train' must be torch.float32 .*Got torch.float64"),
    (lambda d: dict(X_train=d.X_train.numpy()), TypeError, r"'X_train' must be a torch.Tensor.*Got ndarray"),
    (lambda d: dict(X_val=d.X_val[:, :, :16]), ValueError,
     r"'X_val' must have shape \(N, 3, 32, 32\) or \(N, 3072\). Got \(6, 3, 16, 32\)"),
    (lambda d: dict(X_val=d.X_val.to("meta")), TypeError, r"'X_val' must be torch.float32 on cpu.*on meta"),
    (lambda d: dict(y_train=d.y_train[:-1]), ValueError, r"'y_train' must have shape \(12,\)"),
    (lambda d: dict(X_sel=d.X_val, y_sel=d.y_val - 5), ValueError, r"'y_sel' must hold labels in \[0, 3\)"),
    (lambda d: dict(X_sel=d.X_val.half(), y_sel=d.y_val), TypeError, "'X_sel'"),
    (lambda d: dict(X_train=d.X_train[:0], y_train=d.y_train[:0]), ValueError, "'X_train' must hold at least one"),
    (lambda d: dict(X_val=d.X_val[:0], y_val=d.y_val[:0]), ValueError, "'X_val' must hold at least one image"),
    (lambda d: dict(X_val=d.X_val[:0], y_val=d.y_val[:0], X_sel=d.X_val, y_sel=d.y_val), ValueError, "'X_val'"),
])
def test_fit_refuses_bad_data_before_building_a_model(monkeypatch, change, exc, words):
    monkeypatch.setattr(mt, "build_model", lambda *a: pytest.fail("fit built a model from bad data"))
    data = _splits()
    with pytest.raises(exc, match=words):
        fit(MLPConfig(hidden_layers=(4,), num_epochs=1), dataclasses.replace(data, **change(data)))


def test_predict_flip_averaged_averages_an_image_and_its_mirror():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 32 * 32, 5))
    x = torch.randn(200, 3, 32, 32)
    with torch.no_grad():
        p, q = F.softmax(model(x), 1), F.softmax(model(x.flip(3)), 1)   # flip(3): the width axis
    out = predict_flip_averaged(model, x)
    assert out.dtype == torch.long and torch.equal(out, (p + q).argmax(1))
    assert not torch.equal(out, p.argmax(1)) and not torch.equal(out, q.argmax(1))   # neither view alone
    with pytest.raises(ValueError, match=r"'X' parameter must have shape \(N, 3, 32, 32\)\. Got \(200, 3072\)"):
        predict_flip_averaged(model, x.flatten(1))


@pytest.mark.parametrize("X,y,exc,words", [
    (torch.zeros(0, 3, 32, 32), None, ValueError, r"The 'X' parameter must hold at least one image. Got 0"),
    (torch.zeros(5, 3, 16, 16), None, ValueError, r"'X' parameter must have shape \(N, 3, 32, 32\) or \(N, 3072\)"),
    (torch.zeros(5, 3072, 1), None, ValueError, r"'X'.*Got \(5, 3072, 1\)"),
    (torch.zeros(5, 3, 32, 32, dtype=torch.float64), None, TypeError, r"'X'.*torch.float32 on cpu.*torch.float64"),
    (torch.zeros(5, 3, 32, 32, dtype=torch.uint8), None, TypeError, r"'X'.*Got torch.uint8"),
    (torch.zeros(5, 3, 32, 32, device="meta"), None, TypeError,
     r"'X' parameter must be torch.float32 on cpu. Got torch.float32 on meta"),
    (np.zeros((5, 3072), dtype=np.float32), None, TypeError, r"'X'.*torch.Tensor.*Got ndarray"),
    (None, torch.zeros(5), TypeError, r"'y'.*int64.*Got torch.float32"),
    (None, torch.zeros(4, dtype=torch.long), ValueError, r"'y'.*shape \(5,\).*Got \(4,\)"),
    (None, torch.zeros(5, 1, dtype=torch.long), ValueError, r"'y'.*shape \(5,\)"),
    (None, torch.tensor([0, 1, 2, 3, 1]), ValueError, r"'y'.*labels in \[0, 3\). Got values in \[0, 3\]"),
    (None, torch.tensor([0, 1, -1, 2, 1]), ValueError, r"'y'.*labels in \[0, 3\)"),
])
def test_predict_and_evaluate_check_their_inputs(X, y, exc, words):
    model = _model()
    X = torch.zeros(5, 3, 32, 32) if X is None else X
    with pytest.raises(exc, match=words):
        if y is None:
            predict(model, X)
        else:
            evaluate(model, X, y)
    if y is None and isinstance(X, torch.Tensor):
        with pytest.raises(exc, match=words):
            evaluate(model, X, torch.zeros(len(X), dtype=torch.long))


def _bn_epoch(n, batch_size):
    model = _model(hidden=(8,), batch_norm=True)
    opt, sched = make_optimizer(model, MLPConfig(), 1)
    X, y = _data(n)
    return train_one_epoch(model, X, y, opt, sched, batch_size=batch_size, generator=torch.Generator())


def test_batch_norm_refuses_a_training_batch_of_one_image():
    with pytest.raises(ValueError, match="'batch_size'.*at least 2 images for BatchNorm.*batch_size=1 on 8 images"):
        _bn_epoch(8, 1)
    with pytest.raises(ValueError, match="'batch_size'.*batch_size=4 on 1 images"):
        _bn_epoch(1, 4)
    assert _bn_epoch(9, 4).shape == (2,)                 # the last partial batch (of 1) is dropped, not trained on
    cfg = MLPConfig(hidden_layers=(4,), num_epochs=1, batch_size=1, batch_norm=True)
    with pytest.raises(ValueError, match="'batch_size'.*BatchNorm"):
        fit(cfg, _splits())
    _, h = fit(dataclasses.replace(cfg, batch_norm=False), _splits())          # without BatchNorm, one image is fine
    assert h["iterations_per_epoch"] == 12


def test_train_one_epoch_checks_its_arguments():
    model = _model()
    opt, sched = make_optimizer(model, MLPConfig(), 1)
    X, y = _data(8)
    for args, exc, words in [((X.double(), y), TypeError, "'X'"), ((X, y[:7]), ValueError, "'y'.*\\(8,\\)"),
                             ((X, y.int()), TypeError, "'y'"), ((X[:0], y[:0]), ValueError, "'X'.*at least one")]:
        with pytest.raises(exc, match=words):
            train_one_epoch(model, *args, opt, sched, batch_size=4, generator=torch.Generator())
    with pytest.raises(ValueError, match="'batch_size'"):
        train_one_epoch(model, X, y, opt, sched, batch_size=0, generator=torch.Generator())


# --- the augmentation of a batch ---------------------------------------------------------------------------------

def test_augment_batch_flips_some_images_and_keeps_the_rest():
    xs = torch.randn(64, 3, 32, 32)
    assert augment_batch(xs, torch.Generator()) is xs                       # nothing asked: the batch as it is
    out = augment_batch(xs, torch.Generator().manual_seed(1), flip=True)
    flipped = torch.tensor([torch.equal(out[i], xs[i].flip(2)) for i in range(64)])
    kept = torch.tensor([torch.equal(out[i], xs[i]) for i in range(64)])
    assert bool((flipped | kept).all()) and 10 < int(flipped.sum()) < 54


def test_augment_batch_crops_are_shifted_windows_of_the_padded_image():
    p, N = 4, 16
    x = torch.rand(N, 3, 32, 32) + 1.0                    # no zeros, so padding shows
    out = augment_batch(x, torch.Generator().manual_seed(3), crop_padding=p)
    assert out.shape == x.shape
    padded = torch.nn.functional.pad(x, (p, p, p, p))
    g = torch.Generator().manual_seed(3)                  # the offsets the generator draws: dy for every image, then dx
    dy, dx = torch.randint(0, 2 * p + 1, (N,), generator=g), torch.randint(0, 2 * p + 1, (N,), generator=g)
    for i in range(N):
        assert torch.equal(out[i], padded[i, :, dy[i]:dy[i] + 32, dx[i]:dx[i] + 32]), i
    assert int(((dy != p) | (dx != p)).sum()) >= N // 2   # crops really move the content
    # the window reaches every offset 0..2p: both extremes occur over many images
    big = augment_batch(torch.ones(400, 1, 32, 32), torch.Generator().manual_seed(0), crop_padding=p)
    zero_rows = (big == 0).all(dim=3).sum(dim=2).view(-1)   # rows of padding at top or bottom
    assert int(zero_rows.max()) == p
    both = augment_batch(x, torch.Generator().manual_seed(3), flip=True, crop_padding=p)
    assert both.shape == x.shape and not torch.equal(both, out)


def test_configured_adam_epoch_lowers_the_loss_on_a_fixed_batch():
    # aml's optimiser and epoch, not torch's Adam alone: the handout's config (Adam, lr 1e-3, weight
    # decay 1e-3, x 0.95 an epoch) trained for 20 epochs on one batch of 32 must fit it better than at the start
    torch.manual_seed(0)
    model = MultiLayerPerceptron(3072, [50], 10, init="kaiming")
    x, y = torch.randn(32, 3, 32, 32), torch.randint(0, 10, (32,))
    before = F.cross_entropy(model(x), y).item()
    opt, sched = make_optimizer(model, MLPConfig(), steps_per_epoch=1)
    assert isinstance(opt, torch.optim.Adam) and opt.param_groups[0]["weight_decay"] == 1e-3
    g = torch.Generator().manual_seed(0)
    losses = [train_one_epoch(model, x, y, opt, sched, batch_size=32, generator=g).item() for _ in range(20)]
    assert losses[0] == pytest.approx(before, rel=1e-5)        # the first step's loss is the starting loss
    assert F.cross_entropy(model(x), y).item() < 0.5 * before and losses[-1] < losses[0]
    assert opt.param_groups[0]["lr"] == pytest.approx(1e-3 * 0.95 ** 20)
