"""A sweep on the GPU, kept as the record of what fixed Q4's augmentation (2026-11-27, one H200): the Q4 MLP
at the CPU budget's sizes (depth 4, width 512) with and without flips + crops and ZCA whitening, at 10 and
20 epochs, then two wide GPU recipes (width 3072, 60 epochs). It trains on 45,000 images and validates on
the next 5,000 (never the test set). Output: benchmarks/gpu_runs/2026-11-27_h200_explore.log.

    AML_CHUNKS=/tmp/cifar PYTHONPATH=. python benchmarks/gpu_explore.py   # chunks of pack_cifar.py --no-test
"""
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, os.getcwd())
from aml.data import SealedTest
from aml.mlp import MLPConfig, TensorSplits, fit, to_tensor_images

chunks = Path(os.environ.get("AML_CHUNKS", ".gpu/data")).glob("cifar_part*.npz")
parts = [np.load(p) for p in sorted(chunks, key=lambda p: int(p.stem[10:]))]
X = np.concatenate([p["X"] for p in parts])
y = np.concatenate([p["y"] for p in parts]).astype(np.int64)
dev = "cuda" if torch.cuda.is_available() else "cpu"
n_tr = int(os.environ.get("NTR", 45000))
n_va = 5000
Xt = to_tensor_images(X[:n_tr + n_va]).to(dev)
yt = torch.from_numpy(y[:n_tr + n_va]).to(dev)

def zca(eps_rel):
    A = Xt[:n_tr].reshape(n_tr, -1).double()
    A = torch.cat([A, Xt[:n_tr].flip(3).reshape(n_tr, -1).double()])
    mu = A.mean(0)
    A = A - mu
    C = A.T @ A / A.shape[0]
    lam, U = torch.linalg.eigh(C)
    lam = lam.clamp(min=0)
    eps = eps_rel * lam.mean()
    W = (U * (1 / torch.sqrt(lam + eps))) @ U.T
    Z = ((Xt.reshape(len(Xt), -1).double() - mu) @ W).float().reshape(Xt.shape)
    return Z

def splits(Z):
    return TensorSplits(Z[:n_tr], yt[:n_tr], Z[n_tr:], yt[n_tr:], SealedTest(Z[:0], yt[:0].cpu().numpy()))

data = {"raw": splits(Xt)}
out = []
def run(name, prep, epochs, width=512, depth=4, **kw):
    if prep not in data:
        data[prep] = splits(zca(float(prep[3:])))
    base = dict(lr=1.5e-3, weight_decay=0.02, batch_size=128, dropout=0.0)
    base.update(kw)
    cfg = MLPConfig(hidden_layers=(width,) * (depth - 1), num_epochs=epochs, init="kaiming", batch_norm=True,
                    optimizer="adamw", schedule="onecycle", seed=0, **base)
    _, h = fit(cfg, data[prep])
    r = dict(name=name, prep=prep, epochs=epochs, width=width, depth=depth, **kw, val=h["val_acc_history"][-1],
             best=h["best_val_acc"], train=h["train_acc_history"][-1], s=round(h["train_seconds"], 1))
    out.append(r)
    print(json.dumps(r), flush=True)
    Path(os.environ.get("OUT", "/tmp"), "explore.json").write_text(json.dumps(out, indent=1))

t0 = time.time()
for ep in (10, 20):
    run("base", "raw", ep)
    run("zca", "zca0.01", ep)
    run("zca", "zca0.1", ep)
    run("aug", "raw", ep, flip=True, crop_padding=2, dropout=0.1)
    run("zca+aug", "zca0.1", ep, flip=True, crop_padding=2, dropout=0.1)
    run("w1024 zca", "zca0.1", ep, width=1024)
print("small sweep", round(time.time() - t0), "s", flush=True)
run("gpu wide", "raw", 60, width=3072, flip=True, crop_padding=4, dropout=0.2, batch_size=256)
run("gpu wide zca", "zca0.1", 60, width=3072, flip=True, crop_padding=4, dropout=0.2, batch_size=256)
print("total", round(time.time() - t0), "s", flush=True)
