"""Pack CIFAR-10 into compact uint8 ``.npz`` chunks small enough for one transfer each (the device
machine takes at most 64 MiB a call), for ``benchmarks/gpu_check.py --data``.

    python benchmarks/pack_cifar.py --out .gpu/data --chunk-mb 49 --no-test
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
    parser.add_argument("--no-test", action="store_true",
                        help="leave the test images out (gpu_check.py never evaluates on them): 3 chunks, not 4")
    args = parser.parse_args()
    X_train, y_train, X_test, y_test = load_cifar10_images()
    if args.no_test:
        X_test, y_test = X_test[:0], y_test[:0]
    X = np.concatenate([X_train, X_test])                       # (60000, 32, 32, 3) uint8
    y = np.concatenate([y_train, y_test]).astype(np.uint8)
    per_chunk = max(1, int(args.chunk_mb * 2**20 // X[0].nbytes))
    args.out.mkdir(parents=True, exist_ok=True)
    for i in range(math.ceil(len(X) / per_chunk)):
        sl = slice(i * per_chunk, (i + 1) * per_chunk)
        np.savez(args.out / f"cifar_part{i}.npz", X=X[sl], y=y[sl], num_train=np.int64(len(X_train)))
        print(args.out / f"cifar_part{i}.npz")


if __name__ == "__main__":
    main()
