"""Time one epoch of Q4c's tested model (depth 3, 1024 x 1024, BatchNorm, AdamW, batch 256, flips and crops) on
the CPU in float32 and in bfloat16 (``MLPConfig(bfloat16=True)``: ``torch.autocast``), on 47,000 random images
(the time does not depend on the pixels). Ends with ``ratio=<float32/bfloat16>`` and whether
:func:`aml.mlp.fast_bfloat16` expects a gain on this CPU.

    python benchmarks/q4_bfloat16.py [--repeats 2]
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from aml.mlp import MLPConfig, build_model, fast_bfloat16, make_optimizer, train_one_epoch
from aml.runs import machine_info


def epoch_seconds(config: MLPConfig, X: torch.Tensor, y: torch.Tensor) -> float:
    torch.manual_seed(0)
    model = build_model(config, X[0].numel(), 10)
    optimizer, scheduler = make_optimizer(model, config, len(X) // config.batch_size)
    start = time.perf_counter()
    train_one_epoch(model, X, y, optimizer, scheduler, batch_size=config.batch_size,
                    generator=torch.Generator().manual_seed(0), flip=config.flip, crop_padding=config.crop_padding,
                    bfloat16=config.bfloat16)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    g = torch.Generator().manual_seed(0)
    X, y = torch.randn(47000, 3, 32, 32, generator=g), torch.randint(0, 10, (47000,), generator=g)
    base = MLPConfig(hidden_layers=(1024, 1024), batch_size=256, optimizer="adamw", weight_decay=0.02,
                     schedule="onecycle", init="kaiming", batch_norm=True, flip=True, crop_padding=2)
    info = machine_info()
    print(f"machine: {info['cpu']} ({info['cpu_count']} cores), torch {info['torch']} "
          f"({torch.get_num_threads()} threads), {info['date']}")
    print(f"one epoch of 47,000 images, MLP 1024 x 1024 + BatchNorm, batch 256, AdamW, CPU, median of {args.repeats}:")
    times = {}
    for name, flag in (("float32", False), ("bfloat16", True)):
        cfg = MLPConfig(**{**base.to_dict(), "hidden_layers": base.hidden_layers, "bfloat16": flag})
        times[name] = statistics.median(epoch_seconds(cfg, X, y) for _ in range(args.repeats))
        print(f"  {name:9s} {times[name]:6.2f} s")
    print(f"fast_bfloat16(cpu)={fast_bfloat16('cpu')}")
    print(f"ratio={times['float32'] / times['bfloat16']:.1f}")


if __name__ == "__main__":
    main()
