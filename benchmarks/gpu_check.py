"""The GPU path, measured: CUDA-only tests, one epoch on the GPU against the CPU, and notebook 04's GPU
budget for the tuned setting on the real data: ZCA-whitened inputs, the GPU search (wider networks) at the
depth the CPU run chose, and its best trial promoted to the budget's longer run. Needs optuna (carried as
wheels to the device machine, see benchmarks/README.md). Without CUDA it says so and exits 0.

    python benchmarks/gpu_check.py                       # CIFAR-10 from $AML_DATA_DIR
    python benchmarks/gpu_check.py --data /tmp/chunks    # or from benchmarks/pack_cifar.py's chunks

Prints validation accuracy only: the test set is evaluated once, in notebook 04, through the ledger.
"""
from __future__ import annotations

import argparse
import collections
import dataclasses
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from aml.data import SealedTest
from aml.mlp import MLPConfig, TensorSplits, fit, to_tensor_images, zca_splits
from aml.runs import REPO_ROOT, machine_info
from aml.search import best_complete_trial, budget, q4_config, run_search


def load_splits(data: Path | None, device: str) -> TensorSplits:
    if data is None:
        from aml.mlp import load_tensor_splits
        return load_tensor_splits(device=device)
    parts = [np.load(p) for p in sorted(data.glob("cifar_part*.npz"), key=lambda p: int(p.stem[10:]))]
    X = np.concatenate([p["X"] for p in parts])
    y = np.concatenate([p["y"] for p in parts]).astype(np.int64)
    n = int(parts[0]["num_train"])

    def put(a, b):
        return to_tensor_images(a).to(device), torch.from_numpy(b).to(device)
    return TensorSplits(*put(X[:49000], y[:49000]), *put(X[49000:n], y[49000:n]),
                        SealedTest(to_tensor_images(X[n:]).to(device), y[n:]))


def epoch_seconds(config: MLPConfig, data: TensorSplits) -> float:
    _, history = fit(config, data)
    return history["train_seconds"] / config.num_epochs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=None, help="folder of pack_cifar.py chunks")
    parser.add_argument("--n-trials", type=int, default=None, help="trials of the GPU search (default: the budget's)")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("gpu_check: no CUDA device here; nothing to check (exit 0).")
        return 0
    info = machine_info()
    print(f"machine: {info['gpu']}, {info['cpu']} x{info['cpu_count']}, torch {info['torch']}")
    tests = subprocess.run([sys.executable, "-m", "pytest", "-q", str(REPO_ROOT / "tests" / "test_cuda.py")])
    print(f"CUDA tests: {'passed' if tests.returncode == 0 else 'FAILED'}")

    start = time.perf_counter()
    gpu = load_splits(args.data, "cuda")
    torch.cuda.synchronize()
    print(f"data on the GPU in {time.perf_counter() - start:.1f} s")
    probe = MLPConfig(hidden_layers=(512,) * 4, num_epochs=1, batch_size=256, init="kaiming", batch_norm=True,
                      dropout=0.2, flip=True, optimizer="adamw", schedule="onecycle", lr=2e-3)
    fit(probe, gpu.subset(4096))                                   # warm-up: kernels, autotuning
    t_gpu = epoch_seconds(probe, gpu)
    cpu = TensorSplits(*(t.cpu() for t in (gpu.X_train[:10000], gpu.y_train[:10000], gpu.X_val, gpu.y_val)),
                       SealedTest(gpu.X_val[:0].cpu(), np.zeros(0, dtype=np.int64)))
    t_cpu = epoch_seconds(probe, cpu) * gpu.X_train.shape[0] / 10000
    print(f"one epoch, depth 5 x 512: GPU {t_gpu:.2f} s, CPU {t_cpu:.1f} s (from 10,000 images), "
          f"ratio {t_cpu / t_gpu:.0f}x")

    best_path = REPO_ROOT / "results" / "q4_best.json"
    depth = json.loads(best_path.read_text())["depth"]
    b = budget("q4", False, gpu=True)
    if args.n_trials is not None:
        b = dataclasses.replace(b, n_trials=args.n_trials)
    start = time.perf_counter()
    tuned = zca_splits(gpu)
    torch.cuda.synchronize()
    print(f"ZCA whitening fitted and applied in {time.perf_counter() - start:.1f} s")
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        study = run_search("q4", tuned, storage=Path(tmp) / "q4_gpu.journal", study_name=f"q4-gpu-depth{depth}",
                           depth=depth, gpu=True, n_trials=b.n_trials)
        searched = time.perf_counter() - start
        trials, trial = study.trials, best_complete_trial(study)     # read before the journal goes
    states = collections.Counter(t.state.name.lower() for t in trials)
    print(f"GPU search at depth {depth} (the CPU run's chosen depth, {best_path.name}): {len(trials)} trials "
          f"({dict(states)}), {searched:.0f} s; best complete trial {trial.number}: validation {trial.value:.4f}, "
          f"{trial.params}")
    config = q4_config(trial.params, depth=depth, epochs=b.promote_epochs, normalize=tuned.normalize)
    _, history = fit(config, tuned)
    print(f"best GPU trial promoted to {b.promote_epochs} epochs: validation accuracy "
          f"{history['val_acc_history'][-1]:.4f} (best epoch {history['best_val_acc']:.4f}), train accuracy "
          f"{history['train_acc_history'][-1]:.4f}, {history['train_seconds']:.0f} s of training")
    return 0 if tests.returncode == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
