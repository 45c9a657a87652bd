"""Time one training epoch of the handout's two-layer MLP (hidden [50], batch 200, Adam) on the CPU,
fed two ways, same model, same batch size:

  dataloader - the handout's pipeline: torchvision's CIFAR10 dataset (each image turned into a PIL
               image, then ToTensor + Normalize, one sample at a time) in a shuffling DataLoader.
               torchvision's class itself checks MD5 sums that the offline copy lacks, so a Dataset
               with the same __getitem__ over the same arrays stands in for it;
  fast       - aml.mlp's path: the whole split normalised once into one tensor, minibatches drawn
               from a seeded randperm by indexing.

Ends with ``ratio=<dataloader/fast>``.

    AML_DATA_DIR=../shared/data python benchmarks/q4_epoch.py [--repeats 2]
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

from aml.data import load_cifar10_images
from aml.mlp import MLPConfig, build_model, make_optimizer, to_tensor_images, train_one_epoch
from aml.runs import machine_info

CONFIG = MLPConfig()  # the handout's: hidden [50], batch 200, Adam lr 1e-3, weight decay 1e-3, N(0, 1e-3) init


class ArrayCIFAR(Dataset):
    """torchvision.datasets.CIFAR10's __getitem__ (PIL image, then the transform), over arrays in memory."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, transform):
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return self.transform(Image.fromarray(self.images[i])), int(self.labels[i])


def dataloader_epoch(model, loader, optimizer, scheduler) -> float:
    model.train()
    start = time.perf_counter()
    for xb, yb in loader:
        loss = torch.nn.functional.cross_entropy(model(xb), yb)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
    return time.perf_counter() - start


def fast_epoch(model, X, y, optimizer, scheduler, generator) -> float:
    start = time.perf_counter()
    train_one_epoch(model, X, y, optimizer, scheduler, batch_size=CONFIG.batch_size, generator=generator)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2, help="epochs timed per method (interleaved)")
    parser.add_argument("--num-workers", type=int, default=0, help="DataLoader workers (the handout's: 0)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads for both (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    X_all, y_all, _ = load_cifar10_images()
    X_tr, y_tr = X_all[:49000], y_all[:49000]
    tf = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))])
    loader = DataLoader(ArrayCIFAR(X_tr, y_tr, tf), batch_size=CONFIG.batch_size, shuffle=True,
                        num_workers=args.num_workers, generator=torch.Generator().manual_seed(0))
    X_fast, y_fast = to_tensor_images(X_tr, "handout"), torch.from_numpy(y_tr)
    gen = torch.Generator().manual_seed(0)

    runs = {}
    for name in ("dataloader", "fast"):
        model = build_model(CONFIG)
        runs[name] = (model, *make_optimizer(model, CONFIG, 245))
    times = {"dataloader": [], "fast": []}
    for _ in range(args.repeats):
        times["dataloader"].append(dataloader_epoch(*runs["dataloader"][:1], loader, *runs["dataloader"][1:]))
        times["fast"].append(fast_epoch(runs["fast"][0], X_fast, y_fast, *runs["fast"][1:], gen))

    info = machine_info()
    med = {k: float(np.median(v)) for k, v in times.items()}
    print(f"machine: {info['cpu']} ({info['cpu_count']} cores), torch {info['torch']} "
          f"({torch.get_num_threads()} threads), {info['date']}")
    print(f"one epoch of 49,000 images, MLP [50], batch {CONFIG.batch_size}, Adam, CPU, median of {args.repeats}:")
    for k, v in med.items():
        print(f"  {k:<10} {v:7.2f} s")
    print(f"ratio={med['dataloader'] / med['fast']:.1f}")


if __name__ == "__main__":
    main()
