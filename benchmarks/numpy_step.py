"""Time one float32 SGD step of the two-layer net (batch 200, D 3072, H 1000, C 10).

Three things are measured in one run, interleaved, median of repeats:
  numpy  - TwoLayerNet.loss (forward + backward, reg > 0) plus the SGD update of aml.solver;
  floor  - the step's four matrix products alone (the BLAS floor);
  torch  - the same network, loss and hand-free autograd backward and SGD update in torch on the
           CPU, with the same number of threads as NumPy's BLAS.
Ends with ``ratio=<numpy/torch>``.

    python benchmarks/numpy_step.py [--repeats 50]
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from aml import TwoLayerNet
from aml.runs import machine_info

N, D, H, C = 200, 3072, 1000, 10
LR, REG = 1e-4, 0.1
BURST = 4


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    X = rng.standard_normal((N, D), dtype=np.float32)
    y = rng.integers(0, C, N)
    net = TwoLayerNet(D, H, C, std=1e-2, dtype=np.float32, seed=0)
    p = net.params
    dz3 = rng.standard_normal((N, C), dtype=np.float32)

    def numpy_step():
        _, grads = net.loss(X, y, reg=REG)
        for k, g in grads.items():
            g *= LR
            p[k] -= g

    def floor_step():
        a2 = X @ p["W1"]
        a2 @ p["W2"]
        da2 = dz3 @ p["W2"].T
        X.T @ da2

    tX, ty = torch.from_numpy(X), torch.from_numpy(y)
    tparams = [torch.tensor(p[k]).requires_grad_() for k in ("W1", "b1", "W2", "b2")]
    opt = torch.optim.SGD(tparams, lr=LR)

    def torch_step():
        W1, b1, W2, b2 = tparams
        scores = torch.relu(tX @ W1 + b1) @ W2 + b2
        loss = torch.nn.functional.cross_entropy(scores, ty) + REG * (W1.square().sum() + W2.square().sum())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    steps = {"numpy": numpy_step, "floor": floor_step, "torch": torch_step}
    times = {k: [] for k in steps}
    for f in steps.values():  # warm up
        for _ in range(3):
            f()
    # Interleaved rounds: in each, every method runs a short burst of back-to-back steps (as in a
    # training loop) after a pause, and only the burst's later steps are timed. The pause matters:
    # torch's OpenMP workers and OpenBLAS's threads spin for a while after a parallel region, and
    # without it one library's spinning threads would be billed to the other.
    for _ in range(args.repeats):
        for name, f in steps.items():
            time.sleep(0.1)
            f()
            for _ in range(BURST):
                t = time.perf_counter()
                f()
                times[name].append(time.perf_counter() - t)
    med = {k: float(np.median(v)) * 1e3 for k, v in times.items()}
    info = machine_info()
    print(f"machine: {info['cpu']} ({info['cpu_count']} cores), torch threads {torch.get_num_threads()}, "
          f"numpy {info['numpy']}, torch {info['torch']}, {info['date']}")
    print(f"float32 SGD step, N={N} D={D} H={H} C={C}, median of {args.repeats} rounds x {BURST} steps:")
    for k, v in med.items():
        print(f"  {k:<6} {v:7.2f} ms")
    print(f"numpy/floor={med['numpy'] / med['floor']:.2f}")
    print(f"ratio={med['numpy'] / med['torch']:.2f}")


if __name__ == "__main__":
    main()
