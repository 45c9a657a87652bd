"""CUDA-only checks of the GPU path (skipped without a GPU; benchmarks/gpu_check.py runs them on one)."""
import pytest
import torch

from aml.data import SealedTest
from aml.mlp import (
    MLPConfig,
    TensorSplits,
    build_model,
    evaluate,
    fit,
    make_optimizer,
    predict,
    train_one_epoch,
    zca_splits,
)

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def _splits(device, n=2048):
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 10, (n + 512,), generator=g)
    X = torch.randn(n + 512, 3, 32, 32, generator=g) + (y.float() / 5 - 1).view(-1, 1, 1, 1)
    X, y = X.to(device), y.to(device)
    return TensorSplits(X[:n], y[:n], X[n:n + 256], y[n:n + 256], SealedTest(X[n + 256:], y[n + 256:].cpu().numpy()))


def test_an_epoch_runs_without_a_host_sync():
    data = _splits("cuda")
    cfg = MLPConfig(hidden_layers=(256, 256), num_epochs=1, batch_size=256, init="kaiming", batch_norm=True,
                    dropout=0.2, flip=True, optimizer="adamw", schedule="onecycle", lr=2e-3)
    model = build_model(cfg, 3072, 10).to("cuda")
    opt, sched = make_optimizer(model, cfg, 2048 // 256)
    gen = torch.Generator(device="cuda").manual_seed(0)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        losses = train_one_epoch(model, data.X_train, data.y_train, opt, sched, batch_size=256, generator=gen,
                                 flip=True, crop_padding=2, label_smoothing=0.1)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert losses.device.type == "cuda" and torch.isfinite(losses).all()


def test_fit_on_the_gpu_learns_and_repeats():
    data = _splits("cuda")
    cfg = MLPConfig(hidden_layers=(128,), num_epochs=3, batch_size=128, init="kaiming", batch_norm=True, lr=2e-3,
                    optimizer="adamw", schedule="onecycle", seed=1)
    (m1, h1), (m2, h2) = fit(cfg, data), fit(cfg, data)
    assert h1["device"].startswith("cuda") and h1["val_acc_history"][-1] > 0.3
    assert len(h2["val_acc_history"]) == 3
    assert abs(evaluate(m1, data.X_val, data.y_val) - evaluate(m2, data.X_val, data.y_val)) < 0.05


def test_inputs_on_another_device_than_the_model_are_named():
    data = _splits("cuda", n=256)
    model = build_model(MLPConfig(hidden_layers=(16,))).to("cuda")
    with pytest.raises(TypeError, match="'X' parameter must be torch.float32 on cuda:0. Got torch.float32 on cpu"):
        predict(model, data.X_val.cpu())
    assert predict(model, data.X_val).device.type == "cuda"


def test_zca_splits_stay_on_the_gpu():
    data = zca_splits(_splits("cuda", n=4096))
    assert data.X_train.device.type == data.X_val.device.type == "cuda" and data.normalize == "zca"
    flat = data.X_train.flatten(1).double()
    assert abs(float(flat.mean())) < 1e-3 and 0.3 < float(flat.var(0).mean()) < 1.1
