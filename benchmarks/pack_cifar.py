"""Pack CIFAR-10 into compact uint8 ``.npz`` chunks small enough for one transfer each (the device
machine takes at most 64 MiB a call), for ``benchmarks/gpu_check.py --data``.

    python benchmarks/pack_cifar.py --out .gpu/data --chunk-mb 49   # training images only
"""
from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np

from aml.data import load_cifar10_images


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--chunk-mb", type=float, default=60.0)
    args = parser.parse_args()
    # the training images only: the test split stays sealed (gpu_check.py never evaluates on it)
    X, y = load_cifar10_images()[:2]                            # (50000, 32, 32, 3) uint8
    y = y.astype(np.uint8)
    per_chunk = max(1, int(args.chunk_mb * 2**20 // X[0].nbytes))
    args.out.mkdir(parents=True, exist_ok=True)
    for i in range(math.ceil(len(X) / per_chunk)):
        sl = slice(i * per_chunk, (i + 1) * per_chunk)
        np.savez(args.out / f"cifar_part{i}.npz", X=X[sl], y=y[sl], num_train=np.int64(len(X)))
        print(args.out / f"cifar_part{i}.npz")


if __name__ == "__main__":
    main()
